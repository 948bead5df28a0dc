"""Replicas on PostgreSQL, measured (docs/deployment.md, docs/benchmarks.md section 8).

- `replicas`: POST /v1/decisions/order-holds with the decision log on, SQLite against
  PostgreSQL (fsync on, synchronous_commit on), one `kimari serve` alone and 1, 2, 3 replicas
  behind HAProxy (the documented configuration); the commit group sizes each made.
- `contention`: moves on ONE flow entity from several processes (each its own store
  connection, as replicas are), kimari's optimistic compare-and-set with retry against a
  lock held across the decision (what `SELECT ... FOR UPDATE` before deciding would do).

    python -m bench.run --only replicas,contention [--replicas 1,2,3]

Both start their own PostgreSQL server (tests/pg_server.py) and need Debian's postgresql
and haproxy packages (make bench installs them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.report import Report
from engine.core.errors import KimariError
from tests import ROOT, haproxy
from tests.pg_server import PgServer, free_port

AT = "2024-10-01T10:00:00+09:00"
WRITER = (sys.executable, "-m", "bench.replicas", "writer")
ACTOR = {"id": "bench", "roles": ["担当者"]}


def _serve(store: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    options = ["--port", str(port), "--workers", str(workers), "--store", store]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            *options,
            "--policies",
            str(ROOT / "policies"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")},
    )
    return proc, f"http://127.0.0.1:{port}"


def _ready(url: str, workers: int) -> None:
    for _ in range(480):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).json().get("workers", 0) >= workers:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not become ready")


def _commit_groups(urls: Sequence[str]) -> tuple[int, int]:
    """(commits, rows) of the decision log over every replica, from /metrics."""
    commits = rows = 0
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        rows += int(float(re.search(r"kimari_log_commit_rows_sum (\S+)", text).group(1)))  # type: ignore[union-attr]
        commits += int(float(re.search(r"kimari_log_commit_rows_count (\S+)", text).group(1)))  # type: ignore[union-attr]
    return commits, rows


def _measure(url: str, body: Path, seconds: float, connections: int) -> dict[str, Any]:
    from bench.run import _load, _wrk

    target = f"{url}/v1/decisions/order-holds"
    _load(target, body, 1.5, 16)  # warm up: policies compiled, pools filled
    return _wrk(target, body, seconds, connections) or _load(target, body, seconds, connections)


def _run_config(
    store: str,
    replicas: int,
    workers: int,
    balanced: bool,
    body: Path,
    seconds: float,
    folder: Path,
) -> list[Any]:
    started = [_serve(store, workers) for _ in range(replicas)]
    urls = [url for _, url in started]
    try:
        for url in urls:
            _ready(url, workers)
        before = _commit_groups(urls)
        if balanced:
            with haproxy.running(folder, [int(u.rsplit(":", 1)[1]) for u in urls]) as front:
                result = _measure(front, body, seconds, 32)
        else:
            result = _measure(urls[0], body, seconds, 32)
        after = _commit_groups(urls)
    finally:
        for proc, _ in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in started:
            proc.wait(30)
    commits, rows = after[0] - before[0], after[1] - before[1]
    return [
        "SQLite" if store.endswith(".sqlite3") else "PostgreSQL",
        replicas,
        workers,
        "HAProxy" if balanced else "direct",
        result["per_second"],
        result["p50_ms"],
        result["p99_ms"],
        round(rows / commits, 1) if commits else 0,
    ]


def section_replicas(report: Report, quick: bool, counts: Sequence[int] = (1, 2, 3)) -> None:
    seconds = 3.0 if quick else 8.0
    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    pg = PgServer(fsync=True).start()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            body = folder / "body.json"
            body.write_text(json.dumps({"facts": facts, "at": AT}, ensure_ascii=False))
            plans: list[tuple[str, int, int, bool]] = [
                (str(folder / "one.sqlite3"), 1, 2, False),
                ("pg", 1, 2, False),
            ]
            plans += [("pg", n, 1, True) for n in counts]
            for n, (store, replicas, workers, balanced) in enumerate(plans):
                location = pg.create_database(f"bench{n}") if store == "pg" else store
                rows.append(
                    _run_config(location, replicas, workers, balanced, body, seconds, folder)
                )
                print(rows[-1], flush=True)
    finally:
        pg.destroy()
    report.table(
        "Decisions/s with the decision log on: SQLite (WAL, synchronous=FULL) and PostgreSQL "
        "(fsync on, synchronous_commit on), one kimari serve alone or replicas behind HAProxy; "
        "wrk, 32 connections, closed loop; rows per commit = the mean group size",
        [
            "store",
            "replicas",
            "workers each",
            "front",
            "decisions/s",
            "p50 ms",
            "p99 ms",
            "rows per commit",
        ],
        rows,
    )


# -- one entity, several writers -----------------------------------------------------------


def _writer(url: str, mode: str, count: int, start_at: float) -> None:
    """One process moving entity 'hot' `count` times; prints its retries and seconds."""
    import contextlib

    from engine.flow.engine import FlowEngine
    from engine.project.project import load_project
    from engine.store.flows import FlowStore

    class Counting(FlowStore):
        retries = 0

        def commit_move(self, *args: Any, **kwargs: Any) -> bool:
            done = super().commit_move(*args, **kwargs)
            if not done:
                Counting.retries += 1
            return done

        def hold(self, policy_id: str, entity_id: str) -> Any:
            if mode == "optimistic":  # compare-and-set and retry alone
                return contextlib.nullcontext()
            return super().hold(policy_id, entity_id)

    engine = FlowEngine(load_project(ROOT / "policies"), Counting(url))
    event = {"type": "record_contact_attempt", "reached": False}
    base = datetime(2024, 1, 1).astimezone()
    engine.entity("case-cancellation", "warm-up")
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    failures = 0
    for i in range(count):
        at = (base + timedelta(seconds=i)).isoformat()
        try:
            assert engine.apply("case-cancellation", "hot", event, actor=ACTOR, at=at).allowed
        except KimariError:  # flow_contention: gave up after 20 attempts
            failures += 1
    seconds = time.perf_counter() - began
    print(json.dumps({"retries": Counting.retries, "failures": failures, "seconds": seconds}))


def section_contention(report: Report, quick: bool) -> None:
    count = 40 if quick else 150
    pg = PgServer(fsync=True).start()
    rows = []
    try:
        for writers in (1, 2, 3, 4):
            for mode in ("held", "optimistic"):
                url = pg.create_database(f"c{writers}{mode}")
                start_at = time.time() + 6.0  # every writer loaded before the first move
                children = [
                    subprocess.Popen(
                        [*WRITER, url, mode, str(count), str(start_at)],
                        cwd=ROOT,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(writers)
                ]
                results = [
                    json.loads(c.communicate(timeout=600)[0].splitlines()[-1]) for c in children
                ]
                seconds = max(r["seconds"] for r in results)
                failed = sum(r["failures"] for r in results)
                moves = writers * count - failed
                retries = sum(r["retries"] for r in results)
                rows.append([writers, mode, moves, round(moves / seconds), retries, failed])
                print(rows[-1], flush=True)
    finally:
        pg.destroy()
    report.table(
        "Flow moves on ONE entity from several processes (case-cancellation, each event a "
        "move), PostgreSQL with fsync on: held = kimari (the entity held across read, decide "
        "and write, then the compare-and-set), optimistic = the compare-and-set and retry alone",
        ["writers", "mode", "moves", "moves/s", "retries", "gave up (flow_contention)"],
        rows,
    )


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "writer":
    _writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
