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
from engine.core.i18n import Msg
from engine.core.jsonvalue import (
    TooDeep,
    TooLong,
    duplicate_diagnostic,
    duplicate_key,
    has_long_number,
    loads_request,
    why_not_json,
)
from engine.core.suggest import did_you_mean
from engine.service.problems import RequestProblem, from_diagnostics, problem

DECISION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
# Windows editors (Notepad, PowerShell's Out-File) start a file with one; JSON may ignore it
# (RFC 8259, 8.1), and the CLI does (engine/cli/inputs.py UTF8_BOM)
UTF8_BOM = b"\xef\xbb\xbf"


def parse_body(body: bytes) -> Any:
    """The body's JSON value; RequestProblem (400) if there is no body, it is not JSON, or an
    object in it holds a key twice (JSON parsers keep the last silently; policy YAML refuses
    duplicate keys, and so does the API). A leading UTF-8 byte order mark is read past, as
    the CLI reads past it in a file: every JSON body of the service is parsed here."""
    if body.startswith(UTF8_BOM):
        body = body[len(UTF8_BOM) :]  # lines and columns are counted after it
    if not body:
        raise RequestProblem(problem(400, "body_missing", Msg("the request needs a JSON body")))
    long_number = has_long_number(body)
    try:
        # an integer past 64 bits reaches the facts validator
        value = loads_request(body, long_number)
    except orjson.JSONDecodeError as exc:
        if exc.msg.startswith("depth limit exceeded"):  # orjson's own limit, 1024
            deep = TooDeep(None, f"line {exc.lineno} column {exc.colno}")
            raise _too_deep(deep) from None
        detail = Msg("malformed JSON: {reason}", reason=_reason(body, exc))
        raise RequestProblem(problem(400, "json_invalid", detail)) from None
    except TooDeep as exc:
        raise _too_deep(exc) from None
    except TooLong as exc:  # as the facts' validator refuses an integer past 64 bits
        detail = Msg("the body holds a number out of range")
        raise RequestProblem(from_diagnostics(422, [exc.diagnostic()], detail)) from None
    # a body parsed again exactly has no orjson text to compare with: the exact check
    pointer = duplicate_key(body, None if long_number else value)
    if pointer is not None:
        raise RequestProblem(
            from_diagnostics(
                400,
                [duplicate_diagnostic(pointer)],
                Msg("the body holds a key twice"),
                "duplicate_key",
            )
        )
    return value


def _reason(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Why the body is not JSON, where, in words a message translates: Python's parser read
    again for its reason (orjson's, "trailing comma is not allowed", stayed English, and
    its column was one before the console's and the CLI's); for a body that is not UTF-8
    the place of its first bad byte (orjson reports those at char 0 whatever their place).
    Only a refused body pays for the second reading."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as bad:
        before = body[: bad.start].decode("utf-8")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        return Msg(
            "not UTF-8: byte 0x{byte:02x} at line {line} column {column}",
            byte=body[bad.start],
            line=line,
            column=column,
        )
    if body.startswith(UTF8_BOM):  # one more after the one read past (Python's parser too)
        return Msg("a second byte order mark (line 1 column 1)")
    said = why_not_json(body)
    if said is not None:
        reason, line, column = said
        return Msg(
            "{reason} (line {line} column {column})", reason=reason, line=line, column=column
        )
    return Msg(  # what Python's parser takes and JSON has not
        "a value JSON does not have (NaN, Infinity, a lone \\u surrogate) "
        "(line {line} column {column})",
        line=exc.lineno,
        column=exc.colno,
    )


def _too_deep(exc: TooDeep) -> RequestProblem:
    detail = Msg("the body nests objects and arrays too deep")
    return RequestProblem(from_diagnostics(400, [exc.diagnostic()], detail, "json_too_deep"))


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
            message = Msg("the body must be a JSON object")
            return [Diagnostic(self.not_object, message, pointer=prefix)]
        problems = [
            Diagnostic(
                "unknown_field",
                Msg("unknown field '{name}'", name=name),
                pointer=f"{prefix}/{name}",
                hint=did_you_mean(name, self.keys),
            )
            for name in value
            if name not in self.keys
        ]
        for name, key in self.keys.items():
            if key.required and name not in value:
                problems.append(
                    Diagnostic(
                        self.missing,
                        Msg("'{name}' is required", name=name),
                        pointer=f"{prefix}/{name}",
                    )
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


SETTINGS = Key(accepts=dict, code="settings_invalid", message=Msg("'settings' must be an object"))
DECISION_REQUEST = Envelope(
    {
        "facts": Key(required=True),
        "at": Key(accepts=str, code="at_invalid", message=Msg("'at' must be a date-time text")),
        "settings": SETTINGS,
        "decision_id": Key(
            accepts=DECISION_ID,
            code="decision_id_invalid",
            message=Msg(
                "'decision_id' must be 1-128 letters, digits or . _ : -, "
                "the first a letter or digit"
            ),
        ),
    },
    detail=Msg("the decision request is not valid"),
)
# A flow body's envelope problems are named as a decision's are: a lone one by its own code
# (unknown_field, missing_field, settings_invalid), several by request_invalid. `at` and the
# values of `settings` are the flow engine's to check, but settings that are no object are
# refused here, as a decision's are.
EVENT_REQUEST = Envelope(
    {
        "event": Key(required=True),
        "actor": Key(required=True),  # its shape is the flow engine's (engine/flow/actors.py)
        "at": Key(),
        "settings": SETTINGS,
        "event_id": Key(),
    },
    detail=Msg("the request is invalid"),
)
IMPORT_REQUEST = Envelope(
    {"state": Key(required=True), "facts": Key()},
    detail=Msg("the request is invalid"),
)
# PUT /v1/data/{name}: the entries that replace a data set
DATA_REQUEST = Envelope(
    {
        "entries": Key(
            required=True,
            accepts=list,
            code="data_invalid",
            message=Msg("'entries' must be a list"),
        ),
        # an empty list empties the set on purpose only: a job exporting nothing by mistake
        # would otherwise take every entry out from under the policies reading it
        "allow_empty": Key(accepts=bool, code="request_invalid", message=Msg("true or false")),
    },
    detail=Msg('the body is {{"entries": [entry, ...]}}'),
    code="request_invalid",
)
