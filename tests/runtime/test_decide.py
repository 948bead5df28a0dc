"""Deciding through the Python API: hit policies, outcome merges, settings, data, explain."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from engine import api
from engine.core.errors import EngineFault, EvaluationError, InputError
from engine.core.jsonvalue import dumps, format_datetime
from engine.project.project import Project
from engine.runtime.decision import Decision
from engine.runtime.evaluate import _env_of, decide
from tests import FIXTURES

FIXTURE = FIXTURES / "project"
AT = "2024-09-01T10:00:00+09:00"


@pytest.fixture(scope="module")
def project() -> Project:
    return api.load(FIXTURE)


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"total": 5000, "sequence": 1, "payment": {"method": "card"}}
    base.update(changes)
    return {"order": base}


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_collect_applies_every_matching_rule_and_merges_the_outcome(
    project: Project, backend: str
) -> None:
    policy = project.policy("holds")
    facts = order(
        total=20000,
        payment={"method": "np"},
        customer={"name": "山田 太郎", "postal_code": "1234567"},
    )
    decision = decide(policy, facts, at=AT, data=project.data_for(policy), backend=backend)
    assert decision.fired == ["big", "similar-blacklisted", "strict-np"]
    assert decision.outcome["held"] is True
    assert decision.outcome["severity"] == "high"  # rank: high beats low
    assert decision.outcome["codes"] == ["BIG", "SIMILAR"]  # collect, in rule order
    assert decision.outcome["ships"] is False  # computed from outcome.held
    assert [r["code"] for r in decision.reasons] == ["BIG_ORDER", "BLACKLIST_SIMILAR"]


def test_no_matching_rule_is_a_normal_decision_with_the_defaults(project: Project) -> None:
    policy = project.policy("holds")
    decision = decide(policy, order(), at=AT, data=project.data_for(policy))
    assert decision.fired == []
    assert decision.outcome == {"held": False, "severity": "none", "codes": [], "ships": True}


def test_settings_override_defaults_and_change_the_decision(project: Project) -> None:
    policy = project.policy("holds")
    facts = order(total=20000)
    data = project.data_for(policy)
    assert decide(policy, facts, at=AT, data=data).fired == ["big"]
    assert decide(policy, facts, at=AT, data=data, settings={"limit": 30000}).fired == []


@pytest.mark.parametrize(
    ("settings", "code", "pointer"),
    [
        ({"limt": 1}, "unknown_setting", "/settings/limt"),
        ({"limit": "x"}, "setting_invalid", "/settings/limit"),
        ({"limit": -1}, "setting_invalid", "/settings/limit"),
        ({"mode": "loose"}, "setting_invalid", "/settings/mode"),
    ],
)
def test_bad_settings_are_refused_with_a_pointer(
    project: Project, settings: dict[str, Any], code: str, pointer: str
) -> None:
    policy = project.policy("holds")
    with pytest.raises(InputError) as caught:
        decide(policy, order(), at=AT, data=project.data_for(policy), settings=settings)
    assert (caught.value.diagnostics[0].code, caught.value.diagnostics[0].pointer) == (
        code,
        pointer,
    )


def test_invalid_facts_are_refused_with_every_pointer_and_nothing_is_decided(
    project: Project,
) -> None:
    policy = project.policy("holds")
    with pytest.raises(InputError) as caught:
        decide(
            policy,
            {"order": {"total": "many", "payment": {"methd": "np"}}},
            at=AT,
            data=project.data_for(policy),
        )
    pointers = sorted(d.pointer for d in caught.value.diagnostics if d.pointer)
    assert pointers == [
        "/facts/order/payment/methd",
        "/facts/order/payment/method",
        "/facts/order/sequence",
        "/facts/order/total",
    ]


@pytest.mark.parametrize("at", ["yesterday", "2024-09-01T10:00:00"])
def test_a_bad_decision_time_is_refused(project: Project, at: str) -> None:
    with pytest.raises(InputError) as caught:
        decide(project.policy("routing"), order(), at=at)
    assert caught.value.diagnostics[0].pointer == "/at"


def test_a_missing_data_set_is_an_evaluation_error(project: Project) -> None:
    with pytest.raises(EvaluationError) as caught:
        decide(project.policy("holds"), order(), at=AT, data={})
    assert caught.value.code == "data_missing"


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("facts", "fired", "queue"),
    [
        (order(total=150000), ["vip"], "vip"),  # vip and large both match; vip comes first
        (order(total=150000, payment={"method": "cod"}), ["large"], "large"),
        (order(payment={"method": "cod"}), ["cod"], "cod"),
        (order(), [], "normal"),
    ],
)
def test_first_applies_only_the_first_matching_rule(
    project: Project, backend: str, facts: dict[str, Any], fired: list[str], queue: str
) -> None:
    decision = decide(project.policy("routing"), facts, at=AT, backend=backend)
    assert (decision.fired, decision.outcome["queue"]) == (fired, queue)


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("total", "tier"), [(5000, "high"), (500, "mid"), (50, "low"), (0, "none")]
)
def test_priority_applies_the_highest_priority_matching_rule(
    project: Project, backend: str, total: int, tier: str
) -> None:
    decision = decide(project.policy("tiers"), order(total=total), at=AT, backend=backend)
    assert decision.outcome["tier"] == tier


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_unique_refuses_two_matching_rules_naming_both(project: Project, backend: str) -> None:
    policy = project.policy("exclusive")
    assert decide(policy, order(total=10), at=AT, backend=backend).outcome["band"] == "small"
    with pytest.raises(EvaluationError) as caught:
        decide(policy, order(total=10, payment={"method": "cod"}), at=AT, backend=backend)
    assert caught.value.code == "hit_policy_violation"
    assert "small, cod" in caught.value.diagnostics[0].message


def test_explain_lists_every_rule_with_its_verdict_and_the_failed_condition(
    project: Project,
) -> None:
    decision = decide(project.policy("routing"), order(total=150000), at=AT, explain=True)
    assert decision.explanation is not None
    verdicts = {r["rule"]: r for r in decision.explanation["rules"]}
    assert verdicts["vip"]["verdict"] == "applied"
    assert verdicts["large"]["verdict"] == "matched"  # it matched, but 'first' chose vip
    failed = verdicts["cod"]["failed"]
    assert failed["condition"] == 'order.payment.method == "cod"'
    assert failed["values"] == {"order.payment.method": "card"}
    assert failed["location"]["file"].endswith("routing.yaml")
    assert failed["location"]["line"] == 20


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_an_explanation_shares_the_revisions_parts_read_only(
    project: Project, backend: str
) -> None:
    """Locations, labels and refs are the plan's own, held by every explanation of the
    revision: changing one through an answer raises, so no later answer can show it."""
    policy = project.policy("routing")
    explained = [
        decide(policy, order(total=150000), at=AT, backend=backend, explain=True).explanation
        for _ in range(2)
    ]
    before = dumps(explained[0])
    first, second = ({r["rule"]: r for r in e["rules"]} for e in explained)  # type: ignore[index]
    assert first["cod"]["location"] is second["cod"]["location"]
    assert first["vip"] is second["vip"]  # an applied rule's whole entry
    for change in (
        lambda: first["cod"]["location"].update(line=1),
        lambda: first["cod"]["refs"].append("EX-1"),
        lambda: first["cod"]["failed"]["values"].clear(),
        lambda: first["vip"].__setitem__("verdict", "failed"),
    ):
        with pytest.raises(TypeError, match="cannot be changed"):
            change()
    mine = dict(first["cod"]["location"])  # a copy is the caller's to change
    mine["line"] = 1
    first["cod"]["note"] = "a failed rule's own entry is the caller's"
    again = decide(policy, order(total=150000), at=AT, backend=backend, explain=True)
    assert dumps(again.explanation) == before


def test_a_derived_value_of_null_true_or_false_is_listed_by_a_shared_read_only_entry(
    project: Project,
) -> None:
    policy = project.policy("holds")
    listed = [
        {
            d["name"]: d
            for d in decide(
                policy, order(total=total), at=AT, data=project.data_for(policy), explain=True
            ).explanation["derived"]  # type: ignore[index]
        }
        for total in (12000, 13000)
    ]
    assert listed[0]["similar"] == {
        "name": "similar",
        "value": None,
        "expression": listed[0]["similar"]["expression"],
        "location": listed[0]["similar"]["location"],
    }
    assert listed[0]["similar"] is listed[1]["similar"]
    with pytest.raises(TypeError, match="cannot be changed"):
        listed[0]["similar"]["value"] = "changed"
    assert listed[0]["over_limit"] is not listed[1]["over_limit"]  # 2000, 3000: the decision's
    assert [listed[0]["over_limit"]["value"], listed[1]["over_limit"]["value"]] == [2000, 3000]


def test_explain_shows_derived_values_with_their_lines(project: Project) -> None:
    policy = project.policy("holds")
    decision = decide(
        policy, order(total=12000), at=AT, data=project.data_for(policy), explain=True
    )
    derived = {d["name"]: d for d in decision.explanation["derived"]}  # type: ignore[index]
    assert derived["over_limit"]["value"] == 2000
    assert derived["over_limit"]["location"]["line"] == 21


def test_a_disagreement_between_the_backends_is_an_engine_fault(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.runtime import evaluate

    policy = project.policy("routing")
    monkeypatch.setattr(evaluate, "match_durable", lambda p, env: [p.rules[2]])
    with pytest.raises(EngineFault) as caught:
        decide(policy, order(total=150000), at=AT, explain=True)
    assert caught.value.code == "engine_disagreement"


def test_the_same_inputs_give_the_same_decision(project: Project) -> None:
    policy = project.policy("holds")
    data = project.data_for(policy)
    facts = order(total=20000, customer={"name": "山田太郎", "phone": "03-1234-5678"})
    first = decide(policy, facts, at=AT, data=data).to_dict()
    second = decide(policy, facts, at=AT, data=data).to_dict()
    for body in (first, second):
        body.pop("decision_id")
        body.pop("elapsed_us")
    assert first == second


def test_decisions_from_many_threads_are_serialised_and_correct(project: Project) -> None:
    policy = project.policy("routing")
    cases = [
        (order(total=150000), "vip"),
        (order(payment={"method": "cod"}), "cod"),
        (order(), "normal"),
    ]
    errors: list[str] = []

    def work() -> None:
        for i in range(300):
            facts, queue = cases[i % 3]
            got = decide(policy, facts, at=AT).outcome["queue"]
            if got != queue:
                errors.append(f"{queue} != {got}")

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_closing_a_policy_unregisters_its_ruleset_and_it_can_register_again(
    project: Project,
) -> None:
    policy = api.load(FIXTURE).policy("routing")
    assert decide(policy, order(total=150000), at=AT).fired == ["vip"]
    policy.close()
    assert decide(policy, order(total=150000), at=AT).fired == ["vip"]
    policy.close()


def test_the_fast_json_of_a_decision_is_its_dict_serialised(project: Project) -> None:
    import orjson

    from tests import ROOT

    def same(decision: Decision) -> None:
        expected = orjson.dumps(decision.to_dict())
        assert decision.to_json() == expected
        # as the service writes it, `at` and the outcome's JSON made once for its log row too
        at, outcome = format_datetime(decision.at), dumps(decision.outcome)
        assert decision.to_json(at, outcome) == expected

    shipped = api.load(ROOT / "policies")
    policy = shipped.policy("order-holds")
    facts = orjson.loads((ROOT / "examples" / "order-holds.json").read_bytes())
    for explain in (False, True):
        same(decide(policy, facts, at=AT, data=shipped.data_for(policy), explain=explain))
    fees = shipped.policy("cancellation-fees")
    facts = orjson.loads((ROOT / "examples" / "cancellation-fees.json").read_bytes())
    same(decide(fees, facts, at=AT))


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_deciding_changes_nothing_it_was_given(project: Project, backend: str) -> None:
    """The env is the validator's new dict: the caller's facts never gain the roots."""
    policy = project.policy("holds")
    facts = order(total=20000)
    settings = {"limit": 10000}
    before = (repr(facts), repr(settings))
    data = project.data_for(policy)
    decision = decide(policy, facts, at=AT, settings=settings, data=data, backend=backend)
    assert (repr(facts), repr(settings)) == before
    assert decision.settings is not settings and "settings" not in facts


def test_an_env_is_never_the_callers_own_dict() -> None:
    facts = {"order": {}}
    assert _env_of(facts, facts) == facts and _env_of(facts, facts) is not facts
    fresh = dict(facts)
    assert _env_of(fresh, facts) is fresh
    assert _env_of(None, None) == {}
