"""Explain a decision in terms of the policy file.

For every rule: whether it applied, matched but lost to the hit policy, or
failed; for a failed rule, the first condition (down to the top-level `and`
parts) that was false, with the values it read and its `file:line:col`.
Derived values are listed with their values and lines too. This runs the
reference evaluator; it is a mode, not the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.compile.model import CompiledPolicy, Env, Expr, Rule
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import to_json_value
from engine.lang import ast
from engine.lang.pycompile import EvalFailure, compile_condition, path_getter


def explain_decision(policy: CompiledPolicy, env: Env, applied: list[Rule]) -> dict[str, Any]:
    plan = _plan(policy)
    derived = env["derived"]
    applied_ids = {r.id for r in applied}
    return {
        "derived": [
            {
                "name": name,
                "value": to_json_value(derived.get(name)),
                "expression": text,
                "location": dict(location),
                **({"label": dict(label)} if label else {}),
            }
            for name, text, location, label in plan.derived
        ],
        "rules": [_rule(policy, rule, env, applied_ids) for rule in plan.rules],
    }


@dataclass(frozen=True, slots=True)
class _Conjunct:
    """One top-level `and` part of a rule's condition, with all that explains it made once."""

    check: Callable[[Env], bool]
    condition: str
    location: dict[str, Any]
    reads: tuple[tuple[str, Callable[[Env], Any]], ...]


@dataclass(frozen=True, slots=True)
class _RulePlan:
    rule: Rule
    location: dict[str, Any]
    label: dict[str, Any] | None
    conjuncts: tuple[tuple[Expr, _Conjunct], ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    derived: tuple[tuple[str, str, dict[str, Any], dict[str, Any] | None], ...]
    rules: tuple[_RulePlan, ...]


def _plan(policy: CompiledPolicy) -> _Plan:
    """What explains this revision, built on its first explanation: the conditions compiled
    one by one, their snippets, locations and the fields they read (per decision only the
    verdicts and the values are computed)."""
    plan = policy.extra.get("explain_plan")
    if plan is None:
        plan = policy.extra["explain_plan"] = _Plan(
            tuple(
                (d.name, d.expr.text, d.location.to_dict(), d.label.to_dict() if d.label else None)
                for d in policy.derived
            ),
            tuple(_rule_plan(rule) for rule in policy.rules),
        )
    return plan  # type: ignore[no-any-return]


def _rule_plan(rule: Rule) -> _RulePlan:
    conjuncts = tuple(
        (
            expr,
            _Conjunct(
                compile_condition(node),
                expr.snippet(node),
                expr.location(node).to_dict(),
                tuple((".".join(p), path_getter(p)) for p in _paths(node)),
            ),
        )
        for expr in rule.conditions
        for node in ast.conjuncts(expr.node)
    )
    label = rule.label.to_dict() if rule.label else None
    return _RulePlan(rule, rule.location.to_dict(), label, conjuncts)


def _rule(policy: CompiledPolicy, plan: _RulePlan, env: Env, applied: set[str]) -> dict[str, Any]:
    rule = plan.rule
    out: dict[str, Any] = {
        "rule": rule.id,
        "refs": list(rule.refs),
        "location": dict(plan.location),
    }
    if plan.label:
        out["label"] = dict(plan.label)
    failed = _first_failure(plan, env)
    if rule.id in applied:
        out["verdict"] = "applied"
    elif failed is None:
        out["verdict"] = "matched"
        # JSON made here, in the language in effect (the request's): the note is for people
        out["note"] = translate(
            Msg("matched, but hit policy '{hit}' applied another rule", hit=policy.hit_policy)
        )
    else:
        out["verdict"] = "failed"
        out["failed"] = failed
    return out


def _first_failure(plan: _RulePlan, env: Env) -> dict[str, Any] | None:
    for _expr, part in plan.conjuncts:
        try:
            holds = part.check(env)
        except EvalFailure as exc:
            return _failure(part, env, error=exc.message)
        if not holds:
            return _failure(part, env)
    return None


def _failure(part: _Conjunct, env: Env, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "condition": part.condition,
        "location": dict(part.location),
        "values": {name: to_json_value(get(env)) for name, get in part.reads},
    }
    if error:
        out["error"] = translate(error)
    return out


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
