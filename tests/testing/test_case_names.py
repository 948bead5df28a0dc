"""A test file's names are checked against its policy when the file is read: a misspelt
rule, outcome field, reason code, setting, data set or rulebook ID is a problem at its
place, which `kimari validate` reports, not a case that fails or errors in `kimari test`."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.core.errors import PolicyError
from engine.testing.cases import load_cases
from tests import ROOT
from tests.strategies import shipped_project

FACTS = '{cancellation: {reward: 150000, stage: documents_filed, contract_start: "2024-03-01"}}'


def problems(tmp_path: Path, text: str, **project_changes: object) -> list[tuple[str, str, str]]:
    """(line:col, code, hint) of each problem of a cancellation-fees test file."""
    path = tmp_path / "cancellation-fees.tests.yaml"
    path.write_text(
        "kimari: 1\npolicy: cancellation-fees\n" + text.replace("FACTS", FACTS), encoding="utf-8"
    )
    project = dataclasses.replace(shipped_project(), **project_changes)
    try:
        load_cases(path, project)
    except PolicyError as exc:
        found = exc.diagnostics
    else:
        return []
    return [(f"{d.location.line}:{d.location.col}", d.code, d.hint or "") for d in found]  # type: ignore[union-attr]


def test_names_the_policy_does_not_have_are_reported_at_their_place_with_a_hint(
    tmp_path: Path,
) -> None:
    text = """\
cases:
  - name: one of each
    refs: [FE-22]
    settings: {credit_yearz: 2}
    data: {customerz: []}
    facts: FACTS
    expect:
      fired: [fee-ful]
      not_fired: [fee-half]
      outcome: {fee_teir: full, fee_percent: 100}
      reasons: [{code: FEE_FUL}, {code: FEE_DECIDED_BY_PLANNING}]
"""
    found = problems(tmp_path, text)
    assert [(where, code) for where, code, _ in found] == [
        ("5:12", "unknown_ref"),
        ("10:15", "unknown_rule"),
        ("6:16", "unknown_setting"),
        ("7:12", "unknown_data_set"),
        ("12:17", "unknown_outcome_field"),
        ("13:24", "unknown_reason_code"),
    ]
    hints = {code: hint for _, code, hint in found}
    assert hints["unknown_rule"] == "did you mean 'fee-full'?"
    assert hints["unknown_outcome_field"] == "did you mean 'fee_tier'?"
    assert hints["unknown_reason_code"] == "did you mean 'FEE_FULL'?"


def test_the_same_names_spelt_right_are_taken(tmp_path: Path) -> None:
    text = """\
cases:
  - name: one of each
    refs: [FE-2]
    facts: FACTS
    expect:
      fired: [fee-full]
      not_fired: [fee-half]
      outcome: {fee_tier: full, fee_percent: 100}
      reasons: [{code: FEE_FULL}, {code: FEE_DECIDED_BY_PLANNING}]
"""
    assert problems(tmp_path, text) == []


def test_a_name_of_the_defaults_is_reported_once_at_the_defaults(tmp_path: Path) -> None:
    """Not once per case that inherits it (30 identical lines for a file of 30 cases)."""
    text = """\
defaults:
  settings: {nope: 1}
  data: {nada: []}
cases:
  - name: first
    facts: FACTS
  - name: second
    facts: FACTS
  - name: third, with its own misspelt setting
    settings: {nope: 2}
    facts: FACTS
"""
    assert [(where, code) for where, code, _ in problems(tmp_path, text)] == [
        ("4:14", "unknown_setting"),
        ("5:10", "unknown_data_set"),
        ("12:16", "unknown_setting"),
    ]


def test_a_case_that_expects_an_error_may_give_an_unknown_setting_to_test_its_refusal(
    tmp_path: Path,
) -> None:
    text = """\
cases:
  - name: an unknown setting is refused
    settings: {nope: 1}
    facts: FACTS
    expect: {error: {code: unknown_setting, pointer: /settings/nope}}
