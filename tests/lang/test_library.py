"""Every function of the policy library, with the calendar and text edge cases the seeds need."""

from __future__ import annotations

import unicodedata
import unittest.mock
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.lang import calendar as cal
from engine.lang import text
from engine.lang.functions import FUNCTIONS
from engine.source import data as data_module
from engine.source.data import Dataset

JST = cal.JST


def call(name: str, *args: object) -> object:
    return FUNCTIONS[name].impl(*args)


# -- calendar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year clamps to the 29th
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),  # December rolls into next year
        (date(2024, 8, 31), 1, date(2024, 9, 30)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2024, 5, 10), 0, date(2024, 5, 10)),
        (date(2024, 1, 1), -13, date(2022, 12, 1)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_target_month(
    start: date, months: int, expected: date
) -> None:
    assert call("add_months", start, months) == expected


def test_add_months_on_an_instant_keeps_the_japan_wall_clock_time() -> None:
    instant = datetime(2024, 1, 30, 16, 0, tzinfo=UTC)  # 2024-01-31 01:00 JST
    moved = call("add_months", instant, 1)
    assert moved == datetime(2024, 2, 29, 1, 0, tzinfo=JST)


@pytest.mark.parametrize(
    ("name", "start", "amount"),
    [
        ("add_days", date(2024, 1, 1), 99_999_999_999_999),  # more days than a timedelta holds
        ("add_days", date(2024, 1, 1), -(10**9)),
        ("add_days", date(9999, 12, 31), 1),
        ("add_days", datetime(1, 1, 2, 5, tzinfo=cal.JST), -1),  # year 0 in UTC
        ("add_months", datetime(1, 2, 1, 5, tzinfo=cal.JST), -1),
        ("add_months", date(2024, 1, 1), 9_223_372_036_854_775_807),
    ],
)
def test_moving_a_date_out_of_the_years_1_9999_is_date_out_of_range(
    name: str, start: date, amount: int
) -> None:
    """Never Python's own words ("Python int too large to convert to C int")."""
    with pytest.raises(ValueError, match=r"^date out of range$"):
        call(name, start, amount)


@pytest.mark.parametrize(
    ("name", "start", "amount", "expected"),
    [
        ("add_days", date(9999, 12, 30), 1, date(9999, 12, 31)),
        ("add_days", date(2024, 1, 1), -738_885, date(1, 1, 1)),
        (
            "add_days",
            datetime(1, 1, 2, 9, tzinfo=cal.JST),
            -1,
            datetime(1, 1, 1, 9, tzinfo=cal.JST),
        ),
        ("add_months", date(9999, 11, 30), 1, date(9999, 12, 30)),
    ],
)
def test_the_last_dates_inside_the_range_are_reached(
    name: str, start: date, amount: int, expected: date
) -> None:
    assert call(name, start, amount) == expected


def test_claim_deadline_is_the_21st_of_the_next_month_at_24_00() -> None:
    # The claim window: received 8/31 23:30 JST, billed in September, deadline 9/21 24:00.
    received = cal.parse_datetime("2024-08-31T23:30:00+09:00")
    deadline = call(
        "end_of_day", call("with_day", call("add_months", call("date", received), 1), 21)
    )
    assert deadline == datetime(2024, 9, 22, 0, 0, tzinfo=JST)
    assert cal.parse_datetime("2024-09-21T23:59:59+09:00") < deadline
    assert not cal.parse_datetime("2024-09-22T00:00:00+09:00") < deadline
    assert cal.parse_datetime("2024-09-21T24:00:00+09:00") == deadline


def test_december_requests_have_their_deadline_in_january_of_the_next_year() -> None:
    received = date(2024, 12, 15)
    deadline = call("end_of_day", call("with_day", call("add_months", received, 1), 21))
    assert deadline == datetime(2025, 1, 22, 0, 0, tzinfo=JST)


def test_the_japan_date_of_an_instant_is_not_its_utc_date() -> None:
    instant = cal.parse_datetime("2024-08-31T15:30:00Z")  # 2024-09-01 00:30 JST
    assert call("date", instant) == date(2024, 9, 1)
    assert call("start_of_month", instant) == date(2024, 9, 1)


def test_with_day_clamps_and_start_end_of_month() -> None:
    assert call("with_day", date(2024, 2, 10), 31) == date(2024, 2, 29)
    assert call("end_of_month", date(2023, 2, 10)) == date(2023, 2, 28)
    assert call("start_of_month", date(2023, 2, 10)) == date(2023, 2, 1)
    with pytest.raises(ValueError):
        call("with_day", date(2024, 2, 10), 0)


def test_within_seven_days_runs_until_24_00_of_the_seventh_day() -> None:
    # The wrong-address window: a first mail sent 9/1 10:00 leaves the customer until 9/8 24:00.
    sent = cal.parse_datetime("2024-09-01T10:00:00+09:00")
    window_end = call("end_of_day", call("add_days", call("date", sent), 7))
    assert window_end == datetime(2024, 9, 9, 0, 0, tzinfo=JST)


def test_days_between_counts_calendar_days_in_japan() -> None:
    assert call("days_between", date(2024, 2, 28), date(2024, 3, 1)) == 2
    assert call("days_between", date(2024, 3, 1), date(2024, 2, 28)) == -2
    late = cal.parse_datetime("2024-09-01T23:59:00+09:00")
    early = cal.parse_datetime("2024-09-02T00:01:00+09:00")
    assert call("days_between", late, early) == 1


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        (date(2024, 1, 31), date(2024, 2, 29), 1),
        (date(2024, 1, 31), date(2024, 2, 28), 0),
        (date(2024, 1, 15), date(2024, 3, 14), 1),
        (date(2024, 1, 15), date(2024, 3, 15), 2),
        (date(2024, 3, 15), date(2024, 1, 15), -2),
        (date(2024, 5, 1), date(2024, 5, 31), 0),
        # backwards: the largest n with add_months(from, n) <= to, as forwards
        (date(2024, 3, 30), date(2024, 2, 28), -2),  # 3/30 - 1 month = 2/29 > 2/28
        (date(2024, 3, 30), date(2024, 2, 29), -1),
        (date(2024, 3, 31), date(2024, 3, 30), -1),
        (date(2024, 3, 31), date(2024, 2, 29), -1),  # clamped: 2/29 <= 2/29
        (date(2023, 3, 31), date(2023, 2, 27), -2),
    ],
)
def test_months_between_counts_whole_calendar_months(start: date, end: date, months: int) -> None:
    assert call("months_between", start, end) == months


