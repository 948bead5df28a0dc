"""Compile a flow policy (`kind: flow`) into a CompiledPolicy whose rules are its transitions.

A flow reuses the decision compiler's stages (compile.py) wherever it can: the schema,
header, settings, data and derived stages run unchanged, and every transition becomes a
rule under hit policy `first`, so the same checks (types, unknown names with "did you
mean", unreachable rules, what durable_rules can evaluate) and the same durable ruleset
decide each move. What a flow adds:

    flow_header   'rules', 'outcome', 'hit_policy' do not belong in a flow
    flow_facts    roles, states and events; the decision facts are {state, entity, event,
                  history, actor}: one schema assembled from the entity schema (the
                  policy's `facts` file), the fields of every event and, for an event that
                  consults a decision policy, that policy's answer (`event.decision`)
    consults      the facts and settings an event gives the decision policy it consults
    transitions   from/event/by/requires/when -> one rule each; set/append/actions/message
    flow_checks   roles (declared; one set per state and event), unused events, states
                  no transition reaches (warnings)

An expression in a flow reads `state`, `entity.X` (stored facts), `event.X` (the event
body, `event.type` its name), `history.X` (moves, created_at, last_at, last_event,
state_since), `actor.X` (id, roles, name of who sent the event), besides `settings`,
`derived`, `data` and `at`.

A consulted decision policy (`events.NAME.decide.policy`) is read, not compiled, here: its
file beside the flow gives the types of its outcome (the answer's schema) and the names
of its settings; the file is part of the flow's revision, so editing that policy makes a
new revision of the flow too. The engine decides it with its served revision, and the
answer must fit the schema compiled here (engine/flow/decide.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.compile.build import Build
from engine.compile.model import CompiledPolicy, Expr, Rule, Source, Text, Value
from engine.compile.rules import (
    check_refs,
    durable_condition,
    stage_durable,
    stage_reachable,
    when_conditions,
)
from engine.compile.stages import (
    assemble_policy,
    stage_data,
    stage_derived,
    stage_facts,
    stage_header,
    stage_schema,
    stage_settings,
    stage_unused,
)
from engine.core.errors import InputError, PolicyError, sort_diagnostics
from engine.core.i18n import Msg
from engine.core.jsonvalue import quoted
from engine.core.suggest import did_you_mean
from engine.durable import conditions as durable_conditions
from engine.flow.actors import ACTOR_KEYS
from engine.flow.consult import (
    DECISION_FIELD,
    answer_schema,
    consulted_policy,
    stage_consult_answers,
    stage_consults,
)
from engine.flow.model import (
    EVENT_TYPE,
    Action,
    FlowEvent,
    FlowRole,
    FlowSpec,
    FlowState,
    Transition,
)
from engine.lang.types import Type
from engine.source.facts import FactsValidator, compile_facts_schema
from engine.source.yaml import Document, join_pointer

NOT_IN_FLOW = ("rules", "outcome", "hit_policy")
ACTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "roles"],
    "properties": {
        "id": {"type": "string", "title": "who sent the event"},
        "roles": {"type": "array", "items": {"type": "string"}, "title": "the roles they act in"},
        "name": {"type": "string", "title": "their display name"},
    },
}
assert tuple(ACTOR_SCHEMA["properties"]) == ACTOR_KEYS
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["moves"],
    "properties": {
        "moves": {"type": "integer", "minimum": 0, "title": "moves made so far"},
        "created_at": {"type": "string", "format": "date-time", "title": "time of the first move"},
        "last_at": {"type": "string", "format": "date-time", "title": "time of the last move"},
        "last_event": {"type": "string", "title": "event of the last move"},
        "state_since": {
            "type": "string",
            "format": "date-time",
            "title": "when the entity entered its current state",
        },
    },
}


@dataclass
class FlowBuild(Build):
    """The decision compiler's Build, plus what the flow stages learn."""

    roles: dict[str, FlowRole] = field(default_factory=dict)
    states: dict[str, FlowState] = field(default_factory=dict)
    events: dict[str, FlowEvent] = field(default_factory=dict)
    event_specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # consult specs
    consulted: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # by policy
    transitions: list[Transition] = field(default_factory=list)
    entity: FactsValidator | None = None
    entity_type: Type | None = None

    @property
    def flow(self) -> dict[str, Any]:
        return self.data["flow"]  # type: ignore[no-any-return]


