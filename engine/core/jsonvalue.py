"""The one JSON form of the engine's values, for responses, logs, the store and messages.

    datetime -> ISO text in Japan time ("2024-09-21T23:59:59+09:00")
    date     -> "YYYY-MM-DD"
    Decimal  -> a JSON number with exactly the digits it has (never through float)
    set      -> a sorted list

`to_json_value` gives the same form as Python objects (a non-integral Decimal stays a
Decimal: it is a JSON number that float cannot hold); `dumps` writes it as bytes and
`loads_exact` reads such text back without float. Japan has not observed daylight
saving time since 1951, so a fixed +09:00 offset is exact for every date a rulebook
can mean.

A request's JSON is read by `loads_request` (numbers exact, at most MAX_DEPTH deep), and
every reader of JSON from outside (the service, `kimari batch`, `kimari decide`) refuses
what is nested deeper with the same `json_too_deep` and pointer (`TooDeep`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson

from engine.core.errors import Diagnostic
from engine.core.i18n import Msg

JST = timezone(timedelta(hours=9), "JST")
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_INT64 = 2**63
# Integers are 64-bit, as the rule engine compares them (and as JSON clients can send them:
# orjson reads a longer integer as a float, which would alter it). Facts, settings, a
# policy's numbers and computed outcomes outside are refused, each where it is found.
INT_MIN, INT_MAX = -_INT64, _INT64 - 1


def format_datetime(value: datetime) -> str:
    """ISO form in Japan time, the way the rulebooks read it."""
    # isoformat's own choice: microseconds only when there are some
    return (value if value.tzinfo is JST else value.astimezone(JST)).isoformat()


def _number(value: Decimal) -> Any:
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        # 1E+1000000: int() would write a million digits (0.4 s, and past 4,300 of them
        # str() refuses to write it at all); the check only for integral values, per value
        return int(value) if value.adjusted() <= _INT_DIGITS else value
    return value


# An integral Decimal with more digits than this is left a Decimal (written as 1E+5000):
# a business value is far smaller, and one this large is only ever refused and quoted.
_INT_DIGITS = 400


def to_json_value(value: Any) -> Any:
    """Plain JSON values: instants in Japan time, dates ISO, decimals exact."""
    kind = value.__class__
    if kind in _AS_IS:
        return value
    convert = _CONVERT.get(kind)
    if convert is not None:  # one look-up by exact type: a chain of isinstance tests costs
        return convert(value)  # more than a date's isoformat
    return _converted(value)


def _converted(value: Any) -> Any:
    """to_json_value of the types not in _CONVERT as they are: their subclasses and others."""
    if isinstance(value, str | bool | int):
        return value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _number(value)
    if isinstance(value, dict):
        return _dict(value)
    if isinstance(value, list | tuple):
        return _list(value)
    if isinstance(value, set | frozenset):
        return _set(value)
    return str(value)


def _dict(value: dict[Any, Any]) -> dict[Any, Any]:
    return {k: to_json_value(v) for k, v in value.items()}


def _list(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    return [to_json_value(v) for v in value]


def _set(value: set[Any] | frozenset[Any]) -> list[Any]:
    return sorted(to_json_value(v) for v in value)


_AS_IS = frozenset({str, int, bool, type(None)})
_CONVERT: dict[type, Any] = {
    datetime: format_datetime,
    date: date.isoformat,
    Decimal: _number,
    dict: _dict,
    list: _list,
    tuple: _list,
    set: _set,
    frozenset: _set,
}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        number = _number(value)
        if isinstance(number, int) and -_INT64 <= number < _INT64:
            return number
        return orjson.Fragment(str(number).encode()) if value.is_finite() else number
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def dumps(value: Any, *, indent: bool = False, sort_keys: bool = False) -> bytes:
    """JSON bytes of `value` in the form of to_json_value, in one pass."""
    options = _OPTIONS | (orjson.OPT_INDENT_2 * indent) | (orjson.OPT_SORT_KEYS * sort_keys)
    try:
        return orjson.dumps(value, default=_default, option=options)
    except orjson.JSONEncodeError:
        # orjson writes no integer beyond 64 bits (and calls no default for one): a request
        # may hold one before validation refuses it, so write those exactly as fragments
        return orjson.dumps(_big_ints_exact(value), default=_default, option=options)


def _big_ints_exact(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return orjson.Fragment(str(value).encode())
    if isinstance(value, dict):
        return {k: _big_ints_exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_exact(v) for v in value]
    return value


def dumps_text(value: Any) -> str:
    return dumps(value).decode()


# A number a float may not hold as written: 16 digits or more (a dot among them), an integer
# that may not fit in 64 bits or a decimal a float may not hold exactly (15 significant
# digits always round-trip, 16 not always); or digits inside a text, which only cost the
# exact parse
LONG_NUMBER = re.compile(rb"[0-9][0-9.]{15}")
# or a number with an exponent, which may take a float past its range (1e400: infinity;
# 1e-400: 0.0) or into its subnormals, which keep fewer digits (4.9e-324 reads 5e-324): where
# a number may start (an id's "550e8400" in a text does not match)
EXPONENT = re.compile(rb"(?:^|[\s:,\[])-?[0-9][0-9.]*[eE]")
# Where no 16 characters in a row are digits or dots and no digit or dot precedes an e, the
# patterns cannot match: one translate and two literal searches (C, ~0.8 µs for a 270-byte
# order) answer most bodies; the patterns (µs, trying a run at every digit) only the others,
# EXPONENT only around each digit followed by an e.
_SHAPE = bytes(48 if chr(i) in "0123456789." else 101 if chr(i) in "eE" else 32 for i in range(256))
_RUN = b"0" * 16
_DIGIT_E = re.compile(rb"0e")  # a regex finds a 2-byte literal faster than `in` here


def has_long_number(body: bytes | str) -> bool:
    """Whether LONG_NUMBER or EXPONENT is in `body`: whether a number in it may be one a float
    does not hold as written, which must then be read again exactly."""
    if isinstance(body, str):
        body = body.encode()
    shape = body.translate(_SHAPE)
    if _RUN in shape and LONG_NUMBER.search(body) is not None:
        return True
    return _has_exponent(body, shape)


def _has_exponent(body: bytes, shape: bytes) -> bool:
    """EXPONENT.search(body), looked for only before each digit followed by an e (ids hold
    many: "550e8400"): with no LONG_NUMBER in the body, a number's digits and dot before its e
    are at most 15, so its start is within 17 characters of it."""
    found = _DIGIT_E.search(shape)
    while found is not None:
        at = found.start()
        if EXPONENT.search(body, max(at - 17, 0), at + 2) is not None:
            return True
        found = _DIGIT_E.search(shape, at + 2)
    return False


# Objects and arrays inside each other, the body's own object counted as 1. Business facts
# stay far below it; past it, what reads or writes the value again would fail half-way
# (orjson writes 255 levels, Python's parser reads ~990) instead of refusing the request.
MAX_DEPTH = 64


class TooDeep(ValueError):
    """A JSON value nests objects and arrays more than MAX_DEPTH deep: `pointer` names the
    first value past it, or is None where the parser stopped before one could be named."""

    def __init__(self, pointer: str | None, where: str = "") -> None:
        super().__init__(f"nested more than {MAX_DEPTH} deep at {pointer or where!r}")
        self.pointer = pointer
        self.where = where

    def diagnostic(self, base: str = "") -> Diagnostic:
        """Its diagnostic, the pointer under `base` (where the value sits in a request)."""
        if self.pointer is None:
            return Diagnostic(
                "json_too_deep",
                Msg(
                    "{where}: objects and arrays may be nested at most {limit} deep",
                    where=self.where,
                    limit=MAX_DEPTH,
                ),
                pointer=base,
            )
        return Diagnostic(
            "json_too_deep",
            Msg("objects and arrays may be nested at most {limit} deep", limit=MAX_DEPTH),
            pointer=base + self.pointer,
        )


def check_depth(text: bytes, value: Any, below: int = 0) -> None:
    """TooDeep, with the JSON pointer of the first value past MAX_DEPTH, if `value` (parsed
    from `text`, to sit `below` levels down in a request) nests deeper than MAX_DEPTH. With
    fewer brackets in the text than that, nothing can (a string's brackets only add to the
    count): two counts in C decide almost every request."""
    limit = MAX_DEPTH - below
    if text.count(b"{") + text.count(b"[") > limit:
        pointer = deeper_than(value, limit)
        if pointer is not None:
            raise TooDeep(pointer)


def deeper_than(value: Any, limit: int) -> str | None:
    """The JSON pointer of the first object or array (in document order) at depth limit + 1,
    or None."""
    return next(
        (p for p, node, depth in walk(value) if depth > limit and isinstance(node, dict | list)),
        None,
    )


def walk(value: Any) -> Iterator[tuple[str, Any, int]]:
    """Every value inside `value` (and itself: pointer "", depth 1) with its JSON pointer and
    depth, in document order. A stack of its own: the values looked for here (nested past
    any limit) would overflow Python's."""
    stack: list[tuple[str, Any, int]] = [("", value, 1)]
    while stack:
        pointer, node, depth = stack.pop()
        yield pointer, node, depth
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        below = [(f"{pointer}/{escape_pointer_token(k)}", v, depth + 1) for k, v in items]
        stack.extend(reversed(below))