def test_months_between_instants_counts_to_the_second() -> None:
    start = cal.parse_datetime("2024-01-10T12:00:00+09:00")
    assert call("months_between", start, cal.parse_datetime("2024-02-10T12:00:00+09:00")) == 1
    assert call("months_between", start, cal.parse_datetime("2024-02-10T11:59:59+09:00")) == 0


def test_months_between_instants_backwards_counts_to_the_second() -> None:
    start = cal.parse_datetime("2024-03-30T12:00:00+09:00")
    assert call("months_between", start, cal.parse_datetime("2024-02-29T12:00:00+09:00")) == -1
    assert call("months_between", start, cal.parse_datetime("2024-02-29T11:59:59+09:00")) == -2
    # in Japan: 2024-02-29T03:00Z is 12:00 on the 29th there
    assert call("months_between", start, cal.parse_datetime("2024-02-29T03:00:00Z")) == -1


# Month ends and leap days: the days around them, from both sides.
_EDGY_DATES = st.builds(
    lambda year, month, back: cal.end_of_month(date(year, month, 1)) - timedelta(days=back),
    st.integers(1999, 2101),
    st.integers(1, 12),
    st.integers(0, 3),
)
_DATES = st.one_of(_EDGY_DATES, st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)))


@given(_DATES, _DATES)
@settings(max_examples=500, deadline=None)
def test_months_between_is_the_largest_n_with_add_months_at_most_to(start: date, end: date) -> None:
    n = cal.months_between(start, end)
    assert cal.add_months(start, n) <= end < cal.add_months(start, n + 1)


