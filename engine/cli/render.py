"""Text and JSON renderings of diagnostics, decisions and test reports."""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from engine.core.errors import Diagnostic, error_count
from engine.core.i18n import Msg, translate
from engine.core.jsonvalue import dumps
from engine.runtime.decision import Decision
from engine.testing.cases import TestReport

# The words of an explanation's verdicts, for people (the JSON keeps the codes). Every line
# here is shown in the language in effect (KIMARI_LANG, engine/cli/main.py).
VERDICTS = {"applied": Msg("applied"), "matched": Msg("matched"), "failed": Msg("failed")}


# C0 and C1 controls and the Unicode line separators: a text holding one could forge a line
# of its own in a text report (an audit row that never happened, a reason line of a decision)
# or overwrite one (\r); the bidirectional controls, which show a text in another order than
# it has (an approver reads "approve" where a message holds U+202E and the text reversed);
# and the backslash, so that a text that says "\n" is not read as one that held a newline
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
CONTROLS = re.compile(rf"[\\\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def printable(value: Any) -> str:
    """A text as one line of a text report, its controls escaped (\\n, \\x1b, \\u2028);
    any other value as JSON writes it. The JSON outputs keep the text as it is."""
    text = value if isinstance(value, str) else dumps(value).decode()
    return CONTROLS.sub(_escape, text)


# A diagnostic's controls, not its backslashes: its messages quote escapes as written
# (`\ud800 is half of a UTF-16 surrogate pair`), and a doubled backslash would misquote them.
EXCERPT = 160  # characters of a source line shown around a diagnostic's column
_DIAGNOSTIC_CONTROLS = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI}]")


