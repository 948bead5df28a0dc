"""The decision log's queries: the outcome filter, cursor paging and the daily counts the
console reads (GET /v1/decisions, GET /v1/policies/{id}/stats), on both backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from engine.core.errors import StoreUnavailable
from engine.store import postgres
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


def _in_flight(url: str, decision_id: str) -> psycopg.Connection[Any]:
    """Another replica's group commit, numbered and not yet committed: its connection."""
    conn = psycopg.connect(url)
    conn.execute(
        "INSERT INTO decisions (decision_id, policy_id, revision, at, logged_at, latency_us, "
        "request, outcome, fired, response) VALUES (%s, 'p', 'r1', '', 0, 1, '{}', '{}', "
        "'[]', '{}')",
        (decision_id,),
    )
    return conn


def _walk(decision_log: DecisionLog, limit: int) -> list[str]:
    """Every page, newest first, each from the previous one's cursor."""
    seen: list[str] = []
    page = decision_log.query(limit=limit)
    while page:
        seen += [r["decision_id"] for r in page]
        page = decision_log.query(limit=limit, before_seq=page[-1]["seq"])
    return seen


def test_a_first_page_waits_for_a_row_numbered_before_its_rows_so_paging_never_skips_it(
    pg_url: str,
) -> None:
    """PostgreSQL numbers a row at insert: `late` (3) commits after 4 and 5. A first page
    of three read meanwhile would be 5, 4, 2 with cursor 2, and `late` never listed; it
    waits for `late`'s transaction instead."""
    decision_log = DecisionLog(pg_url)
    try:
        decision_log.commit([_entry("d1", {}), _entry("d2", {})])
        late = _in_flight(pg_url, "late")
        decision_log.commit([_entry("d4", {}), _entry("d5", {})])
        pages: list[list[str]] = []
        reader = threading.Thread(target=lambda: pages.append(_walk(decision_log, 3)))
        reader.start()
        time.sleep(0.3)  # the reader is waiting now (if it were not, it would miss `late`)
        late.commit()
        late.close()
        reader.join(10)
        assert pages == [["d5", "d4", "late", "d2", "d1"]]
    finally:
        decision_log.close()


def test_a_writer_in_flight_past_the_wait_makes_a_first_page_retriable_not_incomplete(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "SETTLE_WAIT_S", 0.2)
    decision_log = DecisionLog(pg_url)
    try:
        decision_log.commit([_entry("d1", {}), _entry("d2", {})])
        stuck = _in_flight(pg_url, "stuck")
        try:
            with pytest.raises(StoreUnavailable, match=r"open for more than 0\.2 s"):
                decision_log.query(limit=10)
            # a later page needs no wait: every row below its cursor was settled already
            assert [r["decision_id"] for r in decision_log.query(before_seq=2)] == ["d1"]
        finally:
            stuck.rollback()
            stuck.close()
        assert _walk(decision_log, 1) == ["d2", "d1"]
    finally:
        decision_log.close()


def test_a_store_numbering_rows_in_commit_order_needs_no_bound(tmp_path: Path) -> None:
    decision_log = DecisionLog(tmp_path / "kimari.sqlite3")
    try:
        assert decision_log.backend.settled("decisions", "seq") is None
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