@given(
    _DATES,
    _DATES,
    st.times(),
    st.times(),
    st.sampled_from([JST, UTC, timezone(timedelta(hours=-5))]),
)
@settings(max_examples=300, deadline=None)
def test_months_between_instants_is_the_largest_n_too(
    start_day: date, end_day: date, start_time: time, end_time: time, zone: timezone
) -> None:
    start = datetime.combine(start_day, start_time, JST)
    end = datetime.combine(end_day, end_time, zone)
    n = cal.months_between(start, end)
    assert cal.add_months(start, n) <= end < cal.add_months(start, n + 1)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)), st.integers(-240, 240))
@settings(max_examples=300, deadline=None)
def test_adding_n_months_is_n_whole_months_later(start: date, months: int) -> None:
    moved = cal.add_months(start, months)
    assert isinstance(moved, date)
    assert cal.months_between(start, moved) == months or moved.day != start.day
    assert (moved.year * 12 + moved.month) - (start.year * 12 + start.month) == months


@pytest.mark.parametrize(
    ("text_value", "expected"),
    [
        ("2024-09-21T23:59:59+09:00", datetime(2024, 9, 21, 23, 59, 59, tzinfo=JST)),
        ("2024-09-21T24:00:00+09:00", datetime(2024, 9, 22, 0, 0, tzinfo=JST)),
        ("2024-12-31T24:00:00+09:00", datetime(2025, 1, 1, 0, 0, tzinfo=JST)),
        ("2024-09-21T14:59:59Z", datetime(2024, 9, 21, 23, 59, 59, tzinfo=JST)),
        ("2024-09-21 10:00:00.5+09:00", datetime(2024, 9, 21, 10, 0, 0, 500000, tzinfo=JST)),
    ],
)
def test_datetime_parses_rfc3339_and_24_00(text_value: str, expected: datetime) -> None:
    assert call("datetime", text_value) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "2024-09-21T10:00:00",
        "2024-02-30T10:00:00+09:00",
        "2024-09-21T24:00:01+09:00",
        "21/09/2024",
        "2024-09-21T10:00:00+24:00",
    ],
)
def test_datetime_refuses_naive_invalid_and_ambiguous_text(bad: str) -> None:
    with pytest.raises(ValueError):
        cal.parse_datetime(bad)


def test_date_parses_strictly() -> None:
    assert call("date", "2024-02-29") == date(2024, 2, 29)
    for bad in ("2023-02-29", "2024-2-1", "20240201"):
        with pytest.raises(ValueError):
            cal.parse_date(bad)


def test_year_month_day_and_start_of_day() -> None:
    instant = cal.parse_datetime("2024-12-31T15:00:00Z")  # 2025-01-01 00:00 JST
    assert (call("year", instant), call("month", instant), call("day", instant)) == (2025, 1, 1)
    assert call("start_of_day", date(2024, 5, 1)) == datetime(2024, 5, 1, tzinfo=JST)


def test_instants_and_dates_convert_to_exact_integers() -> None:
    one = cal.parse_datetime("2024-09-21T23:59:59+09:00")
    assert cal.to_epoch_micros(one + timedelta(seconds=1)) - cal.to_epoch_micros(one) == 1_000_000
    assert cal.to_day_number(date(2024, 1, 2)) - cal.to_day_number(date(2024, 1, 1)) == 1


