"""The state of one compilation, and how it checks expressions, values and messages.

A `Build` is what the compile stages share while one policy compiles: the
document, what the stages have learnt so far (facts schema, settings, data
sets, derived values, outcome fields, rules) and the diagnostics they record.
Its helpers turn YAML strings into checked expressions placed at their
file:line:col, so every stage reports problems the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.compile.model import (
    DatasetSpec,
    Derived,
    Expr,
    Message,
    OutcomeField,
    Rule,
    Setting,
    Source,
    Template,
    Value,
)
from engine.core.errors import Diagnostic, Severity
from engine.core.i18n import Msg, message_of
from engine.core.jsonvalue import quoted
from engine.lang import ast
from engine.lang.check import Checker, Root, Scope
from engine.lang.parser import ExprError, Problem, parse
from engine.lang.pycompile import (
    EvalFailure,
    compile_expr,
    fold_constants,
)
from engine.lang.types import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    NUMBER,
    STRING,
    UNKNOWN,
    Type,
    dataset_of,
    list_of,
    record,
)
from engine.source.facts import FactsValidator
from engine.source.yaml import Document, join_pointer

# the roots an expression names, read from its text when it cannot be parsed
_ROOT_NAMES = re.compile(r"\b(settings|derived|data)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")

SETTING_TYPES = {
    "boolean": BOOLEAN,
    "integer": INTEGER,
    "number": NUMBER,
    "string": STRING,
    "date": DATE,
}
OUTCOME_TYPES = {
    **SETTING_TYPES,
    "datetime": DATETIME,
    "list": list_of(ANY),
    "record": record(None),
    "any": ANY,
}
MERGES_FOR = {
    "any": {"boolean"},
    "all": {"boolean"},
    "sum": {"integer", "number"},
    "min": {"integer", "number", "date", "datetime"},
    "max": {"integer", "number", "date", "datetime"},
}


@dataclass
class Build:
    """State shared by the stages while one policy compiles."""

    document: Document
    rulebook: Mapping[str, str] | None
    extra_roots: Mapping[str, Root] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    facts: FactsValidator | None = None
    # The files the policy names (facts and data schemas), as given (a stored revision
    # being compiled again) or None to read them from disk beside the policy.
    given_files: Mapping[str, bytes] | None = None
    # Every file read, by the name the policy wrote, in reading order: with the policy
    # text they are the revision, and the store keeps them to compile it again.
    files: dict[str, bytes] = field(default_factory=dict)
    settings: dict[str, Setting] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    derived: list[Derived] = field(default_factory=list)
    # derived values whose expression is wrong (reported once, where it is): the rest of the
    # policy sees them as of any type, so that no use of one reports it again as unknown
    broken_derived: set[str] = field(default_factory=set)
    outcome: dict[str, OutcomeField] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    used_roots: set[str] = field(default_factory=set)
    # the outcome fields of a consulted decision that a flow's expressions read
    # (`event.decision.outcome.held`); "*" where the outcome or the answer is read whole
    outcome_reads: set[str] = field(default_factory=set)
    find_keys: dict[str, set[tuple[str, ...]]] = field(default_factory=dict)
    conditions: Any = None
    durable_rules: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.document.origin or Path(self.document.path)

    def error(
        self,
        code: str,
        message: str,
        pointer: str,
        *,
        key: bool = False,
        hint: str | None = None,
        rule_id: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        positions = self.document.positions
        location = positions.key(pointer) if key else positions.value(pointer)
        self.diagnostics.append(
            Diagnostic(
                code,
                message,
                location,
                pointer=pointer or "/",
                rule_id=rule_id,
                hint=hint,
                severity=severity,
            )
        )

    def warn(self, code: str, message: str, pointer: str, **kwargs: Any) -> None:
        self.error(code, message, pointer, severity=Severity.WARNING, **kwargs)

    @property
    def failed(self) -> bool:
        return any(d.is_error for d in self.diagnostics)

    def relative(self, name: str) -> Path:
        return (self.path.parent / name).resolve()

    def read(self, name: str) -> bytes:
        """The bytes of a file the policy names; OSError when there is none."""
        if self.given_files is None:
            raw = self.relative(name).read_bytes()
        elif name in self.given_files:
            raw = self.given_files[name]
        else:
            raise FileNotFoundError(name)
        self.files[name] = raw
        return raw

    # -- expressions ------------------------------------------------------------
    def scope(
        self,
        *,
        derived: Mapping[str, Type] | None = None,
        outcome: Mapping[str, Type] | None = None,
    ) -> Scope:
        roots: dict[str, Root] = {}
        facts_type = self.facts.type if self.facts else record(None)
        for name, type_ in (facts_type.fields or {}).items():
            roots[name] = Root(type_, "fact")
        roots["settings"] = Root(record({n: s.type for n, s in self.settings.items()}), "settings")
        roots["data"] = Root(
            record({n: dataset_of(d.entry_type) for n, d in self.datasets.items()}), "data"
        )
        if derived is None:
            derived_type = record(
                {name: UNKNOWN for name in self.broken_derived}
                | {d.name: d.expr.type for d in self.derived}
            )
        else:
            # The derived stage's own growing dict, shared, not copied: each value sees those
            # ordered before it, and a copy per value made checking n values cost n² in time
            # and memory (20,000 values: 5 GB).
            derived_type = Type("record", fields=derived)
        roots["derived"] = Root(derived_type, "derived")
        roots["at"] = Root(DATETIME, "at")
        if outcome is not None:
            roots["outcome"] = Root(record(outcome), "outcome")
        roots.update(self.extra_roots)
        return Scope(roots)

    def expression(
        self, text: str, source: Source, scope: Scope, *, rule_id: str | None = None
    ) -> Expr | None:
        """Parse, fold and check one expression; None (with diagnostics) if it is wrong."""
        try:
            node = fold_constants(parse(text))
        except ExprError as exc:
            self._problem(exc.problem, source, rule_id)
            self._note_usage_in_text(text)
            return None
        except EvalFailure as exc:
            self._problem(
                Problem(exc.node.start, exc.node.end, "invalid_constant", exc.message),
                source,
                rule_id,
            )
            self._note_usage_in_text(text)
            return None
        checker = Checker(scope)
        type_ = checker.check(node)
        self._note_usage(node)  # also when wrong: what it reads is used, not to report unused
        for problem in checker.problems:
            self._problem(problem, source, rule_id)
        if checker.problems:
            return None
        return Expr(text, node, type_, checker.types, source, compile_expr(node))

    def _note_usage(self, node: ast.Node) -> None:
        self.outcome_reads |= ast.paths_read(node, ("event", "decision", "outcome"))
        for sub in node.walk():
            path = ast.path_of(sub)
            if path and len(path) >= 2 and path[0] in ("settings", "derived", "data"):
                self.used_roots.add(f"{path[0]}.{path[1]}")
            if isinstance(sub, ast.Call) and sub.name == "find" and len(sub.args) == 2:
                target, probe = ast.path_of(sub.args[0]), sub.args[1]
                if target and len(target) == 2 and isinstance(probe, ast.RecordLit):
                    self.find_keys.setdefault(target[1], set()).add(tuple(sorted(probe.keys)))

    def _note_usage_in_text(self, text: str) -> None:
        """What an expression that cannot be parsed names: a value read only there would
        otherwise be warned about as unused, after the syntax error that is the cause."""
        for root, name in _ROOT_NAMES.findall(text):
            self.used_roots.add(f"{root}.{name}")

    def _problem(self, problem: Problem, source: Source, rule_id: str | None) -> None:
        self.diagnostics.append(
            Diagnostic(
                problem.code,
                problem.message,
                source.locate(problem.start),
                pointer=source.pointer,
                rule_id=rule_id,
                hint=problem.hint,
            )
        )

    def value(
        self,
        raw: Any,
        pointer: str,
        scope: Scope,
        expected: Type | None,
        what: str,
        rule_id: str | None = None,
    ) -> Value | None:
        """A then/default/detail value: a constant, or an expression when it starts with '='."""
        if isinstance(raw, str) and raw.startswith("="):
            body = raw[1:]
            offset = 1 + (len(body) - len(body.lstrip()))
            source = Source(self.document.positions, pointer, raw, offset)
            expr = self.expression(body.strip(), source, scope, rule_id=rule_id)
            if expr is None:
                return None
            if expected is not None and not fits(expr.type, expected):
                self.error(
                    "type_mismatch",
                    Msg(
                        "{what} must be {expected}, but this expression is {actual}",
                        what=what,
                        expected=expected.describe(),
                        actual=expr.type.describe(),
                    ),
                    pointer,
                    rule_id=rule_id,
                )
                return None
            return Value(expr=expr)
        if expected is not None and not constant_fits(raw, expected):
            self.error(
                "type_mismatch",
                Msg(
                    "{what} must be {expected}, got {value}",
                    what=what,
                    expected=expected.describe(),
                    value=quoted(raw),
                ),
                pointer,
                rule_id=rule_id,
                hint=Msg("start the text with '=' if it is an expression"),
            )
            return None
        if expected is not None and expected.kind in ("date", "datetime") and raw is not None:
            return self._instant_constant(raw, expected.kind, pointer, what, rule_id)
        return Value(constant=raw)

    def _instant_constant(
        self, raw: str, kind: str, pointer: str, what: str, rule_id: str | None
    ) -> Value | None:
        """A date or date-time written as a constant, read as the facts' are: a date
        YYYY-MM-DD, a date-time RFC 3339 with its offset ("yesterday" or "2024-02-30" was
        answered as written)."""
        from engine.lang.calendar import parse_date, parse_datetime

        try:
            value = parse_date(raw) if kind == "date" else parse_datetime(raw)
        except ValueError as exc:
            self.error(
                "type_mismatch",
                Msg("{what}: {reason}", what=what, reason=message_of(exc)),
                pointer,
                rule_id=rule_id,
            )
            return None
        return Value(constant=value)

    def template(
        self, raw: str, pointer: str, scope: Scope, rule_id: str | None
    ) -> Template | None:
        parts: list[str | Expr] = []
        ok = True
        for piece, start in _split_template(raw):
            if start is None:
                parts.append(piece)
                continue
            if start < 0:
                self.error(
                    "template_syntax",
                    Msg(
                        "unbalanced '{{' or '}}' in message "
                        "(write '{{{{' or '}}}}' for a literal brace)"
                    ),
                    pointer,
                    rule_id=rule_id,
                )
                return None
            expr = self.expression(
                piece, Source(self.document.positions, pointer, raw, start), scope, rule_id=rule_id
            )
            ok = ok and expr is not None
            if expr is not None:
                parts.append(expr)
        return Template(raw, tuple(parts)) if ok else None

    def message(
        self, data: Mapping[str, str], pointer: str, scope: Scope, rule_id: str | None
    ) -> Message | None:
        ja = self.template(data["ja"], join_pointer(pointer, "ja"), scope, rule_id)
        en = (
            self.template(data["en"], join_pointer(pointer, "en"), scope, rule_id)
            if "en" in data
            else None
        )
        return Message(ja, en) if ja is not None and ("en" not in data or en) else None


def _split_template(raw: str) -> list[tuple[str, int | None]]:
    """Literal text (start None) and expression holes (start = offset of the expression)."""
    out: list[tuple[str, int | None]] = []
    literal: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch in "{}" and raw[i : i + 2] in ("{{", "}}"):
            literal.append(ch)
            i += 2
            continue
        if ch == "}":
            return [("", -1)]
        if ch == "{":
            end = raw.find("}", i)
            if end < 0:
                return [("", -1)]
            if literal:
                out.append(("".join(literal), None))
                literal = []
            out.append((raw[i + 1 : end], i + 1))
            i = end + 1
            continue
        literal.append(ch)
        i += 1
    if literal or not out:
        out.append(("".join(literal), None))
    return out


def fits(actual: Type, expected: Type) -> bool:
    if expected.kind == "any" or actual.kind == "any":
        return True
    if expected.kind == "number" and actual.kind == "integer":
        return True
    if actual.kind == "null":
        return True
    return actual.kind == expected.kind


def constant_fits(value: Any, expected: Type) -> bool:
    kind = expected.kind
    if value is None or kind == "any":
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | Decimal) and not isinstance(value, bool)
    if kind in ("string", "date", "datetime"):
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, list)
    if kind == "record":
        return isinstance(value, dict)
    return True


# -- stages ----------------------------------------------------------------------