def stage_flow_header(build: FlowBuild) -> None:
    for key in NOT_IN_FLOW:
        if key in build.data:
            build.error(
                "not_in_flow",
                Msg(
                    "'{key}' does not belong in a flow policy: its transitions are its rules, "
                    "decided first-match",
                    key=key,
                ),
                f"/{key}",
                key=True,
            )
    # Transitions are tried in file order and the first that holds decides the move.
    build.data = {**build.data, "hit_policy": "first"}
    stage_header(build)


def stage_flow_facts(build: FlowBuild) -> None:
    entity = build.facts
    if entity is None:
        return
    entity_type = entity.type
    if entity_type.kind != "record" or entity_type.fields is None:
        build.error(
            "flow_entity_schema",
            Msg(
                "the facts schema of a flow describes the entity's stored facts: it must be an "
                "object with 'properties'"
            ),
            "/facts",
        )
        return
    try:
        entity.validate({})
    except InputError as exc:
        build.error(
            "flow_entity_schema",
            Msg(
                "an entity starts with no facts, but the facts schema refuses {{}} ({reason})",
                reason=exc.diagnostics[0].message,
            ),
            "/facts",
            hint=Msg("make every entity fact optional; events record them with 'set'"),
        )
        return
    _roles(build)
    _states(build)
    _events(build)
    if build.failed:
        return  # later stages would only repeat these problems as unknown names
    states = list(build.states)
    union: dict[str, Any] = {EVENT_TYPE: {"type": "string", "enum": list(build.events)}}
    for event in build.events.values():
        for field_name, field_schema in event.fields.items():
            union.setdefault(field_name, field_schema)
    answers = [answer_schema(build, name, spec) for name, spec in build.event_specs.items()]
    if build.failed:
        return
    if answers:  # one type for event.decision: the answers of several policies, merged
        union[DECISION_FIELD] = _union_of(answers)
    schema = dict(entity.schema)
    defs = schema.pop("$defs", None)
    for annotation in ("$schema", "$id", "title", "description"):
        schema.pop(annotation, None)
    combined: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["state", "entity", "event", "history", "actor"],
        "properties": {
            "state": {"type": "string", "enum": states},
            "entity": schema,
            "event": {
                "type": "object",
                "additionalProperties": False,
                "required": [EVENT_TYPE],
                "properties": union,
            },
            "history": HISTORY_SCHEMA,
            "actor": ACTOR_SCHEMA,
        },
    }
    if defs:
        combined["$defs"] = defs
    try:
        build.facts = compile_facts_schema(combined, source=build.document.path)
    except PolicyError as exc:  # each part compiled alone; this would be a compiler bug
        build.diagnostics.extend(exc.diagnostics)
        return
    build.entity, build.entity_type = entity, entity_type


def _union_of(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """One object schema with the properties of all (the first one's where names clash)."""
    if len(schemas) == 1:
        return schemas[0]
    merged: dict[str, Any] = {"type": "object", "properties": {}}
    for schema in schemas:
        for name, sub in schema.get("properties", {}).items():
            known = merged["properties"].get(name)
            if known is not None and known.get("type") == sub.get("type") == "object":
                merged["properties"][name] = _union_of([known, sub])
            else:
                merged["properties"].setdefault(name, sub)
    return merged


def _roles(build: FlowBuild) -> None:
    for name, spec in build.flow.get("roles", {}).items():
        build.roles[name] = FlowRole(
            name, Text.of(spec.get("label")) or Text(name), Text.of(spec.get("description"))
        )


def _by(build: FlowBuild, raw: Any, pointer: str, rule_id: str | None = None) -> tuple[str, ...]:
    """A `by:` list of roles, each checked against flow.roles."""
    roles = tuple(raw)
    for i, role in enumerate(roles):
        if role not in build.roles:
            where = join_pointer(pointer, i)
            if not build.roles:
                build.error(
                    "unknown_role",
                    Msg("role '{role}' is named, but the flow declares no roles", role=role),
                    where,
                    rule_id=rule_id,
                    hint=Msg("declare the roles under flow.roles"),
                )
            else:
                build.error(
                    "unknown_role",
                    Msg("role '{role}' is not declared under flow.roles", role=role),
                    where,
                    rule_id=rule_id,
                    hint=did_you_mean(role, build.roles),
                )
    return roles


def _states(build: FlowBuild) -> None:
    positions = build.document.positions
    for name, spec in build.flow["states"].items():
        pointer = join_pointer("/flow/states", name)
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)
        build.states[name] = FlowState(
            name,
            Text.of(spec["label"]) or Text(name),
            bool(spec.get("final", False)),
            bool(spec.get("abolished", False)),
            Text.of(spec.get("note")),
            tuple(spec.get("refs", ())),
            positions.key(pointer),
        )
    initial = build.flow["initial"]
    state = build.states.get(initial)
    if state is None:
        build.error(
            "unknown_state",
            Msg("initial state '{name}' is not declared under flow.states", name=initial),
            "/flow/initial",
            hint=did_you_mean(initial, build.states),
        )
    elif state.final or state.abolished:
        build.error(
            "invalid_initial_state",
            Msg(
                "initial state '{name}' is {kind}: an entity could never move",
                name=initial,
                kind=_final_or_abolished(state),
            ),
            "/flow/initial",
        )


