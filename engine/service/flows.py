"""The service's flow operations: events for stateful entities, over HTTP.

    POST /v1/flows/{policy}/{entity_id}/events   {"event": {...}, "actor": {"id", "roles",
                                                  "name"?}, "at", "settings", "event_id"}
    GET  /v1/flows/{policy}/{entity_id}          where the entity stands
    GET  /v1/flows/{policy}/{entity_id}/history  its moves, a page at a time (?limit=, ?after=;
                                                  ?refusals=true: and the refusals between)
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

A history is answered a page at a time: at most `?limit=` rows (DEFAULT_LIMIT, at most
MAX_LIMIT), those after version `?after=` (none: from the start, the import's row 0 first),
and fewer when the page's rows pass PAGE_BYTES (every row carries the entity's facts after
its move, so that a long history of large facts made answers of hundreds of megabytes, past
what a worker may answer: engine/service/ipc.py). `next_after` is the `?after=` of the next
page; null on the last. A history that fits one page is answered as before, whole. One row
too large to answer alone is a 500 `answer_too_large`, never a worker crash.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from engine.core.errors import Diagnostic, KimariError
from engine.core.i18n import Msg, language
from engine.core.jsonvalue import dumps
from engine.flow.actors import roles_beyond, validate_actor
from engine.flow.engine import Catalog, FlowEngine, check_entity_id
from engine.project.registry import ServedCatalog, Snapshot
from engine.service import ipc
from engine.service.envelopes import EVENT_REQUEST, IMPORT_REQUEST
from engine.service.problems import (
    ENTITY,
    EVENT,
    RequestProblem,
    Response,
    from_error,
    problem,
)
from engine.service.reads import integer_parameter
from engine.store.backend import Backend
from engine.store.flows import FlowStore

DEFAULT_LIMIT = 100  # rows of a history page when `?limit=` is not given
MAX_LIMIT = 500  # as every `?limit=` of the API (engine/service/openapi.py)
PAGE_BYTES = 16 * 1024 * 1024  # a page ends at the row that takes it past this (one at least)
_CHUNK = 100  # rows read from the store at a time while a page is filled
_JSON = [(b"content-type", b"application/json")]


class FlowService:
    def __init__(self, snapshot: Callable[[], Snapshot], backend: Backend | str) -> None:
        catalog: Catalog = ServedCatalog(snapshot)
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

    def import_entity(
        self, policy_id: str, entity_id: str, body: bytes, principal: str | None = None
    ) -> Response:
        """Import an entity; `principal`: the request's (the token's), recorded with the
        import in its history and the audit trail."""
        try:
            request = IMPORT_REQUEST.read(body)
            found = self.engine.import_entity(
                policy_id, entity_id, request["state"], request.get("facts"), principal=principal
            )
        except RequestProblem as exc:
            return exc.response
        except KimariError as exc:  # entity_exists among them: a 409 (problems.CONFLICTS)
            return from_error(exc, ENTITY)
        return 201, [(b"content-type", b"application/json")], dumps(found)

    def decision(self, decision_id: str) -> Response | None:
        """GET /v1/decisions/{id} of a flow's decision (its answer's `decision_id`): the move
        as the entity's history shows it, or the refusal; by the id of the decision its
        event consulted, the same, with that decision as `consulted`; None when no flow
        decided nor consulted it."""
        found = self.store.find_decision(decision_id)
        if found is None:
            return None
        row = found.move or found.refusal
        assert row is not None
        path = f"/v1/flows/{quote(found.policy_id)}/{quote(found.entity_id, safe='')}/history"
        body = {
            "decision_id": decision_id,
            "kind": "flow",
            "policy": {"id": found.policy_id, "revision": row["revision"]},
            "entity": found.entity_id,
            "at": row["at"],
            "allowed": found.move is not None,
            "move": found.move,
            "refusal": found.refusal,
            "consulted": found.consulted_decision if found.consulted else None,
            "history": path + ("?refusals=true" if found.refusal else ""),
        }
        return 200, _JSON, dumps(body)

    def entity(self, policy_id: str, entity_id: str) -> Response:
        try:
            found = self.engine.entity(policy_id, entity_id)
        except KimariError as exc:
            return from_error(exc, ENTITY)
        return 200, [(b"content-type", b"application/json")], dumps(found)

    def history(
        self,
        policy_id: str,
        entity_id: str,
        refusals: bool,
        query: Mapping[str, Any] | None = None,
    ) -> Response:
        """A page of the entity's history (module docstring); `query`: the request's
        `limit` and `after`, as sent (None: no paging asked for: every row, as before)."""
        try:
            policy = self.engine.policy(policy_id)
            check_entity_id(entity_id)
            if query is None:
                limit, after = None, None
            else:
                limit = integer_parameter(query, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
                after = integer_parameter(query, "after", 0, 2**62, None)
            moves, last, more = self._page(policy.id, entity_id, after, limit)
            next_after = last if more else None
            body: dict[str, Any] = {
                "policy": policy_id,
                "entity": entity_id,
                "moves": moves,
                "next_after": next_after,
            }
            if refusals:
                body["refusals"] = self.store.refusals(
                    policy.id, entity_id, after=after, through=next_after
                )
        except RequestProblem as exc:
            return exc.response
        except KimariError as exc:
            return from_error(exc, ENTITY)
        out = dumps(body)
        if len(out) > ipc.MAX_ANSWER - 4096:  # the frame's header and meta besides
            return _too_large(len(out), len(moves), last)
        return 200, _JSON, out

    def _page(
        self, policy_id: str, entity_id: str, after: int | None, limit: int | None
    ) -> tuple[list[orjson.Fragment], int | None, bool]:
        """The rows of a page, each as its JSON; the version of its last row; whether rows
        follow it. Read from the store a chunk at a time, so that rows past the page's
        bytes are never read."""
        rows: list[orjson.Fragment] = []
        size = 0
        last = after
        while True:
            want = _CHUNK if limit is None else min(limit - len(rows), _CHUNK)
            chunk = self.store.history(policy_id, entity_id, after=last, limit=want + 1)
            for row in chunk[:want]:
                text = dumps(row.to_dict())
                if rows and limit is not None and size + len(text) > PAGE_BYTES:
                    return rows, last, True  # the row that did not fit starts the next
                rows.append(orjson.Fragment(text))
                size += len(text)
                last = row.version
            if len(chunk) <= want:
                return rows, last, False
            if limit is not None and len(rows) >= limit:
                return rows, last, True


def _too_large(size: int, rows: int, last: int | None) -> Response:
    """A history page too large to answer (one row alone, with the facts after its move, or
    with the refusals asked for), said here in the request's language with what to ask
    instead, rather than by the frame's last resort (engine/service/ipc.py)."""
    detail = Msg(
        "the history page is {size} bytes, more than the {limit} bytes an answer may be",
        size=size,
        limit=ipc.MAX_ANSWER,
    )
    if rows > 1:
        hint = Msg("ask for fewer rows with ?limit=, and for the next page with ?after=")
    elif rows == 1:
        hint = Msg("its one row is too large to answer; ?after={version} skips it", version=last)
    else:
        hint = Msg("its refusals are too many to answer: leave out ?refusals=true")
    return ipc.answer_too_large(detail, hint=hint)


def _refusal_text(refusal: dict[str, Any]) -> str:
    message = refusal.get("message")
    if isinstance(message, dict):
        # the policy's own words, in the request's language when the policy has them
        other = "ja" if language() == "en" else "en"
        said = message.get(language()) or message.get(other)
        return str(said) if said else Msg("the move was refused")
    return str(message or "the move was refused")
