"""Documents about the policies being served: one policy's description, and the OpenAPI.

The OpenAPI document (3.1, whose schemas are JSON Schema 2020-12) writes one operation per
row of the route table (engine/service/routes.py), so it lists exactly what the front
serves. Rows marked `each` are written once per policy or data set: the decision and batch
paths of each decision policy, the event, entity, import and history paths of each flow,
and the paths of each reference data set, each with that one's typed schemas
(engine/service/shapes.py: `OrderHoldsRequest`, `OrderHoldsDecision`, `ClaimStatusEvent`,
`BlacklistEntry`...). Operation ids (camelCase: `decideOrderHolds`), summaries, scopes
(`security`, declared on every operation: `[]` for the health probes) and query and header
parameters come from the table; request bodies and answers from the operation's entry in
`_DETAILS`; request examples from the shipped `examples/` (`<policy>.json` holds facts,
`<policy>.event.json` an event). Every answer has a schema; every problem is `Problem`.
"""

from __future__ import annotations

import copy
import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.jsonvalue import loads_exact, to_json_value
from engine.project.registry import PolicyStatus, Snapshot
from engine.service.ipc import Op
from engine.service.lifecycle import SCHEMAS as LIFECYCLE_SCHEMAS
from engine.service.policy_shapes import data_components, decision_components, flow_components
from engine.service.problems import TITLES
from engine.service.routes import ADMIN, PUBLISH, ROUTES, Route
from engine.service.shapes import DECISION_ID_PATTERN, FIXED, camel, ref


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
        "roles": [r.to_dict() for r in flow.roles.values()],
        "states": [
            {"id": s.id, "label": s.label.to_dict(), "final": s.final, "refs": list(s.refs)}
            for s in flow.states.values()
        ],
        "events": [
            {
                "name": e.name,
                "label": e.label.to_dict(),
                "fields": to_json_value(dict(e.fields)),
                "by": list(e.by) if e.by is not None else None,
                **({"decide": e.decide.policy} if e.decide is not None else {}),
            }
            for e in flow.events.values()
        ],
        "transitions": [
            {
                "id": t.id,
                "from": list(t.sources),
                "event": t.event,
                "to": t.target,
                "by": list(t.by) if t.by is not None else None,
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


# -- the OpenAPI document ----------------------------------------------------------------

PROBLEM = ref("Problem")
# the schema of a path parameter or a header, where more is known than "a text"
PARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    "entity_id": {"type": "string", "minLength": 1, "maxLength": 200},
    "Idempotency-Key": {"type": "string", "pattern": DECISION_ID_PATTERN},
    "If-Match": {
        "type": "string",
        "description": "the ETag of GET /v1/data/{name} (its version, in double quotes): the "
        "change is made only if that version is still current, else 412 version_moved",
        "examples": ['"6f1c2a9e0b7d4c31"'],
    },
    "decision_id": {"type": "string", "pattern": DECISION_ID_PATTERN},
    "limit": {"type": "integer", "minimum": 1, "maximum": 500},
    "after": {
        "type": "integer",
        "minimum": 0,
        "maximum": 2**62,
        "description": "a version: the rows after it",
    },
    "days": {"type": "integer", "minimum": 1, "maximum": 366},
    "changes_before": {
        "type": "integer",
        "minimum": 1,
        "description": "a change's number: the changes before it",
    },
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
}
# the language of problem details and messages (docs/messages.md): every operation takes it
ACCEPT_LANGUAGE: dict[str, Any] = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "description": "'ja' for problem details and messages in Japanese; English otherwise",
    "schema": {"type": "string", "examples": ["ja", "en", "ja-JP,en;q=0.5"]},
}
CONTENT_LANGUAGE: dict[str, Any] = {
    "description": "the language of the problem's title, detail and messages",
    "schema": {"type": "string", "enum": ["en", "ja"]},
}
TAGS = {
    "decisions": "Decide with a decision policy; read logged decisions",
    "flows": "Move the entities of a flow policy by events",
    "data": "The reference data sets the policies read",
    "policies": "The policies served, and reloading them",
    "lifecycle": "Revisions: drafts, diffs, impact replays, approval, rollback; jobs, audit",
    "service": "Health, readiness, metrics and this document",
}
LICENSE = {"name": "Proprietary", "identifier": "LicenseRef-kimari-proprietary"}


