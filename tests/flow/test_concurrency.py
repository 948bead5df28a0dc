"""Concurrent events: serialised on one entity, independent across entities.

Contact attempts (CX-2) are appended to a case's facts: a read-modify-write that loses
attempts at once if two events on one case interleave. Threads in one process share a
FlowEngine (per-entity lock); processes share only the SQLite file (compare-and-set on
the entity version, the loser decides again), and write under its WriteLock like every
other writer of the file. No assertion here depends on timing: the
joins carry generous timeouts only so that a deadlock fails instead of hanging.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.flow.engine import FlowEngine
from engine.store.flows import FlowStore
from engine.store.sqlite import SqliteBackend
from tests.strategies import ROOT, act, shipped_project

GUARD_S = 120
ATTEMPT = {"type": "record_contact_attempt", "reached": False}


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[FlowEngine]:
    store = FlowStore(tmp_path / "flows.sqlite3")
    yield FlowEngine(shipped_project(), store)
    store.close()


def at(minute: int) -> str:
    return f"2024-01-01T{9 + minute // 60:02}:{minute % 60:02}:00+09:00"


def run_threads(targets: list[Any]) -> None:
    errors: list[BaseException] = []

    def guarded(fn: Any) -> Any:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:  # surfaced in the test thread below
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(fn)) for fn in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(GUARD_S)
        assert not thread.is_alive(), "deadlock"
    if errors:
        raise errors[0]


def test_cx2_threads_on_one_case_lose_no_contact_attempt(engine: FlowEngine) -> None:
    threads, per_thread = 6, 10

    def worker(n: int) -> Any:
        def run() -> None:
            for i in range(per_thread):
                result = act(engine, "case-cancellation", "K-1", ATTEMPT, at=at(n * 10 + i))
                assert result.allowed

        return run

    run_threads([worker(n) for n in range(threads)])
    entity = engine.entity("case-cancellation", "K-1")
    assert len(entity["facts"]["contact_attempts"]) == threads * per_thread
    rows = engine.history("case-cancellation", "K-1")
    assert [r.version for r in rows] == list(range(1, threads * per_thread + 1))


def test_an_event_waits_for_its_own_entity_but_never_for_another(engine: FlowEngine) -> None:
    blocked_done = threading.Event()

    def blocked() -> None:
        act(engine, "case-cancellation", "K-A", ATTEMPT, at=at(1))
        blocked_done.set()

    def free() -> None:
        act(engine, "case-cancellation", "K-B", ATTEMPT, at=at(2))

    with engine.entity_lock("case-cancellation", "K-A"):
        waiting = threading.Thread(target=blocked)
        waiting.start()
        run_threads([free])  # finishes while K-A is held: entities do not block each other
        assert engine.store.load("case-cancellation", "K-B") is not None
        # K-A's event cannot have been stored while its entity is held.
        assert engine.store.load("case-cancellation", "K-A") is None
        assert not blocked_done.is_set()
    waiting.join(GUARD_S)
    assert blocked_done.is_set()
    loaded = engine.store.load("case-cancellation", "K-A")
    assert loaded is not None and loaded.version == 1


def test_cx2_two_processes_on_one_case_lose_no_contact_attempt(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite3"
    FlowStore(db).close()  # create the schema once, before the children race
    count = 25
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "flow" / "flow_child.py"),
                "append",
                str(db),
                "K-9",
                str(count),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    for child in children:
        out, err = child.communicate(timeout=GUARD_S)
        assert child.returncode == 0, err
        assert out.strip() == "done"
    store = FlowStore(db)
    try:
        entity = store.load("case-cancellation", "K-9")
        assert entity is not None and entity.version == 2 * count
        assert len(entity.facts["contact_attempts"]) == 2 * count
        rows = store.history("case-cancellation", "K-9")
        assert [r.version for r in rows] == list(range(1, 2 * count + 1))
    finally:
        store.close()


def test_every_flow_write_is_made_under_the_files_write_lock(tmp_path: Path) -> None:
    db = tmp_path / "flows.sqlite3"
    backend = SqliteBackend(db)  # as the service's worker shares it with the decision log
    store = FlowStore(backend)
    engine = FlowEngine(shipped_project(), store)
    probe = os.open(f"{db}.lock", os.O_RDWR)  # another open file: as another process sees it
    held: list[tuple[str, bool]] = []

    def trace(sql: str) -> None:
        if not sql.startswith("INSERT INTO flow_"):
            return
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.append((sql.split()[2], True))
        else:
            fcntl.flock(probe, fcntl.LOCK_UN)
            held.append((sql.split()[2], False))

    try:
        backend.connection().set_trace_callback(trace)  # this thread's: apply runs here
        exclude = {"type": "exclude", "exclusion_reason": "重複"}  # EX-2: before the claim
        assert act(engine, "claim-status", "C-1", exclude, at=at(0)).allowed
        assert act(engine, "claim-status", "C-1", {"type": "claim"}, at=at(1)).allowed
        assert not act(engine, "claim-status", "C-1", {"type": "approve"}, at=at(2)).allowed
        engine.import_entity("claim-status", "C-2", "requested", {})
    finally:
        os.close(probe)
        store.close()
        backend.close()
    assert held == [
        ("flow_entities", True),
        ("flow_history", True),
        ("flow_entities", True),
        ("flow_history", True),
        ("flow_refusals", True),
        ("flow_entities", True),
        ("flow_history", True),  # the import's row 0, in the entity's transaction
    ]
