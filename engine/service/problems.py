"""RFC 9457 problem details: every error the service answers, as `application/problem+json`.

    {"type": "urn:kimari:problem:facts_invalid", "title": "...", "status": 422,
     "code": "facts_invalid", "detail": "...", "errors": [{code, message, pointer, ...}]}

`code` is the stable machine code (the same codes as the CLI's diagnostics); `errors`
lists every problem found, each a Diagnostic record with its JSON pointer or file:line.
Nothing here ever carries a stack trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.core.errors import Diagnostic
from engine.core.jsonvalue import dumps

CONTENT_TYPE = b"application/problem+json"
TYPE_PREFIX = "urn:kimari:problem:"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal error",
    503: "Service unavailable",
}

Response = tuple[int, list[tuple[bytes, bytes]], bytes]


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
        "title": TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
    }
    listed = [e.to_dict() if isinstance(e, Diagnostic) else e for e in errors]
    if listed:
        body["errors"] = listed
    body.update({k: v for k, v in extra.items() if v is not None})
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
    return status, [(b"content-type", CONTENT_TYPE), *headers], body


def from_diagnostics(
    status: int, diagnostics: list[Diagnostic], detail: str, code: str | None = None
) -> Response:
    """A problem listing every diagnostic. Its code: `code` if given; `facts_invalid` when
    every error points into the facts; else the diagnostic's own code if it is alone."""
    if code is None:
        if all((d.pointer or "").startswith("/facts") for d in diagnostics) and diagnostics:
            code = "facts_invalid"
        elif len(diagnostics) == 1:
            code = diagnostics[0].code
        else:
            code = "request_invalid"
    return problem(status, code, detail, errors=diagnostics)


def unavailable(detail: str, code: str = "worker_unavailable", retry_after: int = 1) -> Response:
    """A retriable 503: the request was not decided (or not acknowledged); send it again."""
    return problem(
        503, code, detail, headers=[(b"retry-after", str(retry_after).encode())], retriable=True
    )
