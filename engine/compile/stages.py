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

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from engine.compile.build import MERGES_FOR, OUTCOME_TYPES, SETTING_TYPES, Build, constant_fits
from engine.compile.model import (
    RESERVED_ROOTS,
    CompiledPolicy,
    DatasetSpec,
    Derived,
    OutcomeField,
    PolicySource,
    Setting,
    Source,
    Text,
    Value,
)
from engine.compile.rules import check_refs, stage_durable, stage_reachable, stage_rules
from engine.core.errors import Diagnostic, Location, PolicyError, sort_diagnostics
from engine.core.i18n import Msg, message_of
from engine.core.jsonvalue import (
    INT_MAX,
    INT_MIN,
    duplicate_diagnostic,
    duplicate_key,
    quoted,
    shown,
)
from engine.core.suggest import did_you_mean
from engine.durable import conditions as durable_conditions
from engine.durable.adapter import MAX_RULES
from engine.lang import ast
from engine.lang.calendar import parse_date
from engine.lang.check import Root
from engine.lang.parser import ExprError, parse
from engine.lang.pycompile import (
    path_getter,
)
from engine.lang.types import (
    ANY,
    UNKNOWN,
    Type,
)
from engine.source.facts import FactsValidator, compile_facts_schema
from engine.source.jsonplaces import JsonPlaces
from engine.source.schema import project_schema, validate_document
from engine.source.yaml import Document, join_pointer, not_utf8, read_yaml_file, revision_of


def stage_schema(build: Build) -> None:
    problems = over_limits(build.document)
    if problems:  # refused at once: checking 30,000 rules against the schema took seconds
        build.diagnostics.extend(problems)
        return
    problems = validate_document(build.document, project_schema("policy.schema.json"))
    build.diagnostics.extend(problems)
    if not problems:
        build.data = build.document.data


def over_limits(document: Document) -> list[Diagnostic]:
    """More rules (or flow transitions) than one durable_rules ruleset holds. Checked before
    anything else, so a policy far too large is refused in the time it takes to read it."""
    data = document.data if isinstance(document.data, dict) else {}
    flow = data.get("flow") if isinstance(data.get("flow"), dict) else {}
    problems = []
    for pointer, what, items in (
        ("/rules", Msg("rules"), data.get("rules")),
        ("/flow/transitions", Msg("transitions"), flow.get("transitions")),
    ):
        if isinstance(items, list) and len(items) > MAX_RULES:
            problems.append(
                Diagnostic(
                    "too_many_rules",
                    Msg(
                        "{count} {what}; the rule engine supports at most {limit} per policy",
                        count=len(items),
                        what=what,
                        limit=MAX_RULES,
                    ),
                    document.positions.value(pointer),
                    pointer=pointer,
                    hint=Msg("split the policy"),
                )
            )
    return problems


def stage_header(build: Build) -> None:
    data = build.data
    stem = build.path.name.removesuffix(".yaml").removesuffix(".yml")
    if data["id"] != stem:
        build.error(
            "policy_id_mismatch",
            Msg("policy id '{id}' must equal the file name '{stem}'", id=data["id"], stem=stem),
            "/id",
            hint=Msg("rename the file to {id}.yaml or set id: {stem}", id=data["id"], stem=stem),
        )
    if "flow" in data and data.get("kind", "decision") != "flow":
        build.error(
            "flow_in_decision",
            Msg("'flow' belongs to a flow policy; this one is a decision policy"),
            "/flow",
            key=True,
            hint=Msg("add 'kind: flow' (and drop 'rules') or remove 'flow'"),
        )


def stage_facts(build: Build) -> None:
    path = build.relative(build.data["facts"])
    try:
        raw = build.read(build.data["facts"])
    except OSError:
        build.error(
            "facts_schema_missing",
            Msg(
                "facts schema '{path}' not found (paths are relative to the policy file)",
                path=build.data["facts"],
            ),
            "/facts",
        )
        return
    validator = _compile_schema_file(build, raw, path, "/facts")
    if validator is None:
        return
    build.facts = validator
    fields = validator.type.fields or {}
    for name in fields:
        if name in RESERVED_ROOTS:
            build.error(
                "reserved_fact_name",
                Msg(
                    "the facts schema defines '{name}', a name the policy language reserves",
                    name=name,
                ),
                "/facts",
                hint=Msg("rename that fact field"),
            )