def _events(build: FlowBuild) -> None:
    positions = build.document.positions
    for name, spec in build.flow["events"].items():
        pointer = join_pointer("/flow/events", name)
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)
        fields = dict(spec.get("fields", {}))
        required = list(spec.get("required", []))
        if EVENT_TYPE in fields:
            build.error(
                "reserved_event_field",
                Msg(
                    "'{name}' names the event itself and cannot be one of its fields",
                    name=EVENT_TYPE,
                ),
                join_pointer(join_pointer(pointer, "fields"), EVENT_TYPE),
                key=True,
            )
            continue
        for i, field_name in enumerate(required):
            if field_name not in fields:
                build.error(
                    "unknown_event_field",
                    Msg(
                        "required field '{field}' is not one of the fields of event '{event}'",
                        field=field_name,
                        event=name,
                    ),
                    join_pointer(join_pointer(pointer, "required"), i),
                    hint=did_you_mean(field_name, fields),
                )
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": [EVENT_TYPE, *required],
            "properties": {EVENT_TYPE: {"type": "string", "const": name}, **fields},
        }
        try:
            validator = compile_facts_schema(schema, source=build.document.path)
        except PolicyError as exc:
            base = join_pointer(pointer, "fields")
            for d in exc.diagnostics:
                inner = (d.pointer or "").removeprefix("/properties")
                build.error(d.code, d.message, base + inner, hint=d.hint)
            continue
        if DECISION_FIELD in fields and "decide" in spec:
            build.error(
                "reserved_event_field",
                Msg(
                    "'{name}' is the answer of the policy this event consults: the engine fills it",
                    name=DECISION_FIELD,
                ),
                join_pointer(join_pointer(pointer, "fields"), DECISION_FIELD),
                key=True,
            )
            continue
        _check_field_types(build, name, validator, pointer)
        by = _by(build, spec["by"], join_pointer(pointer, "by")) if "by" in spec else None
        if "decide" in spec:
            build.event_specs[name] = spec["decide"]
            consulted_policy(build, spec["decide"], join_pointer(pointer, "decide"))
        build.events[name] = FlowEvent(
            name,
            Text.of(spec["label"]) or Text(name),
            fields,
            validator,
            tuple(spec.get("refs", ())),
            positions.key(pointer),
            by,
        )


def _check_field_types(
    build: FlowBuild, name: str, validator: FactsValidator, pointer: str
) -> None:
    """`event.X` has one type in expressions, so a field shared by events must agree on
    it (constraints such as minLength may differ: each event is validated by its own)."""
    fields = validator.type.fields or {}
    for other in build.events.values():
        theirs = other.validator.type.fields or {}
        for field_name, type_ in fields.items():
            if field_name == EVENT_TYPE or field_name not in theirs:
                continue
            if type_.with_nullable() != theirs[field_name].with_nullable():
                build.error(
                    "event_field_conflict",
                    Msg(
                        "field '{field}' of event '{event}' is {type}, but the field of the "
                        "same name of event '{other}' is {other_type}: event.{field} has one "
                        "type",
                        field=field_name,
                        event=name,
                        type=type_.describe(),
                        other=other.name,
                        other_type=theirs[field_name].describe(),
                    ),
                    join_pointer(join_pointer(pointer, "fields"), field_name),
                    key=True,
                )


