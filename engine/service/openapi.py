"""Documents about the policies being served: one policy's description, and the OpenAPI.

The OpenAPI document (3.1, whose schemas are JSON Schema 2020-12) has one decision path per
policy, `/v1/decisions/<id>` and `/v1/decisions/<id>:batch`, whose request schema embeds
that policy's facts schema (its `$defs` hoisted into `components.schemas`), and one data
path per reference data set, whose PUT body embeds the entry schema.
"""

from __future__ import annotations

import copy
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.jsonvalue import to_json_value
from engine.project.registry import PolicyStatus, Snapshot

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
            "rules": [
                {
                    "id": rule.id,
                    "refs": list(rule.refs),
                    **({"label": rule.label.to_dict()} if rule.label else {}),
                    "location": rule.location.to_dict(),
                }
                for rule in policy.rules
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
    return out


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


def openapi_document(snapshot: Snapshot, *, max_batch: int) -> dict[str, Any]:
    components: dict[str, Any] = {
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
    auth = [{"bearer": []}]
    paths: dict[str, Any] = {}
    common = _problems(400, 401, 403, 404, 413, 422, 503)
    for pid, policy in sorted(snapshot.policies.items()):
        if policy.kind != "decision":
            continue
        facts = _hoist(dict(policy.facts.schema), f"{pid}.facts", components)
        request = {
            "type": "object",
            "additionalProperties": False,
            "required": ["facts"],
            "properties": {
                "facts": facts,
                "at": {"type": "string", "format": "date-time"},
                "settings": _settings_schema(policy),
                "decision_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"},
            },
        }
        components[f"{pid}.Request"] = request
        ref = {"$ref": f"#/components/schemas/{pid}.Request"}
        title = policy.title.en or policy.title.ja
        paths[f"/v1/decisions/{pid}"] = {
            "post": {
                "operationId": f"decide-{pid}",
                "summary": f"Decide with '{pid}' ({title})",
                "security": auth,
                "parameters": [
                    {"name": "explain", "in": "query", "schema": {"type": "boolean"}},
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "schema": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
                        },
                    },
                ],
                "requestBody": {"required": True, **_json(ref)},
                "responses": {
                    "200": {
                        "description": "the decision",
                        **_json({"$ref": "#/components/schemas/Decision"}),
                    },
                    **common,
                    **_problems(409, 500),
                },
            }
        }
        paths[f"/v1/decisions/{pid}:batch"] = {
            "post": {
                "operationId": f"decide-{pid}-batch",
                "summary": f"Decide up to {max_batch} cases with '{pid}'",
                "security": auth,
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "maxItems": max_batch, "items": ref}
                            },
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "one result per item", **_json({"type": "object"})},
                    **common,
                },
            }
        }
    for pid, policy in sorted(snapshot.policies.items()):
        if policy.kind == "flow":
            paths.update(_flow_paths(pid, policy, auth, common))
    for name, spec in sorted(snapshot.policy_set.specs.items()):
        entry = _hoist(dict(spec.validator.schema), f"data.{name}", components)
        paths[f"/v1/data/{name}"] = {
            "get": {
                "operationId": f"get-data-{name}",
                "summary": f"Read the reference data set '{name}'",
                "security": auth,
                "responses": {
                    "200": {"description": "the data set", **_json({"type": "object"})},
                    **common,
                },
            },
            "put": {
                "operationId": f"put-data-{name}",
                "summary": f"Replace the reference data set '{name}' (admin)",
                "security": auth,
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["entries"],
                            "properties": {"entries": {"type": "array", "items": entry}},
                        }
                    ),
                },
                "responses": {
                    "200": {"description": "the new version", **_json({"type": "object"})},
                    **common,
                },
            },
            "delete": {
                "operationId": f"reset-data-{name}",
                "summary": f"Serve the file default of '{name}' again (admin)",
                "security": auth,
                "responses": {
                    "200": {"description": "the data set now", **_json({"type": "object"})},
                    **common,
                },
            },
        }
    paths.update(_static_paths(auth, common))
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


def _flow_paths(
    pid: str, policy: CompiledPolicy, auth: list[Any], common: dict[str, Any]
) -> dict[str, Any]:
    """The event, entity and history endpoints of one flow policy."""
    from engine.flow.model import EVENT_TYPE, flow_of

    flow = flow_of(policy)
    entity = [
        {
            "name": "entity_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        }
    ]
    event = {
        "type": "object",
        "required": [EVENT_TYPE],
        "properties": {EVENT_TYPE: {"type": "string", "enum": sorted(flow.events)}},
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
    title = policy.title.en or policy.title.ja

    def get(op: str, summary: str, params: list[Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": op,
                "summary": summary,
                "security": auth,
                "parameters": params,
                "responses": {"200": {"description": "ok"}, **common},
            }
        }

    refusals = [{"name": "refusals", "in": "query", "schema": {"type": "boolean"}}]
    return {
        f"/v1/flows/{pid}/{{entity_id}}/events": {
            "post": {
                "operationId": f"flow-event-{pid}",
                "summary": f"Apply an event to an entity of '{pid}' ({title})",
                "security": auth,
                "parameters": entity,
                "requestBody": {"required": True, **_json(request)},
                "responses": {
                    "200": {"description": "the move, stored", **_json({"type": "object"})},
                    **common,
                    **_problems(409, 500),
                },
            }
        },
        f"/v1/flows/{pid}/{{entity_id}}": {
            **get(f"flow-entity-{pid}", f"Where an entity of '{pid}' stands", entity),
            "put": {
                "operationId": f"flow-import-{pid}",
                "summary": f"Import an entity of '{pid}' under way elsewhere (admin)",
                "security": auth,
                "parameters": entity,
                "requestBody": {
                    "required": True,
                    **_json(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["state"],
                            "properties": {
                                "state": {"type": "string", "enum": sorted(flow.states)},
                                "facts": {"type": "object"},
                            },
                        }
                    ),
                },
                "responses": {
                    "201": {"description": "the entity, created", **_json({"type": "object"})},
                    **common,
                    **_problems(409),
                },
            },
        },
        f"/v1/flows/{pid}/{{entity_id}}/history": get(
            f"flow-history-{pid}", f"The moves of an entity of '{pid}'", entity + refusals
        ),
    }


def _static_paths(auth: list[Any], common: dict[str, Any]) -> dict[str, Any]:
    def get(
        op: str, summary: str, secured: bool = True, params: list[Any] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "operationId": op,
            "summary": summary,
            "responses": {"200": {"description": "ok"}, **common},
        }
        if secured:
            out["security"] = auth
        if params:
            out["parameters"] = params
        return {"get": out}

    def param(name: str) -> list[Any]:
        return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]

    return {
        "/v1/decisions/{decision_id}": get(
            "get-decision", "A logged decision, with its explanation", params=param("decision_id")
        ),
        "/v1/policies": get("list-policies", "The policies served"),
        "/v1/policies/{policy_id}": get(
            "get-policy",
            "A policy: revision, rules, settings, facts schema, status",
            params=param("policy_id"),
        ),
        "/healthz": get("healthz", "The front process is alive", secured=False),
        "/readyz": get("readyz", "A worker is ready to decide", secured=False),
        "/metrics": get("metrics", "Prometheus metrics"),
    }
