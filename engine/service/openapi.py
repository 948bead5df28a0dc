"""Documents about the policies being served: one policy's description, and the OpenAPI.

The OpenAPI document (3.1, whose schemas are JSON Schema 2020-12) writes one operation per
row of the route table (engine/service/routes.py), so it lists exactly what the front
serves. Rows marked `each` are written once per policy or data set: one decision path per
policy, `/v1/decisions/<id>` and `/v1/decisions/<id>:batch`, whose request schema embeds
that policy's facts schema (its `$defs` hoisted into `components.schemas`); the event,
entity and history paths of each flow; and one data path per reference data set, whose
PUT body embeds the entry schema. Operation ids, summaries, scopes (security) and query
and header parameters come from the table; request bodies and answers from the
operation's entry in `_DETAILS`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.jsonvalue import to_json_value
from engine.project.registry import PolicyStatus, Snapshot
from engine.service.envelopes import DECISION_ID
from engine.service.ipc import Op
from engine.service.routes import ADMIN, ROUTES, Route

PROBLEM = {"$ref": "#/components/schemas/Problem"}
_DROP = ("$schema", "$id", "$defs")


def _setting(setting: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": setting.type.kind, "default": to_json_value(setting.default)}
    if setting.enum is not None:
        out["enum"] = to_json_value(list(setting.enum))
    if setting.minimum is not None:
        out["minimum"] = to_json_value(setting.minimum)
    if setting.maximum is not None:
        out["maximum"] = to_json_value(setting.maximum)
    if setting.label is not None:
        out["label"] = setting.label.to_dict()
    if setting.refs:
        out["refs"] = list(setting.refs)
    return out


def policy_document(status: PolicyStatus, snapshot: Snapshot) -> dict[str, Any]:
    """GET /v1/policies/{id}: what is served, and why the file on disk is not (if it is not)."""
    policy = status.policy
    out: dict[str, Any] = {
        "id": status.id,
        "path": status.path,
        "status": status.state,
        "errors": [d.to_dict() for d in status.errors],
        "error_text": [d.render() for d in status.errors],
        "loaded_at": status.loaded_at or None,
        "refused_at": status.refused_at,
    }
    if policy is None:
        return out
    out.update(
        {
            "kind": policy.kind,
            "title": policy.title.to_dict(),
            "revision": policy.revision,
            "hit_policy": policy.hit_policy,
            "rules": [_rule(rule) for rule in policy.rules],
            "derived": [
                {
                    "name": d.name,
                    "expression": d.expr.text,
                    "location": d.location.to_dict(),
                    **({"label": d.label.to_dict()} if d.label else {}),
                }
                for d in policy.derived
            ],
            "settings": {name: _setting(s) for name, s in policy.settings.items()},
            "outcome": {
                name: {
                    "type": spec.type.kind,
                    "merge": spec.merge,
                    **({"enum": to_json_value(list(spec.type.enum))} if spec.type.enum else {}),
                }
                for name, spec in policy.outcome.items()
            },
            "data": {name: _data_info(snapshot, name) for name in sorted(policy.datasets)},
            "facts_schema": copy.deepcopy(dict(policy.facts.schema)),
            "warnings": [d.to_dict() for d in policy.warnings],
        }
    )
    if policy.kind == "flow":
        out["flow"] = _flow(policy)
    return out


def _rule(rule: Any) -> dict[str, Any]:
    """A rule as the console shows it: its conditions as written, each with its line, and
    its reason's texts as written (holes such as {order.total} unfilled)."""
    out: dict[str, Any] = {
        "id": rule.id,
        "refs": list(rule.refs),
        **({"label": rule.label.to_dict()} if rule.label else {}),
        "location": rule.location.to_dict(),
        "conditions": [
            {"text": c.text, "location": c.location().to_dict()} for c in rule.conditions
        ],
    }
    reason = rule.reason
    if reason is not None:
        out["reason"] = {"code": reason.code, "message": _texts(reason.message)}
        if reason.action is not None:
            out["reason"]["action"] = _texts(reason.action)
    return out


def _texts(message: Any) -> dict[str, str]:
    out = {"ja": message.ja.text}
    if message.en is not None:
        out["en"] = message.en.text
    return out


def _flow(policy: CompiledPolicy) -> dict[str, Any]:
    """States, events and transitions, for drawing the flow (the console's diagram)."""
    from engine.flow.model import flow_of

    flow = flow_of(policy)
    return {
        "initial": flow.initial,
        "states": [
            {"id": s.id, "label": s.label.to_dict(), "final": s.final, "refs": list(s.refs)}
            for s in flow.states.values()
        ],
        "events": [
            {"name": e.name, "label": e.label.to_dict(), "fields": to_json_value(dict(e.fields))}
            for e in flow.events.values()
        ],
        "transitions": [
            {
                "id": t.id,
                "from": list(t.sources),
                "event": t.event,
                "to": t.target,
                "refs": list(t.refs),
                **({"label": t.label.to_dict()} if t.label else {}),
            }
            for t in flow.transitions
        ],
    }


