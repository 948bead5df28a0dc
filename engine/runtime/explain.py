"""Explain a decision in terms of the policy file.

For every rule: whether it applied, matched but lost to the hit policy, or
failed; for a failed rule, the first condition (down to the top-level `and`
parts) that was false, with the values it read and its `file:line:col`.
Derived values are listed with their values and lines too. This runs the
reference evaluator; it is a mode, not the hot path, but it costs about as much as
the decision itself, so the per-decision part is kept lean: everything that depends
only on the revision is in a plan built once (`_plan`); a condition text that opens
several rules is evaluated, and its values made JSON, once per explanation; the
nested dicts (locations, labels, values) are copied per explanation, never shared
between two, so a caller may change what it gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.compile.model import CompiledPolicy, Env, Rule
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import to_json_value
from engine.lang import ast
from engine.lang.pycompile import EvalFailure, compile_condition, path_getter


def explain_decision(policy: CompiledPolicy, env: Env, applied: list[Rule]) -> dict[str, Any]:
    plan = _plan(policy)
    derived = env["derived"]
    applied_ids = {r.id for r in applied}
    # Per distinct condition text, its verdict over this env once computed: rules share
    # conditions (`order.np.result == "ng"` opens five rules of order-holds)
    verdicts: list[tuple[dict[str, Any], str | None] | None] = [None] * plan.conditions
    seen: dict[str, Any] = {}  # the JSON form of each field read, where it is immutable
    rules = []
    for rule in plan.rules:
        failed = None if rule.id in applied_ids else _first_failure(rule, env, verdicts, seen)
        if failed is not None:  # most rules: the dict made whole, in its key order
            rules.append(
                {
                    "rule": rule.id,
                    "refs": [*rule.refs],
                    "location": rule.location.copy(),
                    "label": rule.label.copy(),
                    "verdict": "failed",
                    "failed": failed,
                }
                if rule.label
                else {
                    "rule": rule.id,
                    "refs": [*rule.refs],
                    "location": rule.location.copy(),
                    "verdict": "failed",
                    "failed": failed,
                }
            )
            continue
        out = {"rule": rule.id, "refs": [*rule.refs], "location": rule.location.copy()}
        if rule.label:
            out["label"] = rule.label.copy()
        if rule.id in applied_ids:  # it holds: its conditions need no second look
            out["verdict"] = "applied"
        else:
            out["verdict"] = "matched"
            # JSON made here, in the language in effect (the request's): the note is for people
            out["note"] = translate(
                Msg("matched, but hit policy '{hit}' applied another rule", hit=policy.hit_policy)
            )
        rules.append(out)
    return {"derived": _derived(plan, derived), "rules": rules}


def _derived(plan: _Plan, derived: dict[str, Any]) -> list[dict[str, Any]]:
    listed = []
    for name, text, location, label in plan.derived:
        value = derived.get(name)
        item = {
            "name": name,
            "value": value if value.__class__ in _PLAIN else to_json_value(value),
            "expression": text,
            "location": location.copy(),
        }
        if label:
            item["label"] = label.copy()
        listed.append(item)
    return listed


_PLAIN = frozenset({str, int, bool, type(None)})
"""The types to_json_value returns as they are (its subclasses of int and str are left to it)."""


@dataclass(frozen=True, slots=True)
class _Conjunct:
    """One top-level `and` part of a rule's condition, with all that explains it made once."""

    check: Callable[[Env], bool]
    condition: str
    location: dict[str, Any]
    reads: tuple[tuple[str, Callable[[Env], Any]], ...]
    slot: int  # its condition text's place among the plan's distinct ones


@dataclass(frozen=True, slots=True)
class _RulePlan:
    id: str
    refs: tuple[str, ...]
    location: dict[str, Any]
    label: dict[str, Any] | None
    conjuncts: tuple[_Conjunct, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    derived: tuple[tuple[str, str, dict[str, Any], dict[str, Any] | None], ...]
    rules: tuple[_RulePlan, ...]
    conditions: int  # distinct condition texts: the same text reads and means the same


def _plan(policy: CompiledPolicy) -> _Plan:
    """What explains this revision, built on its first explanation: the conditions compiled
    one by one, their snippets, locations and the fields they read (per decision only the
    verdicts and the values are computed)."""
    plan = policy.extra.get("explain_plan")
    if plan is None:
        slots: dict[str, int] = {}
        plan = policy.extra["explain_plan"] = _Plan(
            tuple(
                (d.name, d.expr.text, d.location.to_dict(), d.label.to_dict() if d.label else None)
                for d in policy.derived
            ),
            tuple(_rule_plan(rule, slots) for rule in policy.rules),
            len(slots),
        )
    return plan  # type: ignore[no-any-return]


def _rule_plan(rule: Rule, slots: dict[str, int]) -> _RulePlan:
    """A rule's conjuncts; `slots` numbers the distinct condition texts across the rules.
    A conjunct is compiled from its node alone (a top-level part binds no names), so two
    with the same source text have the same verdict and read the same values."""
    conjuncts = tuple(
        _Conjunct(
            compile_condition(node),
            expr.snippet(node),
            expr.location(node).to_dict(),
            tuple((".".join(p), path_getter(p)) for p in _paths(node)),
            slots.setdefault(expr.snippet(node), len(slots)),
        )
        for expr in rule.conditions
        for node in ast.conjuncts(expr.node)
    )
    label = rule.label.to_dict() if rule.label else None
    return _RulePlan(rule.id, tuple(rule.refs), rule.location.to_dict(), label, conjuncts)


def _first_failure(
    rule: _RulePlan,
    env: Env,
    verdicts: list[tuple[dict[str, Any], str | None] | None],
    seen: dict[str, Any],
) -> dict[str, Any] | None:
    """The rule's first conjunct that does not hold, as the explanation shows it."""
    for part in rule.conjuncts:
        verdict = verdicts[part.slot]
        if verdict is None:
            verdict = verdicts[part.slot] = _verdict(part, env, seen)
        if verdict is not _HOLDS:
            values, error = verdict
            out = {
                "condition": part.condition,
                "location": part.location.copy(),
                "values": values.copy(),
            }
            if error:
                out["error"] = error
            return out
    return None


def _verdict(part: _Conjunct, env: Env, seen: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """_HOLDS, or the values the conjunct read and the error it raised (translated).

    A field's value is made JSON once per explanation; a list or an object is made again
    for each condition, so that no two parts of an explanation share a mutable value."""
    try:
        if part.check(env):
            return _HOLDS
        error = None
    except EvalFailure as exc:
        error = translate(exc.message)
    values = {}
    for name, get in part.reads:
        if name in seen:
            values[name] = seen[name]
            continue
        value = get(env)
        if value.__class__ not in _PLAIN:
            value = to_json_value(value)
            if value.__class__ is dict or value.__class__ is list:
                values[name] = value
                continue
        values[name] = seen[name] = value
    return values, error


_HOLDS: tuple[dict[str, Any], str | None] = ({}, None)


def _paths(node: ast.Node) -> list[tuple[str, ...]]:
    """The outermost field paths a condition reads (order kept, no duplicates)."""
    found: list[tuple[str, ...]] = []
    stack = [node]
    bound: set[str] = set()
    while stack:
        current = stack.pop(0)
        path = ast.path_of(current)
        if path is not None:
            if path[0] not in bound and path not in found:
                found.append(path)
            continue
        if isinstance(current, ast.Lambda):
            bound.add(current.param)
        stack.extend(current.children())
    return found
