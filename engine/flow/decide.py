"""Decide one move of a flow entity: pure, no store.

    at, stored entity + event + actor, settings --validate (entity_env)--> env {state,
        entity, event, history, actor}
        --the flow's shape: a final state, an event the state does not take, an actor
          without the roles that may send it here--> refused at once (`final_state`,
          `event_not_allowed`, `role_not_allowed`): no derived value, guard or
          consulted policy is computed for it
        --an event that consults a decision policy gets its answer as event.decision
          (consult, over the same pipeline)
        --runtime.evaluate: data, derive, match (hit policy first)-->
        the transition, or none
        --> Move: the new state, the facts it records, the actions it requires
                  or a refusal naming the current state and the unmet condition

A flow decides through the same pipeline as a decision (runtime/evaluate.py); only the
first step (what is validated) and the last (what the applied rule means) are its own.
durable_rules decides, in a fresh decision per event: the adapter keeps no entity state
(its sessions are capped at 1,024 per ruleset, so entity state lives in the store).
A refusal is explained with the reference evaluator (runtime.evaluate.explain_match,
which first checks that it agrees with durable_rules): for the transitions that leave
the current state on this event, the first condition that was false, with the values it
read and its file:line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.compile.model import CompiledPolicy, Env, Message
from engine.core.errors import Diagnostic, EngineFault, EvaluationError, InputError
from engine.core.i18n import Msg, Rendered
from engine.core.jsonvalue import dumps, format_datetime, format_value, to_json_value
from engine.flow.actors import Actor, role_labels, validate_actor
from engine.flow.model import (
    DECISION_FIELD,
    EVENT_TYPE,
    DecisionCall,
    FlowSpec,
    FlowState,
    Transition,
    flow_of,
)
from engine.lang import ast
from engine.lang.calendar import parse_datetime
from engine.lang.pycompile import EvalFailure
from engine.lang.text import normalize_text
from engine.runtime.decision import new_decision_id
from engine.runtime.evaluate import (
    decide,
    evaluate,
    explain_match,
    resolve_at,
    resolve_data,
    resolve_settings,
)
from engine.source.data import Dataset
from engine.store.flows import EntityState

# The decision policies a flow's events consult, as served: id -> (policy, its data sets).
Consulted = Mapping[str, tuple[CompiledPolicy, Mapping[str, Dataset]]]


def history_of(entity: EntityState) -> dict[str, Any]:
    """What `history.*` reads in a flow's expressions."""
    out: dict[str, Any] = {"moves": entity.version}
    for key in ("created_at", "last_at", "state_since"):
        raw = getattr(entity, key)
        if raw is not None:
            out[key] = parse_datetime(raw)
    if entity.last_event is not None:
        out["last_event"] = entity.last_event
    return out


def advance(entity: EntityState, move: Move) -> EntityState:
    """The entity once `move` (an allowed one) is made."""
    at = format_datetime(move.at)
    moved = move.state_after.id != entity.state
    return EntityState(
        move.state_after.id,
        move.facts_after,
        entity.version + 1,
        entity.created_at or at,
        at,
        move.event_type,
        at if moved or entity.state_since is None else entity.state_since,
    )


def initial_entity(flow: FlowSpec) -> EntityState:
    """An entity no event has moved yet: the flow's initial state, no facts."""
    return EntityState(flow.initial, {})


