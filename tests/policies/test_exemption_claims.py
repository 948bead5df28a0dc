"""The exemption-claims policy (RULES EX-1 to EX-5) through the public Python API.

The YAML cases beside the policy (policies/exemption-claims.tests.yaml) pin every
boundary; these tests read the same rules as a service would: `engine.api.load`,
`decide`, the shipped sample data, and the errors a caller gets for bad facts.
The claim status flow is a flow policy of its own and is tested with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.api import Project
from engine.compile.model import CompiledPolicy
from engine.core.errors import InputError, PolicyError
from engine.flow.engine import FlowEngine
from engine.project.project import load_dataset
from engine.runtime.decision import Decision
from engine.runtime.evaluate import decide
from engine.source.data import Dataset
from engine.store.flows import FlowStore
from engine.testing.cases import deep_merge, load_cases
from tests import ROOT
from tests.strategies import act, decided_by_both_backends, decision_inputs, shipped_project

POLICY_ID = "exemption-claims"

# Seed 000's explanations of the ineligible reasons (対象とならない事由), verbatim.
ONE_CHARGE_PER_ADDRESS = (
    "1アドレスに対し1課金で情報を配信しています。メールアドレスは重要な個人情報です。"
)
HANDLE_NAMES = (
    "インターネット利用者の特性のひとつとしてハンドルネームを使う方がいらっしゃいます。"
    "コミュニケーションを深める中で本名をうかがうなどの対応をお願いします。"
)
MOBILE = "携帯からのインターネット接続が充実し、依頼件数も増えています。"
CANNOT_SEE_CUSTOMERS = "オートックワンではご加盟ディーラー様の未既納客を確認することはできません。"
NO_REPLY_IS_NO_PRANK = (
    "Web商談のすすめ方によってお客様の反応は異なります。"
    "また、返信がないからといってひやかしでの依頼ではありません。"
)
COMPARING_BUYERS = (
    "見積依頼者は必ずしも貴社の取り扱い車種を購入する方のみでなく、"
    "他車を比較対象としている方もいらっしゃいます。"
    "購入検討中のお客様に対してはWeb商談においても店頭での商談同様のご対応をお願いします。"
)
EXPLANATIONS = {
    "住所なし": ONE_CHARGE_PER_ADDRESS,
    "電話番号なし": ONE_CHARGE_PER_ADDRESS,
    "名前が本名でない": HANDLE_NAMES,
    "携帯アドレス": MOBILE,
    "既にお店で商談中": CANNOT_SEE_CUSTOMERS,
    "既納客": CANNOT_SEE_CUSTOMERS,
    "メーカーシステムとの重複": CANNOT_SEE_CUSTOMERS,
    "訪問拒否": NO_REPLY_IS_NO_PRANK,
    "ひやかしと思われる": NO_REPLY_IS_NO_PRANK,
    "返信なし": NO_REPLY_IS_NO_PRANK,
    "購入意思なし": COMPARING_BUYERS,
    "既に他社購入": COMPARING_BUYERS,
}


@pytest.fixture(scope="module")
def policy(project: Project) -> CompiledPolicy:
    return project.policy(POLICY_ID)


def claim(**estimate: Any) -> dict[str, Any]:
    """Facts of a claim on an 対象外 estimate of 2024-08-20 at the sample store S-YOKOHAMA."""
    base = {
        "id": "Q-TEST",
        "store_id": "S-YOKOHAMA",
        "member_id": "M-999999",
        "mail_address": "test@example.jp",
        "received_at": "2024-08-20T10:00:00+09:00",
        "status": "対象外",
        "exclusion_reason": "その他",
        "exclusion_detail": "お客様が間違えて見積もり依頼してしまったもの",
    }
    return {"estimate": deep_merge(base, estimate)}


def decide_claim(
    project: Project,
    policy: CompiledPolicy,
    facts: dict[str, Any],
    at: str = "2024-09-10T12:00:00+09:00",
    **data: list[dict[str, Any]],
) -> Decision:
    datasets = project.data_for(policy)
    for name, entries in data.items():
        datasets[name] = load_dataset(policy.datasets[name], entries=entries)
    return decide(policy, facts, at=at, data=datasets)


def codes(decision: Decision) -> list[str]:
    return [r["code"] for r in decision.reasons]


# -- EX-1 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received_at", "at", "verdict", "deadline"),
    [
        ("2024-08-01T00:00:00+09:00", "2024-09-21T23:59:59+09:00", "accepted", "2024-09-22"),
        ("2024-08-31T23:59:59+09:00", "2024-09-22T00:00:00+09:00", "refused", "2024-09-22"),
        ("2024-12-15T10:00:00+09:00", "2025-01-21T23:59:59+09:00", "accepted", "2025-01-22"),
        ("2024-12-15T10:00:00+09:00", "2025-01-22T00:00:00+09:00", "refused", "2025-01-22"),
        ("2024-08-31T15:00:00Z", "2024-09-22T00:00:00+09:00", "accepted", "2024-10-22"),
    ],
)
def test_ex_1_claims_close_at_24_00_on_the_21st_of_the_billing_month(
    project: Project, policy: CompiledPolicy, received_at: str, at: str, verdict: str, deadline: str
) -> None:
    """EX-1: received in month M, billed in M+1, claimable until M+1/21 24:00 (Japan)."""
    decision = decide_claim(project, policy, claim(received_at=received_at), at=at)
    assert decision.outcome["verdict"] == verdict
    assert decision.outcome["deadline"].isoformat() == f"{deadline}T00:00:00+09:00"
    assert decision.outcome["before_deadline"] is (verdict == "accepted")
    assert ("DEADLINE_PASSED" in codes(decision)) is (verdict == "refused")


# -- EX-2 ------------------------------------------------------------------------------


def test_ex_2_an_estimate_must_be_excluded_before_it_is_claimed(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-2: only an 対象外 estimate can be claimed."""
    decision = decide_claim(project, policy, claim(status="商談中"))
    assert decision.outcome["verdict"] == "refused"
    assert "ESTIMATE_NOT_EXCLUDED" in codes(decision)


