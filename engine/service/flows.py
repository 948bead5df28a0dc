"""The service's flow operations: events for stateful entities, over HTTP.

    POST /v1/flows/{policy}/{entity_id}/events   {"event": {...}, "actor": {"id", "roles",
                                                  "name"?}, "at", "settings", "event_id"}
    GET  /v1/flows/{policy}/{entity_id}          where the entity stands
    GET  /v1/flows/{policy}/{entity_id}/history  its moves (?refusals=true: and refusals)
    PUT  /v1/flows/{policy}/{entity_id}          import an entity under way elsewhere (admin)

A thin layer over engine.flow.engine.FlowEngine, like engine.service.decisions over decide(): it
reads the worker's current snapshot of policies, so a hot reload applies to the
next event; entity state lives in the same store as the decision log.
Status codes: 200 the move was made; 409 the move was refused (a problem whose
`refusal` names the current state and the unmet condition, or `role_not_allowed`: the
roles that may send this event here); 422 the event or its actor is invalid (JSON
pointers); 403 `actor_role_forbidden`: the actor claims a role the request's token may
not claim (the front passes the token's roles; 403, not 409, because it is the
credential that is refused, before the flow is asked); 404 unknown policy or not a flow;
503 `store_unavailable` (retriable) when the store cannot be reached: nothing was moved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.compile.model import CompiledPolicy
from engine.core.errors import Diagnostic, KimariError, UsageError
from engine.core.i18n import Msg, language
from engine.core.jsonvalue import dumps
from engine.core.suggest import did_you_mean
from engine.flow.actors import roles_beyond, validate_actor
from engine.flow.engine import Catalog, FlowEngine
from engine.project.registry import Snapshot
from engine.service.envelopes import EVENT_REQUEST, IMPORT_REQUEST
from engine.service.problems import (
    ENTITY,
    EVENT,
    RequestProblem,
    Response,
    from_error,
    problem,
)
from engine.source.data import Dataset
from engine.store.backend import Backend
from engine.store.flows import FlowStore


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
                        Msg("no policy '{id}'", id=policy_id),
                        hint=did_you_mean(policy_id, policies),
                    )
                ]
            )
        return found

    def data_for(self, policy: CompiledPolicy) -> dict[str, Dataset]:
        return self._snapshot().data_for(policy)


class FlowService:
    def __init__(self, snapshot: Callable[[], Snapshot], backend: Backend | str) -> None:
        catalog: Catalog = _ServedCatalog(snapshot)
        # `backend`: the one the worker's other writers use (decision log, data versions)
        self.store = FlowStore(backend)
        self.engine = FlowEngine(catalog, self.store)

    def close(self) -> None:
        self.store.close()

    def event(
        self, policy_id: str, entity_id: str, body: bytes, roles: list[str] | None = None
    ) -> Response:
        """Apply an event; `roles`: those the request's token may claim (None: no tokens
        are configured, so any)."""
        try:
            request = EVENT_REQUEST.read(body)
            actor = validate_actor(request["actor"])
            beyond = roles_beyond(actor, roles) if roles is not None else []
            if beyond:
                message = Msg(
                    "this token may not act as {roles} (it may claim: {allowed})",
                    roles=", ".join(beyond),
                    allowed=", ".join(roles or []) or Msg("no role"),
                )
                pointer = f"/actor/roles/{actor.roles.index(beyond[0])}"
                return problem(
                    403,
                    "actor_role_forbidden",
                    message,
                    # in `errors` as every other problem with a place; `pointer` as before
                    errors=[Diagnostic("actor_role_forbidden", message, pointer=pointer)],
                    pointer=pointer,
                    roles=sorted(roles or []),
                )
            result = self.engine.apply(
                policy_id,
                entity_id,
                request["event"],
                actor=actor,
                at=request.get("at"),
                settings=request.get("settings"),
                event_id=request.get("event_id"),
            )
        except RequestProblem as exc:
            return exc.response
        except KimariError as exc:
            return from_error(exc, EVENT)
        body_out = result.to_dict()
        if result.allowed:
            return 200, [(b"content-type", b"application/json")], dumps(body_out)
        refusal = body_out.get("refusal") or {}
        return problem(409, refusal.get("code", "refused"), _refusal_text(refusal), result=body_out)

    def import_entity(self, policy_id: str, entity_id: str, body: bytes) -> Response:
        try:
            request = IMPORT_REQUEST.read(body)
            found = self.engine.import_entity(
                policy_id, entity_id, request["state"], request.get("facts")
            )
        except RequestProblem as exc:
            return exc.response
        except KimariError as exc:  # entity_exists among them: a 409 (problems.CONFLICTS)
            return from_error(exc, ENTITY)
        return 201, [(b"content-type", b"application/json")], dumps(found)

    def entity(self, policy_id: str, entity_id: str) -> Response:
        try:
            found = self.engine.entity(policy_id, entity_id)
        except KimariError as exc:
            return from_error(exc, ENTITY)
        return 200, [(b"content-type", b"application/json")], dumps(found)

    def history(self, policy_id: str, entity_id: str, refusals: bool) -> Response:
        try:
            moves = [row.to_dict() for row in self.engine.history(policy_id, entity_id)]
            body: dict[str, Any] = {"policy": policy_id, "entity": entity_id, "moves": moves}
            if refusals:
                body["refusals"] = self.engine.refusals(policy_id, entity_id)
        except KimariError as exc:
            return from_error(exc, ENTITY)
        return 200, [(b"content-type", b"application/json")], dumps(body)


def _refusal_text(refusal: dict[str, Any]) -> str:
    message = refusal.get("message")
    if isinstance(message, dict):
        # the policy's own words, in the request's language when the policy has them
        other = "ja" if language() == "en" else "en"
        said = message.get(language()) or message.get(other)
        return str(said) if said else Msg("the move was refused")
    return str(message or "the move was refused")