def stage_transitions(build: FlowBuild) -> None:
    if build.entity_type is None:
        return
    scope = build.scope()
    seen: dict[str, int] = {}
    for index, spec in enumerate(build.flow["transitions"]):
        pointer = join_pointer("/flow/transitions", index)
        tid = spec["id"]
        if tid in seen:
            build.error(
                "duplicate_rule_id",
                Msg(
                    "transition id '{id}' is already used by transition {number}",
                    id=tid,
                    number=seen[tid] + 1,
                ),
                join_pointer(pointer, "id"),
                rule_id=tid,
            )
            continue
        seen[tid] = index
        check_refs(build, spec["refs"], join_pointer(pointer, "refs"), tid)
        _transition(build, spec, index, pointer, scope)


def _transition(
    build: FlowBuild, spec: Mapping[str, Any], index: int, pointer: str, scope: Any
) -> None:
    tid = spec["id"]
    before = len(build.diagnostics)
    sources = _sources(build, spec["from"], join_pointer(pointer, "from"), tid)
    event = build.events.get(spec["event"])
    if event is None:
        build.error(
            "unknown_event",
            Msg("event '{name}' is not declared under flow.events", name=spec["event"]),
            join_pointer(pointer, "event"),
            rule_id=tid,
            hint=did_you_mean(spec["event"], build.events),
        )
    target = spec.get("to")
    if target is not None and target not in build.states:
        build.error(
            "unknown_state",
            Msg("state '{name}' is not declared under flow.states", name=target),
            join_pointer(pointer, "to"),
            rule_id=tid,
            hint=did_you_mean(target, build.states),
        )
    by = (
        _by(build, spec["by"], join_pointer(pointer, "by"), tid)
        if "by" in spec
        else (event.by if event is not None else None)
    )
    requires = tuple(spec.get("requires", ()))
    for i, name in enumerate(requires):
        if event is not None and name not in event.fields:
            build.error(
                "unknown_event_field",
                Msg("event '{event}' has no field '{field}'", event=event.name, field=name),
                join_pointer(join_pointer(pointer, "requires"), i),
                rule_id=tid,
                hint=did_you_mean(name, event.fields),
            )
    # Only this transition's own mistakes stop it here: an earlier one elsewhere would hide
    # the problems of every transition after it, and call what they read "unused".
    if sources is None or event is None or any(d.is_error for d in build.diagnostics[before:]):
        return
    conditions = _move_conditions(build, spec, pointer, scope, sources, requires)
    changes = _changes(build, spec, pointer, scope)
    actions = _actions(build, spec.get("actions", []), join_pointer(pointer, "actions"), scope, tid)
    message = _text(build, spec, "message", pointer, scope)
    refusal = _text(build, spec, "refusal", pointer, scope)
    missing = _text(build, spec, "missing", pointer, scope)
    if conditions is None or changes is None or actions is None:
        return
    durable = durable_condition(build, conditions, tid)
    if durable is None:
        return
    checks = tuple(c.fn for c in conditions)

    def check(env: dict[str, Any]) -> bool:
        return all(fn(env) is True for fn in checks)

    location = build.document.positions.value(pointer)
    label = Text.of(spec.get("label"))
    build.rules.append(
        Rule(
            tid,
            index,
            tuple(spec["refs"]),
            label,
            location,
            tuple(conditions),
            check,
            durable,
            (),
            None,
            0,
        )
    )
    build.transitions.append(
        Transition(
            tid,
            index,
            tuple(spec["refs"]),
            label,
            sources,
            event.name,
            target,
            by,
            requires,
            changes[0],
            changes[1],
            actions,
            message,
            refusal,
            location,
            missing,
            "when" in spec,
        )
    )


def _sources(build: FlowBuild, raw: Any, pointer: str, tid: str) -> tuple[str, ...] | None:
    if raw == "*":
        return tuple(s.id for s in build.states.values() if not s.final and not s.abolished)
    names = [raw] if isinstance(raw, str) else list(raw)
    ok = True
    for i, name in enumerate(names):
        where = pointer if isinstance(raw, str) else join_pointer(pointer, i)
        state = build.states.get(name)
        if state is None:
            build.error(
                "unknown_state",
                Msg("state '{name}' is not declared under flow.states", name=name),
                where,
                rule_id=tid,
                hint=did_you_mean(name, build.states),
            )
            ok = False
        elif state.final or state.abolished:
            build.error(
                "move_from_final_state",
                Msg(
                    "state '{name}' is {kind}: no transition may leave it",
                    name=name,
                    kind=_final_or_abolished(state),
                ),
                where,
                rule_id=tid,
            )
            ok = False
    return tuple(names) if ok else None


