"""Diagnostics and the exception tree.

Every problem kimari reports is a `Diagnostic` record with a stable `code`, a
message written for the person who has to fix it, and where it is: a file
position for policy problems, a JSON pointer for facts. Exceptions carry a
list of diagnostics so that callers can report all problems at once.

Each exception class also says how it ends things, so that no caller has to decide
it again: `exit_code` for the CLI (which exits in one place), and `http_status` with
`problem_code` for the service (engine/service/problems.py turns any KimariError into
its problem+json with them, in one place).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from engine.core.i18n import Msg, plural, translate


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A 1-based position in a source file."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "col": self.col}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    location: Location | None = None
    pointer: str | None = None
    rule_id: str | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.pointer or "", self.code)
        return (loc.file, loc.line, loc.col, self.pointer or "", self.code)

    def render(self, lang: str | None = None) -> str:
        """`file:line:col: code: message (hint)` — the form editors and CI parse. The message
        and hint in `lang` (default: the language in effect, engine/core/i18n.py); the rest
        is the same in every language."""
        where = str(self.location) if self.location else (self.pointer or "")
        prefix = f"{where}: " if where else ""
        level = "" if self.is_error else "warning: "
        text = f"{prefix}{level}{self.code}: {translate(self.message, lang)}"
        if self.hint:
            text += f" ({translate(self.hint, lang)})"
        return text

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        """The JSON record; `message` and `hint` in `lang` (default: the language in effect)."""
        out: dict[str, Any] = {"code": self.code, "message": translate(self.message, lang)}
        if self.location is not None:
            out["location"] = self.location.to_dict()
        if self.pointer is not None:
            out["pointer"] = self.pointer
        if self.rule_id is not None:
            out["rule_id"] = self.rule_id
        if self.hint is not None:
            out["hint"] = translate(self.hint, lang)
        if not self.is_error:
            out["severity"] = self.severity.value
        out.update(self.extra)
        return out


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)


def request_problem_code(diagnostics: Sequence[Diagnostic]) -> str:
    """The code of a problem with a request: `facts_invalid` when every diagnostic points
    into the facts (clients branch on it), the diagnostic's own code when it is alone,
    else `request_invalid`."""
    if diagnostics and all(_in_facts(d.pointer) for d in diagnostics):
        return "facts_invalid"
    if len(diagnostics) == 1:
        return diagnostics[0].code
    return "request_invalid"


def _in_facts(pointer: str | None) -> bool:
    """Whether a JSON pointer leads to the facts or into them (not to a key `/facts_x`)."""
    return pointer == "/facts" or (pointer or "").startswith("/facts/")


class KimariError(Exception):
    """Root of every error kimari raises on purpose."""

    exit_code = 2
    default_code = "error"
    # The service's answer: a bug of ours until a subclass says otherwise. A problem_code
    # of None lets the diagnostics name the problem (see problem_name).
    http_status = 500
    problem_code: str | None = None

    def __init__(self, diagnostics: Sequence[Diagnostic] | str, *, code: str | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(code or self.default_code, diagnostics)]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        # str(exc) is for logs and tracebacks: English, whatever language is in effect
        super().__init__("\n".join(d.render("en") for d in self.diagnostics))

    @property
    def code(self) -> str:
        return self.diagnostics[0].code if self.diagnostics else self.default_code

    def problem_name(self) -> str:
        """The problem+json code: the class's own, else the first diagnostic's."""
        return self.problem_code or self.code


class UsageError(KimariError):
    """The command or API call itself is wrong (unknown policy, bad option)."""

    exit_code = 2
    default_code = "usage"
    http_status = 404  # over HTTP: what was asked for is not there (unknown_policy, not_a_flow)


class PolicyError(KimariError):
    """A policy (or its facts schema, data set, test file) cannot be loaded."""

    exit_code = 2
    default_code = "policy_invalid"
    http_status = 500  # the service serves compiled policies: one unusable now is ours to fix


class InputError(KimariError):
    """Facts, settings or `at` of a decision request are invalid; nothing was decided."""

    exit_code = 1
    default_code = "facts_invalid"
    http_status = 422

    def problem_name(self) -> str:
        """`facts_invalid`, the sole diagnostic's code, or `request_invalid`."""
        return self.problem_code or request_problem_code(self.diagnostics)


class EvaluationError(KimariError):
    """A derived value or outcome could not be computed for these facts."""

    exit_code = 1
    default_code = "evaluation_error"
    http_status = 422
    problem_code = "evaluation_error"


class EngineFault(KimariError):
    """The rule backend misbehaved (crash, disagreement, limit): never the caller's fault."""

    exit_code = 2
    default_code = "engine_fault"
    http_status = 500
    problem_code = "engine_fault"


class RetryLater(KimariError):
    """The request met other writers and was not applied; nothing changed, and the same
    request sent again (with its event id, it cannot apply twice) will likely succeed."""

    exit_code = 2
    default_code = "retry_later"
    http_status = 503
    retry_after = 1  # seconds, for the service's Retry-After


class StoreUnavailable(RetryLater):
    """The store cannot be reached or written now (a database restart, a lost connection,
    a busy file): nothing was written, or at least nothing was acknowledged. Retriable."""

    default_code = "store_unavailable"
    problem_code = "store_unavailable"


class StoreDamaged(KimariError):
    """The store's file is damaged (SQLite found a malformed page, or the file is no
    database): what it holds cannot be read or written until it is restored from a backup.
    Not retriable; a 500 that says so, not an internal error."""

    exit_code = 2
    default_code = "store_damaged"
    problem_code = "store_damaged"


class Refused(KimariError):
    """A step of a policy's lifecycle was refused: the revision is not in a state that
    allows it, someone published in between, a job of the policy is already running."""

    exit_code = 1
    default_code = "refused"
    http_status = 409


class NotPermitted(Refused):
    """The principal may not take this step (an author approving their own revision)."""

    http_status = 403


class FailingTests(Refused):
    """A revision's YAML test cases fail: it cannot be submitted for approval."""

    default_code = "tests_failed"
    http_status = 422


class DraftInvalid(PolicyError):
    """A policy sent to be stored as a revision does not compile (file:line:col in it)."""

    http_status = 422
    problem_code = "policy_invalid"


def error_count(count: int) -> Msg:
    """ "1 error", "2 errors": the count of errors in a summary line."""
    return plural(count, Msg("{count} error", count=count), Msg("{count} errors", count=count))
