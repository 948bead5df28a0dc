"""Facts schemas: validate and normalise the facts of a decision request.

Every decision validates its facts, so this is the hot path. The `jsonschema`
library costs ~50 µs a call; instead a facts schema (a subset of JSON Schema
2020-12, see `SUPPORTED`) is compiled once into a tree of closures that check,
normalise (dates, Decimal money) and point at problems in one pass.
`jsonschema` still checks the schema itself against the metaschema, and is the
oracle of the tests.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from engine.core.errors import Diagnostic, InputError, Location, PolicyError
from engine.core.i18n import Msg, message_of
from engine.core.jsonvalue import INT_MAX, INT_MIN, escape_pointer_token, not_64_bits, shown
from engine.core.suggest import did_you_mean
from engine.lang import types as lt
from engine.lang.calendar import parse_date, parse_datetime
from engine.source import memo
from engine.source.ecma_regex import compile_pattern
from engine.source.jsonplaces import JsonPlaces

if TYPE_CHECKING:
    import jsonschema

__all__ = ["FactsValidator", "compile_facts_schema", "parse_date", "parse_datetime"]

MAX_ERRORS = 50
# Word lists keep the subset readable at a glance.
SUPPORTED = frozenset(
    "type properties required additionalProperties enum const minimum maximum exclusiveMinimum"  # noqa: SIM905
    " exclusiveMaximum multipleOf minLength maxLength pattern format items minItems maxItems"
    " uniqueItems $ref $defs".split()
)
ANNOTATIONS = frozenset(
    "$schema $id $comment title description examples default deprecated readOnly writeOnly".split()  # noqa: SIM905
)
DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SUPPORTED_TEXT = ", ".join(sorted(SUPPORTED | ANNOTATIONS)) + ", x-*"
_ALL_KINDS = ("object", "array", "string", "integer", "number", "boolean", "null")

# A path is a linked list (parent, key): descending costs one tuple, and the
# pointer string is built only when a problem is reported.
Path = tuple[Any, str | int] | None
Errors = list[tuple[str, str, Path, str | None]]
Check = Callable[[Any, Path, Errors], Any]


class _FullError(Exception):
    """Raised once MAX_ERRORS problems are collected: the rest would be noise."""


def _fail(errs: Errors, code: str, message: str, path: Path, hint: str | None = None) -> None:
    errs.append((code, message, path, hint))
    if len(errs) >= MAX_ERRORS:
        raise _FullError


def _pointer(path: Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append("/" + escape_pointer_token(key))
    return "".join(reversed(parts))


def _kind_name(v: Any) -> str:
    """The JSON name of a value's type, for 'expected X, got Y'."""
    names = {bool: "boolean", int: "integer", float: "number", Decimal: "number", str: "string"}
    names |= {list: "array", dict: "object", type(None): "null"}
    return next((n for py, n in names.items() if isinstance(v, py)), type(v).__name__)


def _key(v: Any) -> Any:
    """A hashable key with JSON equality: 1 == 1.0, True != 1, deep in containers."""
    if isinstance(v, bool) or v is None:
        return ("b", v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, list):
        return ("l", tuple(_key(x) for x in v))
    if isinstance(v, dict):
        return ("d", frozenset((k, _key(x)) for k, x in v.items()))
    return v.isoformat() if isinstance(v, dt.date) else v


# --- formats -------------------------------------------------------------------------


def _format_check(parse: Callable[[str], Any]) -> Check:
    def check(v: Any, path: Path, errs: Errors) -> Any:
        if not isinstance(v, str):  # a date or datetime already: re-validation, YAML loaders
            if isinstance(v, dt.datetime) and v.utcoffset() is None:
                _fail(errs, "format", Msg("date-time needs a UTC offset such as +09:00"), path)
            return v
        try:
            return parse(v)
        except ValueError as e:
            return _fail(errs, "format", message_of(e), path)

    return check


_FORMATS: dict[str, tuple[type, Check]] = {
    "date": (dt.date, _format_check(parse_date)),
    "date-time": (dt.datetime, _format_check(parse_datetime)),
}


# --- values no keyword constrains ----------------------------------------------------


def _same(v: Any, path: Path, errs: Errors) -> Any:
    return v


def _out_of_range(v: int | Decimal, path: Path, errs: Errors) -> None:
    message = not_64_bits(v)
    return _fail(errs, "out_of_range", message, path)


