"""The decision log on both backends: groups, idempotency keys across replicas, queries."""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
import pytest

from engine.cli.main import main
from engine.store.backend import SQLITE, Backend
from engine.store.decisions import PRUNE, DecisionLog, Entry


def entry(
    decision_id: str,
    *,
    keyed: bool = False,
    request_hash: str | None = None,
    policy: str = "order-holds",
    fired: tuple[str, ...] = ("r1",),
    logged_at: int = 1_700_000_000_000,
) -> Entry:
    return Entry(
        decision_id=decision_id,
        policy_id=policy,
        revision="rev1",
        at="2024-01-01T00:00:00+09:00",
        logged_at=logged_at,
        latency_us=12,
        request_hash=request_hash,
        request=orjson.dumps({"facts": {"n": 1}}).decode(),
        outcome='{"hold":true}',
        fired=orjson.dumps(list(fired)).decode(),
        response=orjson.dumps({"decision_id": decision_id, "fee": "0.10"}),
        keyed=keyed,
    )


def test_a_group_is_written_in_one_commit_and_read_back(backend: Backend) -> None:
    log = DecisionLog(backend)
    results = log.commit([entry("d1"), entry("d2", keyed=True, request_hash="h"), entry("d3")])
    assert [r.written for r in results] == [True, True, True]
    assert log.count() == 3 and log.commits == 1 and log.rows == 3
    row = log.get("d2")
    assert row is not None
    assert row["request_hash"] == "h" and row["outcome"] == {"hold": True}
    assert row["request"] == {"facts": {"n": 1}} and row["fired"] == ["r1"]
    assert str(row["response"]["fee"]) == "0.10"  # exact, never a float
    assert log.get("nope") is None


def test_a_keyed_retry_gets_the_logged_decision_back_without_a_second_row(
    backend: Backend,
) -> None:
    log = DecisionLog(backend)
    log.commit([entry("k1", keyed=True, request_hash="h1")])
    again = log.commit([entry("k1", keyed=True, request_hash="h1"), entry("d9")])
    assert [r.written for r in again] == [False, True]
    assert again[0].existing_hash == "h1"
    assert orjson.loads(again[0].existing_response or b"")["decision_id"] == "k1"
    assert log.count() == 2
    assert log.logged("k1") == ("h1", orjson.dumps({"decision_id": "k1", "fee": "0.10"}))
    assert log.logged("k2") is None


