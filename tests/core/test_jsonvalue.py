"""The one JSON form of the engine's values: by exact type, and the same for subclasses."""

from __future__ import annotations

import enum
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.jsonvalue import (
    EXPONENT,
    JST,
    LONG_NUMBER,
    MAX_DEPTH,
    TooDeep,
    TooLong,
    check_depth,
    deeper_than,
    dumps,
    format_datetime,
    format_value,
    has_long_number,
    loads_exact,
    loads_exact_items,
    loads_logged,
    loads_request,
    quoted,
    shown,
    to_json_value,
)

offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(
    min_value=datetime(1960, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets | st.just(JST)
)


@given(instants)
def test_an_instant_is_written_in_japan_time_with_microseconds_only_when_it_has_some(
    value: datetime,
) -> None:
    local = value.astimezone(JST)
    text = format_datetime(value)
    assert text == local.isoformat(timespec="microseconds" if local.microsecond else "seconds")
    assert text.endswith("+09:00") and ("." in text) == bool(local.microsecond)
    assert datetime.fromisoformat(text) == value


class Level(enum.IntEnum):
    LOW = 1


class Day(date):
    pass


class Instant(datetime):
    pass


class Record(dict[str, Any]):
    pass


SAME_FORM = [
    (None, None),
    (True, True),
    (7, 7),
    ("名前", "名前"),
    (Level.LOW, Level.LOW),  # an int to JSON, left to it as it is
    (date(2024, 9, 1), "2024-09-01"),
    (Day(2024, 9, 1), "2024-09-01"),
    (datetime(2024, 9, 21, 15, 0, tzinfo=UTC), "2024-09-22T00:00:00+09:00"),
    (Instant(2024, 9, 22, 0, 0, 0, 5, tzinfo=JST), "2024-09-22T00:00:00.000005+09:00"),
    (Decimal("1200"), 1200),
    (Decimal("0.10"), Decimal("0.10")),
    (Decimal("NaN"), "NaN"),
    ({"a": [date(2024, 1, 2)]}, {"a": ["2024-01-02"]}),
    (Record(at=date(2024, 1, 2)), {"at": "2024-01-02"}),
    ((1, Decimal("2")), [1, 2]),
    ({3, 1, 2}, [1, 2, 3]),
    (frozenset({"b", "a"}), ["a", "b"]),
    (timedelta(seconds=1), "0:00:01"),  # not JSON: its text
]


def test_every_type_and_its_subclasses_take_one_json_form() -> None:
    for value, expected in SAME_FORM:
        converted = to_json_value(value)
        assert converted == expected, value
        assert type(converted) is type(expected), value
        if not isinstance(value, timedelta):
            assert dumps(value) == dumps(converted), value


# bodies with runs of digits and dots around 16 long, and exponents, between the other
# characters of JSON
_BODY_PIECES = st.sampled_from(
    ["0", "7", ".", "1234567", "89012345", '"', ":", ",", " ", "a", "漢", "e", "E", "-", "["]
)


@given(st.lists(_BODY_PIECES, max_size=40).map("".join))
def test_the_long_number_pre_check_answers_what_the_regex_answers(text: str) -> None:
    raw = text.encode()
    expected = LONG_NUMBER.search(raw) is not None or EXPONENT.search(raw) is not None
    assert has_long_number(text.encode()) is expected
    assert has_long_number(text) is expected  # a batch line may be a text


def test_the_long_number_pre_check_at_its_boundary() -> None:
    assert not has_long_number(b'{"n": 123456789012345}')  # 15 digits: a float holds them
    assert has_long_number(b'{"n": 1234567890123456}')  # 16
    assert has_long_number(b'{"n": 0.30000000000000001}')
    assert not has_long_number(b'{"n": .123456789012345}')  # a dot first, then 15: no run
    assert has_long_number(b'{"n": "1234567890.12345"}')  # inside a text: the exact parse too


def test_a_number_with_an_exponent_is_read_again_exactly() -> None:
    assert not has_long_number(b'{"n": 1.25, "id": "550e8400-e29b"}')  # an id's 0e: no number
    assert has_long_number(b'{"n": 1e3}')
    assert has_long_number(b'{"n":[-2.5E-7]}')
    assert has_long_number(b'{"id": "550e8400", "n": 4.9e-324}')
    assert has_long_number(b"1e400")  # a body that is a number: refused later, not misread


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("1e-400", Decimal("1e-400")),  # a float: 0.0
        ("4.9e-324", Decimal("4.9e-324")),  # a float: 5e-324
        ("1.5e-330", Decimal("1.5e-330")),  # a float: 0.0
        ("1e400", Decimal("1e400")),  # a float: infinity, which orjson refuses
        ("-1E+400", Decimal("-1e400")),
        ("1" * 400, int("1" * 400)),  # past a float too
    ],
)
def test_a_number_a_float_cannot_hold_is_read_as_written(text: str, exact: Any) -> None:
    body = b'{"facts": {"a": ' + text.encode() + b', "b": 0.5}}'
    value = loads_request(body)
    assert value == {"facts": {"a": exact, "b": Decimal("0.5")}}
    assert str(value["facts"]["a"]) == str(exact)  # its digits, not only its value
    assert loads_logged(body) == value  # a logged request reads back the same