def _int64(fb: list[Check]) -> Check:
    """An integer without limits: any int of 64 bits, as it is."""

    def check(v: Any, path: Path, errs: Errors) -> Any:
        if type(v) is not int:
            return fb[0](v, path, errs)
        if INT_MIN <= v <= INT_MAX:
            return v
        return _out_of_range(v, path, errs)

    return check


def _decimal(v: float | Decimal, path: Path, errs: Errors) -> Decimal | None:
    """Money is never float: a JSON number is the Decimal of what was written."""
    d = Decimal(repr(v)) if isinstance(v, float) else v
    if d.is_finite():
        return d
    return _fail(errs, "type_mismatch", Msg("expected a finite number, got {value}", value=v), path)


def _any(v: Any, path: Path, errs: Errors) -> Any:
    """Copy a value no schema describes: JSON-like values only, floats become Decimal, and
    integers of 64 bits at any depth (as a typed field's: durable_rules holds no more)."""
    if type(v) is int and not INT_MIN <= v <= INT_MAX:
        return _out_of_range(v, path, errs)
    if v is None or isinstance(v, str | int | dt.date):
        return v
    if isinstance(v, float | Decimal):
        return _decimal(v, path, errs)
    if isinstance(v, list):
        return [_any(x, (path, i), errs) for i, x in enumerate(v)]
    if isinstance(v, dict):
        return {k: _any(x, (path, k), errs) for k, x in v.items() if _str_key(k, path, errs)}
    return _fail(
        errs, "type_mismatch", Msg("expected a JSON value, got {type}", type=_kind_name(v)), path
    )


def _str_key(k: Any, path: Path, errs: Errors) -> bool:
    if not isinstance(k, str):  # YAML allows `1: x`; JSON and the rules do not
        _fail(
            errs,
            "type_mismatch",
            Msg("object keys must be strings, got {key}", key=shown(k)),
            (path, str(k)),
        )
    return isinstance(k, str)


# --- the validator ---------------------------------------------------------------------


class FactsValidator:
    """A compiled facts schema: `validate` checks and normalises, `type` feeds the checker."""

    __slots__ = ("_check", "_schema", "_type")

    def __init__(self, schema: Mapping[str, Any], check: Check, type_: lt.Type) -> None:
        self._schema, self._check, self._type = schema, check, type_

    @property
    def schema(self) -> Mapping[str, Any]:
        return self._schema

    @property
    def type(self) -> lt.Type:
        return self._type

    def validate(self, instance: Any, *, pointer: str = "") -> Any:
        """Return a new normalised value, or raise InputError with every problem found."""
        errs: Errors = []
        try:
            out = self._check(instance, None, errs)
        except _FullError:
            pass
        except RecursionError:
            errs.append(("too_deep", Msg("the value is nested too deeply"), None, None))
        if errs:
            raise InputError(
                [Diagnostic(c, m, pointer=pointer + _pointer(p), hint=h) for c, m, p, h in errs]
            )
        return out


def compile_facts_schema(
    schema: Mapping[str, Any], *, source: str, text: str | None = None, fast_paths: bool = True
) -> FactsValidator:
    """Compile `schema` once; PolicyError lists every reason it cannot be used.

    `text` is the JSON text `schema` was read from, if any: its problems are then placed
    at their line in `source`, else at its top. `fast_paths=False` compiles the general
    checks only: the tests compare the two. A schema of the same text compiled before in
    this process gives the same validator.
    """
    compiled = memo.key(f"facts-validator/{fast_paths}", schema, ordered=True)
    found = _COMPILED.get(compiled) if compiled is not None else None
    if found is not None:
        return found
    checked = memo.key("facts-schema", schema)  # a clean audit is remembered by content
    if not memo.known(checked):
        problems = list(_audit(schema))
        if problems:
            raise PolicyError(_placed(problems, source, text))
        memo.remember(checked)
    compiler = _Compiler(schema.get("$defs", {}), fast_paths)
    check, type_ = compiler.node(schema), compiler.static_type(schema, frozenset())
    validator = FactsValidator(schema, check, type_)
    if compiled is not None:
        if len(_COMPILED) >= COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[compiled] = validator
    return validator


# A validator is immutable and depends on the schema's text alone, so one compiled before is
# used again: a reload, a publication or a load in the same process compiled the 66 facts
# schemas of the shipped policies again, ~25% of loading them (docs/benchmarks.md). The key
# is that of the text as written (memo.key, ordered): key order orders the record fields the
# checker sees; a schema without one JSON text (NaN) is compiled anew each time.
# A validator's `schema` is then the first caller's: callers copy it, never change it.
COMPILED_MAX = 1024
_COMPILED: dict[str, FactsValidator] = {}


