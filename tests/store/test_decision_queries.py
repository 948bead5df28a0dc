"""The decision log's queries: the outcome filter, cursor paging and the daily counts the
console reads (GET /v1/decisions, GET /v1/policies/{id}/stats), on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from engine.store.decisions import DecisionLog, Entry, OutcomeIs, json_path

DAY = 86_400_000
JST = 9 * 3_600_000


def _entry(
    decision_id: str, outcome: dict[str, Any], logged_at: int = 0, policy: str = "p"
) -> Entry:
    return Entry(
        decision_id=decision_id,
        policy_id=policy,
        revision="r1",
        at="2024-09-21T23:59:59+09:00",
        logged_at=logged_at,
        latency_us=1,
        request_hash=None,
        request='{"facts": {}}',
        outcome=orjson.dumps(outcome).decode(),
        fired="[]",
        response=b"{}",
    )


@pytest.fixture
def log(location: str) -> Iterator[DecisionLog]:
    decision_log = DecisionLog(location)
    decision_log.commit(
        [
            _entry("yes", {"held": True, "n": 1, "effects": ["not_shipped"], "kind": "a"}),
            _entry("no", {"held": False, "n": 0, "effects": [], "kind": "1"}),
            _entry("one", {"held": None, "n": 1, "effects": ["x", "not_shipped"], "kind": 1}),
        ]
    )
    try:
        yield decision_log
    finally:
        decision_log.close()


def _ids(log: DecisionLog, **filters: Any) -> list[str]:
    return [row["decision_id"] for row in log.query(**filters)]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("held", True, ["yes"]),
        ("held", False, ["no"]),
        ("held", None, ["one"]),
        ("n", 1, ["one", "yes"]),  # an integer, not the boolean true
        ("n", 0, ["no"]),
        ("effects", "not_shipped", ["one", "yes"]),  # a list holds it
        ("kind", "1", ["no"]),  # the text "1" is not the integer 1
        ("kind", 1, ["one"]),
        ("missing", True, []),
    ],
)
def test_an_outcome_filter_tells_booleans_integers_texts_and_lists_apart(
    log: DecisionLog, field: str, value: Any, expected: list[str]
) -> None:
    assert _ids(log, outcome=OutcomeIs(field, value)) == expected


def test_an_outcome_field_is_a_name_never_a_path_of_its_own() -> None:
    assert json_path("held") == "$.held"
    for bad in ("a.b", "a[0]", "$", "", "a b", "x' OR 1"):
        with pytest.raises(ValueError):
            json_path(bad)


def test_a_cursor_pages_from_newest_to_oldest_without_repeating_a_row(location: str) -> None:
    decision_log = DecisionLog(location)
    try:
        decision_log.commit([_entry(f"d{i}", {}) for i in range(5)])
        first = decision_log.query(limit=2)
        second = decision_log.query(limit=2, before_seq=first[-1]["seq"])
        third = decision_log.query(limit=2, before_seq=second[-1]["seq"])
        pages = [r["decision_id"] for r in first + second + third]
        assert pages == ["d4", "d3", "d2", "d1", "d0"]
    finally:
        decision_log.close()


def test_daily_counts_group_by_the_local_day_and_the_outcome_value(location: str) -> None:
    decision_log = DecisionLog(location)
    try:
        day = 20_000 * DAY  # a midnight in UTC
        decision_log.commit(
            [
                _entry("a", {"held": True}, day - JST - 1),  # 23:59:59.999 in Japan: day - 1
                _entry("b", {"held": True}, day - JST),  # 00:00 in Japan: day
                _entry("c", {"held": False}, day),
                _entry("d", {"held": False}, day, policy="other"),
                _entry("e", {"held": True}, day - 3 * DAY),  # before `since`
            ]
        )
        since = day - 2 * DAY
        assert decision_log.daily("p", "held", since, JST) == [
            (19_999, 1, 1),
            (20_000, 0, 1),
            (20_000, 1, 1),
        ]
        assert decision_log.daily("p", None, since, JST) == [(19_999, None, 1), (20_000, None, 2)]
    finally:
        decision_log.close()