def _escape(found: re.Match[str]) -> str:
    char = found[0]
    code = ord(char)
    return ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def echo(text: str) -> None:
    """click.echo of a text that may be large, written whole or refused: a write past a full
    disk returns short (CPython's buffered writer gives back the count; its text layer drops
    the rest without a word), so the rest is written again, and that write fails (ENOSPC,
    EFBIG: engine/cli/main.py says file_unwritable) instead of leaving the output cut."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (tests' StringIO): nothing lower to write to
        click.echo(text)
        return
    sys.stdout.flush()
    view = memoryview((text + "\n").encode(sys.stdout.encoding or "utf-8"))
    while view:
        written = out.write(view)
        if not written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]
    out.flush()


def to_json(value: Any) -> str:
    return dumps(value, indent=True).decode()


@functools.lru_cache(maxsize=64)
def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def diagnostic_text(diagnostic: Diagnostic, *, source: bool = True) -> str:
    """`file:line:col: code: message (hint)`, then the source line and a caret under the column.
    One line, its controls escaped: a message quotes what it was given (a fact's key, a
    value), and a newline or an escape sequence in it could forge a line of the report."""
    text = _DIAGNOSTIC_CONTROLS.sub(_escape, diagnostic.render())
    loc = diagnostic.location
    if not source or loc is None:
        return text
    lines = _lines(loc.file)
    if not 1 <= loc.line <= len(lines):
        return text
    shown, before = _excerpt(lines[loc.line - 1], loc.col)
    caret = " " * _display_width(before) + "^"
    return f"{text}\n    {shown}\n    {caret}"


def _excerpt(line: str, col: int) -> tuple[str, str]:
    """The source line as shown under a diagnostic, and its part before the column: at most
    EXCERPT characters around the column (a data file of one 1.2 MB line was echoed whole),
    its controls escaped as the message's are (a tab or an escape sequence in a comment)."""
    at = min(max(col - 1, 0), len(line))
    start = max(0, min(at - EXCERPT // 2, len(line) - EXCERPT))
    end = start + EXCERPT
    head = "…" if start > 0 else ""
    tail = "…" if end < len(line) else ""
    shown = head + line[start:end] + tail
    before = head + line[start:at]
    return _DIAGNOSTIC_CONTROLS.sub(_escape, shown), _DIAGNOSTIC_CONTROLS.sub(_escape, before)


def _display_width(text: str) -> int:
    """Columns a terminal uses: East Asian wide characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def diagnostics_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(diagnostic_text(d) for d in diagnostics)


def diagnostics_json(diagnostics: Iterable[Diagnostic]) -> str:
    return to_json({"errors": [d.to_dict() for d in diagnostics]})


def decision_text(decision: Decision) -> str:
    body = decision.to_dict()
    out = [
        translate(
            Msg(
                "{policy} (revision {revision}) at {at}, backend {backend}, {elapsed} µs",
                policy=decision.policy_id,
                revision=decision.revision,
                at=body["at"],
                backend=decision.backend,
                elapsed=body["elapsed_us"],
            )
        ),
        translate(Msg("decision {id}", id=decision.decision_id)),
        "",
        translate(Msg("outcome:")),
    ]
    out.extend(f"  {k}: {_short(v)}" for k, v in body["outcome"].items())
    fired = ", ".join(decision.fired) or Msg("none (no rule applied)")
    out.append(translate(Msg("applied rules: {rules}", rules=fired)))
    if body["reasons"]:
        out.append(translate(Msg("reasons:")))
        for reason in body["reasons"]:
            out.append(
                f"  - {reason['code']} [{reason['rule']}; {', '.join(reason['refs'])}]: "
                f"{printable(reason['message']['ja'])}"
            )
            if "action" in reason:
                action = printable(reason["action"]["ja"])
                out.append("      " + translate(Msg("action: {action}", action=action)))
            extra = {
                k: v
                for k, v in reason.items()
                if k not in ("rule", "refs", "code", "message", "action")
            }
            if extra:
                out.append("      " + ", ".join(f"{k}: {_short(v)}" for k, v in extra.items()))
    if decision.explanation:
        out.extend(explanation_text(decision.explanation))
    return "\n".join(out)


def explanation_text(explanation: Mapping[str, Any]) -> list[str]:
    out = ["", translate(Msg("derived values:"))]
    for item in explanation.get("derived", []):
        out.append(f"  {item['name']} = {_short(item['value'])}    {_loc(item['location'])}")
    out.append(translate(Msg("rules:")))
    marks = {"applied": "✓", "matched": "~", "failed": "✗"}
    for rule in explanation.get("rules", []):
        line = (
            f"  {marks[rule['verdict']]} {rule['rule']} ({', '.join(rule['refs'])}) "
            f"{translate(VERDICTS.get(rule['verdict'], rule['verdict']))}"
            f"    {_loc(rule['location'])}"
        )
        out.append(line)
        if rule["verdict"] == "matched":
            out.append(f"      {rule['note']}")
        failed = rule.get("failed")
        if failed:
            values = ", ".join(f"{k} = {_short(v)}" for k, v in failed["values"].items())
            false = translate(Msg("false: {condition}", condition=failed["condition"]))
            out.append(f"      {false}    {_loc(failed['location'])}")
            if values:
                out.append("      " + translate(Msg("with {values}", values=values)))
    return out


def _loc(location: Mapping[str, Any]) -> str:
    return f"{location['file']}:{location['line']}:{location['col']}"


def _short(value: Any) -> str:
    text = printable(value)
    return text if len(text) <= 120 else text[:117] + "..."


def report_text(report: TestReport) -> str:
    out = []
    for result in report.results:
        mark = "PASS" if result.passed else "FAIL"
        out.append(f"{mark} {result.location}: {result.title}")
        out.extend(f"    {translate(failure)}" for failure in result.failures)
    if report.problems:
        out.append("")
        out.append(diagnostics_text(report.problems))
    for policy_id, rules in report.uncovered_rules.items():
        out.append(
            translate(
                Msg(
                    "rules of {policy} that no case applied: {rules}",
                    policy=policy_id,
                    rules=", ".join(rules),
                )
            )
        )
    if report.ids_without_rule:
        out.append(
            translate(
                Msg("rulebook IDs no rule cites: {ids}", ids=", ".join(report.ids_without_rule))
            )
        )
    if report.ids_without_test:
        out.append(
            translate(
                Msg(
                    "rulebook IDs no passing test case covers: {ids}",
                    ids=", ".join(report.ids_without_test),
                )
            )
        )
    passed, problems = sum(r.passed for r in report.results), len(report.problems)
    errors = error_count(problems)
    out.append(
        translate(
            Msg(
                "{passed} passed, {failed} failed, {errors}",
                passed=passed,
                failed=len(report.failed),
                errors=errors,
            )
        )
    )
    return "\n".join(out)


def report_json(report: TestReport) -> str:
    return to_json(
        {
            "passed": sum(r.passed for r in report.results),
            "failed": len(report.failed),
            "results": [
                {
                    "policy": r.policy_id,
                    "name": r.name,
                    "location": r.location.to_dict(),
                    "passed": r.passed,
                    "failures": [translate(f) for f in r.failures],
                    "fired": r.fired,
                    "refs": r.refs,
                }
                for r in report.results
            ],
            "errors": [d.to_dict() for d in report.problems],
            "uncovered_rules": report.uncovered_rules,
            "ids_without_rule": report.ids_without_rule,
            "ids_without_test": report.ids_without_test,
        }
    )
