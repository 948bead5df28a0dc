"""The fixed library of functions that policies may call.

Each function is registered once with its signature, its static result type,
its Python implementation and a line of documentation. Nothing else is
callable from a policy: there is no attribute access on Python objects and no
way to reach the interpreter. `docs/policy-language.md` lists the same
functions; a test keeps the two in step.

A function's `check` (engine/lang/signatures.py) gives its result type from its
arguments' types, or a SignatureProblem; this module holds the implementations
and the registry that pairs each check with its implementation.

Null rule: unless a function says otherwise, it returns null when one of its
value arguments is null (a missing optional fact), so a rule reading
`add_months(order.shipped_at, 1)` on an unshipped order compares null and is
simply false. List functions read a null list as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any

from engine.core.i18n import Msg
from engine.lang import calendar as cal
from engine.lang import signatures as sig
from engine.lang import text
from engine.lang.signatures import SignatureProblem as SignatureProblem  # for older imports
from engine.lang.types import BOOLEAN, DATE, DATETIME, INTEGER, STRING, Type


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    signature: str
    doc: str
    check: Callable[[Sequence[Type]], Type]
    impl: Callable[..., Any]
    # 'propagate': null in any value argument gives null; 'lists': null lists read as empty;
    # 'none': the function handles null itself.
    nulls: str = "propagate"
    lambda_args: tuple[int, ...] = ()
    # Whether a call with constant arguments may be computed once at compile time.
    foldable: bool = True
    min_args: int = 0
    max_args: int = 0


FUNCTIONS: dict[str, Function] = {}


def _register(
    name: str,
    signature: str,
    doc: str,
    check: Callable[[Sequence[Type]], Type],
    impl: Callable[..., Any],
    *,
    args: tuple[int, int],
    nulls: str = "propagate",
    lambda_args: tuple[int, ...] = (),
    foldable: bool = True,
) -> None:
    FUNCTIONS[name] = Function(
        name, signature, doc, check, impl, nulls, lambda_args, foldable, args[0], args[1]
    )


# -- decimal arithmetic ------------------------------------------------------
#
# Numbers with a fraction are Decimals. Python rounds every Decimal result to the context
# of the thread it runs in: 28 digits by default, and whatever a thread set. The language
# uses its own contexts, passed explicitly, so that a 30-digit fact is not rounded and a
# decision computes the same digits in every thread (the service decides in threads).
# Their flags are set by each operation and never read; they are never changed otherwise.

# Exact up to 100 significant digits (a product of two 30-digit numbers has 60), rounded
# half to even past them: docs/policy-language.md, Numbers.
EXACT_DIGITS = 100
QUOTIENT_DIGITS = 34  # as IEEE 754 decimal128: a quotient is rounded once, to 34 digits


def _context(digits: int) -> Context:
    return Context(
        prec=digits,
        rounding=ROUND_HALF_EVEN,
        Emin=-999_999,
        Emax=999_999,
        traps=[InvalidOperation, DivisionByZero, Overflow],
    )


_EXACT = _context(EXACT_DIGITS)
_QUOTIENT = _context(QUOTIENT_DIGITS)


def _out_of_range() -> ArithmeticError:
    """Why a computation failed, for a person (Decimal's own signals read as Python reprs)."""
    return ArithmeticError(Msg("the result is out of range"))


def add(a: int | Decimal, b: int | Decimal) -> int | Decimal:
    """a + b, exact to EXACT_DIGITS significant digits (two integers: always)."""
    if type(a) is int and type(b) is int:
        return a + b
    try:
        return _EXACT.add(a, b)
    except DecimalException:
        raise _out_of_range() from None


def subtract(a: int | Decimal, b: int | Decimal) -> int | Decimal:
    if type(a) is int and type(b) is int:
        return a - b
    try:
        return _EXACT.subtract(a, b)
    except DecimalException:
        raise _out_of_range() from None


def multiply(a: int | Decimal, b: int | Decimal) -> int | Decimal:
    if type(a) is int and type(b) is int:
        return a * b
    try:
        return _EXACT.multiply(a, b)
    except DecimalException:
        raise _out_of_range() from None


def divide(a: int | Decimal, b: int | Decimal) -> Decimal:
    """a / b (b is not 0), exact when the quotient has at most QUOTIENT_DIGITS significant
    digits, else rounded once, half to even, to that many."""
    try:
        return _QUOTIENT.divide(a, b)
    except DecimalException:
        raise _out_of_range() from None


def negate(value: int | Decimal) -> int | Decimal:
    """-value, exact at any size (Decimal's `-` rounds to the thread's context)."""
    if type(value) is int:
        return -value
    return value.copy_negate() if value else value  # never -0


# -- implementations ---------------------------------------------------------


def _whole_minutes(delta: timedelta) -> int:
    """Elapsed minutes, truncated toward zero: 59 s is 0 minutes either way round."""
    seconds = delta.days * 86_400 + delta.seconds
    return seconds // 60 if seconds >= 0 else -((-seconds) // 60)


def _date_of(value: str | date | datetime) -> date:
    if isinstance(value, str):
        return cal.parse_date(value)
    return cal.local_date(value)


def _round_half_up(value: int | Decimal) -> int:
    if isinstance(value, int):
        return value
    # to_integral_value needs no context: exact at any number of digits
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _percent_of_impl(amount: int | Decimal, percent: int | Decimal) -> int:
    # The product is exact and so is a hundredth of it: the rounding to the yen is the only one.
    try:
        hundredths = _EXACT.multiply(amount, percent)
        return _round_half_up(hundredths.scaleb(-2, _EXACT))
    except DecimalException:
        raise _out_of_range() from None


def _count_impl(items: Iterable[Any], pred: Callable[[Any], Any] | None = None) -> int:
    if pred is None:
        return len(list(items))
    return sum(1 for item in items if pred(item) is True)


def _any_impl(items: Iterable[Any], pred: Callable[[Any], Any]) -> bool:
    return any(pred(item) is True for item in items)


def _all_impl(items: Iterable[Any], pred: Callable[[Any], Any]) -> bool:
    return all(pred(item) is True for item in items)


def _first_impl(items: Sequence[Any], pred: Callable[[Any], Any] | None = None) -> Any:
    for item in items:
        if pred is None or pred(item) is True:
            return item
    return None


def _filter_impl(items: Iterable[Any], pred: Callable[[Any], Any]) -> list[Any]:
    return [item for item in items if pred(item) is True]


def _map_impl(items: Iterable[Any], fn: Callable[[Any], Any]) -> list[Any]:
    return [fn(item) for item in items]


def _sum_impl(items: Iterable[Any], fn: Callable[[Any], Any] | None = None) -> int | Decimal:
    values = items if fn is None else (fn(item) for item in items)
    total: int | Decimal = 0
    for value in values:
        if value is not None:
            total = add(total, value)
    return total


def _same_key(value: Any) -> Any:
    """A hashable key equal for values the language holds equal, at any depth: 1 and 1.0 and
    1.00 alike, true unlike 1, records field by field, lists item by item."""
    if type(value) is bool:
        return (bool, value)  # True == 1 in Python, not in the language
    if type(value) is list:
        return (list, tuple(_same_key(v) for v in value))
    if type(value) is dict:
        return (dict, frozenset((k, _same_key(v)) for k, v in value.items()))
    return value  # equal numbers hash alike (Decimal and int); texts, dates, instants


def _count_distinct_impl(items: Iterable[Any], fn: Callable[[Any], Any] | None = None) -> int:
    values = items if fn is None else (fn(item) for item in items)
    return len({_same_key(v) for v in values if v is not None})


def _distinct_impl(items: Iterable[Any], fn: Callable[[Any], Any] | None = None) -> list[Any]:
    values = items if fn is None else (fn(item) for item in items)
    first: dict[Any, Any] = {}
    for value in values:
        if value is not None:
            first.setdefault(_same_key(value), value)  # the first of equal values, in order
    return list(first.values())


def _min_impl(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _max_impl(*values: Any) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _coalesce_impl(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _merge_impl(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return _merge_impl({}, b) if a is None and b is not None else a
    out = dict(a)
    for name, value in b.items():
        if value is None:  # null reads as absent: it neither sets nor removes
            continue
        ours = out.get(name)
        if type(value) is dict:
            out[name] = _merge_impl(ours if type(ours) is dict else {}, value)
        else:
            out[name] = value
    return out


def _find_impl(dataset: Any, probe: dict[str, Any]) -> list[Any]:
    return dataset.find(probe)


def _similar_impl(dataset: Any, probe: dict[str, Any], at_least: int) -> Any:
    return dataset.similar(probe, at_least)


def _similar_all_impl(dataset: Any, probe: dict[str, Any], at_least: int) -> Any:
    return dataset.similar_all(probe, at_least)


def _match_condition_impl(dataset: Any, probe: dict[str, Any]) -> Any:
    return dataset.match_condition(probe)


# -- the registry ------------------------------------------------------------

_register(
    "date",
    "date(text | date-time) -> date",
    "The calendar date: parses 'YYYY-MM-DD', or takes the Japan date of a date-time.",
    sig.date_call,
    _date_of,
    args=(1, 1),
)
_register(
    "datetime",
    "datetime(text) -> date-time",
    "Parses an RFC 3339 instant with its offset; '24:00:00' is the next day's 00:00.",
    sig.fixed(DATETIME, sig.string_arg),
    cal.parse_datetime,
    args=(1, 1),
)
_register(
    "add_days",
    "add_days(date | date-time, integer) -> same kind",
    "Adds whole days (negative to go back).",
    sig.same_temporal_call,
    cal.add_days,
    args=(2, 2),
)
_register(
    "add_months",
    "add_months(date | date-time, integer) -> same kind",
    "Adds calendar months, clamping the day to the end of the month (1/31 + 1 = 2/28).",
    sig.same_temporal_call,
    cal.add_months,
    args=(2, 2),
)
_register(
    "with_day",
    "with_day(date | date-time, integer) -> date",
    "Day D of the same month, clamped to the month's last day.",
    sig.fixed(DATE, sig.temporal_arg, sig.integer_arg),
    cal.with_day,
    args=(2, 2),
)
_register(
    "start_of_month",
    "start_of_month(date | date-time) -> date",
    "The first day of the month.",
    sig.fixed(DATE, sig.temporal_arg),
    cal.start_of_month,
    args=(1, 1),
)
_register(
    "end_of_month",
    "end_of_month(date | date-time) -> date",
    "The last day of the month.",
    sig.fixed(DATE, sig.temporal_arg),
    cal.end_of_month,
    args=(1, 1),
)
_register(
    "start_of_day",
    "start_of_day(date | date-time) -> date-time",
    "00:00 of the day in Japan.",
    sig.fixed(DATETIME, sig.temporal_arg),
    cal.start_of_day,
    args=(1, 1),
)
_register(
    "end_of_day",
    "end_of_day(date | date-time) -> date-time",
    "24:00 of the day in Japan: the first instant that is no longer on that day.",
    sig.fixed(DATETIME, sig.temporal_arg),
    cal.end_of_day,
    args=(1, 1),
)
_register(
    "days_between",
    "days_between(from, to) -> integer",
    "Calendar days from the first to the second (negative if earlier).",
    sig.pair_temporal(INTEGER),
    cal.days_between,
    args=(2, 2),
)
_register(
    "months_between",
    "months_between(from, to) -> integer",
    "Whole calendar months from the first to the second: the largest n with "
    "add_months(from, n) <= to.",
    sig.pair_temporal(INTEGER),
    cal.months_between,
    args=(2, 2),
)
_register(
    "minutes_between",
    "minutes_between(from, to) -> integer",
    "Whole minutes elapsed from the first instant to the second (negative if earlier).",
    sig.fixed(INTEGER, sig.datetime_arg, sig.datetime_arg),
    lambda start, end: _whole_minutes(end - start),
    args=(2, 2),
)
_register(
    "year",
    "year(date | date-time) -> integer",
    "The year (in Japan).",
    sig.fixed(INTEGER, sig.temporal_arg),
    lambda v: cal.local_date(v).year,
    args=(1, 1),
)
_register(
    "month",
    "month(date | date-time) -> integer",
    "The month, 1-12 (in Japan).",
    sig.fixed(INTEGER, sig.temporal_arg),
    lambda v: cal.local_date(v).month,
    args=(1, 1),
)
_register(
    "day",
    "day(date | date-time) -> integer",
    "The day of the month (in Japan).",
    sig.fixed(INTEGER, sig.temporal_arg),
    lambda v: cal.local_date(v).day,
    args=(1, 1),
)

_register(
    "normalize",
    "normalize(text) -> text",
    "NFKC, any dash as '-' (not ー, the long vowel of katakana words), whitespace runs as one "
    "space, trimmed.",
    sig.fixed(STRING, sig.string_arg),
    text.normalize_text,
    args=(1, 1),
)
_register(
    "normalize_name",
    "normalize_name(text) -> text",
    "A name for comparison: NFKC, no spaces of any width, Latin case-folded.",
    sig.fixed(STRING, sig.string_arg),
    text.normalize_name,
    args=(1, 1),
)
_register(
    "normalize_postal",
    "normalize_postal(text) -> text",
    "A postal code as digits: full-width digits, dashes, spaces and 〒 removed.",
    sig.fixed(STRING, sig.string_arg),
    text.normalize_postal,
    args=(1, 1),
)
_register(
    "normalize_phone",
    "normalize_phone(text) -> text",
    "A phone number as domestic digits: dashes, spaces, brackets removed; +81 -> 0.",
    sig.fixed(STRING, sig.string_arg),
    text.normalize_phone,
    args=(1, 1),
)
_register(
    "letters",
    "letters(text) -> text",
    "Only the letters and digits (NFKC; punctuation, symbols, spaces and a ー with no letter "
    "before it dropped): whether a free text says anything, `length(letters(x)) > 0`.",
    sig.fixed(STRING, sig.string_arg),
    text.letters,
    args=(1, 1),
)
_register(
    "lower",
    "lower(text) -> text",
    "Lower-case (Latin letters).",
    sig.fixed(STRING, sig.string_arg),
    str.lower,
    args=(1, 1),
)
_register(
    "length",
    "length(text | list) -> integer",
    "Number of characters or items.",
    sig.length_call,
    len,
    args=(1, 1),
)
_register(
    "contains",
    "contains(text, part) -> boolean",
    "Whether the text contains the part.",
    sig.fixed(BOOLEAN, sig.string_arg, sig.string_arg),
    lambda a, b: b in a,
    args=(2, 2),
)
_register(
    "starts_with",
    "starts_with(text, prefix) -> boolean",
    "Whether the text starts with the prefix.",
    sig.fixed(BOOLEAN, sig.string_arg, sig.string_arg),
    str.startswith,
    args=(2, 2),
)
_register(
    "ends_with",
    "ends_with(text, suffix) -> boolean",
    "Whether the text ends with the suffix.",
    sig.fixed(BOOLEAN, sig.string_arg, sig.string_arg),
    str.endswith,
    args=(2, 2),
)

_register(
    "count",
    "count(list[, x -> condition]) -> integer",
    "Number of items (for which the condition is true).",
    sig.count_call,
    _count_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "any",
    "any(list, x -> condition) -> boolean",
    "Whether the condition is true for at least one item.",
    sig.quantifier_call,
    _any_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "all",
    "all(list, x -> condition) -> boolean",
    "Whether the condition is true for every item (true for an empty list).",
    sig.quantifier_call,
    _all_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "first",
    "first(list[, x -> condition]) -> item or null",
    "The first item (for which the condition is true), or null.",
    sig.first_call,
    _first_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "filter",
    "filter(list, x -> condition) -> list",
    "The items for which the condition is true, in order.",
    sig.filter_call,
    _filter_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "map",
    "map(list, x -> value) -> list",
    "The value computed for each item.",
    sig.map_call,
    _map_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "sum",
    "sum(list[, x -> number]) -> number",
    "Total of the numbers (nulls skipped).",
    sig.sum_call,
    _sum_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "count_distinct",
    "count_distinct(list[, x -> value]) -> integer",
    "Number of different non-null values (e.g. distinct days of contact attempts); records "
    "and lists differ by their JSON value, 1 and 1.0 are one number, true is not 1.",
    sig.count_distinct_call,
    _count_distinct_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)

_register(
    "distinct",
    "distinct(list[, x -> value]) -> list",
    "The different non-null values (computed for each item), in the order first seen; records "
    "and lists differ by their JSON value, as for count_distinct.",
    sig.distinct_call,
    _distinct_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)

_register(
    "min",
    "min(a, b, ...) -> smallest",
    "The smallest non-null argument.",
    sig.extreme_call,
    _min_impl,
    args=(1, 16),
    nulls="none",
)
_register(
    "max",
    "max(a, b, ...) -> largest",
    "The largest non-null argument.",
    sig.extreme_call,
    _max_impl,
    args=(1, 16),
    nulls="none",
)
_register(
    "if",
    "if(condition, then, else) -> value",
    "`then` when the condition is true, otherwise `else` (null counts as false).",
    sig.if_call,
    lambda c, a, b: a if c is True else b,
    args=(3, 3),
    nulls="none",
)
_register(
    "coalesce",
    "coalesce(a, b, ...) -> value",
    "The first argument that is not null.",
    sig.coalesce_call,
    _coalesce_impl,
    args=(2, 16),
    nulls="none",
)
_register(
    "merge",
    "merge(record, record) -> record",
    "The first record with the second's fields laid over it (records merged field by field, "
    "a null in the second keeps the first's value): facts built from an event and an entity.",
    sig.merge_call,
    _merge_impl,
    args=(2, 2),
    nulls="none",
)
_register(
    "round_half_up",
    "round_half_up(number) -> integer",
    "Rounds to a whole number, halves away from zero (yen rounding).",
    sig.round_call,
    _round_half_up,
    args=(1, 1),
)
_register(
    "percent_of",
    "percent_of(amount, percent) -> integer",
    "percent% of amount, rounded half up to the yen, once.",
    sig.percent_of_call,
    _percent_of_impl,
    args=(2, 2),
)

_register(
    "find",
    "find(data.SET, {field: value, ...}) -> list of entries",
    "Entries whose fields equal all the given values (indexed at load time).",
    sig.find_call,
    _find_impl,
    args=(2, 2),
    nulls="none",
    foldable=False,
)
_register(
    "similar",
    "similar(data.SET, {field: value, ...}, at_least) -> entry or null",
    "The first entry for which at least `at_least` of the given fields are equal after the "
    "data set's normalisation (indexed at load time), with `matched: {fields, count, of}`: "
    "the fields that agreed, how many, of how many given; null if none.",
    sig.similar_call,
    _similar_impl,
    args=(3, 3),
    nulls="none",
    foldable=False,
)
_register(
    "similar_all",
    "similar_all(data.SET, {field: value, ...}, at_least) -> list of entries",
    "Every entry for which at least `at_least` of the given fields are equal after the "
    "data set's normalisation, in data order (indexed at load time), each with `matched`.",
    sig.similar_all_call,
    _similar_all_impl,
    args=(3, 3),
    nulls="none",
    foldable=False,
)
_register(
    "match_condition",
    "match_condition(data.SET, {field: value, ...}) -> entry or null",
    "The first condition entry (its `match`: exact, prefix, suffix or contains) whose every "
    "field holds for the given values after the data set's normalisation (indexed), with "
    "`matched` (the fields it sets); null if none.",
    sig.match_condition_call,
    _match_condition_impl,
    args=(2, 2),
    nulls="none",
    foldable=False,
)
