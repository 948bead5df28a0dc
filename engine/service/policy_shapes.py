"""The JSON Schemas one policy or data set declares, named after its id, for the OpenAPI
document (the rules they follow, and the fixed schemas: engine/service/shapes.py).

`decision_components`, `flow_components` and `data_components` add a policy's or a data
set's named schemas to the document's `components` and return the prefix of their names
(`OrderHolds`: `OrderHoldsRequest`, `OrderHoldsDecision`, ...). Schemas written by users
(facts, data entries, event fields) are embedded by `embed`: their `$defs` become named
components too, and their titles descriptions.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.compile.model import CompiledPolicy, OutcomeField, Value
from engine.core.jsonvalue import to_json_value
from engine.service.shapes import (
    ACTOR,
    DECISION_ID_PATTERN,
    INSTANT,
    OPEN,
    POLICY_REF,
    STRINGS,
    Schema,
    camel,
    labelled,
    nullable,
    ref,
    type_schema,
    union,
    value_schema,
)

# -- what a policy declares --------------------------------------------------------------


def outcome_field_schema(spec: OutcomeField, policy: CompiledPolicy) -> Schema:
    """The type, enum and label of one outcome field, null allowed where it can be null."""
    declared = spec.type.with_nullable(False)
    computed = spec.computed.type.with_nullable(False) if spec.computed else None
    # a computed field may say more than its declaration (a list of texts, not of anything)
    more = computed is not None and computed.kind == declared.kind and declared.enum is None
    base = type_schema(computed if more and computed else declared)
    if spec.merge == "collect":
        base = {"type": "array", "items": base}
    schema = nullable(base) if _can_be_null(spec, policy) else base
    return labelled(schema, spec.label, spec.refs)


def _can_be_null(spec: OutcomeField, policy: CompiledPolicy) -> bool:
    if spec.computed is not None:  # computed after the rules: its expression decides
        return spec.computed.type.nullable or spec.computed.type.kind in ("null", "any")
    values = [spec.default] + [v for r in policy.rules for n, v in r.then if n == spec.name]
    return any(_null_value(v) for v in values)


def _null_value(value: Value) -> bool:
    if value.expr is None:
        return value.constant is None
    return value.expr.type.nullable or value.expr.type.kind in ("null", "any")


def reason_schema(policy: CompiledPolicy) -> Schema:
    """A reason of this policy: its rule ids and codes as enums, the details its rules
    declare (each typed by what its rules write there; optional, since each rule declares
    its own)."""
    rules = [r for r in policy.rules if r.reason is not None]
    details: dict[str, list[Schema]] = {}
    for rule in rules:
        assert rule.reason is not None
        for name, value in rule.reason.details:
            details.setdefault(name, []).append(value_schema(value))
    codes = sorted({r.reason.code for r in rules if r.reason is not None})
    properties: dict[str, Schema] = {
        "rule": {"type": "string", "enum": [r.id for r in rules] or [""]},
        "refs": STRINGS,
        "code": {"type": "string", "enum": codes or [""]},
        "message": ref("Text"),
        "action": ref("Text"),
    }
    for name, schemas in details.items():
        properties.setdefault(name, union(schemas))
    return {
        "type": "object",
        "description": f"Why a rule of '{policy.id}' applied: its code, message and details.",
        "additionalProperties": False,
        "required": ["rule", "refs", "code", "message"],
        "properties": properties,
    }


def settings_schema(policy: CompiledPolicy, *, effective: bool = False) -> Schema:
    """The settings a request may give (each optional), or those a decision used (all)."""
    properties: dict[str, Schema] = {}
    for name, setting in policy.settings.items():
        prop = type_schema(setting.type.with_nullable(False))
        if setting.enum is not None:
            prop["enum"] = to_json_value(list(setting.enum))
        if setting.minimum is not None:
            prop["minimum"] = to_json_value(setting.minimum)
        if setting.maximum is not None:
            prop["maximum"] = to_json_value(setting.maximum)
        if not effective:
            prop["default"] = to_json_value(setting.default)
        properties[name] = labelled(prop, setting.label, setting.refs)
    out: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if effective and properties:
        out["required"] = list(properties)
    return out


# -- schemas written by users (facts, data entries, flow events), embedded -------------------

_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_ONE = frozenset(
    {
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)
_DROPPED = frozenset({"$schema", "$id", "$defs", "definitions", "title"})


def embed(schema: Schema, name: str, components: dict[str, Schema]) -> Schema:
    """A copy of a user's JSON Schema to embed as component `name`: its `$defs` become
    components `<name><Def>`, its titles descriptions. Returns the `$ref` to it."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    names = {d: f"{name}{camel(d)}" for d in defs}

    def fix(node: Any) -> Any:
        if not isinstance(node, dict):
            return copy.deepcopy(node)
        out: Schema = {}
        for key, value in node.items():
            if key in _DROPPED:
                continue
            if key == "$ref" and isinstance(value, str):
                local = value.rsplit("/", 1)[-1]
                out[key] = f"#/components/schemas/{names[local]}" if local in names else value
            elif key in _SCHEMA_MAPS and isinstance(value, dict):
                out[key] = {k: fix(v) for k, v in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [fix(v) for v in value]
            elif key in _SCHEMA_ONE:
                out[key] = fix(value)
            else:
                out[key] = copy.deepcopy(value)
        title = node.get("title")
        if isinstance(title, str) and "description" not in out:
            out["description"] = title
        return out

    for local, sub in defs.items():
        components[names[local]] = fix(sub)
    components[name] = fix(schema)
    return ref(name)


# -- one policy's components -------------------------------------------------------------


def decision_components(policy: CompiledPolicy, components: dict[str, Schema]) -> str:
    """`<Name>Facts`, `Request`, `Settings`, `Outcome`, `Reason`, `Decision` and the batch
    schemas of a decision policy; returns `<Name>`."""
    name = camel(policy.id)
    facts = embed(dict(policy.facts.schema), f"{name}Facts", components)
    components[f"{name}Settings"] = settings_schema(policy)
    components[f"{name}Request"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["facts"],
        "properties": {
            "facts": facts,
            "at": {**INSTANT, "description": "the instant to decide at (default: now)"},
            "settings": ref(f"{name}Settings"),
            "decision_id": {"type": "string", "pattern": DECISION_ID_PATTERN},
        },
    }
    components[f"{name}Outcome"] = {
        "type": "object",
        "description": f"The outcome fields of '{policy.id}', as its `outcome:` declares them.",
        "additionalProperties": False,
        "required": list(policy.outcome),
        "properties": {n: outcome_field_schema(s, policy) for n, s in policy.outcome.items()},
    }
    components[f"{name}Reason"] = reason_schema(policy)
    components[f"{name}AppliedSettings"] = settings_schema(policy, effective=True)
    components[f"{name}Decision"] = {
        "type": "object",
        "description": f"A decision of '{policy.id}' ({policy.title.en or policy.title.ja}).",
        "required": [
            "decision_id",
            "policy",
            "at",
            "outcome",
            "reasons",
            "fired",
            "backend",
            "settings",
            "data",
            "elapsed_us",
        ],
        "properties": {
            "decision_id": {"type": "string"},
            "policy": {
                **POLICY_REF,
                "properties": {
                    "id": {"type": "string", "enum": [policy.id]},
                    "revision": {"type": "string"},
                },
            },
            "at": INSTANT,
            "outcome": ref(f"{name}Outcome"),
            "reasons": {"type": "array", "items": ref(f"{name}Reason")},
            "fired": {
                "type": "array",
                "items": {"type": "string", "enum": [r.id for r in policy.rules]},
            },
            "backend": {"type": "string", "enum": ["durable", "python"]},
            "settings": ref(f"{name}AppliedSettings"),
            "data": {
                "type": "object",
                "description": "the version of each reference data set it read",
                "additionalProperties": False,
                "properties": {d: {"type": "string"} for d in sorted(policy.datasets)},
            },
            "elapsed_us": {"type": "number"},
            "explanation": ref("Explanation"),
        },
    }
    components[f"{name}BatchResult"] = {
        "type": "object",
        "description": "One item's result: its decision (status 200) or its problem.",
        "required": ["status"],
        "properties": {
            "status": {"type": "integer"},
            "decision": ref(f"{name}Decision"),
            "problem": ref("Problem"),
        },
    }
    components[f"{name}BatchResults"] = {
        "type": "object",
        "required": ["policy", "results"],
        "properties": {
            "policy": {"type": "string", "enum": [policy.id]},
            "results": {"type": "array", "items": ref(f"{name}BatchResult")},
        },
    }
    return name


def flow_components(policy: CompiledPolicy, components: dict[str, Schema]) -> str:
    """`<Name>State` (enum), one `<Name><Event>Event` per event type and `<Name>Event` (one
    of them, by `type`), the event and import requests, the move, the entity and its
    history; returns `<Name>`."""
    from engine.flow.model import EVENT_TYPE, flow_of

    flow = flow_of(policy)
    name = camel(policy.id)
    # a flow's facts schema describes its entities' stored facts (docs/flows.md)
    facts = embed(dict(flow.entity.schema), f"{name}Facts", components)
    components[f"{name}State"] = {
        "type": "string",
        "description": f"A state of '{policy.id}'.",
        "enum": list(flow.states),
    }
    mapping = {}
    for event_name, event in flow.events.items():
        component = f"{name}{camel(event_name)}Event"
        embed(dict(event.validator.schema), component, components)
        components[component] = labelled(components[component], event.label, event.refs)
        mapping[event_name] = f"#/components/schemas/{component}"
    components[f"{name}Event"] = {
        "description": f"An event of '{policy.id}': its `{EVENT_TYPE}` and that type's fields.",
        "oneOf": [{"$ref": target} for target in mapping.values()],
        "discriminator": {"propertyName": EVENT_TYPE, "mapping": mapping},
    }
    components[f"{name}Settings"] = settings_schema(policy)
    components["Actor"] = ACTOR
    components[f"{name}EventRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["event", "actor"],
        "properties": {
            "event": ref(f"{name}Event"),
            "actor": {
                **ref("Actor"),
                "description": "Roles of this flow: " + (", ".join(flow.roles) or "none declared"),
            },
            "at": INSTANT,
            "settings": ref(f"{name}Settings"),
            "event_id": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    }
    components[f"{name}ImportRequest"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["state"],
        "properties": {"state": ref(f"{name}State"), "facts": facts},
    }
    state_ref = {
        "type": "object",
        "required": ["id", "label"],
        "properties": {"id": ref(f"{name}State"), "label": ref("Text")},
    }
    action_codes = sorted({a.code for t in flow.transitions for a in t.actions})
    action = {
        "type": "object",
        "description": "A follow-up the move requires.",
        "required": ["code", "text"],
        "properties": {
            "code": {"type": "string", "enum": action_codes or [""]},
            "text": ref("Text"),
            "to": STRINGS,
            "details": OPEN,
        },
    }
    components[f"{name}Action"] = action
    events = {"type": "string", "enum": list(flow.events)}
    transitions = {"type": "string", "enum": [t.id for t in flow.transitions]}
    components[f"{name}Move"] = _move(name, policy.id, state_ref, transitions, facts)
    components[f"{name}Entity"] = {
        "type": "object",
        "description": f"Where an entity of '{policy.id}' stands.",
        "required": ["policy", "entity", "state", "facts", "allowed_events"],
        "properties": {
            "policy": POLICY_REF,
            "entity": {
                "type": "object",
                "required": ["id", "version", "exists"],
                "properties": {
                    "id": {"type": "string"},
                    "version": {"type": "integer"},
                    "exists": {"type": "boolean"},
                },
            },
            "state": {
                "type": "object",
                "required": ["id", "label", "final"],
                "properties": {
                    "id": ref(f"{name}State"),
                    "label": ref("Text"),
                    "final": {"type": "boolean"},
                    "note": ref("Text"),
                },
            },
            "facts": facts,
            "allowed_events": {"type": "array", "items": events},
            "allowed_roles": {
                "type": "object",
                "description": "for each allowed event, the roles that may send it (null: anyone)",
                "additionalProperties": nullable(STRINGS),
            },
            "created_at": nullable(INSTANT),
            "last_at": nullable(INSTANT),
            "last_event": nullable(events),
            "state_since": nullable(INSTANT),
        },
    }
    components[f"{name}History"] = {
        "type": "object",
        "description": "A page of the history: `next_after` is the next page's `?after=`.",
        "required": ["policy", "entity", "moves"],
        "properties": {
            "policy": {"type": "string", "enum": [policy.id]},
            "entity": {"type": "string"},
            "next_after": {"type": ["integer", "null"], "minimum": 0},
            "moves": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["seq", "version", "event", "at", "transition", "state"],
                    "properties": {
                        "kind": {
                            "type": "string",
                            "enum": ["import", "move"],
                            "description": "import: version 0, the entity as imported "
                            "(no event, no transition, no state before) and its principal",
                        },
                        "principal": {"type": ["string", "null"]},
                        "seq": {"type": "integer"},
                        "version": {"type": "integer"},
                        "event_id": {"type": ["string", "null"]},
                        "event": OPEN,
                        "actor": nullable(ref("Actor")),
                        "at": INSTANT,
                        "transition": {"type": "string"},
                        "state": {
                            "type": "object",
                            "required": ["before", "after"],
                            "properties": {
                                "before": {"type": "string"},
                                "after": {"type": "string"},
                            },
                        },
                        "recorded": OPEN,
                        "facts": OPEN,
                        "actions": {"type": "array", "items": OPEN},
                        "message": nullable(ref("Text")),
                        "settings": OPEN,
                        "revision": {"type": "string"},
                        "decision_id": {"type": ["string", "null"]},
                        "stored_at": {"type": "string"},
                    },
                },
            },
            "refusals": {"type": "array", "items": OPEN},
        },
    }
    return name