def escape_pointer_token(token: object) -> str:
    """A key or index as one token of a JSON pointer (RFC 6901)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def loads_request(body: bytes, long_number: bool | None = None) -> Any:
    """A request's JSON at orjson's speed, and exact where orjson would alter a number: it
    reads an integer past 64 bits, a decimal of more than 15 significant digits or one with
    an exponent as a float (or refuses it as infinity); then Python's parser reads the body
    again, integers exact and fractions as the Decimal written (money is never float), for
    validation to take or refuse each at its place. orjson.JSONDecodeError if it is not JSON,
    TooDeep if it nests deeper than MAX_DEPTH, TooLong if an integer is too long to read.
    `long_number`: whether LONG_NUMBER is in the body, if the caller looked already."""
    value = _loads_fast(body)
    check_depth(body, value)
    return _numbers_exact(body, value, long_number)


def loads_logged(text: str | bytes) -> Any:
    """A logged request (or a log line holding one) read back as the live decision read the
    request: through `loads_request`'s numbers, so that a replay decides on the same facts (a
    decimal of 21 digits read by orjson alone is a float of 17). The depth rule is not
    applied again: what was logged passed it, and an old row must stay readable."""
    return _numbers_exact(text, _loads_fast(text), None)


class _Infinite:
    """orjson's value of a text that holds a number past a float's range: none (the exact
    parse reads the text again)."""


def _loads_fast(text: str | bytes) -> Any:
    """orjson's value of `text`, or _Infinite where orjson refused only a number past a
    float's range (1e400, 400 digits), which the exact parse reads."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if not exc.msg.startswith("number is infinity"):
            raise
        return _Infinite


