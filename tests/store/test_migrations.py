"""Migrations: ordered steps per component, applied once, by one of several starters."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from engine.store.backend import Backend, Step, both
from engine.store.decisions import MIGRATIONS as DECISION_STEPS
from engine.store.flows import MIGRATIONS as FLOW_STEPS
from engine.store.sqlite import PAGE_SIZE, connect
from engine.store.versions import MIGRATIONS as VERSION_STEPS

STEPS = [
    both("CREATE TABLE widgets (name TEXT PRIMARY KEY)"),
    Step(
        "ALTER TABLE widgets ADD COLUMN n INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE widgets ADD COLUMN n BIGINT NOT NULL DEFAULT 0",
    ),
]


def version(backend: Backend, component: str) -> int:
    with backend.read() as session:
        row = session.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_step_of_plain_text_is_the_same_sql_on_both_backends(backend: Backend) -> None:
    backend.migrate("widgets", [STEPS[0].sqlite, "ALTER TABLE widgets ADD COLUMN note TEXT"])
    assert version(backend, "widgets") == 2
    with backend.read() as session:
        columns = session.execute("SELECT * FROM widgets").description
    assert [c[0] for c in columns] == ["name", "note"]


def test_steps_are_applied_in_order_and_only_once(backend: Backend) -> None:
    backend.migrate("widgets", STEPS[:1])
    assert version(backend, "widgets") == 1
    with backend.write() as session:
        session.execute("INSERT INTO widgets (name) VALUES (?)", ("a",))
    backend.migrate("widgets", STEPS)  # an upgrade: only the new step runs
    backend.migrate("widgets", STEPS)
    assert version(backend, "widgets") == 2
    with backend.read() as session:
        assert session.execute("SELECT name, n FROM widgets").fetchall() == [("a", 0)]


def test_a_failing_step_leaves_the_database_as_it_was(backend: Backend) -> None:
    backend.migrate("widgets", STEPS[:1])
    broken = [*STEPS, both("CREATE TABLE widgets (oops TEXT)")]  # exists already: fails
    try:
        backend.migrate("widgets", broken)
    except Exception:
        pass
    else:
        raise AssertionError("the broken step was applied")
    assert version(backend, "widgets") == 1
    with backend.read() as session:  # step 2 was rolled back with step 3
        columns = session.execute("SELECT * FROM widgets").description
    assert [c[0] for c in columns] == ["name"]


def test_replicas_starting_together_migrate_once(backends: Callable[[], Backend]) -> None:
    opened = [backends() for _ in range(4)]
    barrier = threading.Barrier(len(opened))
    failures: list[BaseException] = []

    def start(backend: Backend) -> None:
        barrier.wait()
        try:
            backend.migrate("widgets", STEPS)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(b,)) for b in opened]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert version(opened[0], "widgets") == 2


def test_every_component_writes_each_step_for_both_backends() -> None:
    for steps in (DECISION_STEPS, FLOW_STEPS, VERSION_STEPS):
        for step in steps:
            assert step.sqlite.strip() and step.postgresql.strip()


def _open_and_write(path: Path, barrier: threading.Barrier, failures: list[BaseException]) -> None:
    barrier.wait()
    try:
        conn = connect(path)
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.close()
    except BaseException as exc:
        failures.append(exc)


def test_connections_opened_together_on_a_new_file_all_switch_it_to_wal(tmp_path: Path) -> None:
    """Switching a new file to WAL answers "database is locked" at once (no busy handler)
    when another connection switches or writes it at that moment: 7 of 200 rounds of four
    replicas starting together failed before connect() waited for it."""
    for round_ in range(40):
        path = tmp_path / f"new-{round_}.sqlite3"
        barrier = threading.Barrier(4)
        failures: list[BaseException] = []
        threads = [
            threading.Thread(target=_open_and_write, args=(path, barrier, failures))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
        check = connect(path)
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 4
        check.close()


def test_a_new_file_gets_pages_that_hold_several_logged_decisions(tmp_path: Path) -> None:
    """A logged decision is ~2.9 KB: on 4 KB pages each took a page of its own."""
    conn = connect(tmp_path / "new.sqlite3")
    conn.execute("CREATE TABLE t (n INTEGER)")
    assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    conn.close()


def test_a_file_made_with_other_pages_keeps_them_and_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t (n INTEGER)")
    old.execute("INSERT INTO t VALUES (7)")
    old.commit()
    old.close()
    conn = connect(path)
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert conn.execute("SELECT n FROM t").fetchall() == [(7,)]
    conn.execute("INSERT INTO t VALUES (8)")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    conn.close()
