"""One date-time parser and one JSON form: facts, `at`, responses and the store agree."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest

from engine.core.errors import InputError
from engine.core.jsonvalue import dumps, loads_exact, loads_request, to_json_value
from engine.lang.calendar import parse_datetime
from engine.runtime.evaluate import resolve_at
from engine.source.facts import compile_facts_schema

INSTANT = {"type": "object", "properties": {"t": {"type": "string", "format": "date-time"}}}
TEXTS = [
    "2024-09-21T23:59:59+09:00",
    "2024-09-21t23:59:59z",
    "2024-09-21 24:00:00+09:00",
    "2024-09-21T23:59:59.1234567891+09:00",  # more than 9 fraction digits
    "２０２４-09-21T23:59:59+09:00",  # full-width digits
    "2024-09-21T23:59:60+09:00",  # a leap second, as text
    "2024-09-21T24:00:01+09:00",
    "2024-09-21T23:59:59",  # no offset
    "2024-09-21T23:59:59+24:00",
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "9999-12-31T14:59:59Z",  # the last instant Japan time can show
    "0001-01-01T09:00:00+09:00",
]


def _facts_accepts(text: str) -> bool:
    try:
        compile_facts_schema(INSTANT, source="test").validate({"t": text})
    except InputError:
        return False
    return True


def _at_accepts(text: str) -> bool:
    try:
        resolve_at(text)
    except InputError:
        return False
    return True


@pytest.mark.parametrize("text", TEXTS)
def test_facts_and_at_accept_and_refuse_the_same_texts(text: str) -> None:
    assert _facts_accepts(text) == _at_accepts(text)


def test_full_width_digits_and_overflowing_years_are_refused_with_a_reason() -> None:
    for text, reason in [
        ("２０２４-09-21T23:59:59+09:00", "is not a valid date-time"),
        ("9999-12-31T23:59:59-14:00", "out of range"),
        ("0001-01-01T00:00:00+14:00", "out of range"),
    ]:
        with pytest.raises(InputError) as caught:
            resolve_at(text)
        assert reason in caught.value.diagnostics[0].message
        assert caught.value.diagnostics[0].pointer == "/at"


def test_the_edges_of_the_representable_years_are_accepted() -> None:
    assert parse_datetime("9999-12-31T14:59:59Z") == datetime(9999, 12, 31, 14, 59, 59, tzinfo=UTC)
    assert parse_datetime("0001-01-01T09:00:00+09:00").year == 1


def test_decimals_are_exact_json_numbers_everywhere() -> None:
    value = {"rate": Decimal("0.1000000000000000055511151231257827"), "fee": Decimal("80000")}
    raw = dumps(value)
    assert raw == b'{"rate":0.1000000000000000055511151231257827,"fee":80000}'
    assert loads_exact(raw) == value
    assert to_json_value(value) == value and isinstance(to_json_value(value)["fee"], int)
    assert dumps({"big": Decimal("1e30")}) == b'{"big":' + b"1" + b"0" * 30 + b"}"


def test_dates_instants_and_sets_have_one_form() -> None:
    value = {
        "d": date(2024, 2, 29),
        "t": datetime(2024, 9, 21, 14, 59, 59, tzinfo=UTC),
        "s": {"b", "a"},
    }
    expected = {"d": "2024-02-29", "t": "2024-09-21T23:59:59+09:00", "s": ["a", "b"]}
    assert orjson.loads(dumps(value)) == expected == to_json_value(value)


def test_integers_beyond_64_bits_are_written_exactly_not_refused() -> None:
    value = {"n": -(2**63) - 1, "items": [2**64, 1]}
    assert dumps(value) == b'{"n":-9223372036854775809,"items":[18446744073709551616,1]}'
    assert loads_exact(dumps(value, sort_keys=True)) == value


def test_a_request_is_read_exactly_where_a_float_would_alter_a_number() -> None:
    body = b'{"share": 24.9994999999999999999, "big": 18446744073709551616, "n": 1.5}'
    assert loads_request(body) == {
        "share": Decimal("24.9994999999999999999"),
        "big": 2**64,
        "n": Decimal("1.5"),
    }
    # the common body keeps orjson's fast path (floats become Decimal in the validator)
    assert loads_request(b'{"share": 24.5, "n": 12}') == {"share": 24.5, "n": 12}
    # a float holds any 15 significant digits; from 16 characters of digits and dots on,
    # the body takes the exact path (a little early for "0.", never late)
    assert loads_request(b"[0.1234567890123]") == [0.1234567890123]
    assert loads_request(b"[0.30000000000000001]") == [Decimal("0.30000000000000001")]