def _move(
    name: str, policy_id: str, state_ref: Schema, transitions: Schema, facts: Schema
) -> Schema:
    return {
        "type": "object",
        "description": f"A move of an entity of '{policy_id}', stored.",
        "required": ["entity", "decision_id", "policy", "at", "event", "allowed", "state"],
        "properties": {
            "entity": {
                "type": "object",
                "required": ["id", "version"],
                "properties": {"id": {"type": "string"}, "version": {"type": "integer"}},
            },
            "decision_id": {"type": "string"},
            "policy": POLICY_REF,
            "at": INSTANT,
            "event": OPEN,
            "actor": nullable(ref("Actor")),
            "allowed": {"type": "boolean"},
            "state": {
                "type": "object",
                "required": ["before", "after"],
                "properties": {"before": state_ref, "after": state_ref},
            },
            "transition": nullable(
                {
                    "type": "object",
                    "required": ["id"],
                    "properties": {"id": transitions, "refs": STRINGS, "label": ref("Text")},
                }
            ),
            "actions": {"type": "array", "items": ref(f"{name}Action")},
            "message": nullable(ref("Text")),
            "recorded": OPEN,
            "facts": facts,
            "refusal": nullable(OPEN),
            "elapsed_us": {"type": "number"},
            "replayed": {"type": "boolean"},
        },
    }


