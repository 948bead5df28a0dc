"""GET /v1/decisions?outcome=field=value: an integer of the engine's 64-bit range is compared
as an integer, whatever its digits (engine/service/reads.py `_outcome`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.jsonvalue import INT_MAX, INT_MIN
from engine.service.reads import _outcome
from engine.store.decisions import DecisionLog, Entry


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("999999999999999999", 999999999999999999),  # 18 digits
        ("9223372036854775805", 9223372036854775805),  # 19
        (str(INT_MAX), INT_MAX),
        (str(INT_MIN), INT_MIN),
        (str(INT_MAX + 1), str(INT_MAX + 1)),  # past 64 bits: a text, as the log holds none
        (str(INT_MIN - 1), str(INT_MIN - 1)),
        ("1" * 20, "1" * 20),
    ],
)
def test_an_integer_of_the_64_bit_range_is_compared_as_an_integer(text: str, value: Any) -> None:
    found = _outcome(f"billed={text}")
    assert (found.field, found.value) == ("billed", value)
    assert type(found.value) is type(value)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[DecisionLog]:
    decision_log = DecisionLog(str(tmp_path / "decisions.db"))
    try:
        yield decision_log
    finally:
        decision_log.close()


def _entry(decision_id: str, billed: int) -> Entry:
    return Entry(
        decision_id=decision_id,
        policy_id="p",
        revision="r1",
        at="2024-09-21T23:59:59+09:00",
        logged_at=0,
        latency_us=1,
        request_hash=None,
        request='{"facts": {}}',
        outcome=orjson.dumps({"billed": billed}).decode(),
        fired="[]",
        response=b"{}",
    )


@pytest.mark.parametrize("billed", [9223372036854775805, INT_MAX, INT_MIN, 999999999999999999])
def test_a_logged_integer_of_19_digits_is_found(log: DecisionLog, billed: int) -> None:
    log.commit([_entry("big", billed), _entry("other", 1)])
    rows = log.query(outcome=_outcome(f"billed={billed}"))
    assert [row["decision_id"] for row in rows] == ["big"]
