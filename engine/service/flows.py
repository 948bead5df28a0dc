"""The service's flow operations: events for stateful entities, over HTTP.

    POST /v1/flows/{policy}/{entity_id}/events   {"event": {...}, "at", "settings", "event_id"}
    GET  /v1/flows/{policy}/{entity_id}          where the entity stands
    GET  /v1/flows/{policy}/{entity_id}/history  its moves (?refusals=true: and refusals)
    PUT  /v1/flows/{policy}/{entity_id}          import an entity under way elsewhere (admin)

A thin layer over engine.flow.engine.FlowEngine, like engine.service.decisions over decide(): it
reads the worker's current snapshot of policies, so a hot reload applies to the
next event; entity state lives in the same SQLite file as the decision log.
Status codes: 200 the move was made; 409 the move was refused (a problem whose
`refusal` names the current state and the unmet condition); 422 the event is
invalid (JSON pointers); 404 unknown policy or not a flow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from engine.compile.model import CompiledPolicy
from engine.core.errors import (
    Diagnostic,
    EngineFault,
    EvaluationError,
    InputError,
    KimariError,
    UsageError,
)
from engine.core.suggest import did_you_mean
from engine.flow.engine import Catalog, FlowEngine
from engine.project.registry import Snapshot
from engine.service.problems import Response, from_diagnostics, problem
from engine.source.data import Dataset
from engine.store.flows import FlowStore
from engine.store.sqlite import WriteLock

EVENT_KEYS = frozenset({"event", "at", "settings", "event_id"})


class _ServedCatalog:
    """FlowEngine's Catalog: the flow policies and data sets of the snapshot served right
    now, read at each call, so that a hot reload applies to the next event."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def policy(self, policy_id: str) -> CompiledPolicy:
        policies = self._snapshot().policies
        found = policies.get(policy_id)
        if found is None:
            raise UsageError(
                [
                    Diagnostic(
                        "unknown_policy",
                        f"no policy '{policy_id}'",
                        hint=did_you_mean(policy_id, policies),
                    )
                ]
            )
        return found

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]:
        return self._snapshot().data_for(policy)


class FlowService:
    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        store_path: str | Path,
        lock: WriteLock | None = None,
    ) -> None:
        catalog: Catalog = _ServedCatalog(snapshot)
        # `lock`: the WriteLock of the worker's other writers of this file (sqlite.py)
        self.engine = FlowEngine(catalog, FlowStore(store_path, lock))

    def event(self, policy_id: str, entity_id: str, body: bytes) -> Response:
        request = _request(body)
        if isinstance(request, tuple):
            return request
        try:
            result = self.engine.apply(
                policy_id,
                entity_id,
                request["event"],
                at=request.get("at"),
                settings=request.get("settings"),
                event_id=request.get("event_id"),
            )
        except KimariError as exc:
            return _failure(exc)
        body_out = result.to_dict()
        if result.allowed:
            return 200, [(b"content-type", b"application/json")], orjson.dumps(body_out)
        refusal = body_out.get("refusal") or {}
        return problem(409, refusal.get("code", "refused"), _refusal_text(refusal), result=body_out)

    def import_entity(self, policy_id: str, entity_id: str, body: bytes) -> Response:
        request = _parse(body)
        if isinstance(request, tuple):
            return request
        unknown = sorted(set(request) - {"state", "facts"})
        problems = [
            Diagnostic("unknown_field", f"unknown field '{k}'", pointer=f"/{k}") for k in unknown
        ]
        if "state" not in request:
            problems.append(
                Diagnostic("required", "missing required field 'state'", pointer="/state")
            )
        if problems:
            return from_diagnostics(422, problems, "the request is invalid", code="request_invalid")
        try:
            found = self.engine.import_entity(
                policy_id, entity_id, request["state"], request.get("facts")
            )
        except InputError as exc:
            if exc.code == "entity_exists":
                return from_diagnostics(
                    409, exc.diagnostics, exc.diagnostics[0].message, code="entity_exists"
                )
            return _failure(exc)
        except KimariError as exc:
            return _failure(exc)
        return 201, [(b"content-type", b"application/json")], orjson.dumps(found)

    def entity(self, policy_id: str, entity_id: str) -> Response:
        try:
            found = self.engine.entity(policy_id, entity_id)
        except KimariError as exc:
            return _failure(exc)
        return 200, [(b"content-type", b"application/json")], orjson.dumps(found)

    def history(self, policy_id: str, entity_id: str, refusals: bool) -> Response:
        try:
            moves = [row.to_dict() for row in self.engine.history(policy_id, entity_id)]
            body: dict[str, Any] = {"policy": policy_id, "entity": entity_id, "moves": moves}
            if refusals:
                body["refusals"] = self.engine.refusals(policy_id, entity_id)
        except KimariError as exc:
            return _failure(exc)
        return 200, [(b"content-type", b"application/json")], orjson.dumps(body, default=str)


def _parse(body: bytes) -> dict[str, Any] | Response:
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(400, "json_invalid", f"the body is not valid JSON: {exc}")
    if not isinstance(request, dict):
        return problem(
            422,
            "request_invalid",
            "the body must be a JSON object",
            errors=[Diagnostic("type_mismatch", "expected an object", pointer="")],
        )
    return request


def _request(body: bytes) -> dict[str, Any] | Response:
    request = _parse(body)
    if isinstance(request, tuple):
        return request
    unknown = sorted(set(request) - EVENT_KEYS)
    problems = [
        Diagnostic(
            "unknown_field",
            f"unknown field '{k}'",
            pointer=f"/{k}",
            hint=did_you_mean(k, EVENT_KEYS),
        )
        for k in unknown
    ]
    if "event" not in request:
        problems.append(Diagnostic("required", "missing required field 'event'", pointer="/event"))
    if problems:
        return from_diagnostics(422, problems, "the request is invalid", code="request_invalid")
    return request


def _refusal_text(refusal: dict[str, Any]) -> str:
    message = refusal.get("message")
    if isinstance(message, dict):
        return str(message.get("en") or message.get("ja") or "the move was refused")
    return str(message or "the move was refused")


def _failure(exc: KimariError) -> Response:
    if isinstance(exc, InputError):
        return from_diagnostics(422, exc.diagnostics, "the event is invalid", code="event_invalid")
    if isinstance(exc, UsageError):
        code = exc.diagnostics[0].code if exc.diagnostics else "unknown_policy"
        return from_diagnostics(404, exc.diagnostics, exc.diagnostics[0].message, code=code)
    if isinstance(exc, EvaluationError):
        return from_diagnostics(
            422, exc.diagnostics, "the event could not be decided", code="evaluation_error"
        )
    if isinstance(exc, EngineFault):
        return from_diagnostics(500, exc.diagnostics, "the rule engine failed", code="engine_fault")
    return from_diagnostics(500, exc.diagnostics, "the policy could not be used", code=exc.code)
