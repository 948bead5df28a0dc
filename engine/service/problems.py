"""RFC 9457 problem details: every error the service answers, as `application/problem+json`.

    {"type": "urn:kimari:problem:facts_invalid", "title": "...", "status": 422,
     "code": "facts_invalid", "detail": "...", "errors": [{code, message, pointer, ...}]}

`code` is the stable machine code (the same codes as the CLI's diagnostics); `errors`
lists every problem found, each a Diagnostic record with its JSON pointer or file:line.
Nothing here ever carries a stack trace.

`title`, `detail`, every `errors[].message` and `hint` are in the language in effect (the
request's `Accept-Language`, set by the worker or the front: engine/core/i18n.py), which the
answer names in `Content-Language`; `code`, `type`, pointers and locations never change.

An exception becomes its problem in one place, `from_error`: the status and the code come
from the exception's class (engine/core/errors.py), only the words of the detail from what
the request was about (a `Subject`: a decision, a flow event, data entries). So decisions
and flows cannot drift apart on what a given failure answers.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.core.errors import (
    Diagnostic,
    EngineFault,
    EvaluationError,
    InputError,
    KimariError,
    Refused,
    RetryLater,
    StoreDamaged,
    StoreUnavailable,
    UsageError,
    request_problem_code,
)
from engine.core.i18n import Msg, language, translate, translated
from engine.core.jsonvalue import dumps

log = logging.getLogger("kimari.service")

CONTENT_TYPE = b"application/problem+json"
TYPE_PREFIX = "urn:kimari:problem:"

TITLES = {
    400: Msg("Bad request"),
    401: Msg("Authentication required"),
    403: Msg("Not allowed"),
    404: Msg("Not found"),
    405: Msg("Method not allowed"),
    408: Msg("Request timeout"),
    409: Msg("Conflict"),
    412: Msg("Precondition failed"),
    413: Msg("Request too large"),
    415: Msg("Unsupported media type"),
    422: Msg("Unprocessable request"),
    500: Msg("Internal error"),
    503: Msg("Service unavailable"),
}

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


class RequestProblem(Exception):
    """A request refused before anything was done; `response` is its finished answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[0])
        self.response = response


class QueryRefused(Exception):
    """A query parameter refused by the front (engine/service/http.py); its answer is made
    in the request's language by whoever catches it (the relay makes no language current
    while it reads the query). Here, not in http.py: the front runs that module as
    __main__, whose classes are not the ones protocol.py imports."""

    def __init__(self, name: str, reason: str, hint: str | None = None) -> None:
        super().__init__(name)
        self.name, self.reason, self.hint = name, reason, hint

    def response(self) -> Response:
        detail = Msg("query parameter '{name}': {reason}", name=self.name, reason=self.reason)
        return problem(422, "query_invalid", detail, parameter=self.name, hint=self.hint)


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Iterable[Diagnostic | dict[str, Any]] = (),
    **extra: Any,
) -> bytes:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": translate(TITLES.get(status, Msg("Error"))),
        "status": status,
        "code": code,
        "detail": translate(detail),
    }
    listed = [e.to_dict() if isinstance(e, Diagnostic) else e for e in errors]
    if listed:
        body["errors"] = listed
    body.update({k: translated(v) for k, v in extra.items() if v is not None})
    return dumps(body)


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Iterable[Diagnostic | dict[str, Any]] = (),
    headers: Iterable[tuple[bytes, bytes]] = (),
    **extra: Any,
) -> Response:
    body = problem_body(status, code, detail, errors=errors, **extra)
    said = (b"content-language", language().encode())
    return status, [(b"content-type", CONTENT_TYPE), said, *headers], body


def from_diagnostics(
    status: int, diagnostics: list[Diagnostic], detail: str, code: str | None = None
) -> Response:
    """A problem listing every diagnostic. Its code: `code` if given; `facts_invalid` when
    every error points into the facts; else the diagnostic's own code if it is alone."""
    return problem(status, code or request_problem_code(diagnostics), detail, errors=diagnostics)


@dataclass(frozen=True, slots=True)
class Subject:
    """What a failed request was about, in the words of its problem's `detail`."""

    invalid: str  # InputError: the request itself is wrong
    undecidable: str = Msg("this request cannot be decided")  # EvaluationError
    fault: str = Msg("the rule engine failed")  # EngineFault: never the caller's to fix
    busy: str = Msg("other writers kept changing what this request reads; send it again")
    unusable: str = Msg("the policy could not be used")  # any other error but a UsageError
    # an InputError's code when the request's kind names it (event_invalid), instead of its
    # diagnostics (facts_invalid, at_invalid, ...)
    input_code: str | None = None

    def detail(self, exc: KimariError) -> str:
        if isinstance(exc, InputError):
            return self.invalid
        if isinstance(exc, EvaluationError):
            return self.undecidable
        if isinstance(exc, EngineFault):
            return self.fault
        if isinstance(exc, RetryLater):
            return self.busy
        if isinstance(exc, UsageError | Refused) and exc.diagnostics:
            # "no policy 'x'", "policy 'p' already has a job running: ..." say it all
            return exc.diagnostics[0].message
        return self.unusable