"""
    assert problems(tmp_path, text) == []


def test_refs_are_checked_against_an_index_that_was_read_even_an_empty_one(
    tmp_path: Path,
) -> None:
    text = "cases:\n  - name: c\n    refs: [FE-2]\n    facts: FACTS\n"
    assert problems(tmp_path, text) == []
    assert [code for _, code, _ in problems(tmp_path, text, rulebook={})] == ["unknown_ref"]
    # an index that could not be read has its own problems reported; refs go unchecked
    assert problems(tmp_path, text, rulebook={}, rulebook_read=False) == []


def test_kimari_validate_reports_them_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    tests = tmp_path / "policies" / "cancellation-fees.tests.yaml"
    text = tests.read_text(encoding="utf-8")
    tests.write_text(text.replace("outcome: {fee_tier: full,", "outcome: {fee_teir: full,", 1))
    assert main(["validate", str(tmp_path / "policies")]) == 2
    out = capsys.readouterr().err
    assert "cancellation-fees.tests.yaml:15:17: unknown_outcome_field" in out
    assert "(did you mean 'fee_tier'?)" in out


def test_the_names_of_a_flow_case_are_checked_against_its_flow(tmp_path: Path) -> None:
    path = tmp_path / "claim-status.tests.yaml"
    path.write_text(
        """\
kimari: 1
policy: claim-status
defaults:
  actor: {id: dealer-1, roles: [販売店]}
cases:
  - name: one of each
    entity: {state: requestd}
    steps:
      - event: {type: clam}
        expect: {state: under_reviw, transition: start-reviw, actions: [SHOW_WITH_INVOIC]}
      - event: {type: nothing}
        expect: {error: {code: unknown_event}}
""",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as caught:
        load_cases(path, shipped_project())
    found = [(f"{d.location.line}:{d.location.col}", d.hint) for d in caught.value.diagnostics]  # type: ignore[union-attr]
    assert found == [
        ("7:21", "did you mean 'requested'?"),
        ("9:23", "did you mean 'claim'?"),
        ("10:25", "did you mean 'under_review'?"),
        ("10:50", "did you mean 'start-review'?"),
        ("10:73", "did you mean 'SHOW_WITH_INVOICE'?"),
    ]  # the second step expects the refusal of its unknown event: not reported


def flow_problems(tmp_path: Path, cases: str) -> list[tuple[str, str, str]]:
    """(line:col, code, hint) of each problem of a case-cancellation test file."""
    path = tmp_path / "case-cancellation.tests.yaml"
    path.write_text(
        f"""\
kimari: 1
policy: case-cancellation
defaults:
  actor: {{id: 佐藤, roles: [担当者]}}
  entity: {{state: in_progress, facts: {{assignee: 佐藤, manager: 鈴木, case_approver: 高橋}}}}
cases:
{cases}""",
        encoding="utf-8",
    )
    try:
        load_cases(path, shipped_project())
    except PolicyError as exc:
        found = exc.diagnostics
    else:
        return []
    return [(f"{d.location.line}:{d.location.col}", d.code, d.hint or "") for d in found]  # type: ignore[union-attr]


STEP = "      - event: {type: record_contact_attempt, channel: phone, reached: false}\n"


def test_the_settings_and_data_of_a_flow_case_and_its_steps_are_checked_by_name(
    tmp_path: Path,
) -> None:
    """They were not: `kimari validate` passed such a file and `kimari test` failed every
    step of every case with the same unexpected unknown_setting."""
    cases = (
        "  - name: misspelt\n"
        "    settings: {sg_window_dayz: 30}\n"
        "    data: {customers: []}\n"
        "    steps:\n" + STEP + "        settings: {sg_min_contact_dayz: 2}\n"
        "  - name: spelt right\n"
        "    settings: {sg_window_days: 30}\n"
        "    steps:\n" + STEP + "        settings: {sg_min_contact_days: 2}\n"
    )
    assert flow_problems(tmp_path, cases) == [
        ("8:16", "unknown_setting", "did you mean 'sg_window_days'?"),
        ("9:12", "unknown_data_set", ""),
        ("12:20", "unknown_setting", "did you mean 'sg_min_contact_days'?"),
    ]


def test_a_flow_step_that_expects_an_error_may_give_an_unknown_setting(tmp_path: Path) -> None:
    cases = (
        "  - name: an unknown setting is refused\n"
        "    steps:\n" + STEP + "        settings: {nope: 1}\n"
        "        expect: {error: {code: unknown_setting, pointer: /settings/nope}}\n"
        "      - event: {type: record_contact_attempt, channel: phone, reached: false}\n"
        "        settings: {nope_again: 1}\n"
    )
    # the first step tests the refusal; the second one's misspelling is still reported
    assert [(where, code) for where, code, _ in flow_problems(tmp_path, cases)] == [
        ("13:20", "unknown_setting")
    ]