def _data_info(snapshot: Snapshot, name: str) -> dict[str, Any] | None:
    info = snapshot.data_info.get(name)
    if info is None:
        return None
    return {"version": info.version, "source": info.source, "count": info.count}


def _hoist(schema: Any, prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """A copy of `schema` whose `#/$defs/X` refs point at components `<prefix>.X`."""
    schema = copy.deepcopy(schema)
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                    out[key] = f"#/components/schemas/{prefix}.{value[len('#/$defs/') :]}"
                elif key not in _DROP:
                    out[key] = fix(value)
            return out
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    for name, sub in defs.items():
        components[f"{prefix}.{name}"] = fix(sub)
    return fix(schema)  # type: ignore[no-any-return]


def _settings_schema(policy: CompiledPolicy) -> dict[str, Any]:
    types = {"boolean": "boolean", "integer": "integer", "number": "number", "string": "string"}
    properties: dict[str, Any] = {}
    for name, setting in policy.settings.items():
        prop: dict[str, Any] = {}
        kind = setting.type.kind
        if kind in types:
            prop["type"] = types[kind]
        elif kind == "date":
            prop.update(type="string", format="date")
        if setting.enum is not None:
            prop["enum"] = to_json_value(list(setting.enum))
        properties[name] = prop
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {
            "description": "problem",
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
        for s in statuses
    }


def _common() -> dict[str, Any]:
    """The problems any operation may answer (fresh: the document is the caller's to change)."""
    return _problems(400, 401, 403, 404, 413, 422, 503)


ID_PATTERN = f"^{DECISION_ID.pattern}$"
# the schema of a path parameter or a header, where more is known than "a text"
PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "entity_id": {"type": "string", "minLength": 1, "maxLength": 200},
    "Idempotency-Key": {"type": "string", "pattern": ID_PATTERN},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "days": {"type": "integer", "minimum": 1, "maximum": 366},
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
}
COMPONENTS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Decision": {
        "type": "object",
        "required": ["decision_id", "policy", "at", "outcome", "reasons", "fired"],
        "properties": {
            "decision_id": {"type": "string"},
            "policy": {
                "type": "object",
                "properties": {"id": {"type": "string"}, "revision": {"type": "string"}},
            },
            "at": {"type": "string", "format": "date-time"},
            "outcome": {"type": "object"},
            "reasons": {"type": "array", "items": {"type": "object"}},
            "fired": {"type": "array", "items": {"type": "string"}},
            "settings": {"type": "object"},
            "data": {"type": "object"},
            "explanation": {"type": "object"},
        },
    },
}


@dataclass(frozen=True, slots=True)
class _Target:
    """What one documented operation is about: a policy or a data set (or nothing)."""

    values: dict[str, Any]  # what fills the route's "{...}" in path, operationId and summary
    id: str = ""  # the policy's id or the data set's name
    policy: CompiledPolicy | None = None
    spec: Any = None  # the data set's DatasetSpec


def openapi_document(snapshot: Snapshot, *, max_batch: int) -> dict[str, Any]:
    """One operation per row of the route table; the rows marked `each` once per decision
    policy, flow policy or data set, with that one's schemas."""
    components = copy.deepcopy(COMPONENTS)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        if not route.api:  # the console's pages and files
            continue
        for target in _targets(route, snapshot, max_batch):
            path = route.path
            if route.each is not None:
                path = path.replace(f"{{{route.params[0]}}}", target.id)
            operation = _operation(route, target, components, max_batch)
            paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kimari decision service",
            "version": "1",
            "description": "Decisions from YAML policies. Errors are RFC 9457 problem+json.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _targets(route: Route, snapshot: Snapshot, max_batch: int) -> list[_Target]:
    if route.each is None:
        return [_Target({})]
    if route.each == "data":
        name = route.params[0]
        specs = snapshot.policy_set.specs
        return [_Target({name: n}, n, spec=spec) for n, spec in sorted(specs.items())]
    name = route.params[0]
    return [
        _Target(
            {name: pid, "title": policy.title.en or policy.title.ja, "max_batch": max_batch},
            pid,
            policy,
        )
        for pid, policy in sorted(snapshot.policies.items())
        if policy.kind == route.each
    ]


