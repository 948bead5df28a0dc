"""Request bodies: the one JSON parser, and the envelopes around the facts or the event.

    decision  {"facts": {...}, "at"?: "...", "settings"?: {...}, "decision_id"?: "..."}
    event     {"event": {...}, "actor": {...}, "at"?, "settings"?, "event_id"?}
    import    {"state": "...", "facts"?: {...}}

An envelope is described, not coded: which keys it allows, which it requires, and which
type a key's value must have. One checker (`Envelope.check`) reads the description, so a
decision, each item of a batch, a flow event and an import refuse an unknown key, a missing
key or a wrong type with the same kind of diagnostic and JSON pointer. What is inside the
envelope (facts, event fields, settings values) is the engine's to check, against the
policy; here only the outer shape is, before any policy is looked at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from engine.core.errors import Diagnostic
from engine.core.suggest import did_you_mean
from engine.service.problems import RequestProblem, from_diagnostics, problem

DECISION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def parse_body(body: bytes) -> Any:
    """The body's JSON value; RequestProblem (400) if there is no body or it is not JSON."""
    if not body:
        raise RequestProblem(problem(400, "body_missing", "the request needs a JSON body"))
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestProblem(problem(400, "json_invalid", f"malformed JSON: {exc}")) from None


@dataclass(frozen=True, slots=True)
class Key:
    """One key of an envelope. `accepts`: the type its value must have, or the pattern a text
    must match (None: anything); null counts as absent. `code` and `message`: the diagnostic
    of a value it does not accept."""

    required: bool = False
    accepts: type | re.Pattern[str] | None = None
    code: str = "type_mismatch"
    message: str = ""

    def takes(self, value: Any) -> bool:
        if value is None or self.accepts is None:
            return True
        if isinstance(self.accepts, re.Pattern):
            return isinstance(value, str) and self.accepts.fullmatch(value) is not None
        return isinstance(value, self.accepts)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The keys of a request body, and the codes its problems are answered with."""

    keys: Mapping[str, Key]
    detail: str  # the problem's detail
    code: str | None = None  # the problem's code; None: named by the diagnostics
    missing: str = "missing_field"  # the diagnostic code of a required key left out
    not_object: str = "request_invalid"  # the diagnostic code of a body that is no object

    def check(self, value: Any, prefix: str = "") -> list[Diagnostic]:
        """Every problem of `value`'s envelope, each with its pointer under `prefix`."""
        if not isinstance(value, dict):
            message = "the body must be a JSON object"
            return [Diagnostic(self.not_object, message, pointer=prefix)]
        problems = [
            Diagnostic(
                "unknown_field",
                f"unknown field '{name}'",
                pointer=f"{prefix}/{name}",
                hint=did_you_mean(name, self.keys),
            )
            for name in value
            if name not in self.keys
        ]
        for name, key in self.keys.items():
            if key.required and name not in value:
                problems.append(
                    Diagnostic(self.missing, f"'{name}' is required", pointer=f"{prefix}/{name}")
                )
        for name, key in self.keys.items():
            if name in value and not key.takes(value[name]):
                problems.append(Diagnostic(key.code, key.message, pointer=f"{prefix}/{name}"))
        return problems

    def read(self, body: bytes) -> dict[str, Any]:
        """The parsed body if its envelope is right; else RequestProblem (400 or 422)."""
        request = parse_body(body)
        problems = self.check(request)
        if problems:
            raise RequestProblem(from_diagnostics(422, problems, self.detail, self.code))
        return request  # type: ignore[no-any-return]  # check() refuses anything but a dict


DECISION_REQUEST = Envelope(
    {
        "facts": Key(required=True),
        "at": Key(accepts=str, code="at_invalid", message="'at' must be a date-time text"),
        "settings": Key(
            accepts=dict, code="settings_invalid", message="'settings' must be an object"
        ),
        "decision_id": Key(
            accepts=DECISION_ID,
            code="decision_id_invalid",
            message="'decision_id' must be 1-128 letters, digits or . _ : -",
        ),
    },
    detail="the decision request is not valid",
)
# A flow body's envelope problems are all request_invalid, under the diagnostic codes the
# flow API has always used; `at` and `settings` of an event are the flow engine's to check.
EVENT_REQUEST = Envelope(
    {
        "event": Key(required=True),
        "actor": Key(required=True),  # its shape is the flow engine's (engine/flow/actors.py)
        "at": Key(),
        "settings": Key(),
        "event_id": Key(),
    },
    detail="the request is invalid",
    code="request_invalid",
    missing="required",
    not_object="type_mismatch",
)
IMPORT_REQUEST = Envelope(
    {"state": Key(required=True), "facts": Key()},
    detail="the request is invalid",
    code="request_invalid",
    missing="required",
    not_object="type_mismatch",
)