def forget_compiled() -> None:
    """Forget the validators compiled so far (a benchmark's fresh process)."""
    _COMPILED.clear()


# --- the compiler ----------------------------------------------------------------------

# Handlers of these types test the type themselves (one call per value on the hot
# path); a subclass (OrderedDict, a str Enum) is first made plain by these.
_PLAIN: dict[type, Callable[[Any], Any]] = {
    dict: dict,
    list: list,
    str: str.__str__,
    int: int.__int__,
}


class _Compiler:
    def __init__(self, defs: Mapping[str, Any], fast_paths: bool = True) -> None:
        self.defs = defs
        self.fast_paths = fast_paths
        self.done: dict[str, Check] = {}
        self.cells: dict[str, list[Check]] = {}

    def ref(self, ref: str) -> Check:
        """Compile a definition once; a recursive reference goes through a cell."""
        name = _ref_name(ref)
        if name in self.done:
            return self.done[name]
        if name in self.cells:
            cell = self.cells[name]
            return lambda v, path, errs: cell[0](v, path, errs)
        self.cells[name] = cell = [_same]
        cell[0] = self.done[name] = self.node(self.defs[name])
        return cell[0]

    def node(self, s: Any) -> Check:
        if s is True:
            return _any
        if "$ref" in s:
            return self.ref(s["$ref"])
        declared = s.get("type")
        kinds = {declared} if isinstance(declared, str) else set(declared or _ALL_KINDS)
        expected = " or ".join(k for k in _ALL_KINDS if k in kinds)
        keys, enum_code, enum_text = _enum(s)
        fallback: list[Check] = []
        table = self.handlers(s, kinds, fallback)

        def check(v: Any, path: Path, errs: Errors) -> Any:
            h = table.get(type(v))
            if h is None:
                py = next((py for py in table if isinstance(v, py) and _is_a(v, py)), None)
                if py is None:  # a wrong type: its other keywords would only add noise
                    return _fail(
                        errs,
                        "type_mismatch",
                        Msg(
                            "expected {expected}, got {type}", expected=expected, type=_kind_name(v)
                        ),
                        path,
                    )
                h, v = table[py], _PLAIN[py](v) if py in _PLAIN else v
            out = h(v, path, errs)
            if keys is not None and _key(v) not in keys:
                _fail(errs, enum_code, _not_in_enum(enum_code, enum_text, v), path)
            return out

        fallback.append(check)
        return _fast(table, keys, check) if self.fast_paths else check

    def handlers(self, s: Mapping[str, Any], kinds: set[str], fb: list[Check]) -> dict[type, Check]:
        """A handler per exact Python type; a type missing here is a mismatch."""
        table: dict[type, Check] = {}
        if "null" in kinds:
            table[type(None)] = _same
        if "boolean" in kinds:
            table[bool] = _same
        if "number" in kinds or "integer" in kinds:
            table[int] = _numeric(s, None, fb)
            table[float] = table[Decimal] = _numeric(s, "number" not in kinds, fb)
        if "string" in kinds:
            table[str] = _string(s, fb)
            if s.get("format") in _FORMATS:
                py, conv = _FORMATS[s["format"]]
                table[py] = conv
            elif "type" not in s:
                table[dt.date] = table[dt.datetime] = _same
        if "array" in kinds:
            table[list] = self.array_check(s, fb)
        if "object" in kinds:
            table[dict] = self.object_check(s, fb)
        return table

    def array_check(self, s: Mapping[str, Any], fb: list[Check]) -> Check:
        item = self.node(s["items"]) if "items" in s else _any
        lo, hi, unique = s.get("minItems"), s.get("maxItems"), s.get("uniqueItems", False)

        def check(v: Any, path: Path, errs: Errors) -> Any:
            if type(v) is not list:
                return fb[0](v, path, errs)
            if lo is not None and len(v) < lo:
                _fail(
                    errs,
                    "min_items",
                    Msg("must have at least {limit} item(s), got {count}", limit=lo, count=len(v)),
                    path,
                )
            if hi is not None and len(v) > hi:
                _fail(
                    errs,
                    "max_items",
                    Msg("must have at most {limit} item(s), got {count}", limit=hi, count=len(v)),
                    path,
                )
            if unique and len(v) > 1:
                _unique(v, path, errs)
            return [item(x, (path, i), errs) for i, x in enumerate(v)]

        return check

    def object_check(self, s: Mapping[str, Any], fb: list[Check]) -> Check:
        props = {k: self.node(sub) for k, sub in s.get("properties", {}).items()}
        required = tuple(s.get("required", ()))
        required_set, closed = frozenset(required), s.get("additionalProperties") is False

        def check(v: Any, path: Path, errs: Errors) -> Any:
            if type(v) is not dict:
                return fb[0](v, path, errs)
            out = {}
            for k, x in v.items():
                c = props.get(k)
                if c is not None:
                    out[k] = c(x, (path, k), errs)
                elif closed:
                    _unknown(k, props, path, errs)
                elif _str_key(k, path, errs):
                    out[k] = _any(x, (path, k), errs)
            if not required_set <= v.keys():
                for k in (k for k in required if k not in v):
                    _fail(
                        errs, "required", Msg("missing required field '{name}'", name=k), (path, k)
                    )
            return out

        return _fast_object(s, props, required_set, check) if self.fast_paths else check

    def static_type(self, s: Any, active: frozenset[str]) -> lt.Type:
        """Static type of a node; a recursive reference is cut to `any`."""
        if not isinstance(s, Mapping):
            return lt.ANY
        if "$ref" in s:
            name = _ref_name(s["$ref"])
            return lt.ANY if name in active else self.static_type(self.defs[name], active | {name})
        declared = s.get("type")
        if declared is None and _all_strings(s.get("enum")):
            declared = "string"  # an untyped enum of texts is a text field for the checker
        names = [declared] if isinstance(declared, str) else list(declared or ["any"])
        rest = [k for k in names if k != "null"]
        if not rest:
            return lt.NULL
        if len(rest) == 1:
            base = self.kind_type(rest[0], s, active)
        else:  # a union: only integer|number has a useful common type
            base = lt.NUMBER if set(rest) <= {"integer", "number"} else lt.ANY
        return base.with_nullable() if "null" in names else base

    def kind_type(self, kind: str, s: Mapping[str, Any], active: frozenset[str]) -> lt.Type:
        if kind == "object":
            required = set(s.get("required", ()))
            props = s.get("properties", {})
            fields = {k: self.static_type(v, active) for k, v in props.items()}
            fields = {k: t if k in required else t.with_nullable() for k, t in fields.items()}
            open_ = not fields and s.get("additionalProperties") is not False
            return lt.record(None if open_ else fields)
        if kind == "array":
            return lt.list_of(self.static_type(s.get("items", True), active))
        if kind == "string":
            fmt = {"date": lt.DATE, "date-time": lt.DATETIME}.get(s.get("format", ""))
            values = s["enum"] if "enum" in s else [s["const"]] if "const" in s else None
            if fmt is None and values is not None:
                return lt.Type("string", enum=tuple(x for x in values if isinstance(x, str)))
            return fmt or lt.STRING
        simple = {"integer": lt.INTEGER, "number": lt.NUMBER, "boolean": lt.BOOLEAN}
        return simple.get(kind, lt.ANY)


