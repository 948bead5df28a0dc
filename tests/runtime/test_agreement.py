"""durable_rules and the reference evaluator fire the same rules.

Two property tests:

1. Random well-typed conditions over facts of every type, most of them
   nullable (absent), including negation, `in`, null comparisons and
   arithmetic, compiled into one policy and decided on random facts by both
   backends. This exercises the translation of the language's null and
   negation semantics into durable_rules conditions.
2. For every shipped policy, random facts built from its facts schema and
   from the constants its rules mention (so that boundaries are hit), random
   settings and decision times: both backends apply the same rules and
   produce the same outcome.
3. For every shipped flow, a random stored state and entity facts and a
   random event: both backends make the same move or the same refusal.

And where they disagree (a durable backend made to lie), the check that explain runs
catches it for flows as for decisions: explained moves, refusals, YAML flow cases.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.compile.stages import compile_document
from engine.core.errors import EngineFault, EvaluationError, InputError, PolicyError
from engine.core.jsonvalue import JST, to_json_value
from engine.flow.decide import decide_move
from engine.flow.model import EVENT_TYPE, flow_of
from engine.runtime import evaluate
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml
from engine.store.flows import EntityState
from engine.testing.cases import load_cases
from engine.testing.tester import run_case
from tests import ROOT
from tests.strategies import constants, decision_inputs, settings_of, shipped_project, value_of

# Inputs drawn from real policies are often filtered (invalid facts) and slow to build.
NOON = datetime(2024, 1, 1, 12, tzinfo=JST)
LENIENT = [HealthCheck.filter_too_much, HealthCheck.too_slow]

FIELDS = {
    "i1": ("integer", True),
    "i2": ("integer", False),
    "n1": ("number", True),
    "s1": ("string", True),
    "s2": ("string", False),
    "b1": ("boolean", True),
    "d1": ("date", True),
    "t1": ("datetime", True),
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["c"],
    "properties": {
        "c": {
            "type": "object",
            "additionalProperties": False,
            "required": [name for name, (_, nullable) in FIELDS.items() if not nullable],
            "properties": {
                "i1": {"type": "integer"},
                "i2": {"type": "integer"},
                "n1": {"type": "number"},
                "s1": {"type": "string", "enum": ["a", "b", "c"]},
                "s2": {"type": "string"},
                "b1": {"type": "boolean"},
                "d1": {"type": "string", "format": "date"},
                "t1": {"type": "string", "format": "date-time"},
            },
        }
    },
}
LITERALS = {
    "integer": st.integers(-2, 2).map(str),
    "number": st.sampled_from(["-1.5", "0", "0.5", "2"]),
    "string": st.sampled_from(['"a"', '"b"', '"c"']),
    "date": st.integers(1, 3).map(lambda d: f'date("2024-01-0{d}")'),
    "datetime": st.integers(0, 2).map(lambda s: f'datetime("2024-01-01T10:00:0{s}+09:00")'),
}


def field_of(kind: str) -> st.SearchStrategy[str]:
    names = [
        f"c.{n}"
        for n, (k, _) in FIELDS.items()
        if k == kind or (kind == "number" and k == "integer")
    ]
    if kind == "integer":
        names.append("settings.k")
    if kind == "datetime":
        names.append("at")
    return st.sampled_from(names)


def operand(kind: str) -> st.SearchStrategy[str]:
    options = [field_of(kind), LITERALS[kind]]
    if kind in ("integer", "number"):
        options.append(
            st.builds(
                lambda f, op, lit: f"({f} {op} {lit})",
                field_of(kind),
                st.sampled_from("+-*"),
                LITERALS["integer"],
            )
        )
        options.append(st.builds(lambda a, b: f"({a} - {b})", field_of(kind), field_of(kind)))
    return st.one_of(options)


@st.composite
def comparison(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["integer", "number", "string", "date", "datetime"]))
    ordered = kind != "string"
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="] if ordered else ["==", "!="]))
    left = draw(field_of(kind))
    right = draw(operand(kind))
    if draw(st.booleans()):
        left, right = right, left
    return f"{left} {op} {right}"


def condition(depth: int = 3) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        comparison(),
        st.just("c.b1"),
        st.sampled_from(["c.i1 == null", "c.s1 != null", "c.d1 == null", "c.b1 != null"]),
        st.builds(
            lambda f, xs, neg: f"{f} {'not in' if neg else 'in'} [{', '.join(xs)}]",
            st.just("c.s1"),
            st.lists(LITERALS["string"], min_size=1, max_size=3),
            st.booleans(),
        ),
    )
    if depth == 0:
        return leaves
    inner = condition(depth - 1)
    return st.one_of(
        leaves,
        inner.map(lambda c: f"not ({c})"),
        st.builds(
            lambda a, b, op: f"({a}) {op} ({b})", inner, inner, st.sampled_from(["and", "or"])
        ),
    )


def facts() -> st.SearchStrategy[dict[str, Any]]:
    values = {
        "i1": st.integers(-3, 3),
        "i2": st.integers(-3, 3),
        "n1": st.sampled_from([Decimal("-1.5"), 0, Decimal("0.5"), 2, Decimal("2.0")]),
        "s1": st.sampled_from(["a", "b", "c"]),
        "s2": st.sampled_from(["a", "b", "z"]),
        "b1": st.booleans(),
        "d1": st.integers(0, 4).map(lambda d: (date(2024, 1, 1) + timedelta(days=d)).isoformat()),
        "t1": st.integers(-1, 3).map(
            lambda s: (datetime(2024, 1, 1, 10, tzinfo=JST) + timedelta(seconds=s)).isoformat()
        ),
    }
    required = {n: v for n, v in values.items() if not FIELDS[n][1]}
    optional = {n: v for n, v in values.items() if FIELDS[n][1]}
    return st.fixed_dictionaries(required, optional=optional).map(lambda c: {"c": c})


def policy_text(conditions: list[str]) -> str:
    rules = "".join(
        f"  - id: r{i}\n    refs: [TS-4]\n    when: {json.dumps(c)}\n"
        for i, c in enumerate(conditions)
    )
    return (
        "kimari: 1\nid: random\ntitle: {ja: 乱数}\nfacts: random.facts.schema.json\n"
        "settings:\n  k: {type: integer, default: 0}\nrules:\n" + rules
    )


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("agreement")
    (folder / "random.facts.schema.json").write_text(json.dumps(SCHEMA))
    return folder


@given(
    conditions=st.lists(condition(), min_size=1, max_size=6),
    cases=st.lists(
        st.tuples(facts(), st.integers(-2, 2), st.integers(0, 2)), min_size=1, max_size=8
    ),
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_random_conditions_fire_the_same_rules_in_both_backends(
    schema_dir: Path, conditions: list[str], cases: list[tuple[dict[str, Any], int, int]]
) -> None:
    document = parse_yaml(policy_text(conditions), str(schema_dir / "random.yaml"))
    document = type(document)(
        document.path,
        document.text,
        document.data,
        document.positions,
        document.revision,
        schema_dir / "random.yaml",
    )
    try:
        policy = compile_document(document)
    except PolicyError as exc:
        # Random conditions can exceed durable_rules' per-rule limits; validation refuses
        # those (tested elsewhere), so they say nothing about agreement. Warnings come
        # along (unused_setting, when no condition reads settings.k) and are no refusal.
        errors = {d.code for d in exc.diagnostics if d.is_error}
        assert errors == {"not_durable_compilable"}, exc
        assume(False)
        return
    try:
        for case_facts, k, second in cases:
            at = datetime(2024, 1, 1, 10, 0, second, tzinfo=JST)
            python = decide(policy, case_facts, at=at, settings={"k": k}, backend="python")
            durable = decide(policy, case_facts, at=at, settings={"k": k}, backend="durable")
            assert durable.fired == python.fired, (conditions, case_facts, k, second)
            # explaining, the python backend matches part by part (engine/runtime/explain.py):
            # the same rules, and durable_rules is checked against that same pass
            for backend in ("python", "durable"):
                explained = decide(
                    policy, case_facts, at=at, settings={"k": k}, backend=backend, explain=True
                )
                assert explained.fired == python.fired, (backend, conditions, case_facts, k)
    finally:
        policy.close()


@pytest.mark.parametrize("policy_id", sorted(shipped_project().policies))
def test_every_shipped_policy_agrees_between_backends_on_random_facts(policy_id: str) -> None:
    project = shipped_project()
    policy = project.policy(policy_id)
    data = project.data_for(policy)

    @given(decision_inputs(policy))
    @settings(max_examples=200, deadline=None, suppress_health_check=LENIENT)
    def agree(inputs: tuple[Any, dict[str, Any], datetime]) -> None:
        case_facts, case_settings, at = inputs
        try:
            python = decide(
                policy, case_facts, at=at, settings=case_settings, data=data, backend="python"
            )
        except InputError:
            assume(False)
            return
        durable = decide(
            policy, case_facts, at=at, settings=case_settings, data=data, backend="durable"
        )
        assert durable.fired == python.fired
        assert durable.to_dict()["outcome"] == python.to_dict()["outcome"]

    agree()


ACTOR_IDS = ["u-1", "u-2"]  # few, and in the string pool: four-eyes guards meet equal ids


def event_of(flow: Any, name: str, pools: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """An event of type `name`: its fields from its schema; an event that consults a
    decision policy gets facts (and settings) drawn for that policy, so that the consulted
    decision really runs and the flow decides on its answer."""
    event = flow.events[name]
    fields = value_of(event.validator.type, pools)
    if event.decide is not None:
        inputs = decision_inputs(shipped_project().policy(event.decide.policy))
        fields = st.tuples(fields, inputs).map(
            lambda pair: {
                **(pair[0] if isinstance(pair[0], dict) else {}),
                "facts": pair[1][0],
                "settings": pair[1][1],
            }
        )
    return fields.map(lambda f: {**(f if isinstance(f, dict) else {}), EVENT_TYPE: name})


def flow_inputs(
    policy: Any,
) -> st.SearchStrategy[tuple[str, Any, dict[str, Any], dict[str, Any], Any, datetime]]:
    """A stored state, entity facts, an event (of a known type, fields from its schema,
    values drawn near the policy's constants), its actor (a few ids, some of the flow's
    roles), the flow's settings and a decision time."""
    flow = flow_of(policy)
    pools = constants(policy)
    pools["string"] = sorted({*pools["string"], *ACTOR_IDS})
    events = st.sampled_from(sorted(flow.events)).flatmap(lambda n: event_of(flow, n, pools))
    roles = sorted(flow.roles) or ["anyone"]
    actors = st.fixed_dictionaries(
        {
            "id": st.sampled_from(ACTOR_IDS),
            "roles": st.lists(st.sampled_from([*roles, "other"]), min_size=1, unique=True),
        }
    )
    at = st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31), timezones=st.just(JST)
    )
    return st.tuples(
        st.sampled_from(sorted(flow.states)),
        value_of(flow.entity.type, pools),
        events,
        actors,
        settings_of(policy, pools),
        at,
    )


