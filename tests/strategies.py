"""Hypothesis strategies for decision inputs of a compiled policy.

Facts are generated from the policy's facts schema, and their values are
drawn mostly from the constants the policy itself mentions (and their
neighbours: ±1, ±1 day, ±1 second), so that random cases land on both sides
of the boundaries the rules draw.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from engine.compile.model import CompiledPolicy
from engine.core.errors import InputError
from engine.core.jsonvalue import JST
from engine.lang import ast
from engine.lang.types import Type
from engine.project.project import Project, load_project
from engine.testing.cases import Case, decide_case
from tests import ROOT


@functools.cache
def shipped_project() -> Project:
    return load_project(ROOT / "policies")


def _expressions(policy: CompiledPolicy) -> list[ast.Node]:
    nodes = [d.expr.node for d in policy.derived]
    for rule in policy.rules:
        nodes.extend(c.node for c in rule.conditions)
    return nodes


def constants(policy: CompiledPolicy) -> dict[str, list[Any]]:
    """The policy's literal values by kind, with their neighbours."""
    pools: dict[str, set[Any]] = {
        "string": set(),
        "integer": {0, 1},
        "number": set(),
        "date": set(),
        "datetime": set(),
    }
    for root in _expressions(policy):
        for node in root.walk():
            if not isinstance(node, ast.Literal):
                continue
            value = node.value
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, str):
                pools["string"].add(value)
            elif isinstance(value, int):
                pools["integer"].update({value - 1, value, value + 1})
            elif isinstance(value, Decimal):
                pools["number"].update({value, value + Decimal("0.01"), value - Decimal("0.01")})
            elif isinstance(value, datetime):
                pools["datetime"].update({value, value - timedelta(seconds=1)})
            elif isinstance(value, date):
                pools["date"].update({value - timedelta(days=1), value, value + timedelta(1)})
    for setting in policy.settings.values():
        if isinstance(setting.default, int) and not isinstance(setting.default, bool):
            pools["integer"].add(setting.default)
    return {kind: sorted(values, key=repr) for kind, values in pools.items()}


def _dates() -> st.SearchStrategy[date]:
    return st.dates(min_value=date(2023, 1, 1), max_value=date(2026, 12, 31))


def _instants(pool: list[Any]) -> st.SearchStrategy[datetime]:
    around_days = st.builds(
        lambda d, end: (
            datetime.combine(d, datetime.min.time(), JST)
            + (timedelta(days=1, seconds=-1) if end else timedelta())
        ),
        _dates(),
        st.booleans(),
    )
    options: list[st.SearchStrategy[datetime]] = [around_days]
    if pool:
        options.append(st.sampled_from(pool))
    return st.one_of(options)


def value_of(type_: Type, pools: dict[str, list[Any]], depth: int = 0) -> st.SearchStrategy[Any]:
    """A JSON-form value of a type (dates as text, as facts arrive over HTTP)."""
    kind = type_.kind
    if type_.enum:
        return st.sampled_from(list(type_.enum))
    if kind == "string":
        return st.one_of(st.sampled_from(pools["string"] or ["x"]), st.text(max_size=6))
    if kind == "integer":
        return st.one_of(st.sampled_from(pools["integer"]), st.integers(-10, 200_000))
    if kind == "number":
        extra = [st.sampled_from(pools["number"])] if pools["number"] else []
        return st.one_of(st.integers(0, 100), *extra)
    if kind == "boolean":
        return st.booleans()
    if kind == "date":
        return st.one_of(
            _dates(), *([st.sampled_from(pools["date"])] if pools["date"] else [])
        ).map(date.isoformat)
    if kind == "datetime":
        return _instants(pools["datetime"]).map(lambda d: d.isoformat())
    if kind == "list" and depth < 3:
        return st.lists(value_of(type_.item or Type("any"), pools, depth + 1), max_size=3)
    if kind == "record" and type_.fields is not None and depth < 4:
        required = {
            n: value_of(t, pools, depth + 1) for n, t in type_.fields.items() if not t.nullable
        }
        optional = {n: value_of(t, pools, depth + 1) for n, t in type_.fields.items() if t.nullable}
        return st.fixed_dictionaries(required, optional=optional)
    return st.none()


def settings_of(policy: CompiledPolicy, pools: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    fields = {}
    for name, setting in policy.settings.items():
        if setting.enum:
            fields[name] = st.sampled_from(list(setting.enum))
        elif setting.type.kind == "boolean":
            fields[name] = st.booleans()
        elif setting.type.kind == "integer":
            fields[name] = st.sampled_from(sorted({setting.default, *pools["integer"]}))
    return st.fixed_dictionaries({}, optional=fields)


def decision_inputs(
    policy: CompiledPolicy,
) -> st.SearchStrategy[tuple[Any, dict[str, Any], datetime]]:
    pools = constants(policy)
    return st.tuples(
        value_of(policy.facts.type, pools), settings_of(policy, pools), _instants(pools["datetime"])
    )


def decided_by_both_backends(cases: list[Case], project: Project) -> int:
    """Decide every YAML case on durable_rules and on the reference evaluator; assert
    that fired rules, outcome and reasons (or the rejected pointers) are the same.
    The number of cases that were decided rather than rejected."""
    decided = 0
    for case in cases:
        results: list[tuple[Any, ...]] = []
        for backend in ("durable", "python"):
            try:
                decision = decide_case(case, project, backend=backend)
            except InputError as exc:
                results.append(("error", [d.pointer for d in exc.diagnostics]))
                continue
            body = decision.to_dict()
            results.append((decision.fired, body["outcome"], body["reasons"]))
        assert results[0] == results[1], case.name
        decided += results[0][0] != "error"
    return decided


def actor_for(policy: CompiledPolicy, event_type: str) -> dict[str, Any]:
    """An actor holding the role the shipped flow names for this event (one id per role,
    so that the requester and the approver of a four-eyes step are different people)."""
    from engine.flow.model import flow_of

    flow = flow_of(policy)
    event = flow.events.get(event_type)
    roles = list(event.by) if event is not None and event.by else list(flow.roles)[:1]
    role = roles[0] if roles else "anyone"
    return {"id": f"tester-{role}", "roles": [role]}


def act(engine: Any, policy_id: str, entity_id: str, event: Any, **kwargs: Any) -> Any:
    """`engine.apply` with the actor the shipped flow expects for this event, unless given."""
    if "actor" not in kwargs:
        kind = event.get("type") if isinstance(event, dict) else None
        kwargs["actor"] = actor_for(engine.policy(policy_id), str(kind))
    return engine.apply(policy_id, entity_id, event, **kwargs)