def _all_strings(values: Any) -> bool:
    return isinstance(values, list) and bool(values) and all(isinstance(v, str) for v in values)


_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_SIMPLE_TYPES: dict[str, type] = {"string": str, "integer": int, "boolean": bool}


def _simple(sub: Any) -> tuple[type, frozenset[str] | None] | None:
    """(exact Python type, allowed texts) of a property that is valid as it is, or None.

    A text, integer or boolean without limits, pattern or converting format is valid
    exactly when it has that Python type (and, for an enum, is one of its texts), and
    it is returned unchanged: such fields need no call of their own on the fast path.
    """
    if not isinstance(sub, Mapping) or not isinstance(sub.get("type"), str):
        return None
    py = _SIMPLE_TYPES.get(sub["type"])
    keys = {k for k in sub if k not in _ANNOTATIONS and not k.startswith("x-")}
    if py is None or not keys <= {"type", "enum", "format"}:
        return None
    if "format" in keys and (py is not str or sub["format"] in _FORMATS):
        return None
    enum = sub.get("enum")
    if enum is None:
        return py, None
    if py is not str or not all(isinstance(e, str) for e in enum):
        return None
    return py, frozenset(enum)


_BOUNDS = {"string": ("minLength", "maxLength"), "integer": ("minimum", "maximum")}