@dataclass(frozen=True)
class Move:
    """What one event does to an entity: a move with its actions, or a refusal."""

    decision_id: str
    policy_id: str
    revision: str
    at: datetime
    event: dict[str, Any]  # stored JSON form
    event_type: str
    actor: Actor
    state_before: FlowState
    state_after: FlowState  # the same as state_before when refused or staying
    transition: Transition | None
    actions: list[dict[str, Any]]
    message: dict[str, str] | None
    changes: dict[str, Any]
    facts_after: dict[str, Any]
    refusal: dict[str, Any] | None
    settings: dict[str, Any]
    elapsed_us: float = 0.0
    explanation: dict[str, Any] | None = None  # every transition's verdict, when explained

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def transition_id(self) -> str | None:
        """The transition made (what the store records); None when refused."""
        return self.transition.id if self.transition is not None and self.allowed else None

    def to_dict(self) -> dict[str, Any]:
        t = self.transition
        return {
            "decision_id": self.decision_id,
            "policy": {"id": self.policy_id, "revision": self.revision},
            "at": format_datetime(self.at),
            "event": self.event,
            "actor": self.actor.to_dict(),
            "allowed": self.allowed,
            "state": {
                "before": self.state_before.to_dict(),
                "after": self.state_after.to_dict(),
            },
            "transition": (
                {
                    "id": t.id,
                    "refs": list(t.refs),
                    **({"label": t.label.to_dict()} if t.label else {}),
                }
                if t is not None and self.allowed
                else None
            ),
            "actions": self.actions,
            "message": self.message,
            "recorded": self.changes,
            "facts": self.facts_after,
            "refusal": self.refusal,
            "elapsed_us": round(self.elapsed_us, 1),
            **({"explanation": self.explanation} if self.explanation is not None else {}),
        }


def decide_move(
    policy: CompiledPolicy,
    entity: EntityState,
    event: Any,
    *,
    actor: Actor | Mapping[str, Any] | None = None,
    at: datetime | str | None = None,
    settings: Mapping[str, Any] | None = None,
    data: Mapping[str, Dataset] | None = None,
    backend: str = "durable",
    decision_id: str | None = None,
    explain: bool = False,
    consulted: Consulted | None = None,
    consult_id: str | None = None,
) -> Move:
    """Decide what `event`, sent by `actor`, does to `entity`, as stored. Raises
    InputError for an invalid event or actor (JSON pointer under /event, /actor),
    EvaluationError, EngineFault.

    Decided by runtime's one pipeline, like a decision: with `explain`, and for a refusal
    because the guards of every candidate transition fail (which the reference evaluator
    explains), durable_rules must agree with the reference evaluator, or the event is an
    EngineFault. An event that consults a decision policy finds it in `consulted`; its
    decision gets `consult_id` as its id when given (a replay keeps the stored one)."""
    started = time.perf_counter()
    flow = flow_of(policy)
    # What the pipeline checks first, in its order (runtime.evaluate: the `at`, then the
    # event, its actor and the stored entity, then the settings): an invalid event is the
    # caller's error before it is a refusal, whatever the entity's state.
    when = resolve_at(at)
    env = entity_env(policy, (entity, event, actor))
    resolved = resolve_settings(policy, settings) if settings else dict(policy.default_settings)
    state = flow.states[entity.state]
    event_type = env["event"][EVENT_TYPE]
    who = Actor(env["actor"]["id"], tuple(env["actor"]["roles"]), env["actor"].get("name"))
    # A final state, an event the state does not take, an actor without the roles: refused
    # by the flow's shape, before any derived value, guard or consulted policy is computed
    # (they could only cost time, or fail, for an answer that does not read them).
    refusal = _shape_refusal(flow, state, event_type, who)
    if refusal is not None:
        if policy.datasets:
            resolve_data(policy, data)  # a data set that is not loaded fails every event alike
        env["at"], env["settings"] = when, resolved
        return _refused(policy, entity, env, state, who, None, refusal, None, decision_id, started)
    call = flow.events[event_type].decide
    if call is not None:
        answer = consult(
            call, env, when, settings, consulted or {}, policy, backend, explain, consult_id
        )
        env["event"][DECISION_FIELD] = env[SENT][DECISION_FIELD] = answer
    env, applied, explanation = evaluate(
        policy, env, _validated, when, settings, data, backend, explain
    )
    transition = flow.transition_by_id[applied[0].id] if applied else None
    target = transition.target_of(state.id) if transition else state.id
    if transition is None:
        refusal = _refusal(policy, flow, env, state, event_type, explanation, backend)
        return _refused(
            policy, entity, env, state, who, None, refusal, explanation, decision_id, started
        )
    if flow.states[target].abolished:
        refusal = _abolished(flow, env, state, transition)
        return _refused(
            policy, entity, env, state, who, transition, refusal, explanation, decision_id, started
        )
    changes, facts_after = _record(flow, transition, env, entity.facts)
    return Move(
        **_common(policy, env, state, who, decision_id),
        state_after=flow.states[target],
        transition=transition,
        actions=_actions(transition, env),
        message=transition.message.render(env, format_value) if transition.message else None,
        changes=changes,
        facts_after=facts_after,
        refusal=None,
        elapsed_us=(time.perf_counter() - started) * 1e6,
        explanation=explanation,
    )