# -- text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("〒１２３－４５６７", "1234567"),
        ("123-4567", "1234567"),
        ("123ー4567", "1234567"),
        ("123‐4567", "1234567"),
        ("１２３ ４５６７", "1234567"),
    ],
)
def test_postal_codes_normalise_to_seven_digits(raw: str, expected: str) -> None:
    assert call("normalize_postal", raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("03-1234-5678", "0312345678"),
        ("０３ー１２３４ー５６７８", "0312345678"),
        ("(03) 1234 5678", "0312345678"),
        ("+81 90-1234-5678", "09012345678"),
        ("090−1234−5678", "09012345678"),
        ("090―1234―5678", "09012345678"),
    ],
)
def test_phone_numbers_normalise_to_domestic_digits(raw: str, expected: str) -> None:
    assert call("normalize_phone", raw) == expected


def test_names_ignore_spaces_of_any_width_and_width_of_kana() -> None:
    assert call("normalize_name", "山田　太郎") == call("normalize_name", "山田太郎")
    assert call("normalize_name", " 山田 太郎 ") == "山田太郎"
    assert call("normalize_name", "ﾔﾏﾀﾞ ﾀﾛｳ") == "ヤマダタロウ"
    assert call("normalize_name", "Taro YAMADA") == "taroyamada"
    assert call("normalize_name", "ルーシー") == "ルーシー"  # the long vowel mark stays


def test_normalize_unifies_dashes_and_spaces_but_keeps_long_vowels() -> None:
    assert call("normalize", "  ルーシー　１－２―３  ") == "ルーシー 1-2-3"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("。", ""),  # a その他 detail that says nothing (EX-3.6)
        ("・・・。－―…", ""),
        ("　 \t\n", ""),
        ("「社販」。", "社販"),
        ("A-1 ２件", "A12件"),  # digits are something; NFKC first
        ("ﾃｽﾄ", "テスト"),
        ("ルーシー", "ルーシー"),  # the long vowel mark is a letter (Lm)
        ("ーー", ""),  # but alone it is a dash typed with the kana keyboard
        ("ｰ・ｰ", ""),
        ("か\u3099", "が"),  # a combining mark stays with its letter
        ("café", "café"),
    ],
)
def test_letters_keep_what_a_free_text_says(raw: str, expected: str) -> None:
    assert call("letters", raw) == expected


@given(st.text(max_size=30))
def test_letters_are_letters_digits_and_marks_only(raw: str) -> None:
    kept = call("letters", raw)
    assert isinstance(kept, str)
    assert all(c.isalnum() or unicodedata.category(c).startswith("M") for c in kept)
    assert call("letters", kept) == kept


def test_text_helpers() -> None:
    assert call("lower", "ABC") == "abc"
    assert call("length", "日本") == 2
    assert call("length", [1, 2, 3]) == 3
    assert call("contains", "abc", "b") is True
    assert call("starts_with", "abc", "ab") is True
    assert call("ends_with", "abc", "bc") is True


@given(st.text(max_size=30))
@settings(max_examples=300, deadline=None)
def test_normalisers_are_idempotent(raw: str) -> None:
    for fn in (
        text.normalize_text,
        text.normalize_name,
        text.normalize_postal,
        text.normalize_phone,
    ):
        once = fn(raw)
        assert fn(once) == once


# -- lists, numbers, choices -------------------------------------------------------------


def test_list_functions() -> None:
    items = [{"n": 1, "ok": True}, {"n": 2, "ok": False}, {"n": 3, "ok": True}]
    is_ok = lambda item: item["ok"]  # noqa: E731
    assert call("count", items) == 3
    assert call("count", items, is_ok) == 2
    assert call("any", items, is_ok) is True
    assert call("all", items, is_ok) is False
    assert call("all", [], is_ok) is True
    assert call("first", items, lambda i: i["n"] > 1) == items[1]
    assert call("first", [], is_ok) is None
    assert call("filter", items, is_ok) == [items[0], items[2]]
    assert call("map", items, lambda i: i["n"]) == [1, 2, 3]
    assert call("sum", items, lambda i: i["n"]) == 6
    assert call("sum", [1, None, 2]) == 3