def data_components(name: str, entry_schema: Schema, components: dict[str, Schema]) -> str:
    """`<Name>Entry` (the data set's entry schema), `<Name>DataSet` and `<Name>Entries`
    (the body of a replacement); returns `<Name>`."""
    camel_name = camel(name)
    entry = embed(entry_schema, f"{camel_name}Entry", components)
    components[f"{camel_name}DataSet"] = {
        "type": "object",
        "description": f"The reference data set '{name}' as served.",
        "required": ["name", "version", "source", "count", "errors", "entries"],
        "properties": {
            "name": {"type": "string", "enum": [name]},
            "version": {"type": ["string", "null"]},
            "source": nullable({"type": "string", "enum": ["file", "api", "empty"]}),
            "updated_at": {"type": ["integer", "null"], "description": "Unix time in ms"},
            "count": {"type": "integer"},
            "errors": {"type": "array", "items": ref("Diagnostic")},
            "entries": {"type": "array", "items": entry},
        },
    }
    components[f"{camel_name}Entries"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entries"],
        "properties": {
            "entries": {"type": "array", "items": entry},
            "allow_empty": {
                "type": "boolean",
                "default": False,
                "description": "an empty `entries` empties the set only with this true "
                "(else 422 data_empty)",
            },
        },
    }
    return camel_name