def _validated(policy: CompiledPolicy, env: Env) -> Env:
    """evaluate's first step, done by decide_move before it: the env as validated."""
    return env


def _common(
    policy: CompiledPolicy, env: Env, state: FlowState, who: Actor, decision_id: str | None
) -> dict[str, Any]:
    """What every Move says, made or refused: the decision, the event, its actor and time."""
    return {
        "decision_id": decision_id or new_decision_id(),
        "policy_id": policy.id,
        "revision": policy.revision,
        "at": env["at"],
        "event": to_json_value(env[SENT]),
        "event_type": env["event"][EVENT_TYPE],
        "actor": who,
        "state_before": state,
        "settings": to_json_value(env["settings"]),
    }


def _refused(
    policy: CompiledPolicy,
    entity: EntityState,
    env: Env,
    state: FlowState,
    who: Actor,
    transition: Transition | None,
    refusal: dict[str, Any],
    explanation: dict[str, Any] | None,
    decision_id: str | None,
    started: float,
) -> Move:
    """A refusal: the entity stays where it is, with its facts."""
    return Move(
        **_common(policy, env, state, who, decision_id),
        state_after=state,
        transition=transition,
        actions=[],
        message=None,
        changes={},
        facts_after=dict(entity.facts),
        refusal=refusal,
        elapsed_us=(time.perf_counter() - started) * 1e6,
        explanation=explanation,
    )


SENT = "_sent"  # the env key of the event as sent (and stored), blank texts included


def entity_env(policy: CompiledPolicy, given: tuple[EntityState, Any, Any]) -> Env:
    """A flow's Validate (runtime.evaluate): the event, checked against its event schema,
    its actor, and the stored entity as the policy reads it:
    {state, entity, event, history, actor}.

    A text field of the event that holds only whitespace (full-width included) reads as
    not given (null): `requires` refuses it as missing, like an absent one, so one rule
    gives one answer. The event is stored as it was sent (env[SENT])."""
    stored, event, actor = given
    flow = flow_of(policy)
    sent = flow.validate_event(event)  # first: a bad event is the caller's to fix
    normalised = {
        k: v for k, v in sent.items() if not (isinstance(v, str) and not normalize_text(v))
    }
    who = validate_actor(actor)
    if stored.state not in flow.states:
        raise EvaluationError(
            [
                Diagnostic(
                    "stored_state_unknown",
                    Msg(
                        "the entity is in state '{state}', which policy '{policy}' revision "
                        "{revision} does not declare",
                        state=stored.state,
                        policy=policy.id,
                        revision=policy.revision,
                    ),
                    pointer="/state",
                )
            ]
        )
    try:
        entity = flow.entity.validate(dict(stored.facts), pointer="/entity")
    except InputError as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "stored_facts_invalid",
                    Msg(
                        "the entity's stored facts do not fit policy '{policy}' revision "
                        "{revision}: {reason}",
                        policy=policy.id,
                        revision=policy.revision,
                        reason=d.message,
                    ),
                    pointer=d.pointer,
                )
                for d in exc.diagnostics
            ]
        ) from None
    return {
        "state": stored.state,
        "entity": entity,
        "event": normalised,
        "history": history_of(stored),
        "actor": who.to_dict(),
        SENT: sent,
    }