def test_an_ordinary_body_keeps_orjson_floats() -> None:
    assert loads_request(b'{"n": 1.25}') == {"n": 1.25}
    assert type(loads_request(b'{"n": 1.25}')["n"]) is float


@pytest.mark.parametrize(
    "rest",
    [b"NaN", b"-Infinity", b'"\\ud800"', b'"\xed\xa0\x80"', b"[1,]"],
)
def test_a_body_past_a_float_is_still_refused_for_what_orjson_refuses(rest: bytes) -> None:
    with pytest.raises(orjson.JSONDecodeError):
        loads_request(b'{"a": 1e400, "b": ' + rest + b"}")


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_an_integer_too_long_for_int_is_too_long_at_its_pointer_not_invalid_json(
    digits: int,
) -> None:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(4300)  # the default, whatever this interpreter started with
    try:
        with pytest.raises(TooLong) as caught:
            loads_request(b'{"a": 1e400, "b": [2, -' + b"1" * digits + b"]}")
        ok = loads_request(b'{"b": ' + b"1" * 4300 + b"}")
    finally:
        sys.set_int_max_str_digits(before)
    assert (caught.value.pointer, caught.value.digits) == ("/b/1", digits)
    found = caught.value.diagnostic("/facts")
    assert (found.code, found.pointer) == ("out_of_range", "/facts/b/1")
    assert found.message.endswith(f"; got an integer of {digits} digits")
    assert ok == {"b": int("1" * 4300)}  # at the limit: read, for the 64-bit rule to refuse


def test_a_body_past_a_float_and_past_python_s_depth_is_too_deep_at_its_place() -> None:
    body = b'[1e400,\n "[\\"", ' + b"[" * 2_000 + b"]" * 2_000 + b"]"
    with pytest.raises(TooDeep) as caught:
        loads_request(body)
    assert caught.value.pointer is None and caught.value.where == "line 2 column 72"
    with pytest.raises(TooDeep) as caught:
        loads_request(b"[1e400, " + b"[" * 64 + b"]" * 64 + b"]")
    assert caught.value.pointer == "/1" + "/0" * 63


def test_the_depth_limit_is_64_with_the_outer_value_counted() -> None:
    def deep(levels: int) -> bytes:
        return b"[" * levels + b"]" * levels

    assert MAX_DEPTH == 64
    check_depth(deep(64), orjson.loads(deep(64)))
    with pytest.raises(TooDeep) as caught:
        check_depth(deep(65), orjson.loads(deep(65)))
    assert caught.value.pointer == "/0" * 64


def test_the_pointer_names_the_first_value_past_the_limit_in_document_order() -> None:
    value = {"a": [1, {"b": [[]]}], "c/d": {"e~f": [[[]]]}, "g": [[[[]]]]}
    assert deeper_than(value, 4) == "/a/1/b/0"
    assert deeper_than(value, 5) is None
    assert deeper_than({"c/d": {"e~f": [[[]]]}}, 4) == "/c~1d/e~0f/0/0"
    assert deeper_than(3, 0) is None and deeper_than([], 0) == ""


