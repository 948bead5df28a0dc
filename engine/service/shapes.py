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

`ref` returns the `$ref` to a named schema. The fixed ones (problem, texts, health, policy
documents) are in `FIXED` here; the ones a policy or data set declares are written by
engine/service/policy_shapes.py with the helpers of this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from engine.compile.model import Text, Value
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
        items = union([constant_schema(v) for v in value])
        return {"type": "array", "items": items}
    return {}


def value_schema(value: Value) -> Schema:
    return constant_schema(value.constant) if value.expr is None else type_schema(value.expr.type)


def union(schemas: list[Schema]) -> Schema:
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
        "properties": {
            "policies": {"type": "array", "items": ref("PolicySummary")},
            "unpublished": {
                "type": "array",
                "description": "policy files of the folder the store has not published, so "
                "not served (store mode)",
                "items": {
                    "type": "object",
                    "required": ["id", "file"],
                    "properties": {"id": {"type": "string"}, "file": {"type": "string"}},
                },
            },
        },
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
    "LoggedFlowDecision": {
        "type": "object",
        "description": "A flow's decision, by the `decision_id` its event's answer gave: the "
        "move as the entity's history shows it, or the refusal (`allowed` false); `history` "
        "is the path of the entity's history. By the id of the decision the event consulted "
        "(its `decision` field), the same, with that decision as `consulted` (else null).",
        "required": [
            "decision_id",
            "kind",
            "policy",
            "entity",
            "at",
            "allowed",
            "move",
            "refusal",
            "consulted",
            "history",
        ],
        "properties": {
            "decision_id": {"type": "string"},
            "kind": {"type": "string", "enum": ["flow"]},
            "policy": POLICY_REF,
            "entity": {"type": "string"},
            "at": INSTANT,
            "allowed": {"type": "boolean"},
            "move": nullable(OPEN),
            "refusal": nullable(OPEN),
            "consulted": nullable(OPEN),
            "history": {"type": "string"},
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
        "description": "The versions of a data set the store keeps, newest first: the file "
        "defaults it has served and the replacements put through the API; and its changes, "
        "who made them and when. A page of each (?limit=, 100 unless given): the next page "
        "of versions is ?before=<next_before>, of changes ?changes_before=<next_changes_before>.",
        "required": [
            "name",
            "current",
            "versions",
            "next_before",
            "changes",
            "next_changes_before",
        ],
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
            "next_before": {
                "type": ["string", "null"],
                "description": "?before= of the next page of versions; null on the last",
            },
            "next_changes_before": {
                "type": ["integer", "null"],
                "description": "?changes_before= of the next page of changes; null on the last",
            },
            "changes": {
                "type": "array",
                "description": "newest first: each replacement through the API and each "
                "return to the file default, with the token's principal",
                "items": {
                    "type": "object",
                    "required": ["number", "action", "version", "principal", "at"],
                    "properties": {
                        "number": {
                            "type": "integer",
                            "description": "its place in the log of changes (a page's cursor)",
                        },
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
