"""Compile a policy document into a CompiledPolicy, reporting every problem.

The pipeline is a list of named stages (STAGES) over one `Build`; each
stage adds what it learns and records diagnostics instead of stopping, so a
policy with ten mistakes reports ten errors with their lines. Stages after a
failed one still run where they can (a rule with a bad condition does not
hide a misspelt setting in the next rule).

    schema      the document against schemas/policy.schema.json
    header      id, title, hit policy; id must equal the file name
    facts       load and compile the facts schema
    settings    declared settings and their defaults
    data        data-set declarations and their entry schemas
    derived     parse, order by dependency (no cycles), type-check
    outcome     declared outcome fields, defaults, merges
    rules       conditions, then-values, reasons; citations; duplicates
    reachable   rules that can never apply under hit policy 'first'
    durable     conditions to a durable_rules ruleset (limits checked)
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine import durable_compile
from engine.durable_adapter import MAX_EXPRESSION_SLOTS, MAX_RULES, expression_slots
from engine.errors import Diagnostic, Location, PolicyError, Severity, sort_diagnostics
from engine.facts import FactsValidator, compile_facts_schema
from engine.lang import ast
from engine.lang.calendar import parse_date
from engine.lang.check import Checker, Root, Scope
from engine.lang.parser import ExprError, Problem, parse
from engine.lang.pycompile import (
    EvalFailure,
    compile_conditions,
    compile_expr,
    fold_constants,
    path_getter,
)
from engine.lang.types import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    NUMBER,
    STRING,
    Type,
    dataset_of,
    list_of,
    record,
)
from engine.load import Document, join_pointer, read_yaml_file, revision_of
from engine.model import (
    RESERVED_ROOTS,
    CompiledPolicy,
    DatasetSpec,
    Derived,
    Expr,
    Message,
    OutcomeField,
    Reason,
    Rule,
    Setting,
    Source,
    Template,
    Text,
    Value,
)
from engine.schema import project_schema, validate_document
from engine.suggest import did_you_mean

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
    facts_bytes: bytes = b""
    settings: dict[str, Setting] = field(default_factory=dict)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    derived: list[Derived] = field(default_factory=list)
    outcome: dict[str, OutcomeField] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    used_roots: set[str] = field(default_factory=set)
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
        derived_types = (
            derived if derived is not None else {d.name: d.expr.type for d in self.derived}
        )
        roots["derived"] = Root(record(derived_types), "derived")
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
            return None
        except EvalFailure as exc:
            self._problem(
                Problem(exc.node.start, exc.node.end, "invalid_constant", exc.message),
                source,
                rule_id,
            )
            return None
        checker = Checker(scope)
        type_ = checker.check(node)
        for problem in checker.problems:
            self._problem(problem, source, rule_id)
        if checker.problems:
            return None
        self._note_usage(node)
        return Expr(text, node, type_, checker.types, source, compile_expr(node))

    def _note_usage(self, node: ast.Node) -> None:
        for sub in node.walk():
            path = ast.path_of(sub)
            if path and len(path) >= 2 and path[0] in ("settings", "derived", "data"):
                self.used_roots.add(f"{path[0]}.{path[1]}")
            if isinstance(sub, ast.Call) and sub.name == "find" and len(sub.args) == 2:
                target, probe = ast.path_of(sub.args[0]), sub.args[1]
                if target and len(target) == 2 and isinstance(probe, ast.RecordLit):
                    self.find_keys.setdefault(target[1], set()).add(tuple(sorted(probe.keys)))

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
            if expected is not None and not _fits(expr.type, expected):
                self.error(
                    "type_mismatch",
                    f"{what} must be {expected.describe()}, but this "
                    f"expression is {expr.type.describe()}",
                    pointer,
                    rule_id=rule_id,
                )
                return None
            return Value(expr=expr)
        if expected is not None and not _constant_fits(raw, expected):
            self.error(
                "type_mismatch",
                f"{what} must be {expected.describe()}, got {raw!r}",
                pointer,
                rule_id=rule_id,
                hint="start the text with '=' if it is an expression",
            )
            return None
        return Value(constant=raw)

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
                    "unbalanced '{' or '}' in message (write '{{' or '}}' for a literal brace)",
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


def _fits(actual: Type, expected: Type) -> bool:
    if expected.kind == "any" or actual.kind == "any":
        return True
    if expected.kind == "number" and actual.kind == "integer":
        return True
    if actual.kind == "null":
        return True
    return actual.kind == expected.kind


def _constant_fits(value: Any, expected: Type) -> bool:
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


def stage_schema(build: Build) -> None:
    problems = validate_document(build.document, project_schema("policy.schema.json"))
    build.diagnostics.extend(problems)
    if not problems:
        build.data = build.document.data


def stage_header(build: Build) -> None:
    data = build.data
    stem = build.path.name.removesuffix(".yaml").removesuffix(".yml")
    if data["id"] != stem:
        build.error(
            "policy_id_mismatch",
            f"policy id '{data['id']}' must equal the file name '{stem}'",
            "/id",
            hint=f"rename the file to {data['id']}.yaml or set id: {stem}",
        )
    if "flow" in data and data.get("kind", "decision") != "flow":
        build.error(
            "flow_in_decision",
            "'flow' belongs to a flow policy; this one is a decision policy",
            "/flow",
            key=True,
            hint="add 'kind: flow' (and drop 'rules') or remove 'flow'",
        )


def stage_facts(build: Build) -> None:
    path = build.relative(build.data["facts"])
    try:
        raw = path.read_bytes()
    except OSError:
        build.error(
            "facts_schema_missing",
            f"facts schema '{build.data['facts']}' not found (paths are relative to the "
            "policy file)",
            "/facts",
        )
        return
    build.facts_bytes = raw
    validator = _compile_schema_file(build, raw, path, "/facts")
    if validator is None:
        return
    build.facts = validator
    fields = validator.type.fields or {}
    for name in fields:
        if name in RESERVED_ROOTS:
            build.error(
                "reserved_fact_name",
                f"the facts schema defines '{name}', a name the policy language reserves",
                "/facts",
                hint="rename that fact field",
            )


def _compile_schema_file(
    build: Build, raw: bytes, path: Path, pointer: str
) -> FactsValidator | None:
    try:
        schema = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        build.diagnostics.append(
            Diagnostic(
                "schema_file_invalid", f"not valid JSON: {exc}", Location(_shown(path), 1, 1)
            )
        )
        return None
    try:
        return compile_facts_schema(schema, source=_shown(path))
    except PolicyError as exc:
        build.diagnostics.extend(exc.diagnostics)
        build.error(
            "schema_file_invalid",
            f"'{path.name}' is not a usable schema (see the errors reported in that file)",
            pointer,
        )
        return None


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def stage_settings(build: Build) -> None:
    for name, spec in build.data.get("settings", {}).items():
        pointer = join_pointer("/settings", name)
        type_ = SETTING_TYPES[spec["type"]]
        enum = tuple(spec["enum"]) if "enum" in spec else None
        default = spec["default"]
        if type_.kind == "date" and isinstance(default, str):
            try:
                default = parse_date(default)
            except ValueError as exc:
                build.error("invalid_default", str(exc), join_pointer(pointer, "default"))
                continue
        elif not _constant_fits(default, type_):
            build.error(
                "invalid_default",
                f"default of setting '{name}' must be {type_.describe()}, got {default!r}",
                join_pointer(pointer, "default"),
            )
        if enum is not None and default not in enum:
            build.error(
                "invalid_default",
                f"default {default!r} of setting '{name}' is not one of {list(enum)}",
                join_pointer(pointer, "default"),
            )
        if enum is not None:
            type_ = Type(type_.kind, enum=enum)
        build.settings[name] = Setting(
            name,
            type_,
            default,
            enum,
            spec.get("minimum"),
            spec.get("maximum"),
            Text.of(spec.get("label")),
            tuple(spec.get("refs", ())),
            build.document.positions.key(pointer),
        )


def stage_data(build: Build) -> None:
    for name, spec in build.data.get("data", {}).items():
        pointer = join_pointer("/data", name)
        path = build.relative(spec["schema"])
        try:
            raw = path.read_bytes()
        except OSError:
            build.error(
                "data_schema_missing",
                f"schema '{spec['schema']}' of data set '{name}' not found",
                join_pointer(pointer, "schema"),
            )
            continue
        validator = _compile_schema_file(build, raw, path, join_pointer(pointer, "schema"))
        if validator is None:
            continue
        entry = validator.type.item if validator.type.kind == "list" else validator.type
        entry = entry or ANY
        match = dict(spec.get("match", {}))
        for field_name in match:
            if entry.field(field_name) is None:
                build.error(
                    "unknown_data_field",
                    f"data set '{name}' has no field '{field_name}' to match on",
                    join_pointer(pointer, "match"),
                    hint=did_you_mean(field_name, entry.fields or {}),
                )
        source = str(build.relative(spec["source"])) if "source" in spec else None
        build.datasets[name] = DatasetSpec(
            name,
            entry,
            validator,
            str(path),
            source,
            spec.get("key"),
            match,
            (),
            Text.of(spec.get("label")),
            build.document.positions.key(pointer),
        )


def stage_derived(build: Build) -> None:
    declared = build.data.get("derived", {})
    parsed: dict[str, ast.Node] = {}
    for name, spec in declared.items():
        try:
            parsed[name] = parse(spec["value"])
        except ExprError:
            continue  # reported when the value is checked below
    order, cyclic = _dependency_order(list(declared), parsed)
    for name in cyclic:
        build.error(
            "derived_cycle",
            f"derived value '{name}' depends on itself (through {', '.join(sorted(cyclic))})",
            join_pointer("/derived", name),
            key=True,
        )
    known: dict[str, Type] = {}
    for name in order:
        spec = declared[name]
        pointer = join_pointer(join_pointer("/derived", name), "value")
        source = Source(build.document.positions, pointer, spec["value"])
        expr = build.expression(spec["value"], source, build.scope(derived=known))
        if expr is None:
            known[name] = ANY
            continue
        known[name] = expr.type
        build.derived.append(
            Derived(
                name,
                expr,
                Text.of(spec.get("label")),
                tuple(spec.get("refs", ())),
                build.document.positions.key(join_pointer("/derived", name)),
            )
        )


def _dependency_order(
    names: list[str], parsed: Mapping[str, ast.Node]
) -> tuple[list[str], set[str]]:
    """Derived values in an order where each comes after what it reads; and those in cycles."""
    deps = {n: _derived_refs(parsed[n]) & set(names) if n in parsed else set() for n in names}
    order: list[str] = []
    state: dict[str, int] = {}
    cyclic: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cyclic.update(stack[stack.index(name) :])
            return
        state[name] = 1
        for dep in sorted(deps[name]):
            visit(dep, [*stack, dep])
        state[name] = 2
        order.append(name)

    for name in names:
        visit(name, [name])
    return [n for n in order if n not in cyclic], cyclic


def _derived_refs(node: ast.Node) -> set[str]:
    found = set()
    for sub in node.walk():
        path = ast.path_of(sub)
        if path and len(path) >= 2 and path[0] == "derived":
            found.add(path[1])
    return found


def stage_outcome(build: Build) -> None:
    declared = build.data.get("outcome", {})
    types = {name: _outcome_type(spec) for name, spec in declared.items()}
    scope = build.scope()
    computed_scope = build.scope(outcome=types)
    for name, spec in declared.items():
        pointer = join_pointer("/outcome", name)
        type_ = types[name]
        merge = spec.get("merge", "last")
        allowed = MERGES_FOR.get(merge)
        if allowed is not None and type_.kind not in allowed | {"any"}:
            build.error(
                "invalid_merge",
                f"merge '{merge}' does not suit a {type_.kind} field",
                join_pointer(pointer, "merge"),
            )
        rank = tuple(spec["rank"]) if "rank" in spec else None
        if merge == "rank" and rank is None:
            rank = type_.enum
            if rank is None:
                build.error(
                    "missing_rank",
                    f"outcome field '{name}' merges by rank but lists no "
                    "'rank' (or 'enum') to rank by",
                    pointer,
                    key=True,
                )
        default = (
            build.value(
                spec["default"],
                join_pointer(pointer, "default"),
                scope,
                type_,
                f"default of '{name}'",
            )
            if "default" in spec
            else Value()
        )
        computed = None
        if "value" in spec:
            raw = spec["value"]
            computed_value = build.value(
                raw if raw.startswith("=") else "=" + raw,
                join_pointer(pointer, "value"),
                computed_scope,
                type_,
                f"outcome '{name}'",
            )
            computed = computed_value.expr if computed_value else None
        build.outcome[name] = OutcomeField(
            name,
            type_,
            default or Value(),
            merge,
            rank,
            computed,
            Text.of(spec.get("label")),
            build.document.positions.key(pointer),
            tuple(spec.get("refs", ())),
        )
        _check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)


def _outcome_type(spec: Mapping[str, Any]) -> Type:
    base = OUTCOME_TYPES[spec.get("type", "any")]
    if "enum" in spec:
        return Type(base.kind, nullable=True, enum=tuple(spec["enum"]))
    return base.with_nullable()


def stage_rules(build: Build) -> None:
    scope = build.scope()
    seen: dict[str, int] = {}
    for index, spec in enumerate(build.data["rules"]):
        pointer = join_pointer("/rules", index)
        rule_id = spec["id"]
        if rule_id in seen:
            first = build.document.positions.value(join_pointer(f"/rules/{seen[rule_id]}", "id"))
            build.error(
                "duplicate_rule_id",
                f"rule id '{rule_id}' is already used at line {first.line}",
                join_pointer(pointer, "id"),
                rule_id=rule_id,
            )
            continue
        seen[rule_id] = index
        _check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), rule_id)
        rule = _rule(build, spec, index, pointer, scope)
        if rule is not None:
            build.rules.append(rule)
    if len(build.data["rules"]) > MAX_RULES:
        build.error(
            "too_many_rules",
            f"{len(build.data['rules'])} rules; the rule engine "
            f"supports at most {MAX_RULES} per policy",
            "/rules",
            hint="split the policy",
        )


def _check_refs(build: Build, refs: list[str], pointer: str, rule_id: str | None) -> None:
    if build.rulebook is None:
        return
    for i, ref in enumerate(refs):
        if ref not in build.rulebook:
            build.error(
                "unknown_ref",
                f"'{ref}' is not an ID of the rulebook index (policies/rulebook.tsv)",
                join_pointer(pointer, i),
                rule_id=rule_id,
                hint=did_you_mean(ref, build.rulebook),
            )


def _rule(
    build: Build, spec: Mapping[str, Any], index: int, pointer: str, scope: Scope
) -> Rule | None:
    rule_id = spec["id"]
    conditions = _conditions(build, spec["when"], join_pointer(pointer, "when"), scope, rule_id)
    then = _then(build, spec.get("then", {}), join_pointer(pointer, "then"), scope, rule_id)
    reason = (
        _reason(build, spec["reason"], join_pointer(pointer, "reason"), scope, rule_id)
        if "reason" in spec
        else None
    )
    priority = spec.get("priority")
    hit_policy = build.data.get("hit_policy", "collect")
    if hit_policy == "priority" and priority is None:
        build.error(
            "missing_priority",
            f"rule '{rule_id}' needs a 'priority' under hit policy 'priority'",
            pointer,
            key=True,
            rule_id=rule_id,
        )
    if conditions is None or then is None or ("reason" in spec and reason is None):
        return None
    check = compile_conditions([c.node for c in conditions])

    durable = _durable_condition(build, conditions, rule_id)
    if durable is None:
        return None
    return Rule(
        rule_id,
        index,
        tuple(spec["refs"]),
        Text.of(spec.get("label")),
        build.document.positions.value(pointer),
        tuple(conditions),
        check,
        durable,
        tuple(then),
        reason,
        priority or 0,
    )


def _conditions(
    build: Build, when: Any, pointer: str, scope: Scope, rule_id: str
) -> list[Expr] | None:
    items = [when] if not isinstance(when, list) else when
    out: list[Expr] = []
    ok = True
    for i, item in enumerate(items):
        item_pointer = pointer if not isinstance(when, list) else join_pointer(pointer, i)
        text = ("true" if item else "false") if isinstance(item, bool) else item
        source = Source(build.document.positions, item_pointer, text)
        expr = build.expression(text, source, scope, rule_id=rule_id)
        if expr is None:
            ok = False
            continue
        if expr.type.kind not in ("boolean", "any"):
            build.diagnostics.append(
                Diagnostic(
                    "type_mismatch",
                    f"a condition must be true or false, but this is {expr.type.describe()}",
                    expr.location(),
                    pointer=item_pointer,
                    rule_id=rule_id,
                    hint="compare it, e.g. x == 'value' or x > 0",
                )
            )
            ok = False
            continue
        out.append(expr)
    return out if ok else None


def _durable_condition(build: Build, conditions: list[Expr], rule_id: str) -> Any:
    compiler = build.conditions
    ok = True
    parts = []
    for expr in conditions:
        compiler.types = expr.types
        try:
            parts.append(compiler.compile(expr.node))
        except durable_compile.NotCompilable as exc:
            problem = exc.problem
            build.diagnostics.append(
                Diagnostic(
                    problem.code,
                    problem.message,
                    expr.location(_at(expr.node, problem.start)),
                    pointer=expr.source.pointer,
                    rule_id=rule_id,
                    hint=problem.hint,
                )
            )
            ok = False
    if not ok:
        return None
    combined = parts[0] if len(parts) == 1 else {"$and": parts}
    slots = expression_slots(combined)
    if slots > MAX_EXPRESSION_SLOTS:
        build.diagnostics.append(
            Diagnostic(
                "not_durable_compilable",
                f"rule '{rule_id}' is too complex for the rule engine: it needs {slots} "
                f"expression slots, durable_rules allows {MAX_EXPRESSION_SLOTS} per rule",
                conditions[0].location(),
                pointer=conditions[0].source.pointer,
                rule_id=rule_id,
                hint="comparisons between two fields and nested and/or cost slots; move part "
                "of the condition into a derived value",
            )
        )
        return None
    return combined


def _at(node: ast.Node, start: int) -> ast.Node:
    for sub in node.walk():
        if sub.start == start:
            return sub
    return node


def _then(
    build: Build, spec: Mapping[str, Any], pointer: str, scope: Scope, rule_id: str
) -> list[tuple[str, Value]] | None:
    out: list[tuple[str, Value]] = []
    ok = True
    for name, raw in spec.items():
        field_pointer = join_pointer(pointer, name)
        declared = build.outcome.get(name)
        if build.outcome and declared is None:
            build.error(
                "unknown_outcome_field",
                f"'{name}' is not a declared outcome field",
                field_pointer,
                key=True,
                rule_id=rule_id,
                hint=did_you_mean(name, build.outcome),
            )
            ok = False
            continue
        if declared is not None and declared.computed is not None:
            build.error(
                "outcome_field_computed",
                f"outcome '{name}' is computed by its 'value' and cannot be set by a rule",
                field_pointer,
                key=True,
                rule_id=rule_id,
            )
            ok = False
            continue
        expected = declared.type if declared else None
        if declared is not None and declared.merge == "collect":
            expected = declared.type.item or ANY  # each rule adds one item to the list
        value = build.value(raw, field_pointer, scope, expected, f"outcome '{name}'", rule_id)
        if value is None:
            ok = False
            continue
        if (
            declared
            and declared.type.enum
            and value.expr is None
            and value.constant not in declared.type.enum
        ):
            build.error(
                "invalid_value",
                f"{value.constant!r} is not a value of outcome '{name}' "
                f"(one of {list(declared.type.enum)})",
                field_pointer,
                rule_id=rule_id,
                hint=did_you_mean(str(value.constant), map(str, declared.type.enum)),
            )
            ok = False
            continue
        out.append((name, value))
    return out if ok else None


def _reason(
    build: Build, spec: Mapping[str, Any], pointer: str, scope: Scope, rule_id: str
) -> Reason | None:
    message = build.message(spec["message"], join_pointer(pointer, "message"), scope, rule_id)
    action = (
        build.message(spec["action"], join_pointer(pointer, "action"), scope, rule_id)
        if "action" in spec
        else None
    )
    details: list[tuple[str, Value]] = []
    ok = message is not None and ("action" not in spec or action is not None)
    for name, raw in spec.get("details", {}).items():
        value = build.value(
            raw,
            join_pointer(join_pointer(pointer, "details"), name),
            scope,
            None,
            f"detail '{name}'",
            rule_id,
        )
        ok = ok and value is not None
        if value is not None:
            details.append((name, value))
    if not ok or message is None:
        return None
    return Reason(spec["code"], message, action, tuple(details))


def stage_reachable(build: Build) -> None:
    if build.data.get("hit_policy", "collect") != "first":
        return
    earlier: list[tuple[Rule, frozenset[str]]] = []
    for rule in build.rules:
        mine = _conjunct_set(rule)
        for other, theirs in earlier:
            if theirs <= mine:
                build.error(
                    "unreachable_rule",
                    f"rule '{rule.id}' can never apply: rule "
                    f"'{other.id}' (line {other.location.line}) comes first and matches "
                    "whenever it does",
                    f"/rules/{rule.index}",
                    key=True,
                    rule_id=rule.id,
                    hint="reorder the rules or make the earlier one narrower",
                )
                break
        earlier.append((rule, mine))


def _conjunct_set(rule: Rule) -> frozenset[str]:
    texts = set()
    for expr in rule.conditions:
        for node in ast.conjuncts(expr.node):
            text = re.sub(r"\s+", "", expr.snippet(node))
            if text != "true":
                texts.add(text)
    return frozenset(texts)


def stage_unused(build: Build) -> None:
    for kind, names in (
        ("settings", build.settings),
        ("derived", {d.name for d in build.derived}),
        ("data", build.datasets),
    ):
        for name in names:
            if f"{kind}.{name}" not in build.used_roots:
                build.warn(
                    f"unused_{'setting' if kind == 'settings' else kind}",
                    f"{kind}.{name} is declared but never used",
                    join_pointer(f"/{kind}", name),
                    key=True,
                )


def stage_durable(build: Build) -> None:
    hit_policy = build.data.get("hit_policy", "collect")
    ranked = sorted(build.rules, key=lambda r: (-r.priority, r.index))
    for rank, rule in enumerate(ranked):
        definition: dict[str, Any] = {"all": [{"m": rule.durable}]}
        if hit_policy in ("first", "priority"):
            definition["pri"] = rank + 1
        build.durable_rules[rule.id] = definition


STAGES: tuple[tuple[str, Callable[[Build], None]], ...] = (
    ("schema", stage_schema),
    ("header", stage_header),
    ("facts", stage_facts),
    ("settings", stage_settings),
    ("data", stage_data),
    ("derived", stage_derived),
    ("outcome", stage_outcome),
    ("rules", stage_rules),
    ("reachable", stage_reachable),
    ("unused", stage_unused),
    ("durable", stage_durable),
)


def compile_document(
    document: Document,
    *,
    rulebook: Mapping[str, str] | None = None,
    extra_roots: Mapping[str, Root] | None = None,
) -> CompiledPolicy:
    """Compile a policy document or raise PolicyError with every problem found."""
    build = Build(document, rulebook, dict(extra_roots or {}))
    build.conditions = durable_compile.ConditionCompiler({})
    for name, stage in STAGES:
        if name != "schema" and not build.data:
            break
        if name == "settings" and build.facts is None:
            break  # without its facts schema nothing else of the policy can be checked
        started = time.perf_counter()
        stage(build)
        build.timings[name] = time.perf_counter() - started
    errors = [d for d in build.diagnostics if d.is_error]
    if errors:
        raise PolicyError(sort_diagnostics(build.diagnostics))
    return _assemble(build)


def _assemble(build: Build) -> CompiledPolicy:
    data = build.data
    assert build.facts is not None
    datasets = {
        name: DatasetSpec(
            spec.name,
            spec.entry_type,
            spec.validator,
            spec.schema_path,
            spec.source_path,
            spec.key,
            spec.match,
            tuple(sorted(build.find_keys.get(name, ()))),
            spec.label,
            spec.location,
        )
        for name, spec in build.datasets.items()
    }
    builder = durable_compile.message_builder(build.conditions.fields, path_getter)
    revision = revision_of(build.document.text.encode("utf-8"), build.facts_bytes)
    policy = CompiledPolicy(
        id=data["id"],
        kind=data.get("kind", "decision"),
        title=Text.of(data["title"]) or Text(""),
        revision=revision,
        path=build.document.path,
        hit_policy=data.get("hit_policy", "collect"),
        facts=build.facts,
        settings=build.settings,
        datasets=datasets,
        derived=tuple(build.derived),
        outcome=build.outcome,
        rules=tuple(build.rules),
        durable_rules=build.durable_rules,
        build_message=builder,
        warnings=tuple(d for d in build.diagnostics if not d.is_error),
    )
    policy.extra["timings"] = dict(build.timings)
    return policy


def compile_file(
    path: str | Path, *, rulebook: Mapping[str, str] | None = None, display: str | None = None
) -> CompiledPolicy:
    return compile_document(read_yaml_file(path, display=display), rulebook=rulebook)


def coerce_setting(setting: Setting, value: Any) -> Any:
    """A setting value from a request, or ValueError saying why it is not acceptable."""
    kind = setting.type.kind
    if kind == "date" and isinstance(value, str):
        value = parse_date(value)
    elif kind == "date" and not isinstance(value, date):
        raise ValueError(f"must be a date (YYYY-MM-DD), got {value!r}")
    elif kind == "number" and isinstance(value, float):
        value = Decimal(repr(value))
    elif kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    elif kind != "date" and not _constant_fits(value, setting.type):
        raise ValueError(f"must be {setting.type.describe()}, got {value!r}")
    if value is None:
        raise ValueError("must not be null")
    if setting.enum is not None and value not in setting.enum:
        raise ValueError(f"must be one of {list(setting.enum)}, got {value!r}")
    if setting.minimum is not None and value < setting.minimum:
        raise ValueError(f"must be at least {setting.minimum}, got {value!r}")
    if setting.maximum is not None and value > setting.maximum:
        raise ValueError(f"must be at most {setting.maximum}, got {value!r}")
    return value