def _compile_schema_file(
    build: Build, raw: bytes, path: Path, pointer: str
) -> FactsValidator | None:
    try:
        raw.decode("utf-8")  # orjson would name the codec's complaint, not the byte's place
    except UnicodeDecodeError as exc:
        build.diagnostics.append(not_utf8(raw, exc, _shown(path)))
        return None
    try:
        schema = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        build.diagnostics.append(
            Diagnostic(
                "schema_file_invalid",
                Msg("not valid JSON: {reason}", reason=exc.msg),
                Location(_shown(path), exc.lineno, exc.colno),  # where the parser stopped
            )
        )
        return None
    try:
        _check_unique_keys(raw, schema, _shown(path))
        return compile_facts_schema(schema, source=_shown(path), text=raw.decode())
    except PolicyError as exc:
        build.diagnostics.extend(exc.diagnostics)
        build.error(
            "schema_file_invalid",
            Msg(
                "'{name}' is not a usable schema (see the errors reported in that file)",
                name=path.name,
            ),
            pointer,
        )
        return None


def _check_unique_keys(raw: bytes, schema: Any, shown: str) -> None:
    """PolicyError at the key an object of the file holds twice: orjson kept the last, so
    the schema read is not the one written (as policy YAML, and request bodies, refuse)."""
    held_twice = duplicate_key(raw, schema)
    if held_twice is not None:
        where = JsonPlaces(shown, raw.decode()).key(held_twice)
        raise PolicyError([dataclasses.replace(duplicate_diagnostic(held_twice), location=where)])


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def stage_settings(build: Build) -> None:
    for name, spec in build.data.get("settings", {}).items():
        pointer = join_pointer("/settings", name)
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)
        type_ = SETTING_TYPES[spec["type"]]
        enum = _enum_of(build, name, type_, spec, pointer)
        default = spec["default"]
        fits = True
        if type_.kind == "date" and isinstance(default, str):
            try:
                default = parse_date(default)
            except ValueError as exc:
                build.error("invalid_default", message_of(exc), join_pointer(pointer, "default"))
                continue
        elif not constant_fits(default, type_):
            build.error(
                "invalid_default",
                Msg(
                    "default of setting '{name}' must be {type}, got {value}",
                    name=name,
                    type=type_.describe(),
                    # as written: 70.0, which JSON would show as 70 (and then 70 is refused?)
                    value=str(default) if isinstance(default, Decimal) else quoted(default),
                ),
                join_pointer(pointer, "default"),
            )
            fits = False  # one problem, once: not also "below its minimum", "not one of"
        if fits and enum is not None and default not in enum:
            build.error(
                "invalid_default",
                Msg(
                    "default {value} of setting '{name}' is not one of {options}",
                    value=quoted(default),
                    name=name,
                    options=_options(enum),
                ),
                join_pointer(pointer, "default"),
            )
        _check_bounds(build, name, spec, default if fits else None, pointer)
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


def _enum_of(
    build: Build, name: str, type_: Type, spec: dict[str, Any], pointer: str
) -> tuple[Any, ...] | None:
    """The values of a setting's `enum` as its default and a request's value are read (a
    date's text parsed: a date never equals a text); a value that is not of the setting's
    type is refused at its place and left out."""
    if "enum" not in spec:
        return None
    values = []
    for index, value in enumerate(spec["enum"]):
        try:
            values.append(_setting_constant(value, type_))
        except ValueError as exc:
            build.error(
                "invalid_setting",
                Msg("enum of setting '{name}': {reason}", name=name, reason=message_of(exc)),
                join_pointer(join_pointer(pointer, "enum"), index),
            )
    return tuple(values)


def _setting_constant(value: Any, type_: Type) -> Any:
    """A value of a setting written in the policy: a date's text parsed; ValueError if it
    is not of the setting's type."""
    if type_.kind == "date" and isinstance(value, str):
        return parse_date(value)
    if not constant_fits(value, type_):
        raise ValueError(
            Msg("must be {type}, got {value}", type=type_.describe(), value=quoted(value))
        )
    return value


def _options(enum: tuple[Any, ...]) -> str:
    """The values of an enum as a message lists them: a JSON list, ["a", "b"] or [0.5, 1.5]
    (never Python's [Decimal('0.5')]), the first ten of a longer one."""
    listed = ", ".join(shown(value) for value in enum[:10])
    return "[" + listed + (", ...]" if len(enum) > 10 else "]")


def _check_bounds(
    build: Build, name: str, spec: dict[str, Any], default: Any, pointer: str
) -> None:
    """A setting's limits must leave room for a value, its default among them: a default
    outside them was used by every decision while the same value given was refused."""
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and high is not None and low > high:
        build.error(
            "invalid_setting",
            Msg(
                "setting '{name}': its minimum {low} is above its maximum {high}",
                name=name,
                low=low,
                high=high,
            ),
            join_pointer(pointer, "minimum"),
        )
        return
    if isinstance(default, bool) or not isinstance(default, int | Decimal):
        return  # a null default, or a type error already reported
    where = join_pointer(pointer, "default")
    if low is not None and default < low:
        message = Msg(
            "default {value} of setting '{name}' is below its minimum {limit}",
            value=str(default),  # a number: 2.5, not Decimal('2.5')
            name=name,
            limit=low,
        )
        build.error("invalid_default", message, where)
    if high is not None and default > high:
        message = Msg(
            "default {value} of setting '{name}' is above its maximum {limit}",
            value=str(default),
            name=name,
            limit=high,
        )
        build.error("invalid_default", message, where)


