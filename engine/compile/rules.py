"""The rule stages of the compiler: conditions, then-values, reasons, reachability, durable.

Public helpers (`check_refs`, `conditions`, `durable_condition`) are shared
with the flow compiler, whose transitions are rules too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from engine.compile.build import Build
from engine.compile.contradiction import contradiction
from engine.compile.model import (
    Expr,
    Reason,
    Rule,
    Source,
    Text,
    Value,
)
from engine.core.errors import Diagnostic, Severity
from engine.core.i18n import Msg
from engine.core.jsonvalue import quoted
from engine.core.suggest import did_you_mean
from engine.durable import conditions as durable_conditions
from engine.durable.adapter import MAX_EXPRESSION_SLOTS, expression_slots
from engine.lang import ast
from engine.lang.check import Scope
from engine.lang.pycompile import compile_conditions
from engine.lang.types import (
    ANY,
)
from engine.source.yaml import join_pointer


def stage_rules(build: Build) -> None:
    scope = build.scope()
    seen: dict[str, int] = {}
    for index, spec in enumerate(build.data["rules"]):
        pointer = join_pointer("/rules", index)
        rule_id = spec["id"]
        duplicate = rule_id in seen
        if duplicate:
            first = build.document.positions.value(join_pointer(f"/rules/{seen[rule_id]}", "id"))
            build.error(
                "duplicate_rule_id",
                Msg("rule id '{id}' is already used at line {line}", id=rule_id, line=first.line),
                join_pointer(pointer, "id"),
                rule_id=rule_id,
            )
        else:
            seen[rule_id] = index
        # a duplicate is still checked whole: its other mistakes are reported in the same run
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), rule_id)
        rule = _rule(build, spec, index, pointer, scope)
        if rule is not None and not duplicate:
            build.rules.append(rule)


def check_refs(build: Build, refs: list[str], pointer: str, rule_id: str | None) -> None:
    if build.rulebook is None:
        return
    for i, ref in enumerate(refs):
        if ref not in build.rulebook:
            build.error(
                "unknown_ref",
                Msg("'{ref}' is not an ID of the rulebook index (policies/rulebook.tsv)", ref=ref),
                join_pointer(pointer, i),
                rule_id=rule_id,
                hint=did_you_mean(ref, build.rulebook),
            )


def _rule(
    build: Build, spec: Mapping[str, Any], index: int, pointer: str, scope: Scope
) -> Rule | None:
    rule_id = spec["id"]
    conditions = when_conditions(build, spec["when"], join_pointer(pointer, "when"), scope, rule_id)
    then = _then(build, spec.get("then", {}), join_pointer(pointer, "then"), scope, rule_id)
    reason = (
        _reason(build, spec["reason"], join_pointer(pointer, "reason"), scope, rule_id)
        if "reason" in spec
        else None
    )
    priority = spec.get("priority")
    hit_policy = build.data.get("hit_policy", "collect")
    if hit_policy == "priority" and priority is None:
        build.error(
            "missing_priority",
            Msg("rule '{id}' needs a 'priority' under hit policy 'priority'", id=rule_id),
            pointer,
            key=True,
            rule_id=rule_id,
        )
    elif hit_policy != "priority" and priority is not None:
        build.warn(  # an editor who meant it to order the rules would see no effect
            "priority_ignored",
            Msg(
                "rule '{id}': 'priority' is read only under hit policy 'priority' "
                "(this policy's is '{hit_policy}')",
                id=rule_id,
                hit_policy=hit_policy,
            ),
            join_pointer(pointer, "priority"),
            key=True,
            rule_id=rule_id,
        )
    if conditions is None or then is None or ("reason" in spec and reason is None):
        return None
    check = compile_conditions([c.node for c in conditions])

    durable = durable_condition(build, conditions, rule_id)
    if durable is None:
        return None
    return Rule(
        rule_id,
        index,
        tuple(spec["refs"]),
        Text.of(spec.get("label")),
        build.document.positions.value(pointer),
        tuple(conditions),
        check,
        durable,
        tuple(then),
        reason,
        priority or 0,
    )


def when_conditions(
    build: Build, when: Any, pointer: str, scope: Scope, rule_id: str
) -> list[Expr] | None:
    items = [when] if not isinstance(when, list) else when
    out: list[Expr] = []
    ok = True
    for i, item in enumerate(items):
        item_pointer = pointer if not isinstance(when, list) else join_pointer(pointer, i)
        text = ("true" if item else "false") if isinstance(item, bool) else item
        source = Source(build.document.positions, item_pointer, text)
        expr = build.expression(text, source, scope, rule_id=rule_id)
        if expr is None:
            ok = False
            continue
        if expr.type.kind not in ("boolean", "any"):
            build.diagnostics.append(
                Diagnostic(
                    "type_mismatch",
                    Msg(
                        "a condition must be true or false, but this is {type}",
                        type=expr.type.describe(),
                    ),
                    expr.location(),
                    pointer=item_pointer,
                    rule_id=rule_id,
                    hint=Msg("compare it, e.g. x == 'value' or x > 0"),
                )
            )
            ok = False
            continue
        out.append(expr)
    return out if ok else None


def durable_condition(build: Build, conditions: list[Expr], rule_id: str) -> Any:
    compiler = build.conditions
    ok = True
    parts = []
    for expr in conditions:
        compiler.types = expr.types
        before = len(compiler.guards)
        try:
            parts.append(compiler.compile(expr.node))
            compiler.guards[before:] = [  # placed for their refusals
                dataclasses.replace(
                    g, text=expr.snippet(g.node), rule_id=rule_id, location=expr.location(g.node)
                )
                for g in compiler.guards[before:]
            ]
        except durable_conditions.NotCompilable as exc:
            problem = exc.problem
            build.diagnostics.append(
                Diagnostic(
                    problem.code,
                    problem.message,
                    expr.location(_at(expr.node, problem.start)),
                    pointer=expr.source.pointer,
                    rule_id=rule_id,
                    hint=problem.hint,
                )
            )
            ok = False
    if not ok:
        return None
    combined = parts[0] if len(parts) == 1 else {"$and": parts}
    slots = expression_slots(combined)
    if slots > MAX_EXPRESSION_SLOTS:
        build.diagnostics.append(
            Diagnostic(
                "not_durable_compilable",
                Msg(
                    "rule '{id}' is too complex for the rule engine: it needs {slots} "
                    "expression slots, durable_rules allows {limit} per rule",
                    id=rule_id,
                    slots=slots,
                    limit=MAX_EXPRESSION_SLOTS,
                ),
                conditions[0].location(),
                pointer=conditions[0].source.pointer,
                rule_id=rule_id,
                hint=Msg(
                    "comparisons between two fields and nested and/or cost slots; move part "
                    "of the condition into a derived value"
                ),
            )
        )
        return None
    return combined


def _at(node: ast.Node, start: int) -> ast.Node:
    for sub in node.walk():
        if sub.start == start:
            return sub
    return node


def _then(
    build: Build, spec: Mapping[str, Any], pointer: str, scope: Scope, rule_id: str
) -> list[tuple[str, Value]] | None:
    out: list[tuple[str, Value]] = []
    ok = True
    for name, raw in spec.items():
        field_pointer = join_pointer(pointer, name)
        declared = build.outcome.get(name)
        if build.outcome and declared is None:
            build.error(
                "unknown_outcome_field",
                Msg("'{name}' is not a declared outcome field", name=name),
                field_pointer,
                key=True,
                rule_id=rule_id,
                hint=did_you_mean(name, build.outcome),
            )
            ok = False
            continue
        if declared is not None and declared.computed is not None:
            build.error(
                "outcome_field_computed",
                Msg(
                    "outcome '{name}' is computed by its 'value' and cannot be set by a rule",
                    name=name,
                ),
                field_pointer,
                key=True,
                rule_id=rule_id,
            )
            ok = False
            continue
        expected = declared.type if declared else None
        if declared is not None and declared.merge == "collect":
            # each rule adds one item to the list: of the list's item type, or of the type the
            # field declares when it names the items' type (`type: string, merge: collect`)
            kind = declared.type
            expected = (kind.item or ANY) if kind.kind == "list" else kind
        what = Msg("outcome '{name}'", name=name)
        value = build.value(raw, field_pointer, scope, expected, what, rule_id)
        if value is None:
            ok = False
            continue
        if (
            declared
            and declared.type.enum
            and value.expr is None
            and value.constant not in declared.type.enum
        ):
            build.error(
                "invalid_value",
                Msg(
                    "{value} is not a value of outcome '{name}' (one of {options})",
                    value=quoted(value.constant),
                    name=name,
                    options=", ".join(quoted(v) for v in declared.type.enum),
                ),
                field_pointer,
                rule_id=rule_id,
                hint=did_you_mean(str(value.constant), map(str, declared.type.enum)),
            )
            ok = False
            continue
        out.append((name, value))
    return out if ok else None


def _reason(
    build: Build, spec: Mapping[str, Any], pointer: str, scope: Scope, rule_id: str
) -> Reason | None:
    message = build.message(spec["message"], join_pointer(pointer, "message"), scope, rule_id)
    action = (
        build.message(spec["action"], join_pointer(pointer, "action"), scope, rule_id)
        if "action" in spec
        else None
    )
    details: list[tuple[str, Value]] = []
    ok = message is not None and ("action" not in spec or action is not None)
    for name, raw in spec.get("details", {}).items():
        value = build.value(
            raw,
            join_pointer(join_pointer(pointer, "details"), name),
            scope,
            None,
            Msg("detail '{name}'", name=name),
            rule_id,
        )
        ok = ok and value is not None
        if value is not None:
            details.append((name, value))
    if not ok or message is None:
        return None
    return Reason(spec["code"], message, action, tuple(details))


def stage_reachable(build: Build) -> None:
    for rule in build.rules:
        _warn_if_never_true(build, rule)
    if build.data.get("hit_policy", "collect") != "first":
        return
    earlier: list[tuple[Rule, frozenset[str]]] = []
    for rule in build.rules:
        mine = _conjunct_set(rule)
        for other, theirs in earlier:
            if theirs <= mine:
                build.error(
                    "unreachable_rule",
                    Msg(
                        "rule '{id}' can never apply: rule '{other}' (line {line}) comes first "
                        "and matches whenever it does",
                        id=rule.id,
                        other=other.id,
                        line=other.location.line,
                    ),
                    f"/rules/{rule.index}",
                    key=True,
                    rule_id=rule.id,
                    hint=Msg("reorder the rules or make the earlier one narrower"),
                )
                break
        earlier.append((rule, mine))


def _warn_if_never_true(build: Build, rule: Rule) -> None:
    """A warning at the condition after which a rule's conditions contradict each other."""
    owner = {id(node): expr for expr in rule.conditions for node in ast.conjuncts(expr.node)}
    node = contradiction(node for expr in rule.conditions for node in ast.conjuncts(expr.node))
    if node is None:
        return
    expr = owner[id(node)]
    build.diagnostics.append(
        Diagnostic(
            "rule_never_applies",
            Msg(
                "rule '{id}' can never apply: `{condition}` contradicts its other conditions",
                id=rule.id,
                condition=expr.snippet(node),
            )
            if not isinstance(node, ast.Literal)
            else Msg(
                "rule '{id}' can never apply: `{condition}` is never true",
                id=rule.id,
                condition=expr.snippet(node),
            ),
            expr.location(node),
            pointer=f"/rules/{rule.index}/when",
            rule_id=rule.id,
            hint=Msg("correct the condition, or delete the rule if it is no longer wanted"),
            severity=Severity.WARNING,
        )
    )


def _conjunct_set(rule: Rule) -> frozenset[str]:
    texts = set()
    for expr in rule.conditions:
        for node in ast.conjuncts(expr.node):
            text = re.sub(r"\s+", "", expr.snippet(node))
            if text != "true":
                texts.add(text)
    return frozenset(texts)


def stage_durable(build: Build) -> None:
    hit_policy = build.data.get("hit_policy", "collect")
    ranked = sorted(build.rules, key=lambda r: (-r.priority, r.index))
    for rank, rule in enumerate(ranked):
        definition: dict[str, Any] = {"all": [{"m": rule.durable}]}
        if hit_policy in ("first", "priority"):
            definition["pri"] = rank + 1
        build.durable_rules[rule.id] = definition
