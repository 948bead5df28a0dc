"""A case whose expected reason is not among the reasons says what differed: field by field
against the reason with that code, both values in full, and for a long text where the two
first differ; or, when no reason has that code, the codes there were."""

from __future__ import annotations

from pathlib import Path

from engine.testing.cases import CaseResult, _compare_reasons, load_cases
from engine.testing.tester import run_case
from tests.strategies import shipped_project

FULL_FEE_JA = "書類完備・申請後のキャンセルのため、キャンセル料は全額です"
PLANNING_JA = "請求をいくらにするかは経企決裁です（この金額は提案です）"
PLANNING_EN = "経企 decides what to bill; this amount is a proposal"
PLANNING_ACTION_JA = (
    "管理担当と案件決裁者は顧客とのトラブルを予見して請求の可否を検討すること（まずは請求して"
    "みるのはNG）。キャンセル料の記載は利用規約にあり、申込書には記載しない"
)


def failures(tmp_path: Path, reasons: str) -> list[str]:
    """The failures of a case of cancellation-fees (documents filed: FEE_FULL and
    FEE_DECIDED_BY_PLANNING) that expects `reasons`."""
    path = tmp_path / "cancellation-fees.tests.yaml"
    path.write_text(
        f"""\
kimari: 1
policy: cancellation-fees
cases:
  - name: documents filed
    at: "2024-06-01T10:00:00+09:00"
    facts:
      cancellation: {{reward: 150000, stage: documents_filed, contract_start: "2024-03-01"}}
    expect:
      reasons: {reasons}
""",
        encoding="utf-8",
    )
    project = shipped_project()
    [case] = load_cases(path, project)
    return run_case(case, project).failures


def test_reasons_as_given_pass_whatever_fields_they_list(tmp_path: Path) -> None:
    reasons = f"""
        - {{code: FEE_DECIDED_BY_PLANNING, refs: [FE-1, FE-3], message: {{ja: "{PLANNING_JA}"}}}}
        - {{code: FEE_FULL, rule: fee-full, message: {{ja: "{FULL_FEE_JA}"}}}}"""
    assert failures(tmp_path, reasons) == []


def test_a_differing_text_is_shown_in_full_both_ways_with_where_it_first_differs(
    tmp_path: Path,
) -> None:
    wrong = PLANNING_EN.replace("proposal", "proposals")
    reasons = f'[{{code: FEE_DECIDED_BY_PLANNING, message: {{en: "{wrong}"}}}}]'
    assert failures(tmp_path, reasons) == [
        f"reason FEE_DECIDED_BY_PLANNING: message.en: expected {wrong!r}, got {PLANNING_EN!r}\n"
        "      they differ from character 51: expected '…a proposals', got '…a proposal'"
    ]


def test_the_first_difference_inside_a_long_japanese_text_is_pointed_at(tmp_path: Path) -> None:
    wrong = PLANNING_ACTION_JA.replace("利用規約", "申込規約")
    reasons = f'[{{code: FEE_DECIDED_BY_PLANNING, action: {{ja: "{wrong}"}}}}]'
    assert failures(tmp_path, reasons) == [
        f"reason FEE_DECIDED_BY_PLANNING: action.ja: expected {wrong!r},"
        f" got {PLANNING_ACTION_JA!r}\n"
        "      they differ from character 63:"
        " expected '…キャンセル料の記載は申込規約にあり、申込…',"
        " got '…キャンセル料の記載は利用規約にあり、申込…'"
    ]


def test_a_differing_short_value_names_its_field_and_both_values(tmp_path: Path) -> None:
    reasons = "[{code: FEE_FULL, rule: fee-half}, {code: FEE_DECIDED_BY_PLANNING, refs: [FE-1]}]"
    assert failures(tmp_path, reasons) == [
        "reason FEE_FULL: rule: expected 'fee-half', got 'fee-full'",
        'reason FEE_DECIDED_BY_PLANNING: refs: expected ["FE-1"], got ["FE-1","FE-3"]',
    ]


def test_a_field_the_reason_does_not_have_is_named_with_the_fields_it_has(
    tmp_path: Path,
) -> None:
    reasons = "[{code: FEE_FULL, action: {ja: 請求する}}]"
    assert failures(tmp_path, reasons) == [
        'reason FEE_FULL: action: expected {"ja":"請求する"}, but the reason has no such'
        " field (fields: rule, refs, code, message)"
    ]


def test_a_code_no_reason_has_lists_the_codes_there_were(tmp_path: Path) -> None:
    assert failures(tmp_path, "[{code: FEE_FULL}, {code: FEE_HALF}]") == [
        'no reason FEE_HALF (reasons: ["FEE_FULL","FEE_DECIDED_BY_PLANNING"])'
    ]


def test_a_reason_expected_more_often_than_given_says_no_other(tmp_path: Path) -> None:
    assert failures(tmp_path, "[{code: FEE_FULL}, {code: FEE_FULL}]") == [
        'no other reason FEE_FULL (reasons: ["FEE_FULL","FEE_DECIDED_BY_PLANNING"])'
    ]


def test_a_reason_without_code_is_compared_with_the_closest_reason(tmp_path: Path) -> None:
    reasons = "[{rule: fee-full, refs: [FE-9]}]"
    assert failures(tmp_path, reasons) == ['reason FEE_FULL: refs: expected ["FE-9"], got ["FE-2"]']


def test_a_reason_without_code_and_none_left_to_compare_is_shown_whole(tmp_path: Path) -> None:
    reasons = "[{code: FEE_FULL}, {code: FEE_DECIDED_BY_PLANNING}, {rule: fee-half}]"
    assert failures(tmp_path, reasons) == [
        'no reason matches {"rule":"fee-half"} (reasons: ["FEE_FULL","FEE_DECIDED_BY_PLANNING"])'
    ]


def reason_failures(expected: list[dict], actual: list[dict]) -> list[str]:
    result = CaseResult(Path("t.tests.yaml"), "c", None, [], True)  # type: ignore[arg-type]
    _compare_reasons(result, expected, actual)
    return result.failures


def test_each_expected_reason_gets_its_own_reason_whatever_the_order_they_are_listed_in() -> None:
    """A reason listed by code alone first took the reason that a later, fuller one needed,
    and the case failed although every expected reason was there."""
    actual = [{"code": "X", "facts": {"a": 1}}, {"code": "X", "facts": {"a": 2}}]
    loose, full = {"code": "X"}, {"code": "X", "facts": {"a": 1}}
    assert reason_failures([loose, full], actual) == []
    assert reason_failures([full, loose], actual) == []
    assert reason_failures([loose, loose], actual) == []
    # the other side: one reason cannot be taken twice
    assert reason_failures([full, full], actual) == ["reason X: facts.a: expected 1, got 2"]
    assert reason_failures([loose, full, loose], actual) == [
        'no other reason X (reasons: ["X","X"])'
    ]