def test_count_distinct_counts_different_days_once() -> None:
    # SGキャンセル: three calls on one day are one attempt.
    calls = [date(2024, 5, 1), date(2024, 5, 1), date(2024, 5, 1), date(2024, 5, 3)]
    assert call("count_distinct", calls) == 2
    assert call("count_distinct", [None, None]) == 0


def test_distinct_and_count_distinct_take_records_and_lists_by_their_json_value() -> None:
    items = [
        {"a": 1, "b": [1, 2]},
        {"b": [1, 2], "a": Decimal("1.0")},  # the same record: 1 and 1.0 are one number
        {"a": True, "b": [1, 2]},  # true is not 1
        {"a": 1, "b": [2, 1]},  # lists in order
        None,
        [1, {"x": Decimal("2.50")}],
        [Decimal("1.00"), {"x": Decimal("2.5")}],
        [True, {"x": Decimal("2.5")}],
    ]
    assert call("count_distinct", items) == 5
    assert call("distinct", items) == [items[0], items[2], items[3], items[5], items[7]]
    assert call("distinct", items)[0] is items[0]  # the first of equal values
    assert call("count_distinct", items, lambda i: i if isinstance(i, dict) else None) == 3
    assert call("distinct", [1, True, Decimal("1.0"), 0, False, "1"]) == [1, True, 0, False, "1"]


def test_distinct_over_records_runs_in_a_policy_expression() -> None:
    from engine.lang.parser import parse
    from engine.lang.pycompile import compile_expr

    env = {"o": {"items": [{"k": "a"}, {"k": "a"}, {"k": "b"}]}}
    assert compile_expr(parse("count_distinct(o.items)"))(env) == 2
    assert compile_expr(parse("distinct(o.items)"))(env) == [{"k": "a"}, {"k": "b"}]


def test_min_max_coalesce_if() -> None:
    assert call("min", 3, None, 1) == 1
    assert call("max", date(2024, 1, 1), date(2025, 1, 1)) == date(2025, 1, 1)
    assert call("min", None, None) is None
    assert call("coalesce", None, 0, 5) == 0
    assert call("if", True, "a", "b") == "a"
    assert call("if", None, "a", "b") == "b"


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (100_000, 25, 25_000),
        (100_000, Decimal("12.5"), 12_500),
        (1_005, 50, 503),  # 502.5 rounds half up
        (999, Decimal("33.3"), 333),  # 332.667
        (-1_005, 50, -503),  # halves away from zero
    ],
)
def test_percent_of_rounds_half_up_to_the_yen_once(
    amount: int, percent: object, expected: int
) -> None:
    assert call("percent_of", amount, percent) == expected


def test_round_half_up() -> None:
    assert call("round_half_up", Decimal("2.5")) == 3
    assert call("round_half_up", Decimal("2.4999")) == 2
    assert call("round_half_up", 7) == 7


# -- reference data ----------------------------------------------------------------------


def blacklist() -> Dataset:
    entries = [
        {"id": "B1", "name": "山田 太郎", "postal_code": "123-4567", "phone": "03-1234-5678"},
        {"id": "B2", "name": "佐藤花子", "postal_code": "765-4321", "phone": "090-0000-1111"},
    ]
    match = {
        "name": "normalize_name",
        "postal_code": "normalize_postal",
        "phone": "normalize_phone",
    }
    return Dataset("blacklist", entries, match=match)


@pytest.mark.parametrize(
    ("probe", "at_least", "expected"),
    [
        ({"name": "山田　太郎", "postal_code": "１２３－４５６７", "phone": "999"}, 2, "B1"),
        (
            {"name": "山田太郎", "postal_code": "000-0000", "phone": "０３ー１２３４ー５６７８"},
            2,
            "B1",
        ),
        ({"name": "山田太郎", "postal_code": "000-0000", "phone": "999"}, 2, None),
        ({"name": "山田太郎", "postal_code": "000-0000", "phone": "999"}, 1, "B1"),
        ({"name": "山田太郎", "postal_code": "1234567", "phone": "0312345678"}, 3, "B1"),
        ({"name": None, "postal_code": "1234567", "phone": "0312345678"}, 2, "B1"),
        ({"name": "", "postal_code": "", "phone": ""}, 1, None),
    ],
)
def test_similar_matches_k_of_n_normalised_fields(
    probe: dict[str, object], at_least: int, expected: str | None
) -> None:
    found = call("similar", blacklist(), probe, at_least)
    assert (found["id"] if found else None) == expected  # type: ignore[index]