def stage_data(build: Build) -> None:
    for name, spec in build.data.get("data", {}).items():
        pointer = join_pointer("/data", name)
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)
        path = build.relative(spec["schema"])
        try:
            raw = build.read(spec["schema"])
        except OSError:
            build.error(
                "data_schema_missing",
                Msg(
                    "schema '{path}' of data set '{name}' not found", path=spec["schema"], name=name
                ),
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
                    Msg(
                        "data set '{name}' has no field '{field}' to match on",
                        name=name,
                        field=field_name,
                    ),
                    join_pointer(join_pointer(pointer, "match"), field_name),
                    key=True,  # at the misspelt name itself, not at the map's first key
                    hint=did_you_mean(field_name, entry.fields or {}),
                )
        key_field = spec.get("key")
        if key_field is not None and entry.fields is not None and entry.field(key_field) is None:
            build.error(  # a typo here would also turn off the check of duplicate keys
                "unknown_data_field",
                Msg(
                    "data set '{name}' has no field '{field}' to identify its entries by",
                    name=name,
                    field=key_field,
                ),
                join_pointer(pointer, "key"),
                hint=did_you_mean(key_field, entry.fields),
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
    order, cyclic = ast.dependency_order(list(declared), parsed, "derived")
    for name, cycle in cyclic.items():
        build.error(
            "derived_cycle",
            Msg(
                "derived value '{name}' depends on itself (through {cycle})",
                name=name,
                cycle=", ".join(cycle),
            ),
            join_pointer("/derived", name),
            key=True,
        )
    # a value in a cycle is reported once, above: reading it elsewhere is no second error
    known: dict[str, Type] = dict.fromkeys(cyclic, UNKNOWN)
    build.broken_derived.update(cyclic)
    scope = build.scope(derived=known)
    for name, spec in declared.items():
        check_refs(
            build, spec.get("refs", []), join_pointer(join_pointer("/derived", name), "refs"), None
        )
    for name in order:
        spec = declared[name]
        pointer = join_pointer(join_pointer("/derived", name), "value")
        source = Source(build.document.positions, pointer, spec["value"])
        expr = build.expression(spec["value"], source, scope)
        if expr is None:
            known[name] = UNKNOWN
            build.broken_derived.add(name)
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
                Msg("merge '{merge}' does not suit a {kind} field", merge=merge, kind=type_.kind),
                join_pointer(pointer, "merge"),
            )
        rank = tuple(spec["rank"]) if "rank" in spec else None
        if merge == "rank" and rank is None:
            rank = type_.enum
            if rank is None:
                build.error(
                    "missing_rank",
                    Msg(
                        "outcome field '{name}' merges by rank but lists no "
                        "'rank' (or 'enum') to rank by",
                        name=name,
                    ),
                    pointer,
                    key=True,
                )
        default = (
            build.value(
                spec["default"],
                join_pointer(pointer, "default"),
                scope,
                type_,
                Msg("default of '{name}'", name=name),
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
                Msg("outcome '{name}'", name=name),
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
        check_refs(build, spec.get("refs", []), join_pointer(pointer, "refs"), None)
    _check_outcome_cycles(build)


def _check_outcome_cycles(build: Build) -> None:
    """A computed outcome field may read another (they are computed in the order of what
    they read: OutcomePlan), but not itself, directly or through others."""
    computed = {n: f.computed.node for n, f in build.outcome.items() if f.computed is not None}
    _, cyclic = ast.dependency_order(list(computed), computed, "outcome")
    for name, cycle in cyclic.items():
        build.error(
            "outcome_cycle",
            Msg(
                "outcome '{name}' is computed from itself (through {cycle})",
                name=name,
                cycle=", ".join(cycle),
            ),
            join_pointer(join_pointer("/outcome", name), "value"),
        )


def _outcome_type(spec: Mapping[str, Any]) -> Type:
    base = OUTCOME_TYPES[spec.get("type", "any")]
    if "enum" in spec:
        return Type(base.kind, nullable=True, enum=tuple(spec["enum"]))
    return base.with_nullable()


def stage_unused(build: Build) -> None:
    # a name that an error already suggested ("did you mean 'derived.big'?") is unused only
    # because of that misspelling: the error says it once
    suggested = " ".join(d.hint or "" for d in build.diagnostics if d.is_error)
    for kind, names in (
        ("settings", build.settings),
        ("derived", {d.name for d in build.derived}),
        ("data", build.datasets),
    ):
        for name in names:
            root = f"{kind}.{name}"
            if root not in build.used_roots and f"'{root}'" not in suggested:
                build.warn(
                    f"unused_{'setting' if kind == 'settings' else kind}",
                    Msg("{name} is declared but never used", name=root),
                    join_pointer(f"/{kind}", name),
                    key=True,
                )


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
    files: Mapping[str, bytes] | None = None,
) -> CompiledPolicy:
    """Compile a policy document or raise PolicyError with every problem found.

    `files` gives the schemas the policy names instead of reading them from disk
    (a stored revision compiled again, see `engine.project.revisions`).
    """
    build = Build(document, rulebook, dict(extra_roots or {}), given_files=files)
    build.conditions = durable_conditions.ConditionCompiler({})
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
    return assemble_policy(build)


def assemble_policy(build: Build) -> CompiledPolicy:
    data = build.data
    assert build.facts is not None
    datasets = {
        name: dataclasses.replace(spec, find_keys=tuple(sorted(build.find_keys.get(name, ()))))
        for name, spec in build.datasets.items()
    }
    conditions = build.conditions
    builder = durable_conditions.message_builder(conditions.fields, path_getter, conditions.guards)
    guard = durable_conditions.guard_checker(conditions.fields, path_getter, conditions.guards)
    text = build.document.text
    revision = revision_of(text.encode("utf-8"), *build.files.values())
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
        key_names=durable_conditions.key_names(build.conditions.fields),
        warnings=tuple(d for d in build.diagnostics if not d.is_error),
        source=PolicySource(text, dict(build.files)),
    )
    policy.extra["timings"] = dict(build.timings)
    if guard is not None:  # the reference evaluator refuses what durable_rules would
        policy.extra["guard"] = guard
    return policy