def _numbers_exact(text: str | bytes, value: Any, long_number: bool | None) -> Any:
    if value is _Infinite:
        return _loads_strict(text)
    if long_number is None:
        long_number = has_long_number(text)
    if not long_number:
        return value
    huge: list[HugeNumber] = []  # 1e-9999999999999999999: orjson reads 0.0, Decimal nothing

    def decimal(text: str) -> Decimal | HugeNumber:
        found = read_decimal(text)
        if isinstance(found, HugeNumber):
            huge.append(found)
        return found

    exact = json.loads(text, parse_float=decimal)
    if huge:
        refuse_long_integers(exact)
    return exact


def _loads_strict(text: str | bytes) -> Any:
    """The exact parse of a text orjson did not read to its end: Python's parser accepts what
    orjson refuses (NaN, Infinity, escaped lone surrogates, an encoded surrogate), so those
    are refused here, with every other fault, as orjson.JSONDecodeError (a request that is
    not JSON, whoever reads it); TooDeep past MAX_DEPTH, as after orjson; TooLong at an
    integer past int()'s digits (a number out of range, not a body that is not JSON)."""
    source = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    try:
        if isinstance(text, bytes):
            text.decode("utf-8")  # Python's parser would take an encoded surrogate
        value = json.loads(
            source, parse_float=read_decimal, parse_int=read_integer, parse_constant=_no_constant
        )
        refuse_long_integers(value)  # before dumps, which cannot write one
        dumps(value)  # a lone surrogate in a text: orjson writes none
    except json.JSONDecodeError as exc:
        raise orjson.JSONDecodeError(exc.msg, exc.doc, exc.pos) from None
    except RecursionError:  # nested past Python's parser: far past MAX_DEPTH
        raise TooDeep(None, _place(source, _too_deep_at(source))) from None
    except TooLong:
        raise
    except (ValueError, orjson.JSONEncodeError) as exc:
        # not UTF-8, NaN or Infinity, a lone surrogate
        raise orjson.JSONDecodeError(str(exc), source, 0) from None
    check_depth(text if isinstance(text, bytes) else text.encode(), value)
    return value


