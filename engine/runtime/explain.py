"""Explain a decision in terms of the policy file.

For every rule: whether it applied, matched but lost to the hit policy, or
failed; for a failed rule, the first condition (down to the top-level `and`
parts) that was false, with the values it read and its `file:line:col`.
Derived values are listed with their values and lines too. This runs the
reference evaluator; it is a mode, not the hot path.
"""

from __future__ import annotations

from typing import Any

from engine.compile.model import CompiledPolicy, Env, Expr, Rule
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import to_json_value
from engine.lang import ast
from engine.lang.pycompile import EvalFailure, compile_condition, path_getter


def explain_decision(policy: CompiledPolicy, env: Env, applied: list[Rule]) -> dict[str, Any]:
    applied_ids = {r.id for r in applied}
    return {
        "derived": [
            {
                "name": d.name,
                "value": to_json_value(env["derived"].get(d.name)),
                "expression": d.expr.text,
                "location": d.location.to_dict(),
                **({"label": d.label.to_dict()} if d.label else {}),
            }
            for d in policy.derived
        ],
        "rules": [_rule(policy, rule, env, applied_ids) for rule in policy.rules],
    }


def _rule(policy: CompiledPolicy, rule: Rule, env: Env, applied: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule": rule.id,
        "refs": list(rule.refs),
        "location": rule.location.to_dict(),
    }
    if rule.label:
        out["label"] = rule.label.to_dict()
    failed = _first_failure(policy, rule, env)
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


def _first_failure(policy: CompiledPolicy, rule: Rule, env: Env) -> dict[str, Any] | None:
    cache: dict[int, Any] = policy.extra.setdefault("explain_cache", {})
    for expr in rule.conditions:
        for node in ast.conjuncts(expr.node):
            check = cache.get(id(node))
            if check is None:
                check = cache[id(node)] = compile_condition(node)
            try:
                holds = check(env)
            except EvalFailure as exc:
                return _failure(expr, node, env, error=exc.message)
            if not holds:
                return _failure(expr, node, env)
    return None


def _failure(expr: Expr, node: ast.Node, env: Env, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "condition": expr.snippet(node),
        "location": expr.location(node).to_dict(),
        "values": {".".join(p): to_json_value(path_getter(p)(env)) for p in _paths(node)},
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