@dataclass(frozen=True, slots=True)
class _Target:
    """What one documented operation is about: a policy or a data set (or nothing)."""

    values: dict[str, Any]  # what fills the route's "{...}" in path, operationId and summary
    id: str = ""  # the policy's id or the data set's name
    name: str = ""  # its components' prefix: OrderHolds, Blacklist
    # request bodies from the shipped examples/: {key: (summary, body)}, in the order shown
    examples: dict[str, tuple[str, Any]] | None = None


def openapi_document(
    snapshot: Snapshot, *, max_batch: int, examples: Path | None = None
) -> dict[str, Any]:
    """One operation per row of the route table; the rows marked `each` once per decision
    policy, flow policy or data set, with that one's schemas. `examples`: the folder of
    request examples (`<policy>.json` facts, `<policy>.event.json` an event)."""
    components: dict[str, Any] = copy.deepcopy(FIXED)
    components.update(copy.deepcopy(LIFECYCLE_SCHEMAS))
    targets = _all_targets(snapshot, components, examples or Path("/nonexistent"), max_batch)
    paths: dict[str, Any] = {}
    for route in ROUTES:
        if not route.api:  # the console's pages and files
            continue
        for target in targets.get(route.each, [_Target({})]):
            path = route.path
            if route.each is not None:
                path = path.replace(f"{{{route.params[0]}}}", target.id)
            paths.setdefault(path, {})[route.method.lower()] = _operation(route, target, max_batch)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kimari decision service",
            "version": "1",
            "description": "Decisions from YAML policies. Each policy's request, outcome and "
            "reasons are typed from what it declares; schema names come from policy ids "
            "(OrderHoldsDecision). Errors are RFC 9457 problem+json.",
            "license": LICENSE,
        },
        "servers": [{"url": "/", "description": "the service that served this document"}],
        "tags": [{"name": n, "description": d} for n, d in TAGS.items()],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a token of KIMARI_TOKENS, with the scope the operation needs",
                }
            },
        },
    }


def _all_targets(
    snapshot: Snapshot, components: dict[str, Any], examples: Path, max_batch: int
) -> dict[str | None, list[_Target]]:
    """The policies and data sets the `each` rows are written for, their components added."""
    out: dict[str | None, list[_Target]] = {"decision": [], "flow": [], "data": []}
    for pid, policy in sorted(snapshot.policies.items()):
        values = {
            "policy": pid,
            "Policy": camel(pid),
            "title": policy.title.en or policy.title.ja,
            "max_batch": max_batch,
        }
        if policy.kind == "decision":
            name = decision_components(policy, components)
            facts = _example(examples / f"{pid}.json")
            shown = None if facts is None else {"shipped": (_FROM, {"facts": facts})}
            out["decision"].append(_Target(values, pid, name, shown))
        elif policy.kind == "flow":
            name = flow_components(policy, components)
            out["flow"].append(_Target(values, pid, name, _event_examples(policy, examples)))
    for data_name, spec in sorted(snapshot.policy_set.specs.items()):
        name = data_components(data_name, dict(spec.validator.schema), components)
        out["data"].append(_Target({"name": data_name, "Name": camel(data_name)}, data_name, name))
    return out


_FROM = "from the shipped examples/"