def test_brackets_inside_texts_do_not_make_a_value_deep() -> None:
    text = orjson.dumps({"note": "[" * 500 + "{" * 500})
    check_depth(text, orjson.loads(text))


@given(
    st.recursive(
        st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3), max_leaves=80
    )
)
def test_the_walk_agrees_with_a_recursive_count(value: Any) -> None:
    def depth(node: Any) -> int:
        return 1 + max(map(depth, node), default=0) if isinstance(node, list) else 0

    past = deeper_than(value, 3)
    assert (past is None) == (depth(value) <= 3)


def test_a_record_in_a_message_reads_as_json_not_as_a_python_dict() -> None:
    record = {"c": 1, "名前": "山田", "on": date(2024, 1, 31), "rate": Decimal("0.5")}
    assert format_value(record) == '{"c":1,"名前":"山田","on":"2024-01-31","rate":0.5}'
    assert format_value([{"x": 1}, 2]) == '{"x":1}, 2'  # a list: its items, comma-separated
    assert format_value(None) == "-" and format_value(True) == "true"


@pytest.mark.parametrize(
    ("value", "json_form", "yaml_form"),
    [
        (True, "true", "true"),
        (None, "null", "null"),
        (Decimal("1.5"), "1.5", "1.5"),
        (Decimal("0.30000000000000001"), "0.30000000000000001", "0.30000000000000001"),
        (Decimal("2.0"), "2", "2"),
        (1.5, "1.5", "1.5"),
        ("書類", '"書類"', "'書類'"),
        ({"c": [1, False]}, '{"c":[1,false]}', '{"c":[1,false]}'),
        (date(2024, 2, 29), '"2024-02-29"', '"2024-02-29"'),
    ],
)
def test_a_value_in_a_message_reads_as_json_or_yaml_writes_it_never_as_python(
    value: object, json_form: str, yaml_form: str
) -> None:
    assert (shown(value), quoted(value)) == (json_form, yaml_form)


def test_a_long_value_is_cut_and_a_huge_integer_is_counted_not_printed() -> None:
    assert shown("x" * 100) == '"' + "x" * 56 + "..."
    assert len(shown(list(range(100)), limit=20)) == 20
    assert shown(10**30) == "an integer of 31 digits"
    assert shown(10**20000) == "an integer of 20001 digits"  # past str()'s 4,300: counted
    assert shown(10**20000 - 1) == "an integer of 20000 digits"


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_SPACE = st.text(alphabet=" \t\n\r", max_size=3)


@given(st.lists(st.tuples(_SPACE, _JSON_VALUES, _SPACE), max_size=8), _SPACE, _SPACE)
def test_an_array_read_an_element_at_a_time_is_the_array_read_at_once(
    items: list[tuple[str, Any, str]], before: str, after: str
) -> None:
    inner = ",".join(f"{a}{dumps(value).decode()}{b}" for a, value, b in items)
    text = f"{before}[{inner}]{after}"
    assert loads_exact_items(text) == loads_exact(text)
    assert loads_exact_items(text.encode()) == loads_exact(text)


@pytest.mark.parametrize(
    "text", ["[1,]", "[1 2]", "[1]x", "[", "[1", "[,1]", "", " ", "[1,,2]", "[]]"]
)
def test_a_broken_array_is_refused_as_a_read_at_once_refuses_it(text: str) -> None:
    with pytest.raises(ValueError) as at_once:
        loads_exact(text)
    with pytest.raises(ValueError) as one_by_one:
        loads_exact_items(text)
    assert str(one_by_one.value) == str(at_once.value)


@pytest.mark.parametrize("text", ['{"a": [1.5]}', "3", '"x"', "null", " 2.50 "])
def test_a_value_that_is_no_array_is_read_at_once(text: str) -> None:
    assert loads_exact_items(text) == loads_exact(text)
