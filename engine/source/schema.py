"""JSON Schema validation of YAML documents, reported at the line.

jsonschema reports a violation as a path into plain data; the document's
position index turns that path back into `file:line:col`, pointing at the
key for unknown or missing keys and at the value otherwise.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from engine.core.errors import Diagnostic, Location
from engine.core.i18n import Msg
from engine.core.jsonvalue import dumps, quoted
from engine.core.suggest import did_you_mean
from engine.source import memo
from engine.source.ecma_regex import compile_pattern
from engine.source.yaml import Document, join_pointer

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
MAX_ERRORS = 100


class ProjectSchema:
    """One of the project's own schemas, with its jsonschema validator made when a document
    is first checked against it: a document remembered clean (memo) needs none, and
    importing jsonschema is ~40 ms of a command's start."""

    format_checker = None  # as Draft202012Validator(schema): formats are annotations only

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator: Draft202012Validator | None = None

    def iter_errors(self, instance: Any) -> Iterable[ValidationError]:
        if self._validator is None:
            self._validator = _ecma_validator()(self.schema)
        return self._validator.iter_errors(instance)


@functools.cache
def _ecma_validator() -> type[Draft202012Validator]:
    """Draft 2020-12 with `pattern` read as ECMA-262 reads it (engine/source/ecma_regex.py):
    jsonschema's own uses Python's `re`, whose `$` took "order-holds\n" for an id."""
    from jsonschema import Draft202012Validator, ValidationError, validators

    def pattern(validator: Any, wanted: str, instance: Any, schema: Any) -> Iterable[Any]:
        if validator.is_type(instance, "string") and not compile_pattern(wanted).search(instance):
            yield ValidationError(f"{instance!r} does not match {wanted!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})  # type: ignore[no-any-return]


@functools.cache
def project_schema(name: str) -> ProjectSchema:
    """One of the project's own schemas (policy, tests, rulebook), to validate documents by.

    The schema is checked against JSON Schema 2020-12 once per content (memo): ~50 ms of
    jsonschema, which every `kimari batch` or `validate` paid before it read a policy."""
    schema = orjson.loads((SCHEMA_DIR / name).read_bytes())
    checked = memo.key("metaschema/Draft202012Validator", schema)
    if not memo.known(checked):
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(schema)
        memo.remember(checked)
    return ProjectSchema(schema)


def validate_document(
    document: Document, validator: ProjectSchema | Draft202012Validator
) -> list[Diagnostic]:
    """Every schema violation of `document`, each placed at its line (a document found
    valid before, by content, is not validated again: engine/source/memo.py)."""
    if document.data is None:  # nothing but blanks and comments: say that, not "not object"
        return [
            Diagnostic(
                "file_empty",
                Msg(
                    "the file holds no YAML document (only blanks or comments): "
                    "start it with 'kimari: 1'"
                ),
                Location(document.path, 1, 1),
            )
        ]
    schema = _schema_key(validator)
    checked = memo.key(f"document/{schema}", document.data) if schema else None
    if memo.known(checked):
        return []
    found = _violations(document, validator)
    if not found:
        memo.remember(checked)
    return found


_SCHEMA_KEYS: dict[int, tuple[ProjectSchema | Draft202012Validator, str]] = {}


def _schema_key(validator: ProjectSchema | Draft202012Validator) -> str:
    """The content key of the schema a validator checks against (once per validator)."""
    held = _SCHEMA_KEYS.get(id(validator))
    if held is None or held[0] is not validator:
        if len(_SCHEMA_KEYS) > 64:  # validators made on the fly (tests): keep a few
            _SCHEMA_KEYS.clear()
        kind = f"schema/{type(validator).__name__}/{validator.format_checker is not None}"
        held = _SCHEMA_KEYS[id(validator)] = (validator, memo.key(kind, validator.schema) or "")
    return held[1]


def _violations(
    document: Document, validator: ProjectSchema | Draft202012Validator
) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for error in validator.iter_errors(document.data):
        found.extend(_diagnose(document, error))
        if len(found) >= MAX_ERRORS:
            break
    unique = {(d.location, d.code, d.message): d for d in found}
    return sorted(unique.values(), key=Diagnostic.sort_key)


def _pointer(path: Iterable[Any]) -> str:
    pointer = ""
    for part in path:
        pointer = join_pointer(pointer, part)
    return pointer


def _diagnose(document: Document, error: ValidationError) -> list[Diagnostic]:
    if error.validator in ("oneOf", "anyOf") and error.context:
        if error.schema == _policy_def("condition"):
            return _condition(document, error)
        return _one_of(document, error)
    pointer = _pointer(error.absolute_path)
    positions = document.positions
    if "propertyNames" in error.schema_path:
        return _property_names(document, error, pointer)
    handler = _HANDLERS.get(str(error.validator))
    if handler is not None:
        return handler(document, error, pointer)
    where = _where(pointer)
    return [
        Diagnostic(
            "schema_violation",
            Msg("{where}: {reason}", where=where, reason=error.message),
            positions.value(pointer),
            pointer=pointer or "/",
        )
    ]


def _one_of(document: Document, error: ValidationError) -> list[Diagnostic]:
    """The errors of the one branch of a oneOf/anyOf that the value's type fits (a list
    where a text or a list is allowed: what is wrong inside the list, at the item).

    best_match prefers the shallowest error, so a list with one bad item was blamed as a
    whole ("must be string, got a list") at the list's first line."""
    fitting = _fitting_branches(error)
    if len(fitting) == 1:
        return [found for e in fitting[0] for found in _diagnose(document, e)]
    from jsonschema.exceptions import best_match

    return _diagnose(document, best_match(error.context))


def _fitting_branches(error: ValidationError) -> list[list[ValidationError]]:
    """The errors of each branch whose type (or constant) the value has, by branch."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    depth = len(error.absolute_path)

    def misfits(sub: ValidationError, kinds: tuple[str, ...]) -> bool:
        return sub.validator in kinds and len(sub.absolute_path) == depth

    typed = [b for b in branches.values() if not any(misfits(e, ("type",)) for e in b)]
    exact = [b for b in typed if not any(misfits(e, ("const", "enum")) for e in b)]
    return exact or typed


@functools.cache
def _policy_def(name: str) -> Any:
    """A definition of the policy schema, to recognise where a violation is."""
    return project_schema("policy.schema.json").schema["$defs"][name]


def _condition(document: Document, error: ValidationError) -> list[Diagnostic]:
    """A `when` that is not an expression, a non-empty list of them, or true/false."""
    pointer = _pointer(error.absolute_path)
    fitting = _fitting_branches(error)
    if len(fitting) != 1:
        return [
            _at_value(
                document,
                "invalid_type",
                Msg(
                    "{where} must be a condition: a text expression, a list of them, or "
                    "true/false; got {got}",
                    where=_where(pointer),
                    got=_json_type(error.instance),
                ),
                pointer,
            )
        ]
    return [_condition_part(document, e, pointer) for e in fitting[0]]


def _condition_part(document: Document, error: ValidationError, whole: str) -> Diagnostic:
    """One violation inside the branch of the condition at `whole` that its type fits."""
    pointer = _pointer(error.absolute_path)
    where = _where(pointer)
    if error.validator == "minItems":
        message = Msg(
            "{where}: an empty list of conditions; give at least one, or true", where=where
        )
        return _at_value(document, "invalid_value", message, pointer)
    if error.validator == "minLength" and pointer == whole:
        message = Msg("{where}: an empty condition; write an expression, or true", where=where)
        return _at_value(document, "invalid_value", message, pointer)
    if error.validator == "minLength":  # an item of the list: true is no item
        message = Msg("{where}: an empty condition; write an expression, or remove it", where=where)
        return _at_value(document, "invalid_value", message, pointer)
    if isinstance(error.instance, dict):  # `- x: null`: the ': ' made a mapping
        message = Msg(
            "{where}: a condition must be a text expression, but YAML read this "
            "'key: value' as a mapping; quote the whole expression (compare with ==)",
            where=where,
        )
        return _at_value(document, "invalid_type", message, pointer)
    message = Msg(
        "{where}: a condition must be a text expression, got {got}; quote it if it is text",
        where=where,
        got=_json_type(error.instance),
    )
    return _at_value(document, "invalid_type", message, pointer)


def _at_value(document: Document, code: str, message: str, pointer: str) -> Diagnostic:
    return Diagnostic(code, message, document.positions.value(pointer), pointer=pointer or "/")


def _where(pointer: str) -> str:
    return f"'{pointer}'" if pointer else Msg("the document")


def _declared(schema: Mapping[str, Any]) -> list[str]:
    return list(schema.get("properties", {}))


def _additional(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    allowed = _declared(error.schema)
    extras = [k for k in instance if k not in allowed]
    out = []
    for key in extras:
        child = join_pointer(pointer, key)
        hint = did_you_mean(key, allowed)
        if hint is None and allowed:
            hint = Msg("allowed keys: {keys}", keys=", ".join(allowed))
        out.append(
            Diagnostic(
                "unknown_key",
                Msg("unknown key '{key}' in {where}", key=key, where=_where(pointer)),
                document.positions.key(child),
                pointer=child,
                hint=hint,
            )
        )
    return out


def _required(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    missing = error.message.split("'")[1] if "'" in error.message else error.message
    return [
        Diagnostic(
            "missing_key",
            Msg("missing required key '{key}' in {where}", key=missing, where=_where(pointer)),
            document.positions.key(pointer),
            pointer=pointer or "/",
        )
    ]


def _enum(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    options = error.validator_value if error.validator == "enum" else [error.validator_value]
    shown = ", ".join(quoted(o) for o in options)
    number = not isinstance(error.instance, bool) and isinstance(error.instance, int | Decimal)
    if (isinstance(error.instance, str) or number) and any(
        str(o) == str(error.instance) and isinstance(o, str) != isinstance(error.instance, str)
        for o in options
    ):  # '1' for 1, 1 for '1'
        hint = (
            Msg("write it without quotes: a text is not the number")
            if isinstance(error.instance, str)
            else Msg("quote it: a number is not the text")
        )
    else:
        hint = did_you_mean(str(error.instance), [str(o) for o in options])
    return [
        Diagnostic(
            "invalid_value",
            Msg(
                "{where}: {value} is not one of {options}",
                where=_where(pointer),
                value=quoted(error.instance),
                options=shown,
            ),
            document.positions.value(pointer),
            pointer=pointer,
            hint=hint,
        )
    ]


def _type(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    expected = error.validator_value
    wanted = " or ".join(expected) if isinstance(expected, list) else expected  # JSON's names
    got = _json_type(error.instance)
    return [
        Diagnostic(
            "invalid_type",
            Msg(
                "{where} must be {wanted}, got {got}", where=_where(pointer), wanted=wanted, got=got
            ),
            document.positions.value(pointer),
            pointer=pointer or "/",
        )
    ]


def _pattern_hints() -> dict[str, str]:
    """What the schemas' patterns ask for, in words (and in the reader's language): the
    pattern itself, or the schema's English description, told an editor little."""
    return {
        "^[A-Z][A-Z0-9_]*$": Msg(
            "a code is UPPER_CASE letters, digits and _, starting with a letter: DEADLINE_PASSED"
        ),
        "^[A-Z]{2}-[0-9]+(\\.[0-9]+)?$": Msg(
            "a rulebook ID is two capital letters, '-' and a number: HO-4, EX-3.1"
        ),
        "^[a-z][a-z0-9]*(-[a-z0-9]+)*$": Msg(
            "a policy id is lower-case letters and digits, words joined by '-': order-holds"
        ),
        "^[a-z][a-z0-9_]*$": Msg(
            "a name is lower-case letters, digits and _, starting with a letter: no_fee_days"
        ),
        "\\.json$": Msg("the path of a JSON Schema file, ending in .json"),
    }


