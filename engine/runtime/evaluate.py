"""The one decide pipeline, for every kind of policy (`evaluate`), and `decide` on top of it.

    given --validate (the kind's)--> env --settings, at, data--> --derive-->
          --match (backend)--> applied rules (--explain: the reference must agree)
    decisions (decide): --assemble--> outcome + reasons --> Decision (+ explanation)
    flows (flow/decide.py): the applied transition --> Move, or a refusal

Only the first step and the meaning of the applied rules belong to a kind; decisions,
flows, batch (cli/batch.py), replay (project/revisions.py) and the YAML test runner all
decide through `evaluate`, so what it guarantees holds for each of them.

Two backends match rules: `durable` (the durable_rules Rete engine, the
default) and `python` (the reference closures). Both see the same env. An
explanation is the reference evaluator's, so before one is given with the durable
backend the reference decides again and must apply the same rules
(`explain_match`): a difference is an engine fault, never hidden. The hot path
(no explanation) runs one backend only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from operator import attrgetter
from typing import Any

from engine.compile.model import CompiledPolicy, Env, Rule
from engine.compile.stages import coerce_setting
from engine.core.errors import Diagnostic, EngineFault, EvaluationError, InputError
from engine.core.i18n import Msg, message_of
from engine.core.jsonvalue import INT_MAX, INT_MIN, JST, format_value, not_64_bits, shown
from engine.core.suggest import did_you_mean
from engine.durable.adapter import get_adapter
from engine.lang.calendar import parse_datetime
from engine.lang.functions import add
from engine.lang.pycompile import EvalFailure
from engine.runtime.decision import Decision, new_decision_id
from engine.source.data import Dataset

BACKENDS = ("durable", "python")


def resolve_at(at: datetime | str | None) -> datetime:
    """The decision time: an input, defaulting to now at the API boundary (never in a rule)."""
    if type(at) is str:  # the common case first: parse_datetime caches the texts it saw
        try:
            return parse_datetime(at)
        except ValueError as exc:
            raise InputError([Diagnostic("at_invalid", message_of(exc), pointer="/at")]) from None
    if at is None:
        return datetime.now(JST)
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise InputError(
                [
                    Diagnostic(
                        "at_invalid", Msg("'at' needs a UTC offset such as +09:00"), pointer="/at"
                    )
                ]
            )
        return at
    # 5, true, {}: read as a text they would be reported as "5" is not a valid date-time
    raise InputError(
        [Diagnostic("at_invalid", Msg("'at' must be a date-time text"), pointer="/at")]
    )


def resolve_settings(policy: CompiledPolicy, given: Mapping[str, Any] | None) -> dict[str, Any]:
    values = dict(policy.default_settings)
    if not given:
        return values
    problems = []
    for name, raw in given.items():
        setting = policy.settings.get(name)
        if setting is None:
            problems.append(
                Diagnostic(
                    "unknown_setting",
                    Msg("policy '{policy}' has no setting '{name}'", policy=policy.id, name=name),
                    pointer=f"/settings/{name}",
                    hint=did_you_mean(name, policy.settings),
                )
            )
            continue
        try:
            values[name] = coerce_setting(setting, raw)
        except ValueError as exc:
            problems.append(
                Diagnostic(
                    "setting_invalid",
                    Msg("setting '{name}' {reason}", name=name, reason=message_of(exc)),
                    pointer=f"/settings/{name}",
                )
            )
    if problems:
        raise InputError(problems)
    return values


def resolve_data(policy: CompiledPolicy, data: Mapping[str, Dataset] | None) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for name in policy.datasets:
        dataset = (data or {}).get(name)
        if dataset is None:
            raise EvaluationError(
                [
                    Diagnostic(
                        "data_missing",
                        Msg(
                            "data set '{name}' of policy '{policy}' is not loaded",
                            name=name,
                            policy=policy.id,
                        ),
                    )
                ]
            )
        found[name] = dataset
    return found


def compute_derived(policy: CompiledPolicy, env: Env) -> dict[str, Any]:
    derived: dict[str, Any] = {}
    env["derived"] = derived
    for item in policy.derived:
        try:
            derived[item.name] = item.expr.fn(env)
        except EvalFailure as exc:
            raise EvaluationError(
                [
                    Diagnostic(
                        "evaluation_error",
                        Msg("derived value '{name}': {reason}", name=item.name, reason=exc.message),
                        item.expr.location(exc.node),
                    )
                ]
            ) from None
    return derived


def match_python(policy: CompiledPolicy, env: Env) -> list[Rule]:
    matched = []
    for rule, check in policy.rule_checks:
        try:
            if check(env):
                matched.append(rule)
        except EvalFailure as exc:
            raise rule_failed(rule, exc.message) from None
    if not matched or policy.hit_policy == "collect":  # select's first test, without its call
        return matched
    return select(policy, matched)


def rule_failed(rule: Rule, reason: Any, code: str = "evaluation_error") -> EvaluationError:
    """A rule whose condition (or reason) cannot be computed (the reference evaluator's
    verdict)."""
    return EvaluationError(
        [
            Diagnostic(
                code,
                Msg("rule '{id}': {reason}", id=rule.id, reason=reason),
                rule.location,
                rule_id=rule.id,
            )
        ]
    )


def match_durable(policy: CompiledPolicy, env: Env) -> list[Rule]:
    handle = policy.durable_handle()
    # each rule once (an `$or` that holds twice fires once): in firing order, not the file's
    names = get_adapter().evaluate(handle, policy.build_message(env))
    if not names:
        return []
    by_id = policy.rule_by_id
    matched = [by_id[name] for name in names]
    if len(matched) > 1:
        matched.sort(key=_INDEX)
    return select(policy, matched)


_INDEX = attrgetter("index")


def select(policy: CompiledPolicy, matched: list[Rule]) -> list[Rule]:
    """Apply the hit policy to the rules whose conditions hold."""
    if not matched or policy.hit_policy == "collect":
        return matched
    if policy.hit_policy == "unique":
        if len(matched) > 1:
            ids = ", ".join(r.id for r in matched)
            raise EvaluationError(
                [
                    Diagnostic(
                        "hit_policy_violation",
                        Msg(
                            "hit policy 'unique' allows one matching rule, but "
                            "{count} matched: {ids}",
                            count=len(matched),
                            ids=ids,
                        ),
                        matched[1].location,
                        rule_id=matched[1].id,
                    )
                ]
            )
        return matched
    if policy.hit_policy == "priority":
        return [min(matched, key=lambda r: (-r.priority, r.index))]
    return [min(matched, key=lambda r: r.index)]


def assemble(
    policy: CompiledPolicy, env: Env, applied: list[Rule]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    plan = policy.outcome_plan
    if not applied and plan.copied and not plan.computed:
        return dict(plan.constants), []  # no rule applied: the defaults, as below
    set_by_rules: dict[str, Any] = {}
    reasons: list[dict[str, Any]] = []
    try:
        for rule in applied:
            for name, value in rule.then:
                # Value.compute and _merge inlined for the common case: a field's
                # first value is set as it is, unless the field collects a list.
                v = value.constant if value.expr is None else value.expr.fn(env)
                if name in set_by_rules or name in plan.collected:
                    _merge(policy, set_by_rules, name, v)
                else:
                    set_by_rules[name] = v
            if rule.reason is None:
                continue
            static = rule.static_reason  # no holes: built once, copied per decision
            if static is None:
                reasons.append(_reason(rule, env))
                continue
            reason = static.copy()  # cheaper than {**static, ...}; "refs" keeps its place
            reason["refs"] = [*rule.refs]
            reasons.append(reason)
        outcome = dict(plan.constants) if plan.copied else plan.defaults(env)
        outcome.update(set_by_rules)
        if plan.computed:
            env["outcome"] = outcome
            for spec in plan.computed:
                outcome[spec.name] = spec.computed.fn(env)  # type: ignore[union-attr]
    except EvalFailure as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "evaluation_error", Msg("computing the outcome: {reason}", reason=exc.message)
                )
            ]
        ) from None
    wide = policy.extra.get("computed_outcome")
    if wide is None:
        wide = policy.extra["computed_outcome"] = _computed_fields(policy)
    for name in wide:
        value = outcome.get(name)
        if type(value) is int:  # inline: the common case costs no call
            if not INT_MIN <= value <= INT_MAX:
                raise _out_of_range(policy, name, value)
        elif type(value) in _CONTAINERS and _too_wide(value):
            raise _out_of_range(policy, name, value)
    _check_enums(policy, outcome)
    return outcome, reasons


_CONTAINERS = (list, dict)
# the kinds of value that cannot hold an integer (the checker typed every outcome field)
_NO_INTEGER = frozenset({"boolean", "string", "date", "datetime"})


def _computed_fields(policy: CompiledPolicy) -> tuple[str, ...]:
    """The outcome fields whose values are computed per decision: by an expression (of a
    rule's `then`, a default, `value: = ...`) or summed, and whose type can hold an integer.
    The policy's own numbers were checked when it was compiled, so only these can leave 64
    bits."""
    names = _expression_fields(policy)
    return tuple(
        name
        for name, spec in policy.outcome.items()
        if name in names and not _holds_no_integer(spec.type)
    )


def _expression_fields(policy: CompiledPolicy) -> set[str]:
    names = {
        name
        for name, spec in policy.outcome.items()
        if spec.computed is not None or spec.default.expr is not None or spec.merge == "sum"
    }
    names.update(
        name for rule in policy.rules for name, value in rule.then if value.expr is not None
    )
    return names


def _enum_fields(policy: CompiledPolicy) -> tuple[tuple[str, frozenset[Any]], ...]:
    """The outcome fields with an `enum` (of their own, or of their items) whose values an
    expression computes: the policy's constants were checked against it when it compiled,
    an expression's value can only be checked once computed."""
    names = _expression_fields(policy)
    found = []
    for name, spec in policy.outcome.items():
        enum = spec.type.enum or (spec.type.item.enum if spec.type.item is not None else None)
        if name in names and enum is not None:
            found.append((name, frozenset(enum)))
    return tuple(found)


def _check_enums(policy: CompiledPolicy, outcome: dict[str, Any]) -> None:
    enums = policy.extra.get("enum_outcome")
    if enums is None:
        enums = policy.extra["enum_outcome"] = _enum_fields(policy)
    for name, allowed in enums:
        value = outcome.get(name)
        values = value if isinstance(value, list) else [value]
        wrong = next((v for v in values if v is not None and v not in allowed), None)
        if wrong is not None:
            message = Msg(
                "computing the outcome: outcome.{name}: {value} is not one of {allowed}",
                name=name,
                value=shown(wrong),
                allowed=", ".join(shown(v) for v in sorted(allowed, key=str)),
            )
            raise EvaluationError(
                [Diagnostic("outcome_invalid", message, policy.outcome[name].location)]
            )


def _holds_no_integer(kind: Any) -> bool:
    if kind.kind in _NO_INTEGER:
        return True
    return kind.kind == "list" and kind.item is not None and _holds_no_integer(kind.item)


def _too_wide(value: Any) -> bool:
    """An integer past 64 bits, also inside a list or a record (a bool is no integer)."""
    if type(value) is int:
        return not INT_MIN <= value <= INT_MAX
    if isinstance(value, list):
        return any(_too_wide(v) for v in value)
    if isinstance(value, dict):
        return any(_too_wide(v) for v in value.values())
    return False


def _range_reason(value: Any) -> Msg:
    """The 64-bit rule for a value too wide: the integer itself, else the first one inside."""
    while type(value) is not int:
        inner = value if isinstance(value, list) else list(value.values())
        value = next(v for v in inner if _too_wide(v))
    return not_64_bits(value)


def _out_of_range(policy: CompiledPolicy, name: str, value: Any) -> EvaluationError:
    """The outcome field `name` computed past 64 bits: the request's to change (422), as a
    value too large for durable_rules is (engine/durable/adapter.py), whichever backend."""
    return EvaluationError(
        [
            Diagnostic(
                "value_out_of_range",
                Msg(
                    "computing the outcome: {reason}",
                    reason=Msg(
                        "{name}: {reason}", name="outcome." + name, reason=_range_reason(value)
                    ),
                ),
                policy.outcome[name].location,
            )
        ]
    )


def _merge(policy: CompiledPolicy, outcome: dict[str, Any], name: str, value: Any) -> None:
    spec = policy.outcome.get(name)
    merge = spec.merge if spec else "last"
    if name not in outcome:
        outcome[name] = [value] if merge == "collect" else value
        return
    current = outcome[name]
    if merge == "collect":
        current.append(value)
    elif merge == "any":
        outcome[name] = current is True or value is True
    elif merge == "all":
        outcome[name] = current is True and value is True
    elif merge == "sum":
        outcome[name] = add(current or 0, value or 0)  # the language's exact addition
    elif merge in ("min", "max"):
        present = [v for v in (current, value) if v is not None]
        outcome[name] = (min if merge == "min" else max)(present) if present else None
    elif merge == "rank" and spec is not None:
        rank = spec.rank or ()
        outcome[name] = min(
            (current, value), key=lambda v: rank.index(v) if v in rank else len(rank)
        )
    elif merge == "last":
        outcome[name] = value
    # merge == "first": keep the first rule's value


def _reason(rule: Rule, env: Env) -> dict[str, Any]:
    """A reason with holes or computed details, rendered for this decision."""
    reason = rule.reason
    assert reason is not None
    out: dict[str, Any] = {
        "rule": rule.id,
        "refs": list(rule.refs),
        "code": reason.code,
        "message": reason.message.render(env, format_value),
    }
    if reason.action is not None:
        out["action"] = reason.action.render(env, format_value)
    for name, value in reason.details:
        out[name] = detail = value.compute(env)
        if value.expr is not None and _too_wide(detail):  # computed past 64 bits
            message = Msg("{name}: {reason}", name=name, reason=_range_reason(detail))
            raise rule_failed(rule, message, "value_out_of_range")
    return out


def decide(
    policy: CompiledPolicy,
    facts: Any,
    *,
    at: datetime | str | None = None,
    settings: Mapping[str, Any] | None = None,
    data: Mapping[str, Dataset] | None = None,
    backend: str = "durable",
    explain: bool = False,
    decision_id: str | None = None,
    timings: dict[str, float] | None = None,
) -> Decision:
    """Decide one case. Raises InputError (bad facts), EvaluationError or EngineFault."""
    clock = time.perf_counter
    started = clock()
    env, applied, explanation = evaluate(
        policy, facts, facts_env, at, settings, data, backend, explain, timings
    )
    matched = clock() if timings is not None else 0.0
    outcome, reasons = assemble(policy, env, applied)
    finished = clock()
    if timings is not None:
        timings["assemble"] = timings.get("assemble", 0.0) + finished - matched
    datasets = env["data"]
    # Positional, in the order of Decision's fields: keyword arguments cost more
    # than any stage of a small policy.
    return Decision(
        decision_id or new_decision_id(),
        policy.id,
        policy.revision,
        env["at"],
        backend,
        outcome,
        reasons,
        [r.id for r in applied] if applied else [],  # fired
        env["settings"],
        {name: ds.version for name, ds in datasets.items()} if datasets else {},
        (finished - started) * 1e6,  # elapsed_us
        env["derived"] if explain else None,
        explanation,
    )


Validate = Callable[[CompiledPolicy, Any], Env]
"""A kind's first step: what it decides on (a decision's facts; a flow's stored entity and
event) -> the env's first roots. Raises InputError (pointers) or EvaluationError."""


def evaluate(
    policy: CompiledPolicy,
    given: Any,
    validate: Validate,
    at: datetime | str | None,
    settings: Mapping[str, Any] | None,
    data: Mapping[str, Dataset] | None,
    backend: str = "durable",
    explain: bool = False,
    timings: dict[str, float] | None = None,
) -> tuple[Env, list[Rule], dict[str, Any] | None]:
    """The one pipeline every kind decides through: validate -> derive -> match (-> explain).

    Returns the env (with its roots `settings`, `at`, `data`, `derived`), the rules applied
    under the hit policy, and with `explain` the explanation, built only once the reference
    evaluator agreed with durable_rules (`explain_match`). What the applied rules mean (an
    outcome, a move) is the caller's. Positional arguments: this is the hot path.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    clock = time.perf_counter
    staged = timings is not None  # the stage clocks cost more than a cheap stage
    started = clock() if staged else 0.0
    when = resolve_at(at)  # first: a bad `at` is reported before bad input
    env = validate(policy, given)
    env["settings"] = (
        resolve_settings(policy, settings) if settings else dict(policy.default_settings)
    )
    env["at"] = when
    env["data"] = resolve_data(policy, data) if policy.datasets else {}
    validated = clock() if staged else 0.0
    env["derived"] = compute_derived(policy, env) if policy.derived else {}
    derived_done = clock() if staged else 0.0
    explanation = None
    if backend != "durable" and "guard" in policy.extra:
        policy.extra["guard"](env)  # what durable_rules cannot decide exactly, refused alike
    if backend == "durable":
        applied = match_durable(policy, env)
    elif explain:  # the reference match and its explanation, in one pass
        explanation, applied = explain_reference(policy, env)
    else:
        applied = match_python(policy, env)
    if timings is not None:
        matched = clock()
        for key, value in (
            ("validate", validated - started),
            ("derive", derived_done - validated),
            ("match", matched - derived_done),
        ):
            timings[key] = timings.get(key, 0.0) + value
    if not explain or explanation is not None:
        return env, applied, explanation
    explanation = explain_match(policy, env, applied, backend)
    if timings is not None:
        timings["explain"] = timings.get("explain", 0.0) + clock() - matched
    return env, applied, explanation


def facts_env(policy: CompiledPolicy, facts: Any) -> Env:
    """A decision policy's Validate: the facts, checked against its facts schema."""
    normalised = policy.facts.validate(facts, pointer="/facts")
    if type(normalised) is dict and normalised is not facts:
        return normalised  # _env_of's common case, without its call: this is the hot path
    return _env_of(normalised, facts)


def _env_of(normalised: Any, facts: Any) -> Env:
    """The env of a decision: the normalised facts, to which decide adds its roots.

    The validator returns a new dict, so it is used as it is; were it ever the
    caller's own object, it is copied: decide never changes what it was given.
    """
    if type(normalised) is dict and normalised is not facts:
        return normalised
    return dict(normalised) if isinstance(normalised, dict) else {}


def explain_match(
    policy: CompiledPolicy, env: Env, applied: list[Rule], backend: str
) -> dict[str, Any]:
    """Every rule's verdict over `env`, by the reference evaluator.

    An explanation must explain what was decided: with the durable backend, the reference
    evaluator decides again while it explains and must apply the same rules, or the
    difference is an engine fault (never hidden). The python backend is the reference
    itself. Everything that explains (decisions, flow moves and refusals, the YAML test
    runner) comes here.
    """
    if backend != "durable":
        from engine.runtime.explain import explain_decision

        return explain_decision(policy, env, applied)[0]
    explanation, reference = explain_reference(policy, env)
    check_agreement(policy, applied, reference)
    return explanation


def explain_reference(policy: CompiledPolicy, env: Env) -> tuple[dict[str, Any], list[Rule]]:
    """The reference evaluator's match and its explanation in one pass: each rule's
    conditions part by part, then the hit policy (what match_python applies, and the
    EvaluationError it raises)."""
    from engine.runtime.explain import explain_decision

    return explain_decision(policy, env, None)


def check_agreement(policy: CompiledPolicy, applied: list[Rule], reference: list[Rule]) -> None:
    """EngineFault `engine_disagreement` unless durable_rules applied what the reference
    evaluator applies."""
    if [r.id for r in reference] != [r.id for r in applied]:
        raise EngineFault(
            [
                Diagnostic(
                    "engine_disagreement",
                    Msg(
                        "durable_rules applied {durable} but the reference evaluator applied "
                        "{reference} for policy '{policy}' revision {revision}",
                        durable=shown([r.id for r in applied]),
                        reference=shown([r.id for r in reference]),
                        policy=policy.id,
                        revision=policy.revision,
                    ),
                )
            ]
        )