def test_one_key_committed_by_two_replicas_at_once_is_logged_once(
    backends: Callable[[], Backend],
) -> None:
    logs = [DecisionLog(backends()) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[list[bool]] = [[], []]

    def commit(i: int) -> None:
        barrier.wait()
        for n in range(20):
            result = logs[i].commit([entry(f"key-{n}", keyed=True, request_hash=f"h{i}")])
            outcomes[i].append(result[0].written)

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert logs[0].count() == 20
    for n in range(20):  # exactly one replica wrote each key; the other read it back
        assert outcomes[0][n] != outcomes[1][n]


def test_queries_filter_by_policy_revision_rule_and_time(backend: Backend) -> None:
    log = DecisionLog(backend)
    log.commit(
        [
            entry("a", policy="p1", fired=("r1", "r2"), logged_at=1000),
            entry("b", policy="p2", fired=("r3",), logged_at=2000),
            entry("c", policy="p1", fired=(), logged_at=3000),
        ]
    )
    ids = lambda rows: [r["decision_id"] for r in rows]  # noqa: E731
    assert ids(log.query()) == ["c", "b", "a"]
    assert ids(log.query(oldest_first=True, limit=2)) == ["a", "b"]
    assert ids(log.query(policy="p1")) == ["c", "a"]
    assert ids(log.query(rule="r2")) == ["a"]
    assert ids(log.query(rule="r")) == []
    assert ids(log.query(since_ms=2000, until_ms=3000)) == ["b"]
    assert ids(log.query(revision="rev1", policy="p2")) == ["b"]


def test_prune_deletes_only_what_is_older_than_the_cutoff(backend: Backend) -> None:
    log = DecisionLog(backend)
    log.commit([entry(f"d{i}", logged_at=i) for i in range(10)])
    assert log.prune(5, chunk=3) == 5
    assert sorted(r["decision_id"] for r in log.query()) == [f"d{i}" for i in range(5, 10)]


def test_prune_goes_by_the_time_logged_not_the_order_of_commits(backend: Backend) -> None:
    log = DecisionLog(backend)
    log.commit([entry(f"d{i}", logged_at=100 - i) for i in range(10)])  # newest committed first
    assert log.prune(95, chunk=2) == 4
    assert sorted(r["decision_id"] for r in log.query()) == [f"d{i}" for i in range(6)]


def test_prune_reads_the_time_index_not_the_table(backend: Backend) -> None:
    """It runs hourly inside the write transaction every commit waits for: by seq it read
    every row of the log (20 ms at 42,000 decisions) to find, most hours, nothing."""
    DecisionLog(backend).commit([entry(f"d{i}", logged_at=i) for i in range(50)])
    with backend.read() as session:
        if backend.kind == SQLITE:
            plan = " ".join(
                str(row[-1]) for row in session.execute(f"EXPLAIN QUERY PLAN {PRUNE}", (5, 3))
            )
            assert "decisions_by_time" in plan and "SCAN decisions" not in plan, plan
        else:
            session.execute("SET LOCAL enable_seqscan = off")  # a 50-row table is read whole
            plan = " ".join(row[0] for row in session.execute(f"EXPLAIN {PRUNE}", (5, 3)))
            assert "decisions_by_time" in plan, plan


@pytest.mark.parametrize(
    ("cursor", "since", "until"), [(None, None, None), (30, None, None), (None, 10, 50)]
)
def test_a_page_of_one_policy_is_read_in_order_from_an_index_not_sorted(
    backend: Backend, cursor: int | None, since: int | None, until: int | None
) -> None:
    """GET /v1/decisions?policy= and the console's log: by (policy_id, logged_at) the
    database sorted every decision of the policy (in the time window) to return a page
    (230 ms at 200,000)."""
    log = DecisionLog(backend)
    log.commit([entry(f"d{i}", policy=f"p{i % 2}", logged_at=i) for i in range(60)])
    sql, args = log.page_sql("p1", since, until, None, None, None, cursor, 10, False)
    with backend.read() as session:
        if backend.kind == SQLITE:
            plan = " ".join(
                str(row[-1]) for row in session.execute(f"EXPLAIN QUERY PLAN {sql}", args)
            )
            assert "decisions_by_policy_seq" in plan and "B-TREE" not in plan, plan
        else:
            session.execute("SET LOCAL enable_seqscan = off")
            plan = " ".join(row[0] for row in session.execute(f"EXPLAIN {sql}", args))
            assert "decisions_by_policy_seq" in plan and "Sort" not in plan, plan
    page = log.query(policy="p1", before_seq=cursor, since_ms=since, until_ms=until, limit=10)
    wanted = [
        i
        for i in range(59, -1, -1)  # seq = i + 1, logged_at = i
        if i % 2
        and (cursor is None or i + 1 < cursor)
        and (since is None or i >= since)
        and (until is None or i < until)
    ]
    assert [r["decision_id"] for r in page] == [f"d{i}" for i in wanted][:10]


def test_a_location_opens_and_closes_its_own_backend(location: str) -> None:
    log = DecisionLog(location)
    log.commit([entry("x")])
    log.close()
    again = DecisionLog(location)
    try:
        assert again.get("x") is not None
    finally:
        again.close()


def test_kimari_log_reads_the_decision_log_of_either_backend(
    location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log = DecisionLog(location)
    log.commit([entry("d1"), entry("d2")])
    log.close()
    assert main(["log", "--store", location, "--id", "d2", "--format", "json"]) == 0
    assert orjson.loads(capsys.readouterr().out)[0]["decision_id"] == "d2"
    assert main(["log", "--store", location, "--id", "nope"]) == 1