def _pattern(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    hint = _pattern_hints().get(error.validator_value) or error.schema.get("description")
    hint = hint or Msg("must match {pattern}", pattern=error.validator_value)
    return [
        Diagnostic(
            "invalid_value",
            Msg(
                "{where}: {value} is not a valid value",
                where=_where(pointer),
                value=quoted(error.instance),
            ),
            document.positions.value(pointer),
            pointer=pointer,
            hint=hint,
        )
    ]


def _property_names(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    name = error.instance
    child = join_pointer(pointer, name)
    return [
        Diagnostic(
            "invalid_name",
            Msg("'{name}' is not a valid name: use lower-case letters, digits and _", name=name),
            document.positions.key(child),
            pointer=child,
        )
    ]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float) or type(value).__name__ == "Decimal":
        return "number"
    if isinstance(value, str):
        return Msg("text")
    if isinstance(value, list):
        return Msg("a list")
    return Msg("a mapping")


def _size(document: Document, error: ValidationError, pointer: str) -> list[Diagnostic]:
    """A list, a mapping or a text too short or too long, a number out of its bounds, an
    item listed twice: in kimari's words (and language), not jsonschema's ("should be
    non-empty", "has non-unique elements", "is too long")."""
    where, limit, value = _where(pointer), error.validator_value, error.instance
    if error.validator in ("minItems", "minProperties", "minLength") and limit == 1:
        message = Msg("{where} must not be empty", where=where)
    elif error.validator == "minItems":
        message = Msg("{where} needs at least {limit} items", where=where, limit=limit)
    elif error.validator == "minLength":
        message = Msg("{where} needs at least {limit} characters", where=where, limit=limit)
    elif error.validator == "maxLength":
        message = Msg(
            "{where} is {length} characters long; at most {limit} are allowed",
            where=where,
            length=len(value),
            limit=limit,
        )
    elif error.validator == "minProperties":
        message = Msg("{where} needs at least {limit} keys", where=where, limit=limit)
    elif error.validator == "uniqueItems":
        twice = _repeated(value)
        message = Msg("{where} lists {value} more than once", where=where, value=quoted(twice))
    elif error.validator == "minimum":
        message = Msg(
            "{where} must be at least {limit}, got {value}",
            where=where,
            limit=limit,
            value=quoted(value),
        )
    else:  # maximum: the validators _HANDLERS sends here are these
        message = Msg(
            "{where} must be at most {limit}, got {value}",
            where=where,
            limit=limit,
            value=quoted(value),
        )
    return [
        Diagnostic(
            "invalid_value", message, document.positions.value(pointer), pointer=pointer or "/"
        )
    ]


def _repeated(items: list[Any]) -> Any:
    """The first item listed again, compared as JSON compares (true is not 1)."""
    seen: set[bytes] = set()
    for item in items:
        key = dumps(item, sort_keys=True)
        if key in seen:
            return item
        seen.add(key)
    return items[0]


_HANDLERS = {
    "minItems": _size,
    "minProperties": _size,
    "minLength": _size,
    "maxLength": _size,
    "uniqueItems": _size,
    "minimum": _size,
    "maximum": _size,
    "additionalProperties": _additional,
    "required": _required,
    "enum": _enum,
    "const": _enum,
    "type": _type,
    "pattern": _pattern,
}