def _bounded(sub: Any) -> tuple[type, int, int] | None:
    """(exact Python type, low, high) of a text with length limits or an integer with a
    range, and nothing else to check: valid exactly when it has that type and its length
    (a text) or value (an integer, within 64 bits too) lies in [low, high]."""
    if not isinstance(sub, Mapping) or not isinstance(sub.get("type"), str):
        return None
    if sub["type"] not in _BOUNDS:
        return None
    kind = sub["type"]
    low_key, high_key = _BOUNDS[kind]
    keys = {k for k in sub if k not in _ANNOTATIONS and not k.startswith("x-")}
    if not keys <= {"type", low_key, high_key} or keys == {"type"}:
        return None
    low, high = sub.get(low_key), sub.get(high_key)
    if any(x is not None and (type(x) is not int) for x in (low, high)):
        return None  # a float limit: the general check compares it as written
    if kind == "string":
        return str, low or 0, INT_MAX if high is None else high
    low = INT_MIN if low is None else max(low, INT_MIN)
    return int, low, INT_MAX if high is None else min(high, INT_MAX)


def _fast_object(
    s: Mapping[str, Any], props: dict[str, Check], required: frozenset[str], general: Check
) -> Check:
    """An object check that accepts the common valid case in one frame.

    Plain fields are tested in a loop instead of a call each; anything unusual (a
    missing or unknown field, a wrong type, an error in a nested value) is decided
    again by `general`, so results and errors are exactly general's.
    """
    known, count = frozenset(props), len(required)
    if not required <= known:
        return general  # a required field that no property declares: general decides
    declared = s.get("properties", {})
    simple = {name: found for name, sub in declared.items() if (found := _simple(sub))}
    fixed = [(name, *simple[name]) for name in simple if name in required]
    # Three loops, so that none tests whether a field has an enum (an enum is of texts) or
    # is an integer (which must fit 64 bits).
    fixed_plain = tuple((name, py) for name, py, enum in fixed if enum is None and py is not int)
    fixed_ints = tuple(name for name, py, _ in fixed if py is int)
    fixed_enums = tuple((name, enum) for name, _, enum in fixed if enum is not None)
    optional = tuple((name, *simple[name]) for name in simple if name not in required)
    bounded = {
        name: found
        for name, sub in declared.items()
        if name not in simple and (found := _bounded(sub))
    }
    # texts and integers with limits, required or present: type and limits in one test each
    fixed_bounded = tuple((name, *bounded[name]) for name in bounded if name in required)
    optional_bounded = tuple((name, *bounded[name]) for name in bounded if name not in required)
    plain = simple.keys() | bounded.keys()
    nested = tuple((name, props[name], name in required) for name in declared if name not in plain)
    flat = bool(plain)

    def check(v: Any, path: Path, errs: Errors) -> Any:
        # As many keys as required fields and all of them there (a KeyError below
        # otherwise): then no other key is, and the key sets need no comparison.
        if type(v) is not dict or (len(v) != count and not v.keys() <= known):
            return general(v, path, errs)
        if flat:  # an object of nested values only skips the loops of plain fields
            try:
                for name, py in fixed_plain:
                    # An exact type: `type(True) is bool` keeps a bool out of an integer.
                    if type(v[name]) is not py:
                        return general(v, path, errs)
                for name in fixed_ints:
                    x = v[name]
                    if type(x) is not int or not INT_MIN <= x <= INT_MAX:
                        return general(v, path, errs)
                for name, enum in fixed_enums:
                    x = v[name]
                    if type(x) is not str or x not in enum:
                        return general(v, path, errs)
                for name, py, low, high in fixed_bounded:
                    x = v[name]
                    if type(x) is not py or not low <= (len(x) if py is str else x) <= high:
                        return general(v, path, errs)
            except KeyError:
                return general(v, path, errs)
            for name, py, low, high in optional_bounded:
                x = v.get(name, _MISSING)
                if x is not _MISSING and (
                    type(x) is not py or not low <= (len(x) if py is str else x) <= high
                ):
                    return general(v, path, errs)
            for name, py, enum in optional:
                x = v.get(name, _MISSING)
                if x is not _MISSING and (
                    type(x) is not py
                    or (enum is not None and x not in enum)
                    or (py is int and not INT_MIN <= x <= INT_MAX)
                ):
                    return general(v, path, errs)
        out = dict(v)
        if not nested:
            return out
        before = len(errs)
        try:
            for name, sub_check, needed in nested:
                x = v.get(name, _MISSING)
                if x is not _MISSING:
                    out[name] = sub_check(x, (path, name), errs)
                elif needed:
                    break
            else:
                if len(errs) == before:
                    return out
        except _FullError:
            pass  # general finds the same errors again, in its own order
        del errs[before:]
        return general(v, path, errs)

    return check


