"""An event that consults a decision policy first: a declared dependency of a flow.

A trigger of a flow is often a decision some policy already makes: whether an order is
held (order-holds) decides whether the order's hold flow moves. The flow does not copy
that policy's rules; its event declares the policy it consults:

    events:
      check:
        label: {ja: 要対応の判定}
        fields: {facts: {type: object, title: order-holdsの判定に渡す受注}}
        decide:
          policy: order-holds                 # a decision policy beside this flow
          facts: = event.facts                # its facts, from the flow's env
          settings: "= {np_ng_action: settings.np_ng_action}"

Compile time (here): the consulted policy's file is read (it becomes part of the flow's
revision) for the types of its outcome and the names of its settings; `facts` and
`settings` are expressions over the flow's env before any derived value (state, entity,
event, history, actor, settings, at). The event then has a field `decision` that its
sender may not set, typed as the answer:

    {policy: {id, revision}, decision_id, outcome: {...its outcome fields...},
     reasons: [{code, rule, message, ...}], fired: [rule ids], data: {set: version}}

Run time (engine/flow/decide.py, `consult`): the engine decides the consulted policy with
its served revision and data, at the event's `at`, on the same backend, and validates
the answer against the schema compiled here (a policy edited since is an error, never a
guess). Guards then read `event.decision.outcome.held`; the answer is stored with the
event in the history, so every move says which decision (id, revision) it followed.

The consulted file is read at every compile of the flow (its bytes are part of the flow's
revision), but parsed once per text in a process, as every document is
(engine/source/yaml.py, by file name and SHA-256 of the bytes): order-holds.yaml, read
for each flow that consults it and for its own compile, is composed once. A text that
fails to parse is parsed again each time, so its problem is found again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from engine.compile.build import Build
from engine.compile.model import Expr, Source
from engine.core.errors import PolicyError
from engine.core.i18n import Msg
from engine.core.suggest import did_you_mean
from engine.flow.model import DECISION_FIELD, DecisionCall, FlowEvent
from engine.lang.ast import EVERY
from engine.lang.check import Root, Scope
from engine.lang.types import DATETIME, record
from engine.source.facts import compile_facts_schema
from engine.source.yaml import join_pointer, parse_yaml

POLICY_SUFFIX = ".yaml"
# The roots an event's consult reads: what exists before derived values are computed.
CONSULT_ROOTS = ("state", "entity", "event", "history", "actor")
# An outcome field's declared type -> the JSON Schema of its value in an answer.
_OUTCOME_SCHEMAS: dict[str, dict[str, Any]] = {
    "boolean": {"type": ["boolean", "null"]},
    "integer": {"type": ["integer", "null"]},
    "number": {"type": ["number", "null"]},
    "string": {"type": ["string", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "datetime": {"type": ["string", "null"], "format": "date-time"},
    "list": {"type": ["array", "null"]},
    "record": {"type": ["object", "null"]},
    "any": {},
}
_TEXT = {"type": "object", "properties": {"ja": {"type": "string"}, "en": {"type": "string"}}}
_REASON = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "rule": {"type": "string"},
        "refs": {"type": "array", "items": {"type": "string"}},
        "message": _TEXT,
        "action": _TEXT,
    },
}

__all__ = [
    "DECISION_FIELD",
    "answer_schema",
    "consulted_policy",
    "stage_consults",
]


class ConsultBuild(Protocol):
    """What these stages need of the flow compiler's build (engine/flow/compile.py)."""

    events: dict[str, FlowEvent]
    event_specs: dict[str, dict[str, Any]]
    consulted: dict[str, dict[str, Any] | None]


def consulted_policy(build: Build, spec: Mapping[str, Any], pointer: str) -> dict[str, Any] | None:
    """The consulted policy's document (its outcome and settings), read once per build."""
    cache: dict[str, dict[str, Any] | None] = build.consulted  # type: ignore[attr-defined]
    policy_id = spec["policy"]
    if policy_id in cache:
        return cache[policy_id]
    cache[policy_id] = None
    where = join_pointer(pointer, "policy")
    if policy_id == build.data.get("id"):
        build.error("consult_invalid", Msg("a flow cannot consult itself"), where)
        return None
    try:
        raw = build.read(policy_id + POLICY_SUFFIX)
    except OSError:
        siblings = []
        if build.given_files is None:
            siblings = [p.stem for p in build.path.parent.glob("*" + POLICY_SUFFIX)]
        build.error(
            "unknown_policy",
            Msg(
                "no policy '{id}' beside this flow ({file})",
                id=policy_id,
                file=policy_id + POLICY_SUFFIX,
            ),
            where,
            hint=did_you_mean(policy_id, siblings),
        )
        return None
    try:
        # parsed once per text in a process (engine/source/yaml.py), whatever consults it
        data = parse_yaml(raw, policy_id + POLICY_SUFFIX).data
    except PolicyError as exc:
        build.error(
            "consult_invalid",
            Msg(
                "policy '{id}' cannot be read: {reason}",
                id=policy_id,
                reason=exc.diagnostics[0].message,
            ),
            where,
        )
        return None
    if not isinstance(data, dict) or data.get("kind", "decision") != "decision":
        build.error(
            "consult_invalid",
            Msg(
                "policy '{id}' is not a decision policy: only a decision can be consulted",
                id=policy_id,
            ),
            where,
        )
        return None
    cache[policy_id] = data
    return data


