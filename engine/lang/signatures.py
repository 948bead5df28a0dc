"""The type checks of the function library: does a call fit its function, and what does it give.

The type checker (engine/lang/check.py) knows nothing of particular functions. For a call it
finds the Function in engine/lang/functions.py and hands that function's `check` the static
types of the call's arguments, in order (a lambda argument as the type of its body). The
check returns the static type of the call's result, or raises SignatureProblem naming the
argument that does not fit (its 0-based index, or None for the call as a whole) and why; the
checker turns that into a positioned diagnostic. Checks never see values, only Types.

Two kinds of check, named by what they look at:

- an argument check, `*_arg(types, index)`, checks the one argument at `index` and returns
  its type (integer_arg, temporal_arg, dataset_arg, ...). `any` and `null` fit every kind:
  an unknown type is not an error here, and a null argument makes the result null instead
  (the null rule of engine/lang/functions.py), which `nullable_if` records;
- a call check, `*_call(types)`, checks a whole call of the function it is named after and
  returns the result type (count_call, merge_call, ...). `fixed(result, *arg_checks)` builds
  one for a function whose arguments each have one kind and whose result type is fixed;
  `pair_temporal(result)` one for two dates or two date-times.

The number of arguments is not checked here: the registry holds each function's minimum and
maximum, and the checker compares the count before calling the check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from engine.core.i18n import Msg
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


def kind_arg(types: Sequence[Type], index: int, allowed: str, what: Msg) -> Type:
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


def temporal_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "date|datetime", Msg("a date or a date-time"))


def datetime_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "datetime", Msg("a date-time"))


def integer_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "integer", Msg("an integer"))


def number_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "number", Msg("a number"))


def string_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "string", Msg("text"))


def list_arg(types: Sequence[Type], index: int) -> Type:
    return kind_arg(types, index, "list", Msg("a list"))


def nullable_if(result: Type, types: Sequence[Type]) -> Type:
    return result.with_nullable(any(t.nullable for t in types))


def same_temporal_call(types: Sequence[Type]) -> Type:
    t = temporal_arg(types, 0)
    integer_arg(types, 1)
    base = DATETIME if t.kind == "datetime" else DATE if t.kind == "date" else ANY
    return nullable_if(base, types)


def date_call(types: Sequence[Type]) -> Type:
    t = kind_arg(types, 0, "string|date|datetime", Msg("text, a date or a date-time"))
    return nullable_if(DATE, [t])


def fixed(result: Type, *checks: Callable[[Sequence[Type], int], Type]) -> Callable:
    def check(types: Sequence[Type]) -> Type:
        for index, arg_check in enumerate(checks):
            if index < len(types):
                arg_check(types, index)
        return nullable_if(result, types)

    return check


def pair_temporal(result: Type) -> Callable[[Sequence[Type]], Type]:
    def check(types: Sequence[Type]) -> Type:
        a, b = temporal_arg(types, 0), temporal_arg(types, 1)
        if {a.kind, b.kind} == {"date", "datetime"}:
            raise SignatureProblem(
                1,
                Msg(
                    "both arguments must be dates or both date-times; "
                    "use date(x) to take the date of a date-time"
                ),
            )
        return nullable_if(result, types)

    return check


def list_item(types: Sequence[Type]) -> Type:
    t = list_arg(types, 0)
    return t.item if t.kind == "list" and t.item is not None else ANY


def lambda_result(types: Sequence[Type], index: int) -> Type:
    return types[index] if index < len(types) else ANY


def predicate_arg(types: Sequence[Type], index: int) -> None:
    if index < len(types) and types[index].kind not in ("boolean", "any"):
        raise SignatureProblem(
            index,
            Msg("the condition must be true or false, got {type}", type=types[index].describe()),
        )


def count_call(types: Sequence[Type]) -> Type:
    list_arg(types, 0)
    predicate_arg(types, 1)
    return INTEGER


def quantifier_call(types: Sequence[Type]) -> Type:
    list_arg(types, 0)
    predicate_arg(types, 1)
    return BOOLEAN


def first_call(types: Sequence[Type]) -> Type:
    item = list_item(types)
    predicate_arg(types, 1)
    return item.with_nullable()


def filter_call(types: Sequence[Type]) -> Type:
    item = list_item(types)
    predicate_arg(types, 1)
    return list_of(item)


def map_call(types: Sequence[Type]) -> Type:
    list_arg(types, 0)
    return list_of(lambda_result(types, 1))


def sum_call(types: Sequence[Type]) -> Type:
    item = lambda_result(types, 1) if len(types) > 1 else list_item(types)
    if item.kind not in NUMERIC_KINDS and item.kind != "any":
        raise SignatureProblem(
            len(types) - 1, Msg("sum needs numbers, got {type}", type=item.describe())
        )
    return Type("integer" if item.kind == "integer" else "number")


def count_distinct_call(types: Sequence[Type]) -> Type:
    list_arg(types, 0)
    return INTEGER


def distinct_call(types: Sequence[Type]) -> Type:
    list_arg(types, 0)
    return list_of(lambda_result(types, 1) if len(types) > 1 else list_item(types))


def extreme_call(types: Sequence[Type]) -> Type:
    if not types:
        raise SignatureProblem(None, Msg("needs at least one argument"))
    result = types[0]
    for index in range(len(types)):
        kind_arg(types, index, "number|date|datetime", Msg("a number, a date or a date-time"))
        result = join(result, types[index])
    if result.kind == "any" and any(t.kind != "any" for t in types):
        raise SignatureProblem(None, Msg("all arguments must be of the same kind"))
    return result


def if_call(types: Sequence[Type]) -> Type:
    predicate_arg(types, 0)
    return join(types[1], types[2])


def coalesce_call(types: Sequence[Type]) -> Type:
    result = types[0]
    for t in types[1:]:
        result = join(result, t)
    return result.with_nullable(all(t.nullable for t in types))


def merge_call(types: Sequence[Type]) -> Type:
    return merged(
        kind_arg(types, 0, "record", Msg("a record")), kind_arg(types, 1, "record", Msg("a record"))
    )


def merged(a: Type, b: Type) -> Type:
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
            fields[name] = merged(ours, theirs)
        else:  # b's null leaves a's value
            fields[name] = join(ours, theirs.with_nullable(False)) if theirs.nullable else theirs
    return record(fields).with_nullable(a.nullable and b.nullable)


def round_call(types: Sequence[Type]) -> Type:
    number_arg(types, 0)
    return nullable_if(INTEGER, types[:1])


def percent_of_call(types: Sequence[Type]) -> Type:
    number_arg(types, 0)
    number_arg(types, 1)
    return nullable_if(INTEGER, types)


def length_call(types: Sequence[Type]) -> Type:
    t = kind_arg(types, 0, "string|list", Msg("text or a list"))
    return nullable_if(INTEGER, [t])


def dataset_arg(types: Sequence[Type], index: int) -> Type:
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


def probe_arg(types: Sequence[Type], index: int, entry: Type) -> None:
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


def find_call(types: Sequence[Type]) -> Type:
    entry = dataset_arg(types, 0).item or ANY
    probe_arg(types, 1, entry)
    return list_of(entry)


# How a found entry matched (engine/source/data.py, MATCH_REPORT): which of the probe's
# fields agreed, how many, and how many the probe gave.
MATCH_REPORT = "matched"
_REPORT = record({"fields": list_of(STRING), "count": INTEGER, "of": INTEGER})


def reported(types: Sequence[Type]) -> Type:
    """The entry type of a look-up that reports how it matched: the entry plus `matched`."""
    entry = dataset_arg(types, 0).item or ANY
    probe_arg(types, 1, entry)
    if entry.kind != "record" or entry.fields is None:
        return entry
    if MATCH_REPORT in entry.fields:
        raise SignatureProblem(
            0,
            Msg(
                "the data set's field '{field}' is reserved for the match report",
                field=MATCH_REPORT,
            ),
        )
    return record({**entry.fields, MATCH_REPORT: _REPORT})


def similar_call(types: Sequence[Type]) -> Type:
    entry = reported(types)
    integer_arg(types, 2)
    return entry.with_nullable()


def similar_all_call(types: Sequence[Type]) -> Type:
    entry = reported(types)
    integer_arg(types, 2)
    return list_of(entry)


def match_condition_call(types: Sequence[Type]) -> Type:
    return reported(types).with_nullable()
