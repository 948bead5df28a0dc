"""The values a test file gives for `at`, settings and data entries are checked when the
file is read: a bad one is one problem at its place in the test file, reported by
`kimari validate` and `kimari test`, not an error of every case that inherits it, placed
at a pointer of the request."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.api import run_tests
from engine.cli.main import main
from engine.core.errors import PolicyError
from engine.testing.cases import load_cases
from tests import ROOT
from tests.strategies import shipped_project

AT = '"2024-09-10T12:00:00+09:00"'
ESTIMATE = (
    '{id: Q-2, store_id: S-1, member_id: M-1, received_at: "2024-09-20T10:00:00+09:00", '
    "status: 新着}"
)


def problems(tmp_path: Path, policy: str, text: str) -> list[tuple[str, str, str]]:
    """(line:col, code, pointer) of each problem of a test file of `policy`."""
    path = tmp_path / f"{policy}.tests.yaml"
    path.write_text(f"kimari: 1\npolicy: {policy}\n{text}", encoding="utf-8")
    try:
        load_cases(path, shipped_project())
    except PolicyError as exc:
        found = exc.diagnostics
    else:
        return []
    return [(f"{d.location.line}:{d.location.col}", d.code, d.pointer or "") for d in found]  # type: ignore[union-attr]


def test_good_values_are_taken(tmp_path: Path) -> None:
    text = f"""\
defaults:
  at: {AT}
  data: {{estimates: [{ESTIMATE}]}}
cases:
  - name: its own values
    at: "2024-09-10T12:00:00Z"
    data: {{estimates: []}}
  - name: the defaults
"""
    assert problems(tmp_path, "exemption-claims", text) == []
    text = f"""\
defaults:
  settings: {{credit_months: 3}}
cases:
  - name: its own values
    at: {AT}
    settings: {{no_fee_days: 0, credit_months: null}}
  - name: the defaults
"""
    assert problems(tmp_path, "cancellation-fees", text) == []


def test_an_at_of_the_defaults_without_offset_is_one_problem_at_the_defaults(
    tmp_path: Path,
) -> None:
    text = """\
defaults:
  at: "2024-09-10T12:00:00"
cases:
  - name: first
  - name: second
  - name: third, with its own at
    at: "2024-09-31T12:00:00+09:00"
"""
    assert problems(tmp_path, "exemption-claims", text) == [
        ("4:7", "at_invalid", "/defaults/at"),
        ("9:9", "at_invalid", "/cases/2/at"),
    ]


def test_a_setting_of_the_wrong_type_is_a_problem_at_its_value(tmp_path: Path) -> None:
    text = """\
defaults:
  settings: {credit_months: "3"}
cases:
  - name: first
  - name: second
    settings: {no_fee_days: -1}
"""
    assert problems(tmp_path, "cancellation-fees", text) == [
        ("4:29", "setting_invalid", "/defaults/settings/credit_months"),
        ("8:29", "setting_invalid", "/cases/1/settings/no_fee_days"),
    ]


def test_a_bad_data_entry_is_a_problem_at_its_field(tmp_path: Path) -> None:
    text = f"""\
defaults:
  data:
    estimates:
      - {ESTIMATE}
      - {{id: Q-3, store_id: S-1, member_id: M-1, status: 新着, received_at: "2024-09-20"}}
      - {{id: Q-4, store_id: S-1, member_id: M-1, status: 新着, received_at: {AT}, colour: red}}
cases:
  - name: first
  - name: second
    data:
      store_territories: [{{store_id: S-1, prefecture: 東京都, city: 港区}}]
"""
    assert problems(tmp_path, "exemption-claims", text) == [
        ("7:75", "format", "/defaults/data/estimates/1/received_at"),
        ("8:112", "unknown_field", "/defaults/data/estimates/2/colour"),
        ("13:66", "unknown_field", "/cases/1/data/store_territories/0/city"),
    ]


def test_a_case_that_expects_an_error_may_give_a_bad_value_to_test_its_refusal(
    tmp_path: Path,
) -> None:
    text = """\
cases:
  - name: an at without offset is refused
    at: "2024-09-10T12:00:00"
    expect: {error: {code: at_invalid, pointer: /at}}
"""
    assert problems(tmp_path, "exemption-claims", text) == []


def test_the_at_and_settings_of_a_flow_step_are_checked_unless_it_expects_an_error(
    tmp_path: Path,
) -> None:
    text = f"""\
defaults:
  at: {AT}
  actor: {{id: 佐藤, roles: [担当者]}}
cases:
  - name: steps
    steps:
      - event: {{type: request_cancellation}}
        at: "2024-03-10 10:00"
        settings: {{sg_window_days: "61"}}
      - event: {{type: request_cancellation}}
        at: "2024-03-10 10:00"
        expect: {{error: {{code: at_invalid}}}}
"""
    assert problems(tmp_path, "case-cancellation", text) == [
        ("10:13", "at_invalid", "/cases/0/steps/0/at"),
        ("11:36", "setting_invalid", "/cases/0/steps/0/settings/sg_window_days"),
    ]


def copy_of_the_policies(tmp_path: Path) -> Path:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    tests = tmp_path / "policies" / "cancellation-fees.tests.yaml"
    text = tests.read_text(encoding="utf-8")
    tests.write_text(text.replace('at: "2024-06-01T10:00:00+09:00"', 'at: "2024-06-01T10:00:00"'))
    return tmp_path / "policies"


def test_kimari_test_reports_a_bad_at_of_the_defaults_once_at_its_place(tmp_path: Path) -> None:
    report = run_tests([copy_of_the_policies(tmp_path) / "cancellation-fees.tests.yaml"])
    assert [(str(d.location), d.code) for d in report.problems] == [
        (f"{tmp_path}/policies/cancellation-fees.tests.yaml:7:7", "at_invalid")
    ]
    assert report.results == []


def test_kimari_validate_reports_a_bad_at_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(copy_of_the_policies(tmp_path))]) == 2
    out = capsys.readouterr().err
    assert (
        'cancellation-fees.tests.yaml:7:7: at_invalid: "2024-06-01T10:00:00" needs a UTC offset'
        in out
    )


def test_two_cases_of_one_name_are_one_problem_at_the_second(tmp_path: Path) -> None:
    text = """\
cases:
  - name: day 7 is free
    facts: {cancellation: {reward: 1000, stage: initial_only, contract_start: "2024-04-01"}}
  - name: day 7 is free
    facts: {cancellation: {reward: 1000, stage: work_started, contract_start: "2024-04-01"}}
  - name: day 8 is not
"""
    assert problems(tmp_path, "cancellation-fees", text) == [("6:11", "duplicate_case_name", "")]


def test_a_rule_expected_both_to_fire_and_not_is_refused(tmp_path: Path) -> None:
    text = """\
cases:
  - name: both ways
    expect: {fired: [fee-none, fee-half], not_fired: [fee-full, fee-none]}
  - name: one way
    expect: {fired: [fee-none], not_fired: [fee-full]}
"""
    found = problems(tmp_path, "cancellation-fees", text)
    assert found == [("5:65", "contradictory_expectation", "")]


def test_a_misspelt_policy_gets_its_nearest_name(tmp_path: Path) -> None:
    path = tmp_path / "fees.tests.yaml"
    path.write_text("kimari: 1\npolicy: cancelation-fees\ncases: [{name: a}]\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_cases(path, shipped_project())
    [problem] = caught.value.diagnostics
    assert problem.code == "unknown_policy" and "cancellation-fees" in (problem.hint or "")