def test_find_uses_an_exact_index() -> None:
    data = Dataset(
        "estimates",
        [
            {"id": 1, "store": "S", "member": "M"},
            {"id": 2, "store": "S", "member": "N"},
            {"id": 3, "store": "S", "member": "M"},
        ],
    )
    data.prepare_find(("store", "member"))
    assert [e["id"] for e in call("find", data, {"store": "S", "member": "M"})] == [1, 3]
    assert call("find", data, {"store": "S", "member": None}) == []


def test_similar_all_lists_every_match_in_data_order() -> None:
    data = Dataset(
        "customers",
        [
            {"id": "C1", "name": "山田太郎", "postal_code": "1234567", "phone": "0312345678"},
            {"id": "C2", "name": "鈴木一郎", "postal_code": "1234567", "phone": "0900000000"},
            {"id": "C3", "name": "山田 太郎", "postal_code": "123-4567", "phone": "0000"},
        ],
        match={"name": "normalize_name", "postal_code": "normalize_postal"},
    )
    probe = {"name": "山田　太郎", "postal_code": "１２３ー４５６７"}
    assert [e["id"] for e in call("similar_all", data, probe, 2)] == ["C1", "C3"]
    assert [e["id"] for e in call("similar_all", data, probe, 1)] == ["C1", "C2", "C3"]
    assert call("similar_all", data, {"name": None, "postal_code": None}, 1) == []


def conditions() -> Dataset:
    entries = [
        {"id": "X1", "match": "exact", "phone": "03-1111-2222"},
        {"id": "X2", "match": "prefix", "phone": "090-9999"},
        {"id": "X3", "match": "suffix", "email": "@fraud.example"},
        {"id": "X4", "match": "contains", "address": "緑町３丁目"},
        {"id": "X5", "match": "exact", "name": "山田 一郎", "postal_code": "150-0001"},
        {"id": "X6", "match": "prefix", "phone": "ー"},  # normalises to nothing: ignored
        {"id": "X7", "match": "contains"},  # no condition at all: ignored
    ]
    match = {
        "name": "normalize_name",
        "postal_code": "normalize_postal",
        "phone": "normalize_phone",
        "email": "normalize_name",
        "address": "normalize",
    }
    return Dataset("blacklist_conditions", entries, match=match)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ({"phone": "０３（１１１１）２２２２"}, "X1"),
        ({"phone": "03-1111-22223"}, None),  # exact, not a prefix
        ({"phone": "090-9999-0001"}, "X2"),
        ({"phone": "090-999"}, None),  # shorter than the prefix
        ({"phone": "080-9999-0001"}, None),
        ({"email": "Taro@FRAUD.example"}, "X3"),
        ({"email": "taro@fraud.example.jp"}, None),
        ({"address": "東京都港区緑町3丁目4-5"}, "X4"),
        ({"address": "東京都港区緑町4丁目"}, None),
        ({"name": "山田一郎", "postal_code": "〒150-0001"}, "X5"),
        ({"name": "山田一郎", "postal_code": "150-0002"}, None),  # every field must hold
        ({"name": "山田一郎"}, None),
        ({"name": None, "phone": None, "email": ""}, None),
    ],
)
def test_match_condition_applies_exact_prefix_suffix_and_contains_entries(
    probe: dict[str, object], expected: str | None
) -> None:
    found = call("match_condition", conditions(), probe)
    assert (found["id"] if found else None) == expected  # type: ignore[index]