def consult(
    call: DecisionCall,
    env: Env,
    at: datetime | str | None,
    settings: Mapping[str, Any] | None,
    consulted: Consulted,
    flow_policy: CompiledPolicy,
    backend: str,
    explain: bool,
    decision_id: str | None = None,
) -> dict[str, Any]:
    """Decide the policy an event consults, with the facts and settings its `decide`
    computes from the flow's env; the answer, as the event's `decision` field reads it."""
    pre = {**env, "at": resolve_at(at), "settings": resolve_settings(flow_policy, settings)}
    found = consulted.get(call.policy)
    if found is None:
        raise EvaluationError(
            [
                Diagnostic(
                    "consulted_policy_missing",
                    Msg(
                        "policy '{policy}', which this event consults, is not served",
                        policy=call.policy,
                    ),
                    call.location,
                )
            ]
        )
    target, data = found
    try:
        facts = to_json_value(call.facts.fn(pre))
        given = to_json_value(call.settings.fn(pre)) if call.settings is not None else None
    except EvalFailure as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "evaluation_error",
                    Msg("consulting '{policy}': {reason}", policy=call.policy, reason=exc.message),
                    call.location,
                )
            ]
        ) from None
    try:
        decision = decide(
            target,
            facts,
            at=pre["at"],
            settings=given,
            data=data,
            backend=backend,
            explain=explain,
            decision_id=decision_id,
        )
    except InputError as exc:
        raise InputError([_repointed(call, d) for d in exc.diagnostics]) from None
    answer = {
        "policy": {"id": decision.policy_id, "revision": decision.revision},
        "decision_id": decision.decision_id,
        "outcome": to_json_value(decision.outcome),
        "reasons": to_json_value(decision.reasons),
        "fired": list(decision.fired),
        "data": dict(decision.data_versions),
    }
    try:
        return call.answer.validate(answer, pointer=f"/event/{DECISION_FIELD}")  # type: ignore[no-any-return]
    except InputError as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "decision_answer_invalid",
                    Msg(
                        "the answer of '{policy}' revision {revision} does not fit what this "
                        "flow was compiled against (edit and reload both): {reason}",
                        policy=call.policy,
                        revision=decision.revision,
                        reason=d.message,
                    ),
                    call.location,
                    pointer=d.pointer,
                )
                for d in exc.diagnostics
            ]
        ) from None


def _repointed(call: DecisionCall, problem: Diagnostic) -> Diagnostic:
    """A problem of the consulted decision's input, placed where the sender can fix it:
    under the event field the facts (or settings) came from, else under /decision."""
    pointer = problem.pointer or ""
    root, _, rest = pointer.lstrip("/").partition("/")
    expr = call.facts if root == "facts" else call.settings if root == "settings" else None
    # The one event field the expression reads (`event.facts`, or merged with the entity's
    # knowledge), else the consulted input itself, under /decision.
    fields = set()
    for node in expr.node.walk() if expr is not None else ():
        path = ast.path_of(node)
        if path is not None and len(path) >= 2 and path[0] == "event":
            fields.add(path[1])
    if len(fields) == 1:
        where = f"/event/{fields.pop()}" + (f"/{rest}" if rest else "")
    else:
        where = f"/{DECISION_FIELD}{pointer}"
    given = (
        Msg(
            "{reason} (in the settings given to '{policy}')",
            reason=problem.message,
            policy=call.policy,
        )
        if root == "settings"
        else Msg(
            "{reason} (in the facts given to '{policy}')",
            reason=problem.message,
            policy=call.policy,
        )
    )
    return Diagnostic(
        problem.code,
        given,
        problem.location,
        pointer=where,
        hint=problem.hint,
    )