def _synthetic(build: FlowBuild, text: str, pointer: str, scope: Any, tid: str) -> Expr | None:
    """A condition the flow implies (state, event, required field), placed at its YAML key."""
    return build.expression(text, Source(build.document.positions, pointer, ""), scope, rule_id=tid)


def _move_conditions(
    build: FlowBuild,
    spec: Mapping[str, Any],
    pointer: str,
    scope: Any,
    sources: tuple[str, ...],
    requires: tuple[str, ...],
) -> list[Expr] | None:
    tid = spec["id"]
    listed = orjson.dumps(list(sources)).decode()
    implied = [
        _synthetic(build, f"state in {listed}", join_pointer(pointer, "from"), scope, tid),
        _synthetic(
            build,
            f"event.{EVENT_TYPE} == {orjson.dumps(spec['event']).decode()}",
            join_pointer(pointer, "event"),
            scope,
            tid,
        ),
    ]
    guards: list[Expr] | None = []
    if "when" in spec:
        guards = when_conditions(build, spec["when"], join_pointer(pointer, "when"), scope, tid)
    needed = [
        _synthetic(
            build,
            f"event.{name} != null",
            join_pointer(join_pointer(pointer, "requires"), i),
            scope,
            tid,
        )
        for i, name in enumerate(requires)
    ]
    parts = [*implied, *needed]
    if guards is None or any(p is None for p in parts):
        return None
    # Required fields first: "the detail text is missing" is the clearest refusal, and a
    # guard reading a missing field would only say "event.x = null".
    return [*implied, *needed, *guards]  # type: ignore[list-item]


def _changes(
    build: FlowBuild, spec: Mapping[str, Any], pointer: str, scope: Any
) -> tuple[tuple[tuple[str, Value], ...], tuple[tuple[str, Value], ...]] | None:
    assert build.entity_type is not None
    tid = spec["id"]
    out: list[list[tuple[str, Value]]] = [[], []]
    ok = True
    for slot, key in enumerate(("set", "append")):
        for name, raw in spec.get(key, {}).items():
            where = join_pointer(join_pointer(pointer, key), name)
            declared = build.entity_type.field(name)
            if declared is None:
                build.error(
                    "unknown_entity_fact",
                    Msg(
                        "the entity has no fact '{name}' (declare it in the facts schema)",
                        name=name,
                    ),
                    where,
                    key=True,
                    rule_id=tid,
                    hint=did_you_mean(name, build.entity_type.fields or {}),
                )
                ok = False
                continue
            expected = declared
            if key == "append":
                if declared.kind != "list":
                    build.error(
                        "type_mismatch",
                        Msg(
                            "'append' adds to a list, but entity fact '{name}' is {type}",
                            name=name,
                            type=declared.describe(),
                        ),
                        where,
                        key=True,
                        rule_id=tid,
                    )
                    ok = False
                    continue
                expected = declared.item or declared
            what = Msg("entity fact '{name}'", name=name)
            value = build.value(raw, where, scope, expected, what, tid)
            if value is None:
                ok = False
                continue
            if expected.enum and value.expr is None and value.constant not in expected.enum:
                build.error(
                    "invalid_value",
                    Msg(
                        "{value} is not a value of entity fact '{name}' (one of {options})",
                        value=quoted(value.constant),
                        name=name,
                        options=", ".join(quoted(v) for v in expected.enum),
                    ),
                    where,
                    rule_id=tid,
                    hint=did_you_mean(str(value.constant), map(str, expected.enum)),
                )
                ok = False
                continue
            out[slot].append((name, value))
    return (tuple(out[0]), tuple(out[1])) if ok else None


def _actions(
    build: FlowBuild, specs: list[Mapping[str, Any]], pointer: str, scope: Any, tid: str
) -> tuple[Action, ...] | None:
    actions = []
    ok = True
    for i, spec in enumerate(specs):
        where = join_pointer(pointer, i)
        text = build.message(spec["text"], join_pointer(where, "text"), scope, tid)
        when: list[Expr] | None = []
        if "when" in spec:
            when = when_conditions(build, spec["when"], join_pointer(where, "when"), scope, tid)
        details = []
        for key, raw in spec.get("details", {}).items():
            value = build.value(
                raw, join_pointer(join_pointer(where, "details"), key), scope, None, key, tid
            )
            if value is None:
                ok = False
            else:
                details.append((key, value))
        if text is None or when is None:
            ok = False
            continue
        actions.append(
            Action(spec["code"], text, tuple(spec.get("to", ())), tuple(when), tuple(details))
        )
    return tuple(actions) if ok else None