def test_match_condition_returns_the_first_applying_entry_in_data_order() -> None:
    data = Dataset(
        "c",
        [
            {"id": "late", "match": "contains", "address": "1"},
            {"id": "early", "match": "exact", "address": "1"},
        ],
        match={"address": "normalize"},
    )
    assert call("match_condition", data, {"address": "1"})["id"] == "late"  # type: ignore[index]


def test_match_condition_checks_only_indexed_candidates_never_every_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 100,000 conditions of every operator: a probe must look at a handful, not scan them.
    entries: list[dict[str, object]] = []
    for i in range(25_000):
        entries.append({"id": f"P{i}", "match": "prefix", "phone": f"090{i:05d}"})
        entries.append({"id": f"S{i}", "match": "suffix", "email": f"@d{i}.example"})
        entries.append({"id": f"C{i}", "match": "contains", "address": f"緑町{i}番地"})
        entries.append({"id": f"E{i}", "match": "exact", "phone": f"03{i:08d}"})
    match = {"phone": "normalize_phone", "email": "normalize_name", "address": "normalize"}
    data = Dataset("conditions", entries, match=match)
    checked: list[str] = []
    real = data_module._holds

    def counting(operator: str, value: str | None, pattern: str) -> bool:
        checked.append(pattern)
        return real(operator, value, pattern)

    monkeypatch.setattr(data_module, "_holds", counting)
    probe = {"phone": "090-1234-5678", "email": "a@d77.example", "address": "東京都緑町9番地"}
    found = data.match_condition(probe)
    assert found is not None and found["id"] == "C9"  # C9 comes before P12345 and S77
    assert len(checked) <= 3  # the prefix, the suffix and the contains candidates


def test_match_condition_on_an_empty_data_set_finds_nothing() -> None:
    assert call("match_condition", Dataset("c", [], match={"a": "exact"}), {"a": "x"}) is None


def test_every_function_has_a_signature_and_documentation() -> None:
    for name, function in FUNCTIONS.items():
        assert function.signature.startswith(name + "(")
        assert function.doc.endswith(".")


_NAMES = st.sampled_from(["山田 太郎", "山田太郎", "佐藤花子", "ｻﾄｳ ﾊﾅｺ", "鈴木一郎", ""])
_POSTALS = st.sampled_from(["123-4567", "１２３４５６７", "765-4321", "000-0000", ""])
_PHONES = st.sampled_from(["03-1234-5678", "０３ー１２３４ー５６７８", "090-0000-1111", ""])
_PERSON = st.fixed_dictionaries(
    {}, optional={"name": _NAMES, "postal_code": _POSTALS, "phone": _PHONES}
)


# How many postings a probe may have before k-of-n matching reads only the shortest lists:
# 0 always takes that path, a million never does, and the tuned value sits between.
_SHORT = st.sampled_from([0, data_module._SHORT_POSTINGS, 10**6])


@given(st.lists(_PERSON, max_size=25), _PERSON, st.integers(1, 3), _SHORT)
@settings(max_examples=300, deadline=None)
def test_similar_finds_exactly_the_entries_a_full_scan_finds(
    entries: list[dict[str, str]], probe: dict[str, str], at_least: int, short: int
) -> None:
    with unittest.mock.patch.object(data_module, "_SHORT_POSTINGS", short):
        _check_similar_against_a_full_scan(entries, probe, at_least)