def _record(
    flow: FlowSpec, transition: Transition, env: Env, stored: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the move records, and the entity's stored facts (JSON) after it. Values are
    computed from the entity before the move; only the facts that change are converted
    and validated (the schema's properties are independent of each other)."""
    facts = dict(stored)
    changes: dict[str, Any] = {}
    changed: dict[str, Any] = {}
    try:
        for name, value in transition.set:
            new = _compact(to_json_value(value.compute(env)))
            changes.setdefault("set", {})[name] = new
            changed[name] = new
            if new is None:
                facts.pop(name, None)
            else:
                facts[name] = new
        for name, value in transition.append:
            item = _compact(to_json_value(value.compute(env)))
            changes.setdefault("append", {})[name] = item
            facts[name] = changed[name] = [*facts.get(name, ()), item]
    except EvalFailure as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "evaluation_error",
                    Msg("transition '{id}': {reason}", id=transition.id, reason=exc.message),
                    transition.location,
                    rule_id=transition.id,
                )
            ]
        ) from None
    try:
        flow.entity.validate({k: v for k, v in changed.items() if v is not None}, pointer="/entity")
    except InputError as exc:
        raise EvaluationError(
            [
                Diagnostic(
                    "recorded_fact_invalid",
                    Msg(
                        "transition '{id}' would record a fact its schema refuses: {reason}",
                        id=transition.id,
                        reason=d.message,
                    ),
                    transition.location,
                    pointer=d.pointer,
                    rule_id=transition.id,
                )
                for d in exc.diagnostics
            ]
        ) from None
    return changes, facts


def _compact(value: Any) -> Any:
    """Stored facts leave out nulls, at every depth: a null field is an absent one (the
    language reads both the same), and schemas need not allow null everywhere."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _actions(transition: Transition, env: Env) -> list[dict[str, Any]]:
    out = []
    for action in transition.actions:
        try:
            if not all(c.fn(env) is True for c in action.when):
                continue
        except EvalFailure:
            continue  # a condition that cannot be evaluated does not require the action
        item: dict[str, Any] = {"code": action.code, "text": action.text.render(env, format_value)}
        if action.to:
            item["to"] = list(action.to)
        if action.details:
            item["details"] = {
                k: _compact(to_json_value(v.compute(env))) for k, v in action.details
            }
        out.append(item)
    return out


def _optional_render(message: Message | None, env: Env) -> dict[str, str]:
    if message is None:
        return {}
    try:
        return message.render(env, format_value)
    except EvalFailure:
        return {}


def _en(label: Any) -> str:
    return str(label.en or label.ja)


def _join(*parts: str | None) -> str:
    return "".join(p for p in parts if p).strip()


# A refusal's message is {ja, en} whatever the request's language (clients show either):
# the engine's own sentence comes from the catalogue in each language (engine/core/i18n.py),
# with the policy's labels in that language, followed by the policy's own texts (a state's
# note, the transition's `refusal`) in the same language.


def _label(text: Any) -> Rendered:
    """A policy's label inside an engine-written sentence: its ja in the Japanese one, its en
    (else its ja) in the English one."""
    return Rendered(lambda lang: text.ja if lang == "ja" else _en(text))


def _per_language(ja: str, en: str) -> Rendered:
    return Rendered(lambda lang: ja if lang == "ja" else en)


def _labels(labels: list[Any]) -> Rendered:
    """Labels listed in a sentence: 「a」、「b」 / 'a', 'b' (なし / none when there are none)."""

    def render(lang: str) -> str:
        if not labels:
            return Msg("none").in_language(lang)
        if lang == "ja":
            return "、".join(f"「{label.ja}」" for label in labels)
        return ", ".join(f"'{_en(label)}'" for label in labels)

    return Rendered(render)


def _both(sentence: Msg, *texts: Mapping[str, str]) -> dict[str, str]:
    """The refusal's message: the sentence in Japanese and English, each followed by the
    policy's texts in that language."""
    return {
        "ja": _join(sentence.in_language("ja"), *(t.get("ja") for t in texts)),
        "en": _join(str(sentence) + " ", *(t.get("en") for t in texts)),
    }