def _operation(
    route: Route, target: _Target, components: dict[str, Any], max_batch: int
) -> dict[str, Any]:
    summary = route.summary.format(**target.values)
    out: dict[str, Any] = {
        "operationId": route.operation_id.format(**target.values),
        "summary": f"{summary} (admin)" if route.scope == ADMIN else summary,
    }
    if route.scope is not None:
        out["security"] = [{"bearer": []}]
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": _parameter_schema(p)}
        for p in route.params
        if p not in target.values
    ]
    parameters += [{"name": f, "in": "query", "schema": {"type": "boolean"}} for f in route.flags]
    parameters += [{"name": q, "in": "query", "schema": _parameter_schema(q)} for q in route.query]
    parameters += [
        {"name": h, "in": "header", "schema": _parameter_schema(h)} for h in route.headers
    ]
    if parameters:
        out["parameters"] = parameters
    details = _DETAILS.get(route.op) if route.op is not None else None
    out.update(details(target, components, max_batch) if details else _ok())
    return out


def _parameter_schema(name: str) -> dict[str, Any]:
    return dict(PARAMETER_SCHEMAS.get(name, {"type": "string"}))


def _ok() -> dict[str, Any]:
    return {"responses": {"200": {"description": "ok"}, **_common()}}


def _answers(description: str, status: str = "200", *problems: int) -> dict[str, Any]:
    return {
        "responses": {
            status: {"description": description, **_json({"type": "object"})},
            **_common(),
            **_problems(*problems),
        }
    }


# -- request bodies and answers, per worker operation ------------------------------------
def _decision_request(target: _Target, components: dict[str, Any]) -> dict[str, Any]:
    """A reference to the policy's request schema (in components, written on first use)."""
    policy = target.policy
    assert policy is not None
    name = f"{policy.id}.Request"
    if name not in components:
        facts = _hoist(dict(policy.facts.schema), f"{policy.id}.facts", components)
        components[name] = {
            "type": "object",
            "additionalProperties": False,
            "required": ["facts"],
            "properties": {
                "facts": facts,
                "at": {"type": "string", "format": "date-time"},
                "settings": _settings_schema(policy),
                "decision_id": {"type": "string", "pattern": ID_PATTERN},
            },
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _decide(target: _Target, components: dict[str, Any], _max_batch: int) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, **_json(_decision_request(target, components))},
        "responses": {
            "200": {
                "description": "the decision",
                **_json({"$ref": "#/components/schemas/Decision"}),
            },
            **_common(),
            **_problems(409, 500),
        },
    }


def _batch(target: _Target, components: dict[str, Any], max_batch: int) -> dict[str, Any]:
    items = {"type": "array", "maxItems": max_batch, "items": _decision_request(target, components)}
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["items"],
        "properties": {"items": items},
    }
    return {"requestBody": {"required": True, **_json(request)}, **_answers("one result per item")}


def _flow_event(target: _Target, _components: dict[str, Any], _max_batch: int) -> dict[str, Any]:
    from engine.flow.model import EVENT_TYPE, flow_of

    policy = target.policy
    assert policy is not None
    event = {
        "type": "object",
        "required": [EVENT_TYPE],
        "properties": {EVENT_TYPE: {"type": "string", "enum": sorted(flow_of(policy).events)}},
        "description": "The event: its type and the fields that event requires.",
    }
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["event"],
        "properties": {
            "event": event,
            "at": {"type": "string", "format": "date-time"},
            "settings": _settings_schema(policy),
            "event_id": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    }
    return {
        "requestBody": {"required": True, **_json(request)},
        **_answers("the move, stored", "200", 409, 500),
    }


def _flow_import(target: _Target, _components: dict[str, Any], _max_batch: int) -> dict[str, Any]:
    from engine.flow.model import flow_of

    assert target.policy is not None
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["state"],
        "properties": {
            "state": {"type": "string", "enum": sorted(flow_of(target.policy).states)},
            "facts": {"type": "object"},
        },
    }
    return {
        "requestBody": {"required": True, **_json(request)},
        **_answers("the entity, created", "201", 409),
    }


def _put_data(target: _Target, components: dict[str, Any], _max_batch: int) -> dict[str, Any]:
    entry = _hoist(dict(target.spec.validator.schema), f"data.{target.id}", components)
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entries"],
        "properties": {"entries": {"type": "array", "items": entry}},
    }
    return {"requestBody": {"required": True, **_json(request)}, **_answers("the new version")}


_DETAILS: dict[Op, Callable[[_Target, dict[str, Any], int], dict[str, Any]]] = {
    Op.DECIDE: _decide,
    Op.BATCH: _batch,
    Op.FLOW_EVENT: _flow_event,
    Op.FLOW_IMPORT: _flow_import,
    Op.GET_DATA: lambda *_: _answers("the data set"),
    Op.PUT_DATA: _put_data,
    Op.DELETE_DATA: lambda *_: _answers("the data set now"),
}