_MISSING = object()


def _is_a(v: Any, py: type) -> bool:
    """isinstance without Python's quirks: a bool is no number, a datetime no date."""
    if isinstance(v, bool) and py is not bool:
        return False
    return not (py is dt.date and isinstance(v, dt.datetime))


def _fast(table: dict[type, Check], keys: frozenset[Any] | None, general: Check) -> Check:
    """One call per value in the common cases; anything unusual goes to `general`."""
    plain = frozenset(py for py, h in table.items() if h is _same)
    if keys is not None and str in plain:  # a string enum

        def enum_check(v: Any, path: Path, errs: Errors) -> Any:
            return v if type(v) is str and v in keys else general(v, path, errs)

        return enum_check
    # The handler of the type this node mostly sees tests the type itself.
    primary = next((py for py in _PLAIN if py in table and py not in plain), None)
    if keys is None and primary is not None:
        return table[primary]
    if keys is None and plain:
        # e.g. an integer without limits: ints pass as they are, floats and Decimals
        # (which must be checked for a fraction) take the general path.

        def plain_check(v: Any, path: Path, errs: Errors) -> Any:
            return v if type(v) in plain else general(v, path, errs)

        return plain_check
    return general


def _enum(s: Mapping[str, Any]) -> tuple[frozenset[Any] | None, str, str]:
    """Keys to test `enum`/`const` with JSON equality, the code and the message."""
    if "enum" not in s and "const" not in s:
        return None, "", ""
    values = s.get("enum", [s.get("const")])
    listed = ", ".join(shown(x) for x in values[:10]) + (", ..." if len(values) > 10 else "")
    return frozenset(_key(x) for x in values), "enum" if "enum" in s else "const", listed


def _not_in_enum(code: str, allowed: str, value: Any) -> Msg:
    if code == "enum":
        return Msg("must be one of {allowed}, got {value}", allowed=allowed, value=shown(value))
    return Msg("must be {allowed}, got {value}", allowed=allowed, value=shown(value))


def _string(s: Mapping[str, Any], fb: list[Check]) -> Check:
    lo, hi = s.get("minLength"), s.get("maxLength")
    rx = compile_pattern(s["pattern"]) if "pattern" in s else None
    conv = _FORMATS[s["format"]][1] if s.get("format") in _FORMATS else None
    if lo is None and hi is None and rx is None and conv is None:
        return _same

    def check(v: Any, path: Path, errs: Errors) -> Any:
        if type(v) is not str:
            return fb[0](v, path, errs)
        if lo is not None and len(v) < lo:
            _fail(
                errs,
                "min_length",
                Msg("must be at least {limit} characters, got {count}", limit=lo, count=len(v)),
                path,
            )
        if hi is not None and len(v) > hi:
            _fail(
                errs,
                "max_length",
                Msg("must be at most {limit} characters, got {count}", limit=hi, count=len(v)),
                path,
            )
        if rx is not None and rx.search(v) is None:
            _fail(
                errs,
                "pattern",
                Msg(
                    "{value} does not match pattern `{pattern}`",
                    value=shown(v),
                    pattern=s["pattern"],
                ),
                path,
            )
        return v if conv is None else conv(v, path, errs)

    return check


def _numeric(s: Mapping[str, Any], integral: bool | None, fb: list[Check]) -> Check:
    """Handler for int (integral=None), or float/Decimal under number or integer only.

    Float limits and values are compared as Decimal(repr(x)): the number as written.
    """
    exact = {k: Decimal(repr(v)) if isinstance(v, float) else v for k, v in s.items()}
    lo, xlo = exact.get("minimum"), exact.get("exclusiveMinimum")
    hi, xhi = exact.get("maximum"), exact.get("exclusiveMaximum")
    m = int(s["multipleOf"]) if "multipleOf" in s else None
    if integral is None and lo is None and xlo is None and hi is None and xhi is None and m is None:
        return _int64(fb)

    def check(v: Any, path: Path, errs: Errors) -> Any:
        if integral is None and type(v) is not int:
            return fb[0](v, path, errs)
        n = v if integral is None else _decimal(v, path, errs)
        if n is None:
            return v
        if integral:
            if n != n.to_integral_value():
                return _fail(errs, "type_mismatch", Msg("expected integer, got number"), path)
            if not INT_MIN <= n <= INT_MAX:  # compared as Decimal: 1e300 never becomes an int
                return _out_of_range(v, path, errs)
            n = int(n)
        elif type(n) is int and not INT_MIN <= n <= INT_MAX:
            return _out_of_range(n, path, errs)
        if lo is not None and n < lo:
            _fail(errs, "minimum", Msg("must be >= {limit}, got {value}", limit=lo, value=n), path)
        if xlo is not None and n <= xlo:
            _fail(errs, "minimum", Msg("must be > {limit}, got {value}", limit=xlo, value=n), path)
        if hi is not None and n > hi:
            _fail(errs, "maximum", Msg("must be <= {limit}, got {value}", limit=hi, value=n), path)
        if xhi is not None and n >= xhi:
            _fail(errs, "maximum", Msg("must be < {limit}, got {value}", limit=xhi, value=n), path)
        if m is not None and (n % m if type(n) is int else _not_multiple(n, m)):
            _fail(
                errs,
                "multiple_of",
                Msg("must be a multiple of {factor}, got {value}", factor=m, value=n),
                path,
            )
        return n

    return check


