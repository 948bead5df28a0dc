"""The JSON Schemas of what the service takes and answers, for its OpenAPI document.

Clients generate code from these (openapi-typescript, openapi-python-client), so two rules
hold throughout:

- Every schema a client meets has a name derived from ids only: a policy's id gives
  `OrderHoldsDecision`, `OrderHoldsFacts`, `OrderHoldsReason`; a data set's name gives
  `BlacklistEntry`. Titles never name anything: editing a title renames no class. The
  `title`s of embedded facts and entry schemas become `description`s for the same reason
  (generators name inline classes after `title`), and labels travel as `description` and
  `x-label`.
- What a policy declares types its answers: each outcome field with its type, enum and
  label (`outcome:`); the reasons with the policy's rule ids and codes as enums and the
  details its rules declare; a flow's states, events (one schema per event type, told apart
  by `type`), transitions and action codes as enums.

`Components` collects the named schemas while the document is written; `ref` returns the
`$ref` to one. The fixed ones (problem, texts, health, policy documents) are in `FIXED`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from engine.compile.model import CompiledPolicy, OutcomeField, Text, Value
from engine.core.jsonvalue import to_json_value
from engine.lang.types import Type
from engine.service.envelopes import DECISION_ID

Schema = dict[str, Any]
DECISION_ID_PATTERN = f"^{DECISION_ID.pattern}$"

# -- names -------------------------------------------------------------------------------


def camel(name: str) -> str:
    """`order-holds` -> `OrderHolds`, `blacklist_conditions` -> `BlacklistConditions`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.\s]+", name) if part)


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null: a type list for a plain type, anyOf for the rest."""
    if not schema or schema.get("type") == "null":
        return schema
    kind = schema.get("type")
    if isinstance(kind, str) and set(schema) <= {"type", "format", "description", "items"}:
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def labelled(schema: Schema, label: Text | None, refs: Iterable[str] = ()) -> Schema:
    """`schema` with the label as its description (and `x-label`) and the RULES ids cited."""
    out = dict(schema)
    if label is not None:
        out["description"] = f"{label.ja} ({label.en})" if label.en else label.ja
        out["x-label"] = label.to_dict()
    refs = list(refs)
    if refs:
        out["x-refs"] = refs
    return out


# -- types of the policy language -> JSON Schema -------------------------------------------

_SCALARS = {"string", "integer", "number", "boolean"}


def type_schema(of: Type) -> Schema:
    """The JSON form of a value of this type (numbers: Decimal answers are exact numbers)."""
    kind = of.kind
    if kind in ("any", "dataset"):
        return {}
    if kind == "null":
        return {"type": "null"}
    out: Schema
    if kind == "date":
        out = {"type": "string", "format": "date"}
    elif kind == "datetime":
        out = {"type": "string", "format": "date-time"}
    elif kind == "list":
        out = {"type": "array", "items": type_schema(of.item) if of.item else {}}
    elif kind == "record":
        out = {"type": "object"}
        if of.fields is not None:
            out["properties"] = {n: type_schema(t) for n, t in of.fields.items()}
    else:
        out = {"type": kind}
    if of.enum is not None:
        out["enum"] = to_json_value(list(of.enum))
    return nullable(out) if of.nullable else out


def constant_schema(value: Any) -> Schema:
    """The schema of what a constant is (a detail written as a literal in the policy)."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float | Decimal):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, Mapping):
        if "ja" in value and set(value) <= {"ja", "en"}:
            return ref("Text")  # a message written in the policy
        return {
            "type": "object",
            "required": sorted(value),
            "properties": {k: constant_schema(v) for k, v in value.items()},
        }
    if isinstance(value, list | tuple):
        items = _union([constant_schema(v) for v in value])
        return {"type": "array", "items": items}
    return {}


def value_schema(value: Value) -> Schema:
    return constant_schema(value.constant) if value.expr is None else type_schema(value.expr.type)


