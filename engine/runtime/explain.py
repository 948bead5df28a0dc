"""Explain a decision in terms of the policy file.

For every rule: whether it applied, matched but lost to the hit policy, or
failed; for a failed rule, the first condition (down to the top-level `and`
parts) that was false, with the values it read and its `file:line:col`.
Derived values are listed with their values and lines too. This runs the
reference evaluator; it is a mode, not the hot path, but it costs about as much as
the decision itself, so the per-decision part is kept lean: everything that depends
only on the revision is in a plan built once (`_plan`), and an explanation holds those
parts themselves, read-only (engine/core/readonly.py): a rule's location, label and
refs, a condition's location, the whole entry of a rule that applied and of a derived
value that is null, true or false. Copied for each explanation they cost more than the
rest of it, and a change made through one answer would show in every later one. A
condition text that opens several rules is evaluated, and the values it read made JSON
(read-only too), once per explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.compile.model import CompiledPolicy, Derived, Env, Rule
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import to_json_value
from engine.core.readonly import ReadOnlyDict, ReadOnlyList, frozen
from engine.lang import ast
from engine.lang.pycompile import EvalFailure, compile_condition, path_getter
from engine.runtime.evaluate import rule_failed, select


def explain_decision(
    policy: CompiledPolicy, env: Env, applied: list[Rule] | None
) -> tuple[dict[str, Any], list[Rule]]:
    """The explanation, and the rules it says apply.

    `applied` given: the python backend's own match (the reference evaluator), taken as
    it is; its rules are not looked at again. None: this pass is the reference evaluator's
    match (every rule's conditions, part by part, then the hit policy), raising the
    EvaluationError match_python would; the python backend decides this way when asked to
    explain, and the durable backend's answer is compared with it (explain_match)."""
    plan = _plan(policy)
    trusted = {r.id for r in applied} if applied is not None else None
    # Per distinct condition text, its verdict over this env once computed: rules share
    # conditions (`order.np.result == "ng"` opens five rules of order-holds)
    verdicts: list[_Verdict | None] = [None] * plan.conditions
    seen: dict[str, Any] = {}  # the JSON form of each field read, where it is immutable
    rules: list[dict[str, Any] | None] = []
    holding: list[tuple[int, _RulePlan]] = []  # where each rule that holds goes in `rules`
    for rule in plan.rules:
        if trusted is not None and rule.id in trusted:
            holding.append((len(rules), rule))
            rules.append(None)
            continue
        for part in rule.conjuncts:  # the first part that does not hold
            verdict = verdicts[part.slot]
            if verdict is None:
                verdict = verdicts[part.slot] = _verdict(part, env, seen)
            if verdict is not _HOLDS:
                break
        else:
            holding.append((len(rules), rule))
            rules.append(None)
            continue
        values, error, failure = verdict
        if failure is not None and trusted is None:  # match_python stops here too
            raise rule_failed(policy.rule_by_id[rule.id], failure)
        failed = {"condition": part.condition, "location": part.location, "values": values}
        if error:
            failed["error"] = error
        # most rules: the dict made whole, in its key order
        rules.append(
            {
                "rule": rule.id,
                "refs": rule.refs,
                "location": rule.location,
                "label": rule.label,
                "verdict": "failed",
                "failed": failed,
            }
            if rule.label
            else {
                "rule": rule.id,
                "refs": rule.refs,
                "location": rule.location,
                "verdict": "failed",
                "failed": failed,
            }
        )
    if applied is None:
        applied = select(policy, [policy.rule_by_id[r.id] for _, r in holding])
        trusted = {r.id for r in applied}
    for index, rule in holding:
        rules[index] = _holding(policy, rule, rule.id in trusted)
    return {"derived": _derived(plan, env["derived"], seen), "rules": rules}, applied


def _holding(policy: CompiledPolicy, rule: _RulePlan, applied: bool) -> dict[str, Any]:
    if applied:
        return rule.applied
    out = {"rule": rule.id, "refs": rule.refs, "location": rule.location}
    if rule.label:
        out["label"] = rule.label
    out["verdict"] = "matched"
    # JSON made here, in the language in effect (the request's): the note is for people
    out["note"] = translate(
        Msg("matched, but hit policy '{hit}' applied another rule", hit=policy.hit_policy)
    )
    return out


def _derived(plan: _Plan, derived: dict[str, Any], seen: dict[str, Any]) -> list[dict[str, Any]]:
    listed = []
    for name, read_as, text, location, label, fixed in plan.derived:
        value = derived.get(name)
        if value is None or value is True or value is False:
            listed.append(fixed[value])  # the whole entry depends on the revision alone
            continue
        if value.__class__ not in _PLAIN:
            # the JSON form a condition made of it, else made now (read-only, like those)
            value = seen[read_as] if read_as in seen else _json(value)
        listed.append(
            {"name": name, "value": value, "expression": text, "location": location, "label": label}
            if label
            else {"name": name, "value": value, "expression": text, "location": location}
        )
    return listed


def _fixed_entries(
    name: str, text: str, location: ReadOnlyDict, label: ReadOnlyDict | None
) -> dict[Any, ReadOnlyDict]:
    """A derived value's entry for each of null, true and false, made once."""
    entries = {}
    for value in (None, True, False):
        entry = {"name": name, "value": value, "expression": text, "location": location}
        if label:
            entry["label"] = label
        entries[value] = ReadOnlyDict(entry)
    return entries


_PLAIN = frozenset({str, int, bool, type(None)})
"""The types to_json_value returns as they are (its subclasses of int and str are left to it)."""


@dataclass(frozen=True, slots=True)
class _Conjunct:
    """One top-level `and` part of a rule's condition, with all that explains it made once."""

    check: Callable[[Env], bool]
    condition: str
    location: ReadOnlyDict
    reads: tuple[tuple[str, Callable[[Env], Any]], ...]
    slot: int  # its condition text's place among the plan's distinct ones


@dataclass(frozen=True, slots=True)
class _RulePlan:
    id: str
    refs: ReadOnlyList
    location: ReadOnlyDict
    label: ReadOnlyDict | None
    conjuncts: tuple[_Conjunct, ...]
    applied: ReadOnlyDict  # the rule's whole entry when it applies: it depends on nothing else


_DerivedPlan = tuple[str, str, str, ReadOnlyDict, ReadOnlyDict | None, dict[Any, ReadOnlyDict]]
"""A derived value's name, the name conditions read it by, its expression, location, label,
and its whole entry for each of null, true and false."""


@dataclass(frozen=True, slots=True)
class _Plan:
    derived: tuple[_DerivedPlan, ...]
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
            tuple(_derived_plan(d) for d in policy.derived),
            tuple(_rule_plan(rule, slots) for rule in policy.rules),
            len(slots),
        )
    return plan  # type: ignore[no-any-return]