def _note(state: FlowState) -> dict[str, str]:
    return state.note.to_dict() if state.note else {}


def _base(code: str, state: FlowState, event: str) -> dict[str, Any]:
    return {"code": code, "state": state.to_dict(), "event": event}


def _shape_refusal(
    flow: FlowSpec, state: FlowState, event_type: str, who: Actor
) -> dict[str, Any] | None:
    """The refusal the flow's shape gives, in its order (docs/flows.md): a final state,
    then an event no transition takes from the state (`event_not_allowed`), then an actor
    holding none of the roles that may send it here (`role_not_allowed`); None when the
    event may move the entity, so that only then are derived values and guards computed."""
    event = flow.events[event_type]
    if state.final:
        out = _base("final_state", state, event_type)
        out["message"] = _both(
            Msg(
                "'{state}' is a final state: no further operations ('{event}' refused).",
                state=_label(state.label),
                event=_label(event.label),
            ),
            _note(state),
        )
        out["allowed_events"] = []
        return out
    if not flow.candidates(state.id, event_type):
        allowed = flow.allowed_events(state.id)
        out = _base("event_not_allowed", state, event_type)
        out["message"] = _both(
            Msg(
                "In state '{state}' the event '{event}' is not allowed (allowed here: {allowed}).",
                state=_label(state.label),
                event=_label(event.label),
                allowed=_labels([flow.events[e].label for e in allowed]),
            ),
            _note(state),
        )
        out["allowed_events"] = allowed
        return out
    roles = flow.roles_for(state.id, event_type)
    if not who.may(roles):
        return _role_refusal(flow, state, event_type, who, roles or ())
    return None


def _refusal(
    policy: CompiledPolicy,
    flow: FlowSpec,
    env: Env,
    state: FlowState,
    event_type: str,
    explanation: Mapping[str, Any] | None,
    backend: str,
) -> dict[str, Any]:
    """The refusal when durable_rules applied no transition although some leave the state
    on this event and the actor may send it (_shape_refusal found none): the guards of
    every candidate failed, as the reference evaluator explains (`missing_field`,
    `condition_not_met`)."""
    event = flow.events[event_type]
    candidates = flow.candidates(state.id, event_type)
    allowed = flow.allowed_events(state.id)
    # Only the guards of candidates need the reference evaluator (and with it the check
    # that it agrees with durable_rules): a final state, an event that no transition takes
    # from here or an actor without the roles is refused by the flow's shape, before
    # either backend is asked.
    reference = explanation or explain_match(policy, env, [], backend)
    verdicts = {v["rule"]: v for v in reference["rules"]}
    failures = []
    for transition in candidates:
        verdict = verdicts[transition.id]
        # The reference matched nothing (explain_match checked it), so every candidate has
        # a failed condition: one that does not is an explanation that cannot explain.
        if verdict["verdict"] != "failed":
            raise EngineFault(
                [
                    Diagnostic(
                        "engine_disagreement",
                        Msg(
                            "durable_rules applied no transition, but the reference evaluator "
                            "finds '{id}' holds (policy '{policy}' revision {revision})",
                            id=transition.id,
                            policy=policy.id,
                            revision=policy.revision,
                        ),
                        transition.location,
                        rule_id=transition.id,
                    )
                ]
            )
        failed = dict(verdict["failed"])
        failed["transition"] = transition.id
        failed["refs"] = list(transition.refs)
        missing = _missing_field(transition, failed["condition"])
        if missing is not None:
            failed["field"] = missing
            failed["pointer"] = f"/event/{missing}"
        failures.append((_progress(policy, transition, failed), transition, failed))
    # The transition that got furthest explains best: with `kind == "SGキャンセル"` in the
    # event, the SGキャンセル move's unmet precondition, not the キャンセル move's kind test.
    failures.sort(key=lambda item: (-item[0], item[1].index))
    _, transition, first = failures[0]
    explained = _optional_render(transition.refusal, env)
    where = _where(first["location"])
    if "field" in first:
        # `refusal` explains the guards; for a missing field `missing` does (or `refusal`
        # when the move has no guards, since then only its fields can be missing).
        text = transition.missing or (None if transition.guarded else transition.refusal)
        explained = _optional_render(text, env)
        out = _base("missing_field", state, event_type)
        name = first["field"]
        out["message"] = _both(
            Msg(
                "In state '{state}', '{event}' needs '{title}' (event.{field}).",
                state=_label(state.label),
                event=_label(event.label),
                # the field's title (Japanese, for people) in Japanese, its name in English
                title=_per_language(event.field_label(name), name),
                field=name,
            ),
            explained,
        )
        out["pointer"] = first["pointer"]
    else:
        out = _base("condition_not_met", state, event_type)
        values = _values(first["values"])
        fields = {
            "state": _label(state.label),
            "event": _label(event.label),
            "condition": first["condition"],
            "where": where,
        }
        sentence = (
            Msg(
                "In state '{state}', '{event}' is refused: {condition} does not hold "
                "({values}) [{where}].",
                values=values,
                **fields,
            )
            if values
            else Msg(
                "In state '{state}', '{event}' is refused: {condition} does not hold [{where}].",
                **fields,
            )
        )
        out["message"] = _both(sentence, explained)
    out["failed"] = [f for _, _, f in failures]
    out["allowed_events"] = allowed
    return out