def _union(schemas: list[Schema]) -> Schema:
    """One schema that every one of `schemas` fits (an empty list: anything)."""
    unique: list[Schema] = []
    for schema in schemas:
        if schema not in unique:
            unique.append(schema)
    if not unique or {} in unique:
        return {}
    if len(unique) == 1:
        return unique[0]
    nulls = [s for s in unique if s == {"type": "null"}]
    rest = [s for s in unique if s != {"type": "null"}]
    joined = rest[0] if len(rest) == 1 else {"anyOf": rest}
    return nullable(joined) if nulls else joined


# -- the fixed components --------------------------------------------------------------

TEXT: Schema = {
    "type": "object",
    "description": "A text in Japanese, and in English where the policy gives it.",
    "required": ["ja"],
    "properties": {"ja": {"type": "string"}, "en": {"type": "string"}},
}
STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
INSTANT: Schema = {"type": "string", "format": "date-time"}
OPEN: Schema = {"type": "object", "additionalProperties": True}
# Who sends a flow event (engine/flow/actors.py); a transition's `by` names the roles.
ACTOR: Schema = {
    "type": "object",
    "description": "Who sends the event: an id, the roles they act in, a display name.",
    "additionalProperties": False,
    "required": ["id", "roles"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200},
        "roles": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
    },
}
POLICY_STATES = ["valid", "refused", "invalid"]
POLICY_REF: Schema = {
    "type": "object",
    "required": ["id", "revision"],
    "properties": {"id": {"type": "string"}, "revision": {"type": "string"}},
}