def compile_file(
    path: str | Path, *, rulebook: Mapping[str, str] | None = None, display: str | None = None
) -> CompiledPolicy:
    return compile_document(read_yaml_file(path, display=display), rulebook=rulebook)


def coerce_setting(setting: Setting, value: Any) -> Any:
    """A setting value from a request, or ValueError saying why it is not acceptable."""
    infinite = _non_finite(value)
    if infinite is not None:  # NaN is unequal to itself and unordered: no enum or limit holds
        raise ValueError(Msg("must be a finite number, got {value}", value=infinite))
    kind = setting.type.kind
    if kind == "date" and isinstance(value, str):
        value = parse_date(value)
    elif kind == "date" and not isinstance(value, date):
        raise ValueError(Msg("must be a date (YYYY-MM-DD), got {value}", value=shown(value)))
    elif kind == "number" and isinstance(value, float):
        value = Decimal(repr(value))
    elif kind == "integer" and isinstance(value, float) and value.is_integer():
        value = int(value)
    elif kind == "integer" and isinstance(value, Decimal) and value == value.to_integral_value():
        # 3.0 as the CLI reads it (exactly): an integer, as JSON Schema and the service say;
        # one past 64 bits is refused below, never made an int of a million digits here
        value = int(value) if value.adjusted() < 19 else INT_MAX + 1
    elif kind != "date" and not constant_fits(value, setting.type):
        raise ValueError(
            Msg("must be {type}, got {value}", type=setting.type.describe(), value=shown(value))
        )
    if value is None:
        raise ValueError(Msg("must not be null"))
    if kind == "integer" and not INT_MIN <= value <= INT_MAX:
        raise ValueError(
            Msg("must be a 64-bit integer, from {low} to {high}", low=INT_MIN, high=INT_MAX)
        )
    if setting.enum is not None and value not in setting.enum:
        raise ValueError(
            Msg(
                "must be one of {options}, got {value}",
                options=_options(setting.enum),
                value=shown(value),
            )
        )
    if setting.minimum is not None and value < setting.minimum:
        raise ValueError(
            Msg("must be at least {limit}, got {value}", limit=setting.minimum, value=shown(value))
        )
    if setting.maximum is not None and value > setting.maximum:
        raise ValueError(
            Msg("must be at most {limit}, got {value}", limit=setting.maximum, value=shown(value))
        )
    return value


def _non_finite(value: Any) -> str | None:
    """NaN, Infinity or -Infinity as Decimal writes it, if `value` is one (a float from the
    Python API, a Decimal from a JSON reader that takes them); None for any other value."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)  # not shown(): JSON has no such number, shown() would write "NaN"
    return None