def _event_examples(policy: CompiledPolicy, examples: Path) -> dict[str, tuple[str, Any]] | None:
    """A flow's example event (`<policy>.event.json`), after the moves sent before it on a
    new entity (any other `<policy>.<move>.json`: claim-status' exclusion before its claim,
    EX-2), so that the first example tried on a new entity is one that is accepted."""
    shown: dict[str, tuple[str, Any]] = {}
    for path in sorted(examples.glob(f"{glob.escape(policy.id)}.*.json")):
        move = path.name[len(policy.id) + 1 : -len(".json")]
        event = _example(path)
        if event is None or move == "event" or "." in move:
            continue
        body = {"event": event, "actor": _actor(policy, event)}
        shown[move] = (f"sent first on a new entity: examples/{path.name}", body)
    event = _example(examples / f"{policy.id}.event.json")
    if event is not None:
        shown["shipped"] = (_FROM, {"event": event, "actor": _actor(policy, event)})
    return shown or None


def _actor(policy: CompiledPolicy, event: Any) -> dict[str, Any]:
    """An actor who may send the example event (every flow event has one)."""
    from engine.flow.actors import example_actor
    from engine.flow.model import flow_of

    flow = flow_of(policy)
    found = flow.events.get(event.get("type")) if isinstance(event, dict) else None
    return example_actor(found.by if found is not None else None, flow.roles)


def _example(path: Path) -> Any:
    """A shipped example's JSON, or None (none there, or not JSON: the document is still
    written; `kimari validate` and the tests check the examples)."""
    try:
        return loads_exact(path.read_bytes())
    except (OSError, ValueError):
        return None


def _operation(route: Route, target: _Target, max_batch: int) -> dict[str, Any]:
    summary = route.summary.format(**target.values)
    out: dict[str, Any] = {
        "operationId": route.operation_id.format(**target.values),
        "summary": f"{summary} ({route.scope})" if route.scope in (ADMIN, PUBLISH) else summary,
        "tags": [_tag(route)],
        # declared on every operation: the health probes need no token
        "security": [{"bearer": []}] if route.scope is not None else [],
    }
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": _parameter_schema(p)}
        for p in route.params
        if p not in target.values
    ]
    parameters += [
        {"name": f, "in": "query", "required": False, "schema": {"type": "boolean"}}
        for f in route.flags
    ]
    parameters += [
        {"name": q, "in": "query", "required": False, "schema": _parameter_schema(q)}
        for q in route.query
    ]
    parameters += [
        {"name": h, "in": "header", "required": False, "schema": _parameter_schema(h)}
        for h in route.headers
    ]
    parameters.append(copy.deepcopy(ACCEPT_LANGUAGE))
    if parameters:
        out["parameters"] = parameters
    if route.op is None:  # the front's own answers: the health probes
        out["responses"] = _FRONT[route.operation_id]()
        return out
    body, status, answer, problems = _DETAILS[route.op](target, max_batch)
    if body is not None:
        content: dict[str, Any] = {"schema": body}
        if target.examples is not None and route.op in (Op.DECIDE, Op.FLOW_EVENT):
            content["examples"] = {
                key: {"summary": summary, "value": value}
                for key, (summary, value) in target.examples.items()
            }
        required = route.op not in _OPTIONAL_BODY
        out["requestBody"] = {"required": required, "content": {"application/json": content}}
    out["responses"] = {
        status: answer,
        **_MORE.get(route.op, {}),
        **_problems(*_statuses(route), *problems),
    }
    return out


def _tag(route: Route) -> str:
    if route.scope == PUBLISH:
        return "lifecycle"
    segment = route.path.split("/")[2] if route.path.startswith("/v1/") else ""
    if segment in TAGS:
        return segment
    return "policies" if segment == "reload" else "service"


def _statuses(route: Route) -> list[int]:
    """The problems any operation of this kind may answer."""
    out = [401, 403] if route.scope is not None else []
    if route.takes_body:
        out += [400, 413, 415, 422]
    if route.params or route.each:
        out.append(404)
    return [*out, 500, 503]


