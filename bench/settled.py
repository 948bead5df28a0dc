"""What a settled first page costs on PostgreSQL (docs/benchmarks.md section 8).

GET /v1/decisions and the audit trail end their first page at the number below which no
row can still commit (`Backend.settled`, engine/store/postgres.py): the reader waits for
the decision log's writers in flight, watching pg_locks, blocking none of them. Measured
here: writers (each its own backend and connections, as replicas are) commit groups of
decisions in a loop, with and without a reader paging the log meanwhile; the reader's
first pages (settled) against its later pages (a cursor: no wait), and the writers'
commits/s and commit latency in both runs.

    python -m bench.settled [--writers 3] [--seconds 5]

It starts its own PostgreSQL server (fsync on, as in production) and prints a table;
nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from typing import Any

from engine.store.decisions import DecisionLog, Entry
from tests.pg_server import PgServer

GROUP = 8  # decisions per commit: about what section 8's replicas commit at 32 connections


def _entries(writer: int, n: int) -> list[Entry]:
    return [
        Entry(
            decision_id=f"w{writer}-{n}-{i}",
            policy_id="order-holds",
            revision="r1",
            at="2024-10-01T10:00:00+09:00",
            logged_at=int(time.time() * 1000),
            latency_us=100,
            request_hash=None,
            request='{"facts": {}}',
            outcome='{"held": false}',
            fired="[]",
            response=b"{}",
        )
        for i in range(GROUP)
    ]


def _write(url: str, writer: int, stop: threading.Event, took: list[float]) -> None:
    log = DecisionLog(url)
    try:
        for n in range(10**9):
            if stop.is_set():
                return
            began = time.perf_counter()
            log.commit(_entries(writer, n))
            took.append(time.perf_counter() - began)
    finally:
        log.close()


def _read(url: str, stop: threading.Event, first: list[float], later: list[float]) -> None:
    log = DecisionLog(url)
    try:
        while not stop.is_set():
            began = time.perf_counter()
            page = log.query(limit=50)
            first.append(time.perf_counter() - began)
            if page:
                began = time.perf_counter()
                log.query(limit=50, before_seq=page[-1]["seq"])
                later.append(time.perf_counter() - began)
            time.sleep(0.01)
    finally:
        log.close()


def run(url: str, writers: int, seconds: float, reader: bool) -> dict[str, Any]:
    stop = threading.Event()
    commits: list[list[float]] = [[] for _ in range(writers)]
    first: list[float] = []
    later: list[float] = []
    threads = [
        threading.Thread(target=_write, args=(url, w, stop, commits[w])) for w in range(writers)
    ]
    if reader:
        threads.append(threading.Thread(target=_read, args=(url, stop, first, later)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(30)
    every = sorted(t for c in commits for t in c)
    return {
        "commits_per_s": len(every) / seconds,
        "commit_p50_ms": statistics.median(every) * 1000,
        "commit_p99_ms": every[int(len(every) * 0.99)] * 1000,
        "first": sorted(first),
        "later": sorted(later),
    }


def _ms(values: list[float], q: float) -> str:
    return f"{values[min(len(values) - 1, int(len(values) * q))] * 1000:.2f}" if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    server = PgServer(fsync=True).start()
    try:
        print(
            "| writers | reader | commits/s | commit p50 ms | commit p99 ms | first page "
            "p50 / p99 ms | later page p50 / p99 ms |\n|---|---|---|---|---|---|---|"
        )
        for reader in (False, True):
            url = server.create_database()
            DecisionLog(url).close()  # the table, before the writers race to create it
            got = run(url, args.writers, args.seconds, reader)
            pages = (
                (
                    f"{_ms(got['first'], 0.5)} / {_ms(got['first'], 0.99)}",
                    f"{_ms(got['later'], 0.5)} / {_ms(got['later'], 0.99)}",
                )
                if reader
                else ("-", "-")
            )
            print(
                f"| {args.writers} | {'paging' if reader else 'none'} | "
                f"{got['commits_per_s']:,.0f} | {got['commit_p50_ms']:.2f} | "
                f"{got['commit_p99_ms']:.2f} | {pages[0]} | {pages[1]} |"
            )
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