def _derived_plan(item: Derived) -> _DerivedPlan:
    location = frozen(item.location.to_dict())
    label = frozen(item.label.to_dict()) if item.label else None
    text = item.expr.text
    fixed = _fixed_entries(item.name, text, location, label)
    return item.name, f"derived.{item.name}", text, location, label, fixed


def _rule_plan(rule: Rule, slots: dict[str, int]) -> _RulePlan:
    """A rule's conjuncts; `slots` numbers the distinct condition texts across the rules.
    A conjunct is compiled from its node alone (a top-level part binds no names), so two
    with the same source text have the same verdict and read the same values."""
    conjuncts = tuple(
        _Conjunct(
            compile_condition(node),
            expr.snippet(node),
            frozen(expr.location(node).to_dict()),
            tuple((".".join(p), path_getter(p)) for p in _paths(node)),
            slots.setdefault(expr.snippet(node), len(slots)),
        )
        for expr in rule.conditions
        for node in ast.conjuncts(expr.node)
    )
    refs, location = frozen([*rule.refs]), frozen(rule.location.to_dict())
    label = frozen(rule.label.to_dict()) if rule.label else None
    applied = {"rule": rule.id, "refs": refs, "location": location}
    if label:
        applied["label"] = label
    applied["verdict"] = "applied"
    return _RulePlan(rule.id, refs, location, label, conjuncts, ReadOnlyDict(applied))


_Verdict = tuple[ReadOnlyDict, str | None, Any]
"""The values a conjunct read, the error it raised (translated) and the reason as raised."""


def _verdict(part: _Conjunct, env: Env, seen: dict[str, Any]) -> _Verdict:
    """_HOLDS, or the values the conjunct read and the error it raised.

    A field's value is made JSON once per explanation, read-only, and the values of a
    condition once: the rules it opens and the derived list hold the same ones."""
    try:
        if part.check(env):
            return _HOLDS
        error = failure = None
    except EvalFailure as exc:
        failure = exc.message
        error = translate(failure)
    values = {}
    for name, get in part.reads:
        if name in seen:
            values[name] = seen[name]
            continue
        value = get(env)
        if value.__class__ not in _PLAIN:
            value = _json(value)
        values[name] = seen[name] = value
    return ReadOnlyDict(values), error, failure


def _json(value: Any) -> Any:
    """The JSON form of a value, its lists and objects read-only: it may be shared."""
    value = to_json_value(value)
    return frozen(value) if value.__class__ is dict or value.__class__ is list else value


_HOLDS: _Verdict = (ReadOnlyDict(), None, None)


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