def _role_refusal(
    flow: FlowSpec, state: FlowState, event_type: str, actor: Actor, roles: tuple[str, ...]
) -> dict[str, Any]:
    event = flow.events[event_type]
    labels = {name: role.label for name, role in flow.roles.items()}
    out = _base("role_not_allowed", state, event_type)
    out["message"] = _both(
        Msg(
            "In state '{state}', '{event}' may be sent by {roles} (the roles of {actor}: {held}).",
            state=_label(state.label),
            event=_label(event.label),
            roles=_per_language(*role_labels(roles, labels)),
            actor=actor.id,
            held=_per_language(*role_labels(actor.roles, labels)),
        )
    )
    out["roles"] = list(roles)
    out["actor"] = actor.to_dict()
    out["allowed_events"] = flow.allowed_events(state.id)
    return out


def _abolished(
    flow: FlowSpec, env: Env, state: FlowState, transition: Transition
) -> dict[str, Any]:
    target = flow.states[transition.target_of(state.id)]
    note = _note(target)
    explained = _optional_render(transition.refusal, env)
    out = _base("abolished_state", state, transition.event)
    out["message"] = _both(
        Msg(
            "'{target}' is an abolished status and cannot be set (current state: '{state}').",
            target=_label(target.label),
            state=_label(state.label),
        ),
        note,
        explained,
    )
    out["target"] = target.to_dict()
    out["transition"] = transition.id
    out["refs"] = list(transition.refs)
    out["allowed_events"] = flow.allowed_events(state.id)
    return out


def _progress(policy: CompiledPolicy, transition: Transition, failed: Mapping[str, Any]) -> int:
    """How many conditions of the transition held before the one that failed."""
    rule = policy.rule_by_id[transition.id]
    position = 0
    for expr in rule.conditions:
        for node in ast.conjuncts(expr.node):
            if (
                expr.snippet(node) == failed["condition"]
                and expr.location(node).to_dict() == failed["location"]
            ):
                return position
            position += 1
    return position


def _missing_field(transition: Transition, condition: str) -> str | None:
    for name in transition.requires:
        if condition == f"event.{name} != null":
            return name
    return None


def _values(values: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k} = {v if isinstance(v, str) else dumps(v).decode()}" for k, v in values.items()
    )


def _where(location: Mapping[str, Any]) -> str:
    return f"{location['file']}:{location['line']}:{location['col']}"