FLOWS = sorted(p for p, c in shipped_project().policies.items() if c.kind == "flow")


def without_ids(value: Any) -> Any:
    """`value` with every decision_id left out, at any depth."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if k != "decision_id"}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


@pytest.mark.parametrize("policy_id", FLOWS)
def test_every_shipped_flow_moves_the_same_way_in_both_backends(policy_id: str) -> None:
    """Both backends make the same move (or the same refusal, role refusals included) for
    random stored entities, events, actors and settings; an event that consults a
    decision policy consults it on each backend. Not vacuous: most examples decide."""
    project = shipped_project()
    policy = project.policy(policy_id)
    flow = flow_of(policy)
    data = project.data_for(policy)
    consulted = {
        e.decide.policy: (
            project.policy(e.decide.policy),
            project.data_for(project.policy(e.decide.policy)),
        )
        for e in flow.events.values()
        if e.decide is not None
    }
    outcomes = {"moved": 0, "refused": 0, "error": 0}

    @given(flow_inputs(policy))
    @settings(max_examples=300, deadline=None, suppress_health_check=LENIENT)
    def agree(inputs: tuple[str, Any, dict[str, Any], dict[str, Any], Any, datetime]) -> None:
        state, facts, event, actor, flow_settings, at = inputs
        try:
            stored = to_json_value(flow.entity.validate(facts))
        except InputError:
            assume(False)
            return
        entity = EntityState(state, stored)
        moves = []
        for backend in ("python", "durable"):
            try:
                move = decide_move(
                    policy,
                    entity,
                    event,
                    actor=actor,
                    at=at,
                    settings=flow_settings,
                    data=data,
                    backend=backend,
                    consulted=consulted,
                ).to_dict()
            except (InputError, EvaluationError) as exc:
                move = {"error": [d.code for d in exc.diagnostics]}
            moves.append(move)
        for move in moves:
            move.pop("elapsed_us", None)
        # Each decision has its own id, the consulted one included (recorded in facts too).
        assert without_ids(moves[0]) == without_ids(moves[1])
        kind = "error" if "error" in moves[0] else "moved" if moves[0]["allowed"] else "refused"
        outcomes[kind] += 1

    agree()
    assert outcomes["moved"] + outcomes["refused"] > outcomes["error"], outcomes


# -- when the backends disagree: the check runs for flows as for decisions ---------------


def wrong_transition(transition_id: str) -> Any:
    """A durable backend that applies `transition_id` whatever the event says."""
    return lambda policy, env: [policy.rule_by_id[transition_id]]


def test_an_explained_flow_move_that_durable_rules_gets_wrong_is_an_engine_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = shipped_project().policy("claim-status")
    requested = EntityState("requested", {"claims": 1})
    at = "2024-09-20T10:00:00+09:00"
    monkeypatch.setattr(evaluate, "match_durable", wrong_transition("start-review"))
    dealer = {"id": "d-1", "roles": ["販売店", "オートックワン"]}
    with pytest.raises(EngineFault) as caught:
        decide_move(policy, requested, {"type": "cancel"}, actor=dealer, at=at, explain=True)
    assert caught.value.code == "engine_disagreement"
    # Unexplained, durable_rules is trusted, as for a decision: the hot path runs once.
    move = decide_move(policy, requested, {"type": "cancel"}, actor=dealer, at=at)
    assert move.state_after.id == "under_review"


def test_a_flow_refusal_that_the_reference_evaluator_would_allow_is_an_engine_fault(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = shipped_project().policy("claim-status")
    monkeypatch.setattr(evaluate, "match_durable", lambda policy, env: [])
    with pytest.raises(EngineFault) as caught:  # a refusal is always explained
        decide_move(
            policy,
            EntityState("requested", {}),
            {"type": "cancel"},
            actor={"id": "d-1", "roles": ["販売店"]},
            at="2024-09-20T10:00:00+09:00",
        )
    assert caught.value.code == "engine_disagreement"


def test_the_yaml_runner_checks_every_flow_step_against_the_reference_evaluator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = shipped_project()
    cases = load_cases(ROOT / "policies" / "claim-status.tests.yaml", project)
    monkeypatch.setattr(evaluate, "match_durable", wrong_transition("claim"))
    results = [run_case(case, project) for case in cases[:1]]
    assert "engine_disagreement" in "\n".join(results[0].failures)


def test_a_rule_that_cannot_be_computed_fails_alike_with_and_without_explain(
    schema_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explaining, the python backend matches part by part (engine/runtime/explain.py): a
    part that raises is the EvaluationError the plain match raises, and a part behind one
    that fails is never read. (No shipped condition can raise: conditions that could, a
    division or a function call, are refused for durable_rules; hence the stand-in.)"""
    from engine.lang.pycompile import EvalFailure
    from engine.runtime import explain

    conditions = [
        "c.i2 >= settings.k",
        "c.i2 >= settings.k and c.i2 != 7",
        "c.i2 < 0 and c.i2 != 7",
    ]
    policy = compile_document(parse_yaml(policy_text(conditions), str(schema_dir / "random.yaml")))

    def failing(node: Any) -> Any:
        def check(env: Any) -> bool:
            raise EvalFailure(node, "cannot be computed")

        return check

    original = explain.compile_condition
    monkeypatch.setattr(  # `c.i2 != 7` raises, in either matcher
        explain,
        "compile_condition",
        lambda n: failing(n) if getattr(n, "op", None) == "!=" else original(n),
    )
    rule_checks = [
        (rule, failing(None) if rule.id == "r1" else check) for rule, check in policy.rule_checks
    ]
    monkeypatch.setitem(policy.__dict__, "rule_checks", tuple(rule_checks))
    facts = {"c": {"i2": 1, "s2": "x"}}
    try:
        raised = []
        for explaining in (False, True):
            with pytest.raises(EvaluationError) as caught:
                decide(policy, facts, at=NOON, backend="python", explain=explaining)
            raised.append([d.to_dict() for d in caught.value.diagnostics])
        assert raised[0] == raised[1]
        assert raised[0][0]["code"] == "evaluation_error"
        assert "rule 'r1': cannot be computed" in raised[0][0]["message"]
        facts = {"c": {"i2": -1, "s2": "x"}}  # r0 and r1 fail first on `c.i2 >= settings.k`
        with pytest.raises(EvaluationError):
            decide(policy, facts, at=NOON, backend="python", explain=True)  # r2 raises
        monkeypatch.setattr(explain, "compile_condition", original)
        policy.extra.pop("explain_plan", None)
        monkeypatch.delitem(policy.__dict__, "rule_checks")
        facts = {"c": {"i2": 1, "s2": "x"}}
        plain = decide(policy, facts, at=NOON, backend="python")
        explained = decide(policy, facts, at=NOON, backend="python", explain=True)
        assert explained.fired == plain.fired == ["r0", "r1"]
        verdicts = [r["verdict"] for r in explained.explanation["rules"]]  # type: ignore[index]
        assert verdicts == ["applied", "applied", "failed"]
    finally:
        policy.close()