def test_ex_2_an_excluded_estimate_needs_its_exclusion_reason(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-2: the exclusion reason must be set."""
    facts = claim()
    del facts["estimate"]["exclusion_reason"]
    decision = decide_claim(project, policy, facts)
    assert decision.fired == ["exclusion-reason-missing"]
    assert decision.outcome["verdict"] == "refused"


# -- EX-3, EX-3.1 ----------------------------------------------------------------------


def test_ex_3_1_a_duplicate_is_found_in_the_shipped_estimates_with_its_id(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-3, EX-3.1: Q-2024-0815 and Q-2024-0801 are the same member at the same store."""
    facts = claim(
        id="Q-2024-0815",
        member_id="M-100234",
        received_at="2024-08-15T21:40:00+09:00",
        exclusion_reason="重複",
    )
    decision = decide_claim(project, policy, facts)
    assert decision.outcome["verdict"] == "accepted"
    assert decision.outcome["reason_eligible"] is True
    assert decision.outcome["precondition_met"] is True
    assert decision.outcome["counterpart_id"] == "Q-2024-0801"


def counterpart(received_at: str, status: str = "新着") -> dict[str, Any]:
    return {
        "id": "Q-OTHER",
        "store_id": "S-YOKOHAMA",
        "member_id": "M-999999",
        "received_at": received_at,
        "status": status,
    }


@pytest.mark.parametrize(
    ("received_at", "status", "found"),
    [
        ("2024-09-20T23:59:59+09:00", "新着", True),  # exactly one month later
        ("2024-09-21T00:00:00+09:00", "新着", False),  # one month and one day
        ("2024-07-20T00:00:00+09:00", "商談中", True),  # exactly one month earlier
        ("2024-07-19T23:59:59+09:00", "商談中", False),
        ("2024-08-25T10:00:00+09:00", "対象外", False),  # never an 対象外 counterpart
    ],
)
def test_ex_3_1_duplicates_are_within_one_month_either_side_and_not_excluded(
    project: Project, policy: CompiledPolicy, received_at: str, status: str, found: bool
) -> None:
    """EX-3.1: both sides of the one-month window; an 対象外 estimate is no counterpart."""
    decision = decide_claim(
        project,
        policy,
        claim(exclusion_reason="重複"),
        estimates=[counterpart(received_at, status)],
    )
    assert decision.outcome["verdict"] == ("accepted" if found else "refused")
    assert decision.outcome["counterpart_id"] == ("Q-OTHER" if found else None)
    if status == "対象外":
        assert codes(decision) == ["DUPLICATE_COUNTERPART_EXCLUDED"]


# -- EX-3.2 ----------------------------------------------------------------------------


def test_ex_3_2_a_wrong_address_claim_waits_for_the_end_of_the_seventh_day(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-3.2: not yet until 24:00 of the 7th day after the first mail, then accepted."""
    facts = claim(
        exclusion_reason="アドレス違い",
        mail={"first_sent_at": "2024-08-21T18:00:00+09:00", "undelivered_suspected": True},
    )
    early = decide_claim(project, policy, facts, at="2024-08-28T23:59:59+09:00")
    assert early.outcome["verdict"] == "not_yet"
    window_end = early.outcome["claimable_from"]
    assert window_end.isoformat() == "2024-08-29T00:00:00+09:00"
    on_time = decide_claim(project, policy, facts, at=window_end.isoformat())
    assert on_time.outcome["verdict"] == "accepted"
    assert on_time.outcome["precondition_met"] is True


def test_ex_3_2_a_mail_opened_within_seven_days_refuses_the_claim(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-3.2: a mail opened within the 7 days refuses アドレス違い."""
    facts = claim(
        exclusion_reason="アドレス違い",
        mail={
            "first_sent_at": "2024-08-21T18:00:00+09:00",
            "undelivered_suspected": True,
            "opened_at": "2024-08-28T23:59:59+09:00",
        },
    )
    decision = decide_claim(project, policy, facts)
    assert decision.outcome["verdict"] == "refused"
    assert codes(decision) == ["ADDRESS_MAIL_OPENED"]


# -- EX-3.3 to EX-3.6 ------------------------------------------------------------------


def test_ex_3_3_outside_the_shipped_territory_is_accepted_with_the_seed_advice(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-3.3: outside the store's territory, with the advice to check the postal code."""
    facts = claim(exclusion_reason="テリトリー外", customer={"prefecture": "千葉県"})
    decision = decide_claim(project, policy, facts)
    assert decision.outcome["verdict"] == "accepted"
    advice = next(r for r in decision.reasons if r["code"] == "TERRITORY_ADVICE")
    assert advice["advice"] is True
    assert advice["message"]["ja"] == (
        "入力された郵便番号とお客様の住所に明らかな相違がある場合、一度お客様に状況を確認してください"
    )
    assert advice["message"]["en"]


@pytest.mark.parametrize("field", ["prefecture", "postal_prefecture"])
def test_ex_3_3_a_prefecture_without_its_suffix_is_refused_with_its_pointer(
    project: Project, policy: CompiledPolicy, field: str
) -> None:
    """EX-3.3: 東京 for 東京都 would compare unequal to the territory; it is an input error."""
    customer = {"prefecture": "千葉県", field: "東京"}
    with pytest.raises(InputError) as raised:
        decide_claim(project, policy, claim(exclusion_reason="テリトリー外", customer=customer))
    assert [(d.code, d.pointer) for d in raised.value.diagnostics] == [
        ("enum", f"/facts/estimate/customer/{field}")
    ]


def test_ex_3_3_a_territory_prefecture_without_its_suffix_is_refused_in_the_data(
    policy: CompiledPolicy,
) -> None:
    """EX-3.3: the territories are written as the facts are, so 東京 is refused there too."""
    with pytest.raises(PolicyError) as raised:
        load_dataset(
            policy.datasets["store_territories"],
            entries=[{"store_id": "S-1", "prefecture": "東京"}],
        )
    assert [(d.code, d.pointer) for d in raised.value.diagnostics] == [("enum", "/0/prefecture")]


def test_ex_3_3_a_postal_code_of_another_prefecture_needs_review(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-3.3: postal code and address disagree: ask the customer first."""
    facts = claim(
        exclusion_reason="テリトリー外",
        customer={"prefecture": "千葉県", "postal_prefecture": "神奈川県"},
    )
    decision = decide_claim(project, policy, facts)
    assert decision.outcome["verdict"] == "needs_review"
    assert "EX-3.3" in decision.reasons[-1]["message"]["ja"]


@pytest.mark.parametrize(("model", "verdict"), [("S660", "accepted"), ("N-BOX", "refused")])
def test_ex_3_4_only_a_model_in_the_discontinued_list_can_be_claimed(
    project: Project, policy: CompiledPolicy, model: str, verdict: str
) -> None:
    """EX-3.4: 生産終了車 against the discontinued-models data set."""
    facts = claim(exclusion_reason="生産終了車", car={"maker": "ホンダ", "model": model})
    assert decide_claim(project, policy, facts).outcome["verdict"] == verdict


@pytest.mark.parametrize(
    ("received_at", "verdict", "code"),
    [
        ("2022-03-30T23:59:59+09:00", "refused", "MODEL_PRODUCED_WHEN_REQUESTED"),
        ("2022-03-30T15:00:00Z", "accepted", "DISCONTINUED_MODEL"),  # 3/31 00:00 in Japan
        ("2022-03-31T00:00:00+09:00", "accepted", "DISCONTINUED_MODEL"),
    ],
)
def test_ex_3_4_a_request_made_while_the_model_was_still_produced_is_no_discontinued_model(
    project: Project, policy: CompiledPolicy, received_at: str, verdict: str, code: str
) -> None:
    """EX-3.4: the shipped S660 ended on 2022-03-31; a request that arrived (in Japan)
    before that day was for a model still produced."""
    facts = claim(
        exclusion_reason="生産終了車",
        received_at=received_at,
        car={"maker": "ホンダ", "model": "S660"},
    )
    decision = decide_claim(project, policy, facts, at="2022-04-10T12:00:00+09:00")
    assert decision.outcome["verdict"] == verdict
    assert codes(decision) == [code]


@pytest.mark.parametrize(
    ("confirmed", "verdict"), [(True, "accepted"), (False, "refused"), (None, "needs_review")]
)
def test_ex_3_5_a_test_estimate_needs_the_operators_confirmation(
    project: Project, policy: CompiledPolicy, confirmed: bool | None, verdict: str
) -> None:
    """EX-3.5: confirmed, refuted, or not yet checked; always with the notice."""
    facts = claim(exclusion_reason="テスト見積り")
    if confirmed is not None:
        facts["review"] = {"test_confirmed": confirmed}
    decision = decide_claim(project, policy, facts)
    assert decision.outcome["verdict"] == verdict
    assert "TEST_ESTIMATE_NOTICE" in codes(decision)


@pytest.mark.parametrize(("detail", "verdict"), [("なりすまし", "accepted"), ("　", "refused")])
def test_ex_3_6_another_reason_needs_a_concrete_detail(
    project: Project, policy: CompiledPolicy, detail: str, verdict: str
) -> None:
    """EX-3.6: その他 only with a detail text."""
    decision = decide_claim(project, policy, claim(exclusion_detail=detail))
    assert decision.outcome["verdict"] == verdict


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ("返信無し", "返信なし"),
        ("お客様から返信が無い", "返信なし"),
        ("返信なし", "返信なし"),
        ("ヒヤカシと思われる", "ひやかしと思われる"),
        ("ひやかしと思われる", "ひやかしと思われる"),
        ("購入意思無し", "購入意思なし"),
        ("購入意思なし", "購入意思なし"),
        ("住所無し", "住所なし"),
        ("電話番号無し", "電話番号なし"),
        ("既に他社にて購入済み", "既に他社購入"),
    ],
)
def test_ex_3_6_a_detail_naming_an_ineligible_reason_in_a_common_spelling_needs_review(
    project: Project, policy: CompiledPolicy, detail: str, reason: str
) -> None:
    """EX-3.6, EX-4: kanji 無し/無い and katakana spellings are flagged like the hiragana
    ones (the shipped phrases; the normalisation folds widths only)."""
    decision = decide_claim(project, policy, claim(exclusion_detail=detail))
    assert decision.outcome["verdict"] == "needs_review"
    (flagged,) = decision.reasons
    assert flagged["code"] == "OTHER_NAMES_INELIGIBLE_REASON"
    assert flagged["matched_reason"] == reason


@pytest.mark.parametrize(
    "detail",
    [
        "自社で契約した後の見積依頼",
        "なりすましで別人に届いた",
        "なりすましなどで依頼者以外に届いてしまったもの",
        "お客様が間違えて見積もり依頼してしまったもの（キャンセルの連絡がDRTに届いた）",
        "お客様に購入意思があったが、依頼先の店舗を間違えた",
        # 無用, 無効: not 無し (the kanji spellings match 住所無し, not 住所無…)
        "お客様から誤って依頼した旨の連絡あり（返信無用とのこと）",
        "登録された電話番号無効・メールも不達のため本人確認不可",
        "登録住所無効（存在しない番地）のいたずら依頼",
    ],
)
def test_ex_3_6_ordinary_details_stay_accepted(
    project: Project, policy: CompiledPolicy, detail: str
) -> None:
    """EX-3.6: the seed's examples and other concrete reasons are not flagged."""
    decision = decide_claim(project, policy, claim(exclusion_detail=detail))
    assert decision.outcome["verdict"] == "accepted", decision.reasons


# -- EX-4, EX-5 ------------------------------------------------------------------------


@pytest.mark.parametrize("reason", sorted(EXPLANATIONS))
def test_ex_4_every_ineligible_reason_is_refused_with_the_seed_explanation(
    project: Project, policy: CompiledPolicy, reason: str
) -> None:
    """EX-4: each of the twelve reasons, with its explanation from seed 000."""
    decision = decide_claim(project, policy, claim(exclusion_reason=reason))
    assert decision.outcome["verdict"] == "refused"
    assert decision.outcome["reason_eligible"] is False
    assert decision.outcome["precondition_met"] is None
    (refusal,) = decision.reasons
    assert refusal["code"] == "INELIGIBLE_REASON"
    assert EXPLANATIONS[reason] in refusal["message"]["ja"]
    assert refusal["message"]["ja"].endswith(
        "※「対象とならない事由」につきましては、非請求申請を受付できません"
    )
    assert refusal["message"]["en"]


@pytest.mark.parametrize("reason", sorted(EXPLANATIONS))
def test_ex_4_the_claim_flow_refuses_an_ineligible_reason_with_the_same_explanation(
    project: Project, policy: CompiledPolicy, reason: str, tmp_path: Path
) -> None:
    """EX-2, EX-4: claim-status refuses to set an ineligible reason (対象外にする), with the
    seed's explanation word for word as exemption-claims refuses a claim on it, and the
    estimate cannot then be claimed."""
    (refusal,) = decide_claim(project, policy, claim(exclusion_reason=reason)).reasons
    store = FlowStore(tmp_path / "flows.sqlite3")
    try:
        engine = FlowEngine(project, store)
        event = {"type": "exclude", "exclusion_reason": reason}
        excluded = act(engine, "claim-status", "Q-1", event, at="2024-09-10T12:00:00+09:00")
        assert not excluded.allowed and excluded.refusal is not None
        assert excluded.refusal["code"] == "condition_not_met"
        # exemption-claims' message, then the reasons the dealer may choose instead
        assert refusal["message"]["ja"] in excluded.refusal["message"]["ja"]
        assert EXPLANATIONS[reason] in excluded.refusal["message"]["ja"]
        assert engine.store.load("claim-status", "Q-1") is None
        claimed = act(
            engine, "claim-status", "Q-1", {"type": "claim"}, at="2024-09-10T12:00:00+09:00"
        )
        assert not claimed.allowed
    finally:
        store.close()


def test_ex_5_no_address_is_refused_because_billing_is_one_charge_per_mail_address(
    project: Project, policy: CompiledPolicy
) -> None:
    (refusal,) = decide_claim(project, policy, claim(exclusion_reason="住所なし")).reasons
    assert "EX-5" in refusal["refs"]
    assert refusal["billing_unit"] == "mail_address"
    assert "1アドレスに対し1課金" in refusal["message"]["ja"]


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimate", "code", "pointer"),
    [
        ({"exclusion_reason": "ドタキャン"}, "enum", "/facts/estimate/exclusion_reason"),
        ({"received_at": "2024-08-20 10:00"}, "format", "/facts/estimate/received_at"),
        ({"status": 1}, "type_mismatch", "/facts/estimate/status"),
        ({"colour": "red"}, "unknown_field", "/facts/estimate/colour"),
    ],
)
def test_ex_4_unknown_reason_codes_and_malformed_facts_are_refused_with_a_pointer(
    project: Project, policy: CompiledPolicy, estimate: dict[str, Any], code: str, pointer: str
) -> None:
    """EX-4: an unknown reason is a validation error (no decision), not a refusal."""
    with pytest.raises(InputError) as raised:
        decide_claim(project, policy, claim(**estimate))
    assert [(d.code, d.pointer) for d in raised.value.diagnostics] == [(code, pointer)]


def test_ex_2_every_problem_of_the_facts_is_reported_at_once(policy: CompiledPolicy) -> None:
    """EX-2: malformed facts list every problem with its pointer; nothing is decided."""
    with pytest.raises(InputError) as raised:
        decide(policy, {"estimate": {"id": "Q", "status": "対象外"}, "extra": 1}, data={})
    pointers = {d.pointer for d in raised.value.diagnostics}
    assert pointers == {
        "/facts/extra",
        "/facts/estimate/store_id",
        "/facts/estimate/mail_address",
        "/facts/estimate/received_at",
    }


# -- both backends ---------------------------------------------------------------------


def yaml_cases(project: Project) -> list[Any]:
    return load_cases(ROOT / "policies" / f"{POLICY_ID}.tests.yaml", project)


def test_ex_1_to_ex_5_both_backends_decide_every_yaml_case_alike(project: Project) -> None:
    """EX-1 to EX-5: each YAML case on durable_rules and on the Python reference evaluator."""
    assert decided_by_both_backends(yaml_cases(project), project) >= 50


def test_ex_1_the_decision_names_the_policy_revision_and_the_data_versions(
    project: Project, policy: CompiledPolicy
) -> None:
    """EX-1: the deadline in the JSON form, with the revision and data versions."""
    decision = decide_claim(project, policy, claim()).to_dict()
    assert decision["policy"] == {"id": POLICY_ID, "revision": policy.revision}
    assert set(decision["data"]) == {
        "estimates",
        "store_territories",
        "discontinued_models",
        "ineligible_phrases",
    }
    assert decision["outcome"]["deadline"] == "2024-09-22T00:00:00+09:00"


def test_the_shipped_sample_data_sets_load_with_their_indexes(project: Project) -> None:
    """EX-3.1: the store's estimates are indexed by store and member."""
    estimates = project.datasets["estimates"]
    assert isinstance(estimates, Dataset) and len(estimates) >= 5
    assert estimates.find({"store_id": "S-YOKOHAMA", "member_id": "M-100234"})


# -- properties over random claims ---------------------------------------------------------

SHIPPED = shipped_project().policy(POLICY_ID)


@given(st.data())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_ex_1_to_ex_4_every_claim_gets_its_verdict_from_a_rule_and_it_is_consistent(
    data: st.DataObject,
) -> None:
    """EX-1 to EX-4: random facts never fall through to the default verdict.

    An accepted claim is in time with its precondition met; a claim after the deadline
    is refused; a refusal always says why.
    """
    project = shipped_project()
    facts, settings_, at = data.draw(decision_inputs(SHIPPED))
    try:
        decision = decide(SHIPPED, facts, at=at, settings=settings_, data=project.data_for(SHIPPED))
    except InputError:
        assume(False)
        return
    by_id = SHIPPED.rule_by_id
    assert any("verdict" in dict(by_id[r].then) for r in decision.fired), decision.fired
    outcome = decision.outcome
    if outcome["verdict"] == "accepted":
        assert outcome["before_deadline"] is True
        assert outcome["precondition_met"] is True
    if outcome["before_deadline"] is False:
        assert outcome["verdict"] == "refused"
    if outcome["verdict"] == "not_yet":
        assert outcome["claimable_from"] is not None
    for found in decision.reasons:
        assert found["message"]["ja"] and found["message"]["en"]