class LongInteger:
    """An integer too long for int() (sys.get_int_max_str_digits, 4,300 digits), as a parse
    leaves it in place: only its length is kept, to be refused at its pointer (TooLong)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


class HugeNumber:
    """A number past what Decimal can hold (1e9999999999999999999), as a parse leaves it in
    place, to be refused at its pointer (TooLong)."""

    __slots__ = ()


def read_decimal(text: str) -> Decimal | HugeNumber:
    """json.loads' parse_float: the decimal exactly, or HugeNumber where its exponent is
    past Decimal's (whose InvalidOperation, an ArithmeticError, no caller expected)."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return HugeNumber()


def read_integer(text: str) -> int | LongInteger:
    """json.loads' parse_int: the integer exactly, or LongInteger past int()'s digits (whose
    ValueError, naming Python's limit and how to raise it, is nothing to show a client)."""
    try:
        return int(text)
    except ValueError:
        return LongInteger(text)


class TooLong(ValueError):
    """A parsed value holds a LongInteger or a HugeNumber: `pointer` names the first one;
    `digits`, the integer's (None: a number past Decimal's exponent)."""

    def __init__(self, pointer: str, digits: int | None) -> None:
        super().__init__(f"a number of {digits} digits at {pointer!r}")
        self.pointer = pointer
        self.digits = digits

    def diagnostic(self, base: str = "") -> Diagnostic:
        """The 64-bit rule's diagnostic, as the facts' validator words it for an integer short
        enough to read, the pointer under `base` (where the value sits in a request)."""
        got = (
            Msg("an integer of {digits} digits", digits=self.digits)
            if self.digits is not None
            else Msg("a number whose exponent is out of any range")
        )
        return Diagnostic("out_of_range", _not_64_bits_got(got), pointer=base + self.pointer)


def refuse_long_integers(value: Any) -> None:
    """TooLong at the first LongInteger or HugeNumber of `value`, if it holds one."""
    for pointer, node, _ in walk(value):
        if isinstance(node, LongInteger):
            raise TooLong(pointer, node.digits)
        if isinstance(node, HugeNumber):
            raise TooLong(pointer, None)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep_at(text: str) -> int:
    """The index of the first bracket past MAX_DEPTH in `text` (outside its strings)."""
    depth, inside, escaped = 0, False, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif inside:
            escaped = char == "\\"
            inside = char != '"'
        elif char == '"':
            inside = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return index
        elif char in "]}":
            depth -= 1
    return 0