def _not_multiple(n: Decimal, m: int) -> bool:
    """Exact at any size: Decimal's `%` gives up once the quotient passes 28 digits."""
    return n != n.to_integral_value() or int(n) % m != 0


def _unique(v: list[Any], path: Path, errs: Errors) -> None:
    seen: dict[Any, int] = {}
    for i, x in enumerate(v):
        if (j := seen.setdefault(_key(x), i)) != i:
            return _fail(
                errs,
                "unique_items",
                Msg("items {first} and {second} are equal; must be unique", first=j, second=i),
                path,
            )
    return None


def _unknown(k: Any, props: Mapping[str, Any], path: Path, errs: Errors) -> None:
    close = difflib.get_close_matches(str(k), list(props), n=1)
    hint = Msg("did you mean '{name}'?", name=close[0]) if close else None
    _fail(errs, "unknown_field", Msg("unknown field '{name}'", name=k), (path, str(k)), hint)


def _ref_name(ref: str) -> str:
    return unquote(ref.removeprefix("#/$defs/")).replace("~1", "/").replace("~0", "~")


# --- compile-time audit --------------------------------------------------------------


@functools.cache
def _metaschema() -> jsonschema.Draft202012Validator:
    # imported here: ~40 ms of a command's start, which a schema remembered clean need not pay
    from jsonschema import Draft202012Validator as Draft

    return Draft(Draft.META_SCHEMA, format_checker=Draft.FORMAT_CHECKER)  # as check_schema does


class _Problem(NamedTuple):
    """A reason a schema cannot be compiled, at `pointer` in it."""

    code: str
    message: str
    pointer: str
    at_key: bool = False  # shown at the key (an unknown keyword), not at its value
    hint: str | None = None


def _placed(problems: list[_Problem], source: str, text: str | None) -> list[Diagnostic]:
    """The audit's problems as diagnostics at their place in the schema's file."""
    places = JsonPlaces(source, text) if text is not None else None
    out = []
    for p in problems:
        if places is None:
            where = Location(source, 1, 1)
        else:
            where = places.key(p.pointer) if p.at_key else places.value(p.pointer)
        out.append(Diagnostic(p.code, p.message, location=where, pointer=p.pointer, hint=p.hint))
    return out


def _audit(schema: Any) -> Iterator[_Problem]:
    """Every reason the schema cannot be compiled, each once. The metaschema reaches some
    values through several of its parts (one error per part); a value kimari's own
    audit explains is left to that explanation."""
    if isinstance(schema, Mapping):
        defs = schema.get("$defs")
        own = list(_audit_node(schema, "", defs if isinstance(defs, Mapping) else {}, root=True))
    else:
        own = [_Problem("invalid_schema", Msg("a facts schema must be a JSON object"), "")]
    explained = {p.pointer for p in own}
    found: dict[tuple[str, str], _Problem] = {}
    for e in _metaschema().iter_errors(schema):
        where = "".join("/" + escape_pointer_token(p) for p in e.absolute_path)
        if where not in explained:
            problem = _metaschema_problem(e, where)
            found.setdefault((where, problem.message), problem)
    yield from found.values()
    yield from own