def _text(build: FlowBuild, spec: Mapping[str, Any], key: str, pointer: str, scope: Any) -> Any:
    if key not in spec:
        return None
    return build.message(spec[key], join_pointer(pointer, key), scope, spec["id"])


def _check_roles(build: FlowBuild) -> None:
    """One set of roles per state and event (who may send an event in a state is the
    flow's, not the guards'), and, in a flow with roles, a warning for a transition that
    any actor may make."""
    first: dict[tuple[str, str], Transition] = {}
    for transition in build.transitions:
        pointer = join_pointer("/flow/transitions", transition.index)
        if transition.by is None and build.roles:
            build.warn(
                "transition_without_roles",
                Msg(
                    "transition '{id}' names no roles (by:), so any actor may make it",
                    id=transition.id,
                ),
                join_pointer(pointer, "event"),
                rule_id=transition.id,
            )
        for state in transition.sources:
            earlier = first.setdefault((state, transition.event), transition)
            if earlier is not transition and set(earlier.by or ()) != set(transition.by or ()):
                build.error(
                    "roles_differ",
                    Msg(
                        "in state '{state}', transition '{earlier}' lets {earlier_roles} send "
                        "'{event}' but '{id}' lets {roles}: one state and event take one set "
                        "of roles",
                        state=state,
                        earlier=earlier.id,
                        earlier_roles=_listed(earlier.by),
                        event=transition.event,
                        id=transition.id,
                        roles=_listed(transition.by),
                    ),
                    join_pointer(
                        pointer,
                        "by" if "by" in build.flow["transitions"][transition.index] else "event",
                    ),
                    rule_id=transition.id,
                )
                break


def _listed(roles: tuple[str, ...] | None) -> str:
    return Msg("any actor") if roles is None else ", ".join(roles)


def _final_or_abolished(state: FlowState) -> Msg:
    return Msg("final") if state.final else Msg("abolished")


def stage_flow_checks(build: FlowBuild) -> None:
    if build.failed:
        return  # a transition that did not compile would make its event look unused
    _check_roles(build)
    used = {t.event for t in build.transitions}
    for name in build.events:
        if name not in used:
            build.warn(
                "unused_event",
                Msg("no transition accepts event '{name}'", name=name),
                join_pointer("/flow/events", name),
                key=True,
            )
    reached = {t.target for t in build.transitions} | {build.flow["initial"]}
    for state in build.states.values():
        if state.id not in reached and not state.abolished:
            build.warn(
                "unreachable_state",
                Msg("no transition leads to state '{name}'", name=state.id),
                join_pointer("/flow/states", state.id),
                key=True,
            )


STAGES: tuple[tuple[str, Callable[[FlowBuild], None]], ...] = (
    ("schema", stage_schema),
    ("header", stage_flow_header),
    ("facts", stage_facts),
    ("flow_facts", stage_flow_facts),
    ("settings", stage_settings),
    ("data", stage_data),
    ("consults", stage_consults),
    ("derived", stage_derived),
    ("transitions", stage_transitions),
    ("consult_answers", stage_consult_answers),
    ("reachable", stage_reachable),
    ("flow_checks", stage_flow_checks),
    ("unused", stage_unused),
    ("durable", stage_durable),
)


def compile_flow(
    document: Document,
    *,
    rulebook: Mapping[str, str] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> CompiledPolicy:
    """Compile a flow policy document or raise PolicyError with every problem found."""
    build = FlowBuild(document, rulebook, given_files=files)
    build.conditions = durable_conditions.ConditionCompiler({})
    for name, stage in STAGES:
        if name != "schema" and not build.data:
            break
        if name == "settings" and build.entity is None:
            break  # without the entity and events no expression of the flow can be checked
        started = time.perf_counter()
        stage(build)
        build.timings[name] = time.perf_counter() - started
    if any(d.is_error for d in build.diagnostics):
        raise PolicyError(sort_diagnostics(build.diagnostics))
    assert build.entity is not None
    policy = assemble_policy(build)
    policy.extra["flow"] = FlowSpec(
        build.flow["initial"],
        dict(build.states),
        dict(build.events),
        tuple(build.transitions),
        build.entity,
        dict(build.roles),
    )
    policy.extra["refs"] = tuple(
        {ref for part in (*build.states.values(), *build.events.values()) for ref in part.refs}
    )
    return policy


__all__ = ["STAGES", "compile_flow"]