def _place(text: str, index: int) -> str:
    """`line L column C` of `index` in `text`, as orjson names the place of a fault."""
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"line {line} column {column}"


def json_reason(said: str) -> str:
    """What Python's JSON parser says is wrong (json.JSONDecodeError.msg), in words a message
    translates: its handful of complaints, as plain English; anything else as it is."""
    reasons = {
        "Expecting value": Msg("a value was expected here"),
        "Expecting property name enclosed in double quotes": Msg(
            "a key in double quotes was expected here (no comma after the last member)"
        ),
        "Expecting ':' delimiter": Msg("a ':' was expected after the key"),
        "Expecting ',' delimiter": Msg("a ',' was expected between two members"),
        "Unterminated string starting at": Msg("a text starts here and is never closed"),
        "Extra data": Msg("something follows the JSON value"),
        "Invalid control character at": Msg("a control character inside a text"),
        "Invalid \\escape": Msg("an unknown escape after a backslash"),
        "Invalid \\uXXXX escape": Msg("a \\u escape needs four hexadecimal digits"),
    }
    return reasons.get(said, said)


def why_not_json(raw: bytes) -> tuple[str, int, int] | None:
    """(reason, line, column) of the first fault of UTF-8 text that orjson refused, in words
    a message translates (json_reason), read again by Python's parser: orjson's own reasons
    ("trailing comma is not allowed") stay English. None where Python's parser takes what
    JSON has not (NaN, Infinity, a lone surrogate). Only refused input pays for it."""
    try:
        json.loads(raw)
    except json.JSONDecodeError as said:
        return json_reason(said.msg), said.lineno, said.colno
    except (ValueError, RecursionError):
        pass
    return None


def loads_exact(text: str | bytes) -> Any:
    """JSON whose fractional numbers come back as Decimal (stored values: never float)."""
    return json.loads(text, parse_float=Decimal)


_EXACT = json.JSONDecoder(parse_float=Decimal)
_SPACE = re.compile(r"[ \t\n\r]*")


def loads_exact_items(text: str | bytes) -> Any:
    """`loads_exact`, an element of a top-level array at a time: one call of the C parser
    per element, so that other threads get the GIL in between (a data set of 450,000
    entries, 52 MB, held it 0.8 s in one call: every decision of its worker waited)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    at = _skip(text, 0)
    if not text.startswith("[", at):
        return loads_exact(text)
    items: list[Any] = []
    at = _skip(text, at + 1)
    closed = text.startswith("]", at)
    try:
        while not closed:
            item, at = _EXACT.raw_decode(text, at)
            items.append(item)
            at = _skip(text, at)
            mark = text[at : at + 1]
            if mark not in (",", "]"):
                raise ValueError("not an array")
            closed = mark == "]"
            at = _skip(text, at + 1) if not closed else at
    except ValueError:  # JSONDecodeError among them: the whole text's own error
        return loads_exact(text)
    return items if _skip(text, at + 1) == len(text) else loads_exact(text)


def _skip(text: str, at: int) -> int:
    """The index of the first character at or after `at` that is not JSON white space."""
    found = _SPACE.match(text, at)
    return found.end() if found is not None else at


def shown(value: Any, limit: int = 60) -> str:
    """A value as a message quotes it: as JSON writes it ("text", true, null, exact
    numbers), never as Python prints it ('text', True, None, Decimal('1.5')); names stay
    in single quotes. Cut to `limit` characters."""
    if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
        return Msg("an integer of {digits} digits", digits=_digits(abs(value)))
    text = dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _digits(number: int) -> int:
    """The decimal digits of `number` (> 0) without str(), which refuses one over 4,300
    digits by design: the estimate from its bits, corrected by powers of ten."""
    digits = int((number.bit_length() - 1) * 0.30102999566398120) + 1
    while digits > 1 and number < 10 ** (digits - 1):
        digits -= 1
    while number >= 10**digits:
        digits += 1
    return digits


def not_64_bits(value: Any) -> Msg:
    """Why an integer (or a number meant as one) is refused: the one wording of the 64-bit
    rule, for facts, outcomes and reason details alike."""
    # a decimal as written (1E+300), not as the integer of 301 digits it stands for
    return _not_64_bits_got(str(value) if isinstance(value, Decimal) else shown(value))


def _not_64_bits_got(got: str) -> Msg:
    return Msg(
        "must be a 64-bit integer, from {low} to {high}; got {value}",
        low=INT_MIN,
        high=INT_MAX,
        value=got,
    )


def quoted(value: Any) -> str:
    """A value as a message about a YAML file or a name quotes it: a text in single quotes
    (as YAML may write it, and as the messages quote names); anything else as `shown`."""
    return repr(value) if isinstance(value, str) else shown(value)


def format_value(value: Any) -> str:
    """How a value reads inside a message text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):  # a record: as JSON writes it, not as Python prints a dict
        return dumps(value).decode()
    json_value = to_json_value(value)
    return json_value if isinstance(json_value, str) else str(json_value)