def _metaschema_problem(e: Any, where: str) -> _Problem:
    """JSON Schema's own words, except for a misspelt type, which it reports as "not valid
    under any of the given schemas"."""
    if e.absolute_path and e.absolute_path[-1] == "type" and e.validator == "anyOf":
        names = e.instance if isinstance(e.instance, list) else [e.instance]
        unknown = [n for n in names if n not in _ALL_KINDS]
        if unknown:
            return _Problem(
                "invalid_schema",
                Msg(
                    "{type} is not a type; the types are {types}",
                    type=shown(unknown[0]),
                    types=", ".join(sorted(_ALL_KINDS)),
                ),
                where,
                hint=did_you_mean(unknown[0], _ALL_KINDS) if isinstance(unknown[0], str) else None,
            )
    reason = Msg("not a valid JSON Schema 2020-12: {reason}", reason=e.message)
    return _Problem("invalid_schema", reason, where)


def _audit_node(
    node: Any, at: str, defs: Mapping[str, Any], root: bool = False
) -> Iterator[_Problem]:
    bad = "unsupported_schema_keyword"
    if node is False:
        text = Msg("the schema `false` is not supported; use additionalProperties: false")
        yield _Problem(bad, text, at)
    for key, val in node.items() if isinstance(node, Mapping) else ():
        here = f"{at}/{escape_pointer_token(key)}"
        if key in ANNOTATIONS or str(key).startswith("x-"):
            if key == "$id" and not root:
                text = Msg("'$id' is supported only at the top of a facts schema")
                yield _Problem(bad, text, here, at_key=True)
            if key == "$schema" and str(val).rstrip("#") != DIALECT:
                yield _Problem(bad, Msg("'$schema' must be {dialect}", dialect=DIALECT), here)
        elif key not in SUPPORTED:
            hint = did_you_mean(key, SUPPORTED | ANNOTATIONS)
            text = (
                Msg("keyword '{key}' is not supported", key=key)
                if hint  # a misspelling: the list of every keyword would bury the hint
                else Msg(
                    "keyword '{key}' is not supported; supported: {supported}",
                    key=key,
                    supported=_SUPPORTED_TEXT,
                )
            )
            yield _Problem(bad, text, here, at_key=True, hint=hint)
        elif key in ("properties", "$defs") and isinstance(val, Mapping):
            for name, sub in val.items():
                yield from _audit_node(sub, f"{here}/{escape_pointer_token(name)}", defs)
        elif key == "items":
            yield from _audit_node(val, here, defs)
        elif key == "additionalProperties" and not isinstance(val, bool):
            yield _Problem(bad, Msg("'additionalProperties' must be true or false"), here)
        elif key == "multipleOf" and not (isinstance(val, int | float) and float(val).is_integer()):
            yield _Problem(bad, Msg("'multipleOf' must be a whole number"), here)
        elif key == "$ref" and isinstance(val, str):
            yield from _audit_ref(val, node, here, defs)
        elif key == "pattern" and isinstance(val, str):
            yield from _audit_pattern(val, here)


def _audit_ref(ref: str, node: Mapping[str, Any], here: str, defs: Mapping) -> Iterator[_Problem]:
    name, bad = _ref_name(ref), "unsupported_ref"
    others = sorted(k for k in node if k in SUPPORTED and k not in ("$ref", "$defs"))
    if not ref.startswith("#/$defs/") or "/" in ref.removeprefix("#/$defs/"):
        text = Msg("only local '#/$defs/NAME' references are supported, not {ref}", ref=repr(ref))
        yield _Problem(bad, text, here)
    elif name not in defs:
        text = Msg("no definition {name} in $defs", name=repr(name))
        yield _Problem(bad, text, here, hint=did_you_mean(name, defs))
    elif others:
        text = Msg(
            "'$ref' cannot be combined with {others}: move them into the definition",
            others=str(others),
        )
        yield _Problem(bad, text, here)
    elif _ref_loops(name, defs):
        yield _Problem(bad, Msg("definition {name} refers only to itself", name=repr(name)), here)


def _audit_pattern(pattern: str, here: str) -> Iterator[_Problem]:
    """A pattern the metaschema took (Python reads it) that cannot be read as ECMA-262's."""
    try:
        compile_pattern(pattern)
    except re.error as exc:
        reason = Msg("the pattern cannot be read: {reason}", reason=str(exc))
        yield _Problem("invalid_schema", reason, here)


def _ref_loops(name: str, defs: Mapping[str, Any]) -> bool:
    """A chain of bare $refs that comes back would recurse forever when validating."""
    seen: set[str] = set()
    while name not in seen:
        seen.add(name)
        node = defs.get(name)
        if not isinstance(node, Mapping) or not isinstance(node.get("$ref"), str):
            return False
        name = _ref_name(node["$ref"])
    return True