def _parameter_schema(name: str) -> dict[str, Any]:
    return dict(PARAMETER_SCHEMAS.get(name, {"type": "string"}))


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: int) -> dict[str, Any]:
    """One response per status, all the one problem schema (fresh: the caller may edit)."""
    return {
        str(s): {
            "description": TITLES.get(s, "problem"),
            "headers": {"Content-Language": copy.deepcopy(CONTENT_LANGUAGE)},
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
        for s in sorted(set(statuses))
    }


_FRONT: dict[str, Callable[[], dict[str, Any]]] = {
    "healthz": lambda: {
        "200": _json("the front process answers", ref("Health")),
        **_problems(404),
    },
    "whoami": lambda: {
        "200": _json("the token's principal, scopes and roles", ref("Whoami")),
        **_problems(401, 403, 404),
    },
    "readyz": lambda: {
        "200": _json("an engine worker is ready, and the service is not stopping", ref("Ready")),
        **_problems(404, 503),
    },
}

# -- request bodies and answers, per worker operation ------------------------------------
# each gives (request body schema or None, success status, its response, extra problems)
Details = tuple[dict[str, Any] | None, str, dict[str, Any], tuple[int, ...]]


def _decide(target: _Target, _max_batch: int) -> Details:
    answer = _json("the decision, logged", ref(f"{target.name}Decision"))
    answer["headers"] = {
        "Idempotent-Replayed": {
            "description": "'true' when this is the logged answer to an earlier request",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }
    return ref(f"{target.name}Request"), "200", answer, (409,)


def _batch(target: _Target, max_batch: int) -> Details:
    request = {
        "type": "object",
        "additionalProperties": False,
        "required": ["items"],
        "properties": {
            "items": {
                "type": "array",
                "maxItems": max_batch,
                "items": ref(f"{target.name}Request"),
            }
        },
    }
    answer = _json("one result per item, in order", ref(f"{target.name}BatchResults"))
    return request, "200", answer, ()


def _answer(schema: str, description: str, status: str = "200") -> Callable[..., Details]:
    """An operation without a body whose answer is the component `schema` (with `{}`
    replaced by the target's name)."""

    def details(target: _Target, _max_batch: int) -> Details:
        return None, status, _json(description, ref(schema.format(target.name))), ()

    return details


def _logged_decision(_target: _Target, _max_batch: int) -> Details:
    description = "the decision, with its request and explanation; a flow's: its move"
    either = {"anyOf": [ref("LoggedDecision"), ref("LoggedFlowDecision")]}
    return None, "200", _json(description, either), ()


def _flow_event(target: _Target, _max_batch: int) -> Details:
    description = "the move, stored (a refused event is a 409 problem with the result)"
    answer = _json(description, ref(f"{target.name}Move"))
    return ref(f"{target.name}EventRequest"), "200", answer, (409,)


def _flow_import(target: _Target, _max_batch: int) -> Details:
    answer = _json("the entity, created", ref(f"{target.name}Entity"))
    return ref(f"{target.name}ImportRequest"), "201", answer, (409,)


def _put_data(target: _Target, _max_batch: int) -> Details:
    answer = _json("the new version, served by every worker from now on", ref("DataVersion"))
    return ref(f"{target.name}Entries"), "200", answer, (412,)


def _reset_data(target: _Target, _max_batch: int) -> Details:
    answer = _json("the data set now served", ref(f"{target.name}DataSet"))
    return None, "200", answer, (412,)


def _lifecycle(
    request: str | None, status: str, schema: str, description: str, *problems: int
) -> Callable[..., Details]:
    """A lifecycle operation: its request body and answer are components of
    engine/service/lifecycle.py."""

    def details(_target: _Target, _max_batch: int) -> Details:
        body = ref(request) if request else None
        return body, status, _json(description, ref(schema)), problems

    return details


# answers besides the main one: a submission is a job; a cancelled job may have ended
_MORE: dict[Op | None, dict[str, Any]] = {
    Op.CREATE_REVISION: {
        "202": _json("a submission: the job that tests and measures it", ref("Job"))
    },
    Op.CANCEL_JOB: {"200": _json("the job, which had already ended", ref("Job"))},
}
_OPTIONAL_BODY = frozenset({Op.SUBMIT_REVISION, Op.APPROVE_REVISION, Op.REJECT_REVISION, Op.IMPACT})


def _metrics(_target: _Target, _max_batch: int) -> Details:
    text = {"schema": {"type": "string"}}
    answer = {
        "description": "Prometheus text format 0.0.4",
        "content": {"text/plain; version=0.0.4; charset=utf-8": text},
    }
    return None, "200", answer, ()


_DETAILS: dict[Op, Callable[[_Target, int], Details]] = {
    Op.DECIDE: _decide,
    Op.BATCH: _batch,
    Op.GET_DECISION: _logged_decision,
    Op.POLICIES: _answer("PolicyList", "every policy file and what is served of it"),
    Op.POLICY: _answer("PolicyDocument", "the policy"),
    Op.RELOAD: _answer("PolicyList", "the policies served after the check"),
    Op.GET_DATA: _answer("{}DataSet", "the data set"),
    Op.PUT_DATA: _put_data,
    Op.DELETE_DATA: _reset_data,
    Op.FLOW_EVENT: _flow_event,
    Op.FLOW_ENTITY: _answer("{}Entity", "where the entity stands (version 0: not yet seen)"),
    Op.FLOW_IMPORT: _flow_import,
    Op.FLOW_HISTORY: _answer(
        "{}History", "its import and moves, oldest first, a page at a time (next_after)"
    ),
    Op.OPENAPI: lambda *_: (
        None,
        "200",
        _json("this document", {"type": "object", "description": "OpenAPI 3.1"}),
        (),
    ),
    Op.STATS: _metrics,
    Op.LIST_DECISIONS: _answer("DecisionPage", "a page of the log, newest first"),
    Op.LIST_DATA: _answer("DataList", "every data set and the policies that read it"),
    Op.POLICY_SOURCE: _answer("PolicySource", "the YAML text of the revision served"),
    Op.POLICY_EXAMPLES: _answer("PolicyExamples", "its test cases and example files"),
    Op.POLICY_STATS: _answer("PolicyStats", "decisions per day and outcome"),
    Op.REVISIONS: _answer("RevisionList", "the policy's revisions, newest first"),
    Op.CREATE_REVISION: _lifecycle("RevisionRequest", "201", "Revision", "the draft", 409),
    Op.REVISION: _answer("RevisionDetail", "the revision, with its source"),
    Op.SUBMIT_REVISION: _lifecycle(
        "MessageRequest", "202", "Job", "the job that tests and measures it", 409
    ),
    Op.APPROVE_REVISION: _lifecycle("ApprovalRequest", "200", "Approval", "published", 409),
    Op.REJECT_REVISION: _lifecycle("MessageRequest", "200", "Revision", "rejected", 409),
    Op.ROLLBACK: _lifecycle("RollbackRequest", "200", "Publication", "published again", 409),
    Op.DIFF: _answer("Diff", "the semantic diff and the text diff"),
    Op.IMPACT: _lifecycle("ImpactRequest", "202", "Job", "the job: GET its location", 409),
    Op.JOBS: _answer("JobList", "recent jobs, newest first"),
    Op.JOB: _answer("Job", "the job: progress, then its report or error"),
    Op.CANCEL_JOB: _answer("Job", "the job, asked to stop (200 if it had ended)", "202"),
    Op.AUDIT: _answer("AuditTrail", "the policy's audit trail, newest first"),
    Op.AUDIT_ALL: _answer("AuditTrail", "the audit trail, newest first"),
    Op.VALIDATE_DRAFT: _lifecycle("DraftText", "200", "Validation", "the diagnostics"),
    Op.TEST_DRAFT: _lifecycle("DraftText", "202", "Job", "the job: GET its location", 409),
    Op.DATA_VERSIONS: _answer("DataVersions", "its versions, newest first"),
}