# -- keys held twice: JSON parsers keep the last silently; kimari refuses them ------------


def duplicate_key(text: bytes | str, parsed: Any = None) -> str | None:
    """The JSON pointer of the first key an object of `text` holds twice, or None. `parsed`:
    the text as orjson read it (None: not at hand, or not by orjson): a cheap comparison
    then answers most texts without parsing them again."""
    if parsed is not None and isinstance(text, bytes) and _surely_unique(text, parsed):
        return None
    return _exact_duplicate_key(text)


def duplicate_diagnostic(pointer: str) -> Diagnostic:
    """duplicate_key at `pointer` (the service answers it 400 duplicate_key)."""
    name = pointer.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
    return Diagnostic(
        "duplicate_key",
        Msg(
            "duplicate key '{name}'; a JSON parser would silently keep only the last one",
            name=name,
        ),
        pointer=pointer,
    )


# a key followed by whitespace before its colon: rare, and then the exact check runs
_SPACED_COLON = re.compile(rb'"[ \t\r\n]+:')


def _surely_unique(body: bytes, value: Any) -> bool:
    """True when no object of the body can hold a key twice, in about a microsecond.

    Each key of the body is written `"key":` (unless spaced before its colon); orjson writes
    the parsed value the same way, with the duplicates gone, and writes every quote inside a
    text as \\". So with no spaced colon and no \\u0022 (a quote escaped otherwise), the
    body and the value written again hold the same number of `":` exactly when no key was
    dropped. Anything else goes to the exact check."""
    if b"\\u0022" in body or _SPACED_COLON.search(body) is not None:
        return False
    return body.count(b'":') == orjson.dumps(value).count(b'":')


class _Object(dict):  # type: ignore[type-arg]
    """A parsed object that remembers its first duplicate key."""

    duplicate: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                found.duplicate = key
                break
            seen.add(key)
    return found


def _exact_duplicate_key(body: bytes | str) -> str | None:
    """The JSON pointer of the first key held twice by an object of `body`, or None."""
    try:
        return _find_duplicate(json.loads(body, object_pairs_hook=_pairs), "")
    except RecursionError:  # nested past the stdlib parser's depth (orjson read it): let it be
        return None


def _find_duplicate(value: Any, pointer: str) -> str | None:
    if isinstance(value, _Object) and value.duplicate is not None:
        return f"{pointer}/{escape_pointer_token(value.duplicate)}"
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _find_duplicate(item, f"{pointer}/{escape_pointer_token(key)}")
        if found is not None:
            return found
    return None
