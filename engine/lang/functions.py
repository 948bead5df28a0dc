"""The fixed library of functions that policies may call.

Each function is registered once with its signature, its static result type,
its Python implementation and a line of documentation. Nothing else is
callable from a policy: there is no attribute access on Python objects and no
way to reach the interpreter. `docs/policy-language.md` lists the same
functions; a test keeps the two in step.

Null rule: unless a function says otherwise, it returns null when one of its
value arguments is null (a missing optional fact), so a rule reading
`add_months(order.shipped_at, 1)` on an unshipped order compares null and is
simply false. List functions read a null list as empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.core.i18n import Msg
from engine.lang import calendar as cal
from engine.lang import text
from engine.lang.types import (
    ANY,
    BOOLEAN,
    DATE,
    DATETIME,
    INTEGER,
    NUMERIC_KINDS,
    STRING,
    Type,
    join,
    list_of,
    record,
)


class SignatureProblem(Exception):
    """A call does not fit its function: which argument, and why."""

    def __init__(self, index: int | None, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


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


# -- argument checks ---------------------------------------------------------


def _kind(types: Sequence[Type], index: int, allowed: str, what: str) -> Type:
    t = types[index]
    kinds = set(allowed.split("|"))
    if t.kind in ("any", "null") or t.kind in kinds:
        return t
    if "number" in kinds and t.kind == "integer":
        return t
    raise SignatureProblem(
        index,
        Msg(
            "argument {index} must be {what}, got {type}",
            index=index + 1,
            what=what,
            type=t.describe(),
        ),
    )


def _temporal(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "date|datetime", Msg("a date or a date-time"))


def _datetime_arg(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "datetime", Msg("a date-time"))


def _whole_minutes(delta: timedelta) -> int:
    """Elapsed minutes, truncated toward zero: 59 s is 0 minutes either way round."""
    seconds = delta.days * 86_400 + delta.seconds
    return seconds // 60 if seconds >= 0 else -((-seconds) // 60)


def _integer(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "integer", Msg("an integer"))


def _number(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "number", Msg("a number"))


def _string(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "string", Msg("text"))


def _list(types: Sequence[Type], index: int) -> Type:
    return _kind(types, index, "list", Msg("a list"))


def _nullable_if(result: Type, types: Sequence[Type]) -> Type:
    return result.with_nullable(any(t.nullable for t in types))


def _same_temporal(types: Sequence[Type]) -> Type:
    t = _temporal(types, 0)
    _integer(types, 1)
    base = DATETIME if t.kind == "datetime" else DATE if t.kind == "date" else ANY
    return _nullable_if(base, types)


def _to_date(types: Sequence[Type]) -> Type:
    t = _kind(types, 0, "string|date|datetime", Msg("text, a date or a date-time"))
    return _nullable_if(DATE, [t])


def _fixed(result: Type, *checks: Callable[[Sequence[Type], int], Type]) -> Callable:
    def check(types: Sequence[Type]) -> Type:
        for index, arg_check in enumerate(checks):
            if index < len(types):
                arg_check(types, index)
        return _nullable_if(result, types)

    return check


def _pair_temporal(result: Type) -> Callable[[Sequence[Type]], Type]:
    def check(types: Sequence[Type]) -> Type:
        a, b = _temporal(types, 0), _temporal(types, 1)
        if {a.kind, b.kind} == {"date", "datetime"}:
            raise SignatureProblem(
                1,
                Msg(
                    "both arguments must be dates or both date-times; "
                    "use date(x) to take the date of a date-time"
                ),
            )
        return _nullable_if(result, types)

    return check


def _item(types: Sequence[Type]) -> Type:
    t = _list(types, 0)
    return t.item if t.kind == "list" and t.item is not None else ANY


def _lambda_result(types: Sequence[Type], index: int) -> Type:
    return types[index] if index < len(types) else ANY


def _check_predicate(types: Sequence[Type], index: int) -> None:
    if index < len(types) and types[index].kind not in ("boolean", "any"):
        raise SignatureProblem(
            index,
            Msg("the condition must be true or false, got {type}", type=types[index].describe()),
        )


def _count(types: Sequence[Type]) -> Type:
    _list(types, 0)
    _check_predicate(types, 1)
    return INTEGER


def _quantifier(types: Sequence[Type]) -> Type:
    _list(types, 0)
    _check_predicate(types, 1)
    return BOOLEAN


def _first(types: Sequence[Type]) -> Type:
    item = _item(types)
    _check_predicate(types, 1)
    return item.with_nullable()


def _filter(types: Sequence[Type]) -> Type:
    item = _item(types)
    _check_predicate(types, 1)
    return list_of(item)


def _map(types: Sequence[Type]) -> Type:
    _list(types, 0)
    return list_of(_lambda_result(types, 1))


def _sum(types: Sequence[Type]) -> Type:
    item = _lambda_result(types, 1) if len(types) > 1 else _item(types)
    if item.kind not in NUMERIC_KINDS and item.kind != "any":
        raise SignatureProblem(
            len(types) - 1, Msg("sum needs numbers, got {type}", type=item.describe())
        )
    return Type("integer" if item.kind == "integer" else "number")


def _count_distinct(types: Sequence[Type]) -> Type:
    _list(types, 0)
    return INTEGER


def _distinct(types: Sequence[Type]) -> Type:
    _list(types, 0)
    return list_of(_lambda_result(types, 1) if len(types) > 1 else _item(types))


def _extreme(types: Sequence[Type]) -> Type:
    if not types:
        raise SignatureProblem(None, Msg("needs at least one argument"))
    result = types[0]
    for index in range(len(types)):
        _kind(types, index, "number|date|datetime", Msg("a number, a date or a date-time"))
        result = join(result, types[index])
    if result.kind == "any" and any(t.kind != "any" for t in types):
        raise SignatureProblem(None, Msg("all arguments must be of the same kind"))
    return result


def _if(types: Sequence[Type]) -> Type:
    _check_predicate(types, 0)
    return join(types[1], types[2])


def _coalesce(types: Sequence[Type]) -> Type:
    result = types[0]
    for t in types[1:]:
        result = join(result, t)
    return result.with_nullable(all(t.nullable for t in types))


def _merge(types: Sequence[Type]) -> Type:
    return _merged(_kind(types, 0, "record", "a record"), _kind(types, 1, "record", "a record"))


def _merged(a: Type, b: Type) -> Type:
    """The record merge(a, b) gives: a's fields, b's where b has a value; records deeply."""
    if "null" in (a.kind, b.kind):
        return (b if a.kind == "null" else a).with_nullable(a.nullable and b.nullable)
    if a.fields is None or b.fields is None or "record" not in (a.kind, b.kind):
        return record(None)
    fields = dict(a.fields)
    for name, theirs in b.fields.items():
        ours = fields.get(name)
        if ours is None:
            fields[name] = theirs
        elif ours.kind == theirs.kind == "record":
            fields[name] = _merged(ours, theirs)
        else:  # b's null leaves a's value
            fields[name] = join(ours, theirs.with_nullable(False)) if theirs.nullable else theirs
    return record(fields).with_nullable(a.nullable and b.nullable)


def _round(types: Sequence[Type]) -> Type:
    _number(types, 0)
    return _nullable_if(INTEGER, types[:1])


def _percent_of(types: Sequence[Type]) -> Type:
    _number(types, 0)
    _number(types, 1)
    return _nullable_if(INTEGER, types)


def _length(types: Sequence[Type]) -> Type:
    t = _kind(types, 0, "string|list", Msg("text or a list"))
    return _nullable_if(INTEGER, [t])


def _dataset(types: Sequence[Type], index: int) -> Type:
    t = types[index]
    if t.kind == "any":
        return Type("dataset", item=ANY)
    if t.kind != "dataset":
        raise SignatureProblem(
            index,
            Msg(
                "argument {index} must be a data set (data.NAME), got {type}",
                index=index + 1,
                type=t.describe(),
            ),
        )
    return t


def _probe(types: Sequence[Type], index: int, entry: Type) -> None:
    probe = types[index]
    if probe.kind != "record" or probe.fields is None:
        raise SignatureProblem(
            index,
            Msg("argument 2 must be a record literal such as {{phone: order.customer.phone}}"),
        )
    for name in probe.fields:
        if entry.field(name) is None:
            known = ", ".join(sorted(entry.fields or {}))
            raise SignatureProblem(
                index,
                Msg("the data set has no field '{name}' (fields: {known})", name=name, known=known),
            )


def _find(types: Sequence[Type]) -> Type:
    entry = _dataset(types, 0).item or ANY
    _probe(types, 1, entry)
    return list_of(entry)


# How a found entry matched (engine/source/data.py, MATCH_REPORT): which of the probe's
# fields agreed, how many, and how many the probe gave.
MATCH_REPORT = "matched"
_REPORT = record({"fields": list_of(STRING), "count": INTEGER, "of": INTEGER})


def _reported(types: Sequence[Type]) -> Type:
    """The entry type of a look-up that reports how it matched: the entry plus `matched`."""
    entry = _dataset(types, 0).item or ANY
    _probe(types, 1, entry)
    if entry.kind != "record" or entry.fields is None:
        return entry
    if MATCH_REPORT in entry.fields:
        raise SignatureProblem(
            0, f"the data set's field '{MATCH_REPORT}' is reserved for the match report"
        )
    return record({**entry.fields, MATCH_REPORT: _REPORT})


def _similar(types: Sequence[Type]) -> Type:
    entry = _reported(types)
    _integer(types, 2)
    return entry.with_nullable()


def _similar_all(types: Sequence[Type]) -> Type:
    entry = _reported(types)
    _integer(types, 2)
    return list_of(entry)


def _match_condition(types: Sequence[Type]) -> Type:
    return _reported(types).with_nullable()


# -- implementations ---------------------------------------------------------


def _date_of(value: str | date | datetime) -> date:
    if isinstance(value, str):
        return cal.parse_date(value)
    return cal.local_date(value)


def _round_half_up(value: int | Decimal) -> int:
    if isinstance(value, int):
        return value
    return int(Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _percent_of_impl(amount: int | Decimal, percent: int | Decimal) -> int:
    return _round_half_up(Decimal(amount) * Decimal(percent) / 100)


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
    return sum((v for v in values if v is not None), 0)


def _count_distinct_impl(items: Iterable[Any], fn: Callable[[Any], Any] | None = None) -> int:
    values = items if fn is None else (fn(item) for item in items)
    return len({v for v in values if v is not None})


def _distinct_impl(items: Iterable[Any], fn: Callable[[Any], Any] | None = None) -> list[Any]:
    values = items if fn is None else (fn(item) for item in items)
    return list(dict.fromkeys(v for v in values if v is not None))


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

_T = _temporal
_register(
    "date",
    "date(text | date-time) -> date",
    "The calendar date: parses 'YYYY-MM-DD', or takes the Japan date of a date-time.",
    _to_date,
    _date_of,
    args=(1, 1),
)
_register(
    "datetime",
    "datetime(text) -> date-time",
    "Parses an RFC 3339 instant with its offset; '24:00:00' is the next day's 00:00.",
    _fixed(DATETIME, _string),
    cal.parse_datetime,
    args=(1, 1),
)
_register(
    "add_days",
    "add_days(date | date-time, integer) -> same kind",
    "Adds whole days (negative to go back).",
    _same_temporal,
    cal.add_days,
    args=(2, 2),
)
_register(
    "add_months",
    "add_months(date | date-time, integer) -> same kind",
    "Adds calendar months, clamping the day to the end of the month (1/31 + 1 = 2/28).",
    _same_temporal,
    cal.add_months,
    args=(2, 2),
)
_register(
    "with_day",
    "with_day(date | date-time, integer) -> date",
    "Day D of the same month, clamped to the month's last day.",
    _fixed(DATE, _T, _integer),
    cal.with_day,
    args=(2, 2),
)
_register(
    "start_of_month",
    "start_of_month(date | date-time) -> date",
    "The first day of the month.",
    _fixed(DATE, _T),
    cal.start_of_month,
    args=(1, 1),
)
_register(
    "end_of_month",
    "end_of_month(date | date-time) -> date",
    "The last day of the month.",
    _fixed(DATE, _T),
    cal.end_of_month,
    args=(1, 1),
)
_register(
    "start_of_day",
    "start_of_day(date | date-time) -> date-time",
    "00:00 of the day in Japan.",
    _fixed(DATETIME, _T),
    cal.start_of_day,
    args=(1, 1),
)
_register(
    "end_of_day",
    "end_of_day(date | date-time) -> date-time",
    "24:00 of the day in Japan: the first instant that is no longer on that day.",
    _fixed(DATETIME, _T),
    cal.end_of_day,
    args=(1, 1),
)
_register(
    "days_between",
    "days_between(from, to) -> integer",
    "Calendar days from the first to the second (negative if earlier).",
    _pair_temporal(INTEGER),
    cal.days_between,
    args=(2, 2),
)
_register(
    "months_between",
    "months_between(from, to) -> integer",
    "Whole calendar months from the first to the second: the largest n with "
    "add_months(from, n) <= to.",
    _pair_temporal(INTEGER),
    cal.months_between,
    args=(2, 2),
)
_register(
    "minutes_between",
    "minutes_between(from, to) -> integer",
    "Whole minutes elapsed from the first instant to the second (negative if earlier).",
    _fixed(INTEGER, _datetime_arg, _datetime_arg),
    lambda start, end: _whole_minutes(end - start),
    args=(2, 2),
)
_register(
    "year",
    "year(date | date-time) -> integer",
    "The year (in Japan).",
    _fixed(INTEGER, _T),
    lambda v: cal.local_date(v).year,
    args=(1, 1),
)
_register(
    "month",
    "month(date | date-time) -> integer",
    "The month, 1-12 (in Japan).",
    _fixed(INTEGER, _T),
    lambda v: cal.local_date(v).month,
    args=(1, 1),
)
_register(
    "day",
    "day(date | date-time) -> integer",
    "The day of the month (in Japan).",
    _fixed(INTEGER, _T),
    lambda v: cal.local_date(v).day,
    args=(1, 1),
)

_register(
    "normalize",
    "normalize(text) -> text",
    "NFKC, any dash as '-', whitespace runs as one space, trimmed.",
    _fixed(STRING, _string),
    text.normalize_text,
    args=(1, 1),
)
_register(
    "normalize_name",
    "normalize_name(text) -> text",
    "A name for comparison: NFKC, no spaces of any width, Latin case-folded.",
    _fixed(STRING, _string),
    text.normalize_name,
    args=(1, 1),
)
_register(
    "normalize_postal",
    "normalize_postal(text) -> text",
    "A postal code as digits: full-width digits, dashes, spaces and 〒 removed.",
    _fixed(STRING, _string),
    text.normalize_postal,
    args=(1, 1),
)
_register(
    "normalize_phone",
    "normalize_phone(text) -> text",
    "A phone number as domestic digits: dashes, spaces, brackets removed; +81 -> 0.",
    _fixed(STRING, _string),
    text.normalize_phone,
    args=(1, 1),
)
_register(
    "lower",
    "lower(text) -> text",
    "Lower-case (Latin letters).",
    _fixed(STRING, _string),
    str.lower,
    args=(1, 1),
)
_register(
    "length",
    "length(text | list) -> integer",
    "Number of characters or items.",
    _length,
    len,
    args=(1, 1),
)
_register(
    "contains",
    "contains(text, part) -> boolean",
    "Whether the text contains the part.",
    _fixed(BOOLEAN, _string, _string),
    lambda a, b: b in a,
    args=(2, 2),
)
_register(
    "starts_with",
    "starts_with(text, prefix) -> boolean",
    "Whether the text starts with the prefix.",
    _fixed(BOOLEAN, _string, _string),
    str.startswith,
    args=(2, 2),
)
_register(
    "ends_with",
    "ends_with(text, suffix) -> boolean",
    "Whether the text ends with the suffix.",
    _fixed(BOOLEAN, _string, _string),
    str.endswith,
    args=(2, 2),
)

_register(
    "count",
    "count(list[, x -> condition]) -> integer",
    "Number of items (for which the condition is true).",
    _count,
    _count_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "any",
    "any(list, x -> condition) -> boolean",
    "Whether the condition is true for at least one item.",
    _quantifier,
    _any_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "all",
    "all(list, x -> condition) -> boolean",
    "Whether the condition is true for every item (true for an empty list).",
    _quantifier,
    _all_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "first",
    "first(list[, x -> condition]) -> item or null",
    "The first item (for which the condition is true), or null.",
    _first,
    _first_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "filter",
    "filter(list, x -> condition) -> list",
    "The items for which the condition is true, in order.",
    _filter,
    _filter_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "map",
    "map(list, x -> value) -> list",
    "The value computed for each item.",
    _map,
    _map_impl,
    args=(2, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "sum",
    "sum(list[, x -> number]) -> number",
    "Total of the numbers (nulls skipped).",
    _sum,
    _sum_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)
_register(
    "count_distinct",
    "count_distinct(list[, x -> value]) -> integer",
    "Number of different non-null values (e.g. distinct days of contact attempts).",
    _count_distinct,
    _count_distinct_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)

_register(
    "distinct",
    "distinct(list[, x -> value]) -> list",
    "The different non-null values (computed for each item), in the order first seen.",
    _distinct,
    _distinct_impl,
    args=(1, 2),
    nulls="lists",
    lambda_args=(1,),
)

_register(
    "min",
    "min(a, b, ...) -> smallest",
    "The smallest non-null argument.",
    _extreme,
    _min_impl,
    args=(1, 16),
    nulls="none",
)
_register(
    "max",
    "max(a, b, ...) -> largest",
    "The largest non-null argument.",
    _extreme,
    _max_impl,
    args=(1, 16),
    nulls="none",
)
_register(
    "if",
    "if(condition, then, else) -> value",
    "`then` when the condition is true, otherwise `else` (null counts as false).",
    _if,
    lambda c, a, b: a if c is True else b,
    args=(3, 3),
    nulls="none",
)
_register(
    "coalesce",
    "coalesce(a, b, ...) -> value",
    "The first argument that is not null.",
    _coalesce,
    _coalesce_impl,
    args=(2, 16),
    nulls="none",
)
_register(
    "merge",
    "merge(record, record) -> record",
    "The first record with the second's fields laid over it (records merged field by field, "
    "a null in the second keeps the first's value): facts built from an event and an entity.",
    _merge,
    _merge_impl,
    args=(2, 2),
    nulls="none",
)
_register(
    "round_half_up",
    "round_half_up(number) -> integer",
    "Rounds to a whole number, halves away from zero (yen rounding).",
    _round,
    _round_half_up,
    args=(1, 1),
)
_register(
    "percent_of",
    "percent_of(amount, percent) -> integer",
    "percent% of amount, rounded half up to the yen, once.",
    _percent_of,
    _percent_of_impl,
    args=(2, 2),
)

_register(
    "find",
    "find(data.SET, {field: value, ...}) -> list of entries",
    "Entries whose fields equal all the given values (indexed at load time).",
    _find,
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
    _similar,
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
    _similar_all,
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
    _match_condition,
    _match_condition_impl,
    args=(2, 2),
    nulls="none",
    foldable=False,
)