FIXED: dict[str, Schema] = {
    "Text": TEXT,
    "Location": {
        "type": "object",
        "description": "A place in a policy or data file (lines and columns from 1).",
        "required": ["file", "line", "col"],
        "properties": {
            "file": {"type": "string"},
            "line": {"type": "integer"},
            "col": {"type": "integer"},
        },
    },
    "Diagnostic": {
        "type": "object",
        "description": "One error found: where (a JSON pointer into the request, or a file "
        "location), what, and a hint when there is one.",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "pointer": {"type": "string", "description": "RFC 6901, into the request body"},
            "location": ref("Location"),
            "rule_id": {"type": "string"},
            "hint": {"type": "string"},
            "severity": {"type": "string", "enum": ["error", "warning"]},
        },
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details: every error the service answers.",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string", "description": "urn:kimari:problem:<code>"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "the stable machine code"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": ref("Diagnostic")},
            "hint": {"type": "string"},
            "retriable": {"type": "boolean", "description": "send the same request again"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Ready": {
        "type": "object",
        "required": ["status", "workers"],
        "properties": {
            "status": {"type": "string", "enum": ["ready"]},
            "workers": {"type": "integer", "minimum": 1},
        },
    },
    "PolicySummary": {
        "type": "object",
        "required": ["id", "kind", "title", "revision", "status", "errors"],
        "properties": {
            "id": {"type": "string"},
            "kind": nullable({"type": "string", "enum": ["decision", "flow"]}),
            "title": nullable(ref("Text")),
            "revision": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": POLICY_STATES},
            "errors": {"type": "integer", "description": "how many errors its file has"},
        },
    },
    "PolicyList": {
        "type": "object",
        "required": ["policies"],
        "properties": {"policies": {"type": "array", "items": ref("PolicySummary")}},
    },
    "PolicyDocument": {
        "type": "object",
        "description": "What is served of a policy, and why its file is not (if it is not).",
        "required": ["id", "path", "status", "errors", "error_text", "loaded_at", "refused_at"],
        "properties": {
            "id": {"type": "string"},
            "path": {"type": "string"},
            "status": {"type": "string", "enum": POLICY_STATES},
            "errors": {"type": "array", "items": ref("Diagnostic")},
            "error_text": STRINGS,
            "loaded_at": {"type": ["number", "null"], "description": "Unix time"},
            "refused_at": {"type": ["number", "null"], "description": "Unix time"},
            "kind": {"type": "string", "enum": ["decision", "flow"]},
            "title": ref("Text"),
            "revision": {"type": "string"},
            "hit_policy": {"type": "string"},
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "refs", "location"],
                    "properties": {
                        "id": {"type": "string"},
                        "refs": STRINGS,
                        "label": ref("Text"),
                        "location": ref("Location"),
                    },
                },
            },
            "settings": {"type": "object", "additionalProperties": OPEN},
            "outcome": {"type": "object", "additionalProperties": OPEN},
            "data": {
                "type": "object",
                "additionalProperties": nullable(
                    {
                        "type": "object",
                        "properties": {
                            "version": {"type": "string"},
                            "source": {"type": "string"},
                            "count": {"type": "integer"},
                        },
                    }
                ),
            },
            "derived": {"type": "array", "items": OPEN},
            "flow": {"type": "object", "description": "states, events and transitions"},
            "facts_schema": {"type": "object", "description": "the policy's facts JSON Schema"},
            "warnings": {"type": "array", "items": ref("Diagnostic")},
        },
    },
    "Explanation": {
        "type": "object",
        "description": "Why: each derived value, and each rule with its verdict and the first "
        "condition that failed, at file:line.",
        "required": ["derived", "rules"],
        "properties": {
            "derived": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "value", "expression", "location"],
                    "properties": {
                        "name": {"type": "string"},
                        "value": {},
                        "expression": {"type": "string"},
                        "location": ref("Location"),
                        "label": ref("Text"),
                    },
                },
            },
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["rule", "refs", "location", "verdict"],
                    "properties": {
                        "rule": {"type": "string"},
                        "refs": STRINGS,
                        "location": ref("Location"),
                        "label": ref("Text"),
                        "verdict": {"type": "string"},
                    },
                },
            },
        },
    },
    "Reason": {
        "type": "object",
        "description": "Why a rule applied; the policy's own reason schema lists its codes.",
        "required": ["rule", "refs", "code", "message"],
        "properties": {
            "rule": {"type": "string"},
            "refs": STRINGS,
            "code": {"type": "string"},
            "message": ref("Text"),
            "action": ref("Text"),
        },
    },
    "LoggedDecision": {
        "type": "object",
        "description": "A decision from the log, with its request and explanation. Its "
        "policy's decision schema (e.g. OrderHoldsDecision) types outcome and reasons.",
        "required": [
            "decision_id",
            "policy",
            "at",
            "outcome",
            "reasons",
            "fired",
            "logged_at",
            "request",
        ],
        "properties": {
            "decision_id": {"type": "string"},
            "policy": POLICY_REF,
            "at": INSTANT,
            "outcome": OPEN,
            "reasons": {"type": "array", "items": ref("Reason")},
            "fired": STRINGS,
            "backend": {"type": "string"},
            "settings": OPEN,
            "data": {"type": "object", "additionalProperties": {"type": "string"}},
            "elapsed_us": {"type": "number"},
            "logged_at": {"type": "integer", "description": "Unix time in milliseconds"},
            "request": OPEN,
            "explanation": ref("Explanation"),
        },
    },
    "DecisionPage": {
        "type": "object",
        "required": ["decisions", "next_cursor"],
        "properties": {
            "decisions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["decision_id", "policy", "at", "logged_at", "outcome", "fired"],
                    "properties": {
                        "decision_id": {"type": "string"},
                        "policy": POLICY_REF,
                        "at": INSTANT,
                        "logged_at": {"type": "integer"},
                        "outcome": OPEN,
                        "fired": STRINGS,
                        "latency_us": {"type": ["integer", "null"]},
                    },
                },
            },
            "next_cursor": {"type": ["string", "null"], "description": "the next page's"},
        },
    },
    "DataList": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "version", "source", "count", "policies", "errors"],
                    "properties": {
                        "name": {"type": "string"},
                        "label": ref("Text"),
                        "version": {"type": ["string", "null"]},
                        "source": {"type": ["string", "null"]},
                        "count": {"type": "integer"},
                        "updated_at": {"type": ["integer", "null"]},
                        "file": {"type": ["string", "null"]},
                        "schema": {"type": ["string", "null"]},
                        "key": {"type": ["string", "null"]},
                        "policies": STRINGS,
                        "errors": {"type": "integer"},
                    },
                },
            },
        },
    },
    "PolicySource": {
        "type": "object",
        "required": ["id", "revision", "path", "text"],
        "properties": {
            "id": {"type": "string"},
            "revision": {"type": "string"},
            "path": {"type": "string"},
            "text": {"type": "string"},
        },
    },
    "PolicyExamples": {
        "type": "object",
        "description": "Inputs to try the policy with: its YAML test cases and example files.",
        "required": ["policy"],
        "properties": {
            "policy": {
                "type": "object",
                "required": ["id", "kind"],
                "properties": {"id": {"type": "string"}, "kind": {"type": "string"}},
            },
        },
    },
    "PolicyStats": {
        "type": "object",
        "required": ["policy", "field", "days", "timezone", "outcomes", "series"],
        "properties": {
            "policy": POLICY_REF,
            "field": {"type": ["string", "null"]},
            "days": {"type": "integer"},
            "timezone": {"type": "string"},
            "outcomes": STRINGS,
            "series": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["day", "counts"],
                    "properties": {
                        "day": {"type": "string", "format": "date"},
                        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
            },
        },
    },
    "DataVersion": {
        "type": "object",
        "required": ["name", "version", "count", "generation"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "count": {"type": "integer"},
            "generation": {"type": "integer"},
        },
    },
    "DataVersions": {
        "type": "object",
        "description": "Every version of a data set the store keeps, newest first: the file "
        "defaults it has served and the replacements put through the API; and its changes, "
        "who made them and when.",
        "required": ["name", "current", "versions", "changes"],
        "properties": {
            "name": {"type": "string"},
            "current": {"type": ["string", "null"], "description": "the version served"},
            "versions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["version", "source", "created_at", "count", "current"],
                    "properties": {
                        "version": {"type": "string"},
                        "source": {"type": "string", "enum": ["file", "api"]},
                        "created_at": {
                            "type": "integer",
                            "description": "first stored, milliseconds since the epoch",
                        },
                        "count": {"type": "integer", "minimum": 0},
                        "current": {"type": "boolean"},
                    },
                },
            },
            "changes": {
                "type": "array",
                "description": "newest first: each replacement through the API and each "
                "return to the file default, with the token's principal",
                "items": {
                    "type": "object",
                    "required": ["action", "version", "principal", "at"],
                    "properties": {
                        "action": {"type": "string", "enum": ["replaced", "reset"]},
                        "version": {
                            "type": ["string", "null"],
                            "description": "the version made current; null for a reset",
                        },
                        "principal": {"type": "string"},
                        "at": {"type": "integer", "description": "milliseconds since the epoch"},
                    },
                },
            },
        },
    },
    "Whoami": {
        "type": "object",
        "description": "Who the token is: the principal the audit trail records, its scopes, "
        "and the roles a flow event's actor may claim with it ('*': any).",
        "required": ["principal", "scopes", "roles"],
        "properties": {
            "principal": {"type": "string"},
            "scopes": {
                "type": "array",
                "items": {"type": "string", "enum": ["decide", "admin", "publish"]},
            },
            "roles": STRINGS,
        },
    },
}


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
        properties.setdefault(name, _union(schemas))
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
        "required": ["policy", "entity", "moves"],
        "properties": {
            "policy": {"type": "string", "enum": [policy.id]},
            "entity": {"type": "string"},
            "moves": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["seq", "version", "event", "at", "transition", "state"],
                    "properties": {
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
        "properties": {"entries": {"type": "array", "items": entry}},
    }
    return camel_name