def _check_similar_against_a_full_scan(
    entries: list[dict[str, str]], probe: dict[str, str], at_least: int
) -> None:
    match = {
        "name": "normalize_name",
        "postal_code": "normalize_postal",
        "phone": "normalize_phone",
    }
    data = Dataset("people", [{"id": str(i), **e} for i, e in enumerate(entries)], match=match)
    normalise = {f: FUNCTIONS[n].impl for f, n in match.items()}

    def agreement(entry: dict[str, str]) -> int:
        return sum(
            1
            for f, v in probe.items()
            if normalise[f](v)
            and entry.get(f) is not None
            and normalise[f](entry[f]) == normalise[f](v)
        )

    expected = [e["id"] for e in data.entries if agreement(e) >= at_least]
    found = call("similar_all", data, probe, at_least)
    assert [e["id"] for e in found] == expected
    first = call("similar", data, probe, at_least)
    assert (first["id"] if first else None) == (expected[0] if expected else None)
    # HB-2 reviewable: each entry says which of the probe's fields agreed, and how many
    given = [f for f, v in probe.items() if normalise[f](v)]
    for entry in found:
        original = data.entries[int(entry["id"])]
        agreed = [
            f
            for f in given
            if original.get(f) is not None and normalise[f](original[f]) == normalise[f](probe[f])
        ]
        assert entry["matched"] == {"fields": agreed, "count": len(agreed), "of": len(given)}
        assert "matched" not in original  # the data set is left as it was


def test_merge_lays_the_second_record_over_the_first_field_by_field() -> None:
    merge = FUNCTIONS["merge"].impl
    base = {"order": {"id": "O-1", "subscription": {"id": "S-1"}}, "keep": 1}
    over = {"order": {"subscription": {"held": True, "hold_source": None}}, "keep": None}
    assert merge(base, over) == {
        "order": {"id": "O-1", "subscription": {"id": "S-1", "held": True}},
        "keep": 1,
    }
    assert base == {"order": {"id": "O-1", "subscription": {"id": "S-1"}}, "keep": 1}
    assert merge(None, {"a": None, "b": {"c": None}}) == {"b": {}}
    assert merge({"a": 1}, None) == {"a": 1}
    assert merge(None, None) is None


def test_match_condition_reports_the_fields_its_condition_sets() -> None:
    data = Dataset(
        "c",
        [{"id": "BC-4", "match": "exact", "name": "伊藤 三郎", "postal_code": "980-0811"}],
        match={"name": "normalize_name", "postal_code": "normalize_postal"},
    )
    found = call("match_condition", data, {"name": "伊藤三郎", "postal_code": "９８０-０８１１"})
    assert found["matched"] == {"fields": ["name", "postal_code"], "count": 2, "of": 2}


def test_an_instant_is_a_duration_before_the_callers_clock_or_an_rfc_3339_time() -> None:
    now = 1_700_000_000.5
    assert cal.instant_ms("2d", now) == int((now - 2 * 86400) * 1000)
    assert cal.instant_ms(" 15m ", now) == int((now - 900) * 1000)
    assert cal.instant_ms("2024-10-01T10:00:00+09:00", now) == 1727744400000
    # ASCII digits only (\d and str.isdigit() take '２', '١', '²'); at most 9 of them
    for written in ("２d", "١d", "²d", "1234567890d", "2w", ""):
        with pytest.raises(ValueError):
            cal.instant_ms(written, now)


def test_a_date_is_its_first_instant_in_japan_and_year_1_in_japan_is_out_of_range() -> None:
    assert cal.instant_ms("2024-10-01", 0.0) == 1727708400000  # 2024-09-30T15:00:00Z
    assert cal.instant_ms("0001-01-02", 0.0) == cal.FIRST_MS + 15 * 3600 * 1000
    for written in ("0001-01-01", "2024-02-30", "2024-1-01", "２０２４-10-01"):
        with pytest.raises(ValueError):
            cal.instant_ms(written, 0.0)


def test_a_duration_reaching_before_year_1_is_refused_at_the_line() -> None:
    # from the epoch, 719,162 days back is 0001-01-01T00:00:00Z exactly
    assert cal.instant_ms("719162d", 0.0) == cal.FIRST_MS
    assert cal.instant_ms("17259888h", 0.0) == cal.FIRST_MS
    for written in ("719163d", "17259889h", "99999999d"):
        with pytest.raises(ValueError) as caught:
            cal.instant_ms(written, 0.0)
        assert "is out of range: instants must fall within the years 1-9999" in str(caught.value)