def answer_schema(
    build: Build, event: str, spec: Mapping[str, Any], required: Iterable[str] = ()
) -> dict[str, Any]:
    """The JSON Schema of the answer the event's `decision` field holds; `required`: the
    outcome fields it must have ("*": every one it was compiled against)."""
    consulted: dict[str, Any] = build.consulted.get(spec["policy"]) or {}  # type: ignore[attr-defined]
    needed = set(required)
    outcome: dict[str, Any] = {}
    for name, field in (consulted.get("outcome") or {}).items():
        if not isinstance(field, dict):
            continue
        schema = dict(_OUTCOME_SCHEMAS.get(str(field.get("type", "any")), {}))
        if "enum" in field and isinstance(field["enum"], list):
            schema["enum"] = [*field["enum"], None]
        outcome[name] = schema
    return {
        "type": "object",
        "required": ["policy", "decision_id", "outcome", "reasons", "fired"],
        "properties": {
            "policy": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "revision": {"type": "string"}},
            },
            "decision_id": {"type": "string"},
            "outcome": {
                "type": "object",
                "properties": outcome,
                "required": [f for f in outcome if f in needed or EVERY in needed],
            },
            "reasons": {"type": "array", "items": _REASON},
            "fired": {"type": "array", "items": {"type": "string"}},
            "data": {"type": "object"},
        },
    }


def stage_consult_answers(build: Build) -> None:
    """Once every expression of the flow is compiled: each consulted answer must hold the
    outcome fields the flow reads (present, null when unset). A field the consulted policy
    renamed or dropped since would read null, a silent guess (an order moved without the
    SWITCHED_TO_COD it owed); one the flow never reads may come and go with the consulted
    policy's revisions (a rollback to a revision without it breaks nothing)."""
    flow: ConsultBuild = build  # type: ignore[assignment]
    for name, spec in flow.event_specs.items():
        event = flow.events.get(name)
        if event is None or event.decide is None:
            continue
        schema = answer_schema(build, name, spec, build.outcome_reads)
        answer = compile_facts_schema(schema, source=build.document.path)
        flow.events[name] = dataclasses.replace(
            event, decide=dataclasses.replace(event.decide, answer=answer)
        )


def _scope(build: Build) -> Scope:
    """The flow's roots that exist when an event consults: no derived values, no data."""
    assert build.facts is not None
    fields = build.facts.type.fields or {}
    roots = {name: Root(fields[name], "fact") for name in CONSULT_ROOTS if name in fields}
    roots["settings"] = Root(record({n: s.type for n, s in build.settings.items()}), "settings")
    roots["at"] = Root(DATETIME, "at")
    return Scope(roots)


def _expression(build: Build, raw: Any, pointer: str, scope: Scope, what: str) -> Expr | None:
    if not isinstance(raw, str) or not raw.startswith("="):
        build.error(
            "type_mismatch", Msg("{what} is an expression: start it with '='", what=what), pointer
        )
        return None
    body = raw[1:]
    offset = 1 + (len(body) - len(body.lstrip()))
    source = Source(build.document.positions, pointer, raw, offset)
    expr = build.expression(body.strip(), source, scope)
    if expr is not None and expr.type.kind not in ("record", "any", "null"):
        build.error(
            "type_mismatch",
            Msg("{what} must be a record, not {type}", what=what, type=expr.type.describe()),
            pointer,
        )
        return None
    return expr


def _check_settings(build: Build, expr: Expr, consulted: Mapping[str, Any], pointer: str) -> None:
    declared = consulted.get("settings") or {}
    for name in expr.type.fields or {}:
        if name not in declared:
            build.error(
                "unknown_setting",
                Msg("policy '{id}' has no setting '{name}'", id=consulted.get("id"), name=name),
                pointer,
                hint=did_you_mean(name, declared),
            )


def stage_consults(build: Build) -> None:
    """Compile each event's consult: its facts and settings expressions, its answer schema."""
    flow: ConsultBuild = build  # type: ignore[assignment]
    if not flow.event_specs:
        return
    scope = _scope(build)
    for name, spec in flow.event_specs.items():
        pointer = join_pointer(join_pointer("/flow/events", name), "decide")
        consulted = flow.consulted.get(spec["policy"])
        facts = _expression(build, spec["facts"], join_pointer(pointer, "facts"), scope, "facts")
        settings = None
        if "settings" in spec:
            where = join_pointer(pointer, "settings")
            settings = _expression(build, spec["settings"], where, scope, "settings")
            if settings is not None and consulted is not None:
                _check_settings(build, settings, consulted, where)
        if facts is None or consulted is None or build.failed:
            continue
        schema = answer_schema(build, name, spec)
        call = DecisionCall(
            spec["policy"],
            facts,
            settings,
            compile_facts_schema(schema, source=build.document.path),
            build.document.positions.key(pointer),
        )
        flow.events[name] = dataclasses.replace(flow.events[name], decide=call)