def test_a_value_too_large_for_durable_is_named_as_the_policy_names_it(schema_dir: Path) -> None:
    """durable_rules holds 64-bit integers: a larger one computed from the facts is the
    request's to change (422). Messages carry short keys (`f0`), so the error must say
    which field of the policy it was."""
    text = policy_text(["c.i2 > 0", "derived.big > 0"]) + (
        'derived:\n  big:\n    value: "c.i2 * 10000000000 * 10000000000"\n    refs: [TS-4]\n'
    )
    policy = compile_document(parse_yaml(text, str(schema_dir / "random.yaml")))
    try:
        assert set(policy.key_names) == {"f0", "f1"}  # one key per field the rules read
        assert decide(policy, {"c": {"i2": 0, "s2": "x"}}, at=NOON).fired == []  # fits: 0
        with pytest.raises(EvaluationError) as caught:
            decide(policy, {"c": {"i2": 1, "s2": "x"}}, at=NOON)
        (problem,) = caught.value.diagnostics
        assert problem.code == "value_out_of_range"
        assert problem.message.startswith("derived.big: too large for the rule engine")
        python = decide(policy, {"c": {"i2": 1, "s2": "x"}}, at=NOON, backend="python")
        assert python.fired == ["r0", "r1"]  # the reference has no such limit
    finally:
        policy.close()