DECISION = Subject(
    invalid=Msg("the request is not valid for this policy"),
    undecidable=Msg("these facts cannot be decided"),
    fault=Msg("the rule engine failed; nothing was decided"),
)
EVENT = Subject(
    invalid=Msg("the event is invalid"),
    undecidable=Msg("the event could not be decided"),
    busy=Msg("other writers kept moving this entity; the event was not applied, send it again"),
    input_code="event_invalid",
)

# An entity read or imported (no event): its problems are named by their diagnostics'
# codes (entity_id_invalid, unknown_state, ...), not called an invalid event.
ENTITY = Subject(
    invalid=Msg("the request is invalid"),
    undecidable=Msg("the entity could not be read"),
)

DAMAGED_DETAIL = Msg(
    "the store is damaged and cannot be read or written until it is restored; nothing was recorded"
)
RETRIABLE_DETAIL = Msg("the store cannot be reached now; nothing was acknowledged: send it again")

# Diagnostic codes that say the request collides with what is stored: 409 under their own
# code, whatever the class that carries them (the flow engine raises entity_exists as an
# InputError, which it also is for the CLI).
CONFLICTS = frozenset({"entity_exists", "event_id_conflict"})
# Diagnostic codes about the path, not the body: an event sent to an entity id that cannot
# be one is no invalid event (event_invalid would send the client to the body)
ABOUT_THE_PATH = frozenset({"entity_id_invalid"})


def from_error(exc: KimariError, subject: Subject) -> Response:
    """The problem+json answer to any KimariError. Engine faults are logged in full here and
    answered with each diagnostic's code and message only: where the backend failed (policy
    files, rule ids, hints about the host) is for the operator, not the client."""
    if exc.code in CONFLICTS:
        return from_diagnostics(409, exc.diagnostics, exc.diagnostics[0].message, exc.code)
    code = exc.problem_name()
    if isinstance(exc, InputError) and all(d.code in ABOUT_THE_PATH for d in exc.diagnostics):
        return from_diagnostics(422, exc.diagnostics, Msg("the request is invalid"), exc.code)
    if isinstance(exc, InputError) and subject.input_code is not None:
        code = subject.input_code
    errors: list[Diagnostic] = exc.diagnostics
    if isinstance(exc, StoreUnavailable):  # the cause (host, driver error) is the operator's
        log.warning("%s: %s", code, exc)
        return unavailable(RETRIABLE_DETAIL, code, exc.retry_after)
    if isinstance(exc, RetryLater):  # nothing was applied: retriable, and worth a log line
        log.warning("%s: %s", code, exc.diagnostics[0].message if exc.diagnostics else exc)
        after = str(exc.retry_after).encode()
        return problem(
            exc.http_status,
            code,
            subject.detail(exc),
            errors=errors,
            headers=[(b"retry-after", after)],
            retriable=True,
        )
    if isinstance(exc, EngineFault):
        log.error("engine fault: %s", exc)
        errors = [Diagnostic(d.code, d.message) for d in exc.diagnostics]
    if isinstance(exc, StoreDamaged):  # its file and SQLite's words are the operator's
        log.error("%s", exc)
        return problem(exc.http_status, code, DAMAGED_DETAIL)
    return problem(exc.http_status, code, subject.detail(exc), errors=errors)


def internal_error(what: str) -> Response:
    """The answer to an exception nobody meant (a bug of ours): a 500 `internal_error` whose
    `error_id` is logged here with the trace, so an operator finds the one from the other.
    Call it inside the `except` block; the client never sees the trace nor the message."""
    error_id = secrets.token_hex(8)
    log.error("internal error %s on %s", error_id, what, exc_info=True)
    return problem(
        500,
        "internal_error",
        Msg("internal error; it was logged with the id {id}", id=error_id),
        error_id=error_id,
    )


def unavailable(detail: str, code: str = "worker_unavailable", retry_after: int = 1) -> Response:
    """A retriable 503: the request was not decided (or not acknowledged); send it again."""
    return problem(
        503, code, detail, headers=[(b"retry-after", str(retry_after).encode())], retriable=True
    )
