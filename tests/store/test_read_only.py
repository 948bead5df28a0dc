"""The commands that only read a store (`kimari log`, `history`, `revisions`, `audit`, `diff`)
open it read-only: they need no write access and change nothing (no migration, no lock file,
no tables in an empty file), on SQLite (a read-only file, a read-only folder, WAL or rollback
journal) and on PostgreSQL (no migration there either); the writers still create and migrate.

A root process ignores a file's mode, so the files are made immutable (`chattr +i`) where
that works, else read-only by their mode; either way the tests compare the file's bytes and
the folder's listing before and after."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from engine.cli.main import main
from engine.store import decisions, flows
from engine.store.backend import Backend, open_backend
from engine.store.decisions import DecisionLog, Entry
from engine.store.flows import FlowStore
from engine.store.sqlite import SqliteBackend
from tests import ROOT

SHIPPED = str(ROOT / "policies")
EXCLUDE = str(ROOT / "examples" / "claim-status.exclude.json")
DEALER = ("--actor", "dealer-7", "--role", "販売店")
AT = "2024-09-01T10:00:00+09:00"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "internal error" not in err and "Traceback" not in err, err
    return code, out, err


def entry(decision_id: str) -> Entry:
    return Entry(
        decision_id=decision_id,
        policy_id="order-holds",
        revision="rev1",
        at="2024-01-01T00:00:00+09:00",
        logged_at=1_700_000_000_000,
        latency_us=12,
        request_hash=None,
        request=orjson.dumps({"facts": {"n": 1}}).decode(),
        outcome='{"hold":true}',
        fired='["r1"]',
        response=orjson.dumps({"decision_id": decision_id}),
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of the folder and its bytes: what a read must leave as it was."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_unchanged(folder: Path, before: dict[str, bytes]) -> None:
    """Every file as it was, and no new one but what SQLite gives a WAL file's reader in a
    folder it may write: an empty -wal and the -shm (shared with the writers, removed by the
    last writer's close); never a lock file, never a table."""
    after = snapshot(folder)
    for name, content in before.items():
        assert after.pop(name) == content, name
    for name in list(after):
        if name.endswith("-shm") and name[: -len("-shm")] in before:
            del after[name]
    assert {name: content for name, content in after.items() if content} == {}
    assert all(name.endswith("-wal") and name[: -len("-wal")] in before for name in after)


def _chattr(flag: str, path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[bool]:
    """The paths made unwritable for this process (yields whether that was possible: a root
    process on a file system without `chattr +i` can write whatever the mode says)."""
    modes = {path: path.stat().st_mode for path in paths}
    enforced = True
    frozen = []
    try:
        for path in paths:
            if _chattr("+i", path):
                frozen.append(path)
            else:
                path.chmod(0o555 if path.is_dir() else 0o444)
                enforced = enforced and os.geteuid() != 0
        yield enforced
    finally:
        for path in frozen:
            _chattr("-i", path)
        for path, mode in modes.items():
            path.chmod(mode)


def full_store(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store as a service leaves it: every table, one decision and one flow entity."""
    code, _, err = run(capsys, "flow", "claim-status", "EST-1", EXCLUDE, "--store", str(path),
                       "--policies", SHIPPED, "--at", AT, *DEALER)  # fmt: skip
    assert code == 0, err
    log = DecisionLog(path)
    log.commit([entry("d-1"), entry("d-2")])
    log.close()
    from engine.lifecycle.workflow import Lifecycle

    Lifecycle(str(path)).close()  # the lifecycle's tables, as `kimari serve` makes them
    Path(f"{path}.lock").unlink()
    Path(f"{path}.hold").unlink()  # the flows' holds, beside the writers' lock


READS = [
    (["log", "--limit", "1"], "d-2"),
    (["log", "--id", "d-1", "--format", "json"], '"d-1"'),
    (["history", "claim-status", "EST-1", "--policies", SHIPPED], "EST-1"),
    (["revisions", "cancellation-fees"], "no revisions"),
    (["audit"], ""),
]


@pytest.mark.parametrize(("command", "shown"), READS)
def test_a_read_only_store_file_is_read_and_left_as_it_was(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], shown: str
) -> None:
    store = tmp_path / "ro.sqlite3"
    full_store(store, capsys)
    before = snapshot(tmp_path)
    with read_only(store):
        code, out, err = run(capsys, *command, "--store", str(store))
    assert code == 0, err
    assert shown in out + err
    assert_unchanged(tmp_path, before)
    assert not Path(f"{store}.lock").exists()


@pytest.mark.parametrize(("command", "shown"), READS)
def test_a_store_in_a_read_only_folder_is_read_without_creating_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], shown: str
) -> None:
    """A WAL file with no -shm beside it (no writer has it open) in a folder that cannot be
    written: read as immutable."""
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "kimari.sqlite3"
    full_store(store, capsys)
    with contextlib.closing(sqlite3.connect(store)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    before = snapshot(folder)
    assert set(before) == {store.name}
    with read_only(store, folder) as enforced:
        code, out, err = run(capsys, *command, "--store", str(store))
    assert code == 0, err
    assert shown in out + err
    if enforced:
        assert snapshot(folder) == before  # no -shm, no -wal, no lock
    assert store.read_bytes() == before[store.name]


def test_a_wal_store_that_a_writer_holds_open_is_read_with_its_uncheckpointed_rows(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "live.sqlite3"
    full_store(store, capsys)
    writer = SqliteBackend(store)
    writer.connection().execute("PRAGMA wal_autocheckpoint=0")
    DecisionLog(writer).commit([entry("d-wal")])  # in the -wal only, until a checkpoint
    try:
        before = store.read_bytes()
        with read_only(store):
            code, out, err = run(capsys, "log", "--id", "d-wal", "--store", str(store))
        assert code == 0, err
        assert "d-wal" in out
        assert store.read_bytes() == before
    finally:
        writer.close()


def test_a_rollback_journal_store_is_read_read_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "journal.sqlite3"
    full_store(store, capsys)
    with contextlib.closing(sqlite3.connect(store)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    before = snapshot(folder)
    with read_only(store, folder) as enforced:
        code, out, err = run(capsys, "log", "--store", str(store), "--limit", "1")
    assert code == 0, err
    assert "d-2" in out
    if enforced:
        assert snapshot(folder) == before
    assert store.read_bytes() == before[store.name]


COMMANDS = [
    ["log"],
    ["history", "claim-status", "EST-1", "--policies", SHIPPED],
    ["revisions", "cancellation-fees"],
    ["audit"],
    ["diff", "cancellation-fees", "--policies", SHIPPED],
]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_empty_file_is_no_store_and_stays_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    store = tmp_path / "empty.sqlite3"
    store.touch()
    code, out, err = run(capsys, *command, "--store", str(store))
    assert code == 2
    assert f"store_missing: {store} holds no store: it has no tables" in err
    assert "no decisions" not in out + err
    assert snapshot(tmp_path) == {store.name: b""}


@pytest.mark.parametrize("command", COMMANDS)
def test_an_sqlite_database_without_tables_is_no_store_and_one_of_another_program_is_none(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]
) -> None:
    bare = tmp_path / "bare.sqlite3"
    with contextlib.closing(sqlite3.connect(bare)) as conn:
        conn.execute("PRAGMA user_version=7")  # a database file, but no table in it
    other = tmp_path / "other.sqlite3"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, *command, "--store", str(bare))
    assert code == 2 and f"store_missing: {bare} holds no store: it has no tables" in err
    code, _, err = run(capsys, *command, "--store", str(other))
    assert code == 2
    assert f"store_invalid: {other} is not a kimari store: it has no table schema_versions" in err
    assert snapshot(tmp_path) == before


def test_a_store_older_than_the_code_is_refused_naming_it_and_a_writer_migrates_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "old.sqlite3"
    old = SqliteBackend(store)
    old.migrate(decisions.COMPONENT, decisions.MIGRATIONS[:1])  # as an older release left it
    old.close()
    Path(f"{store}.lock").unlink()
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "log", "--store", str(store))
    assert code == 2
    want = len(decisions.MIGRATIONS)
    assert (
        f"store_outdated: the store {store} is older than this kimari: its decision-log "
        f"tables are at version 1 of {want}"
    ) in err
    assert "migrates it (`kimari serve`)" in err
    assert_unchanged(tmp_path, before)
    DecisionLog(store).close()  # a writer (the service's worker) migrates it
    code, _, err = run(capsys, "log", "--store", str(store))
    assert code == 0 and "no decisions" in err


def test_a_store_without_the_components_tables_reads_as_empty_and_is_left_as_it_was(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A store only `kimari flow` wrote has no decision log, and no lifecycle tables."""
    store = tmp_path / "flows.sqlite3"
    code, _, err = run(capsys, "flow", "claim-status", "EST-1", EXCLUDE, "--store", str(store),
                       "--policies", SHIPPED, "--at", AT, *DEALER)  # fmt: skip
    assert code == 0, err
    Path(f"{store}.lock").unlink()
    before = store.read_bytes()
    for query in ([], ["--policy", "order-holds"], ["--rule", "r1", "--oldest-first"]):
        code, _, err = run(capsys, "log", "--store", str(store), *query)
        assert code == 0 and "no decisions" in err
    code, out, err = run(capsys, "revisions", "cancellation-fees", "--store", str(store))
    assert code == 0 and "no revisions" in out, err
    code, out, err = run(capsys, "audit", "--store", str(store))
    assert code == 0 and out == "", err
    assert store.read_bytes() == before
    assert not Path(f"{store}.lock").exists()


def test_the_writers_still_create_and_migrate_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    new = tmp_path / "new.sqlite3"
    code, _, err = run(capsys, "flow", "claim-status", "EST-1", EXCLUDE, "--store", str(new),
                       "--policies", SHIPPED, "--at", AT, *DEALER)  # fmt: skip
    assert code == 0, err
    assert new.stat().st_size > 0 and Path(f"{new}.lock").exists()
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    log = DecisionLog(empty)  # a writer takes an empty file as a new store
    log.commit([entry("d-1")])
    log.close()
    code, out, _ = run(capsys, "log", "--store", str(empty))
    assert code == 0 and "d-1" in out


# -- the backends themselves, SQLite and PostgreSQL --------------------------------------------


def _versions(location: str) -> dict[str, int]:
    backend = open_backend(location)
    try:
        with backend.read() as session:
            rows = session.execute("SELECT component, version FROM schema_versions").fetchall()
        return {str(name): int(version) for name, version in rows}
    finally:
        backend.close()


def _tables(location: str) -> set[str]:
    backend = open_backend(location)
    try:
        with backend.read() as session:
            return backend.tables(session)
    finally:
        backend.close()


def test_a_read_only_backend_on_an_empty_store_is_store_missing_and_creates_no_table(
    location: str,
) -> None:
    if not location.startswith("postgresql"):
        Path(location).touch()
    backend = open_backend(location, readonly=True)
    try:
        with pytest.raises(Exception) as raised:
            DecisionLog(backend)
        assert [d.code for d in raised.value.diagnostics] == ["store_missing"]  # type: ignore[attr-defined]
    finally:
        backend.close()
    assert _tables(location) == set()


def test_a_read_only_backend_reads_runs_no_migration_and_refuses_to_write(
    location: str,
) -> None:
    writer = open_backend(location)
    DecisionLog(writer).commit([entry("d-1")])
    writer.close()
    versions = _versions(location)
    reader = open_backend(location, readonly=True)
    try:
        assert reader.readonly
        log = DecisionLog(reader)
        assert log.get("d-1") is not None
        assert [row["decision_id"] for row in log.query()] == ["d-1"]
        with pytest.raises(RuntimeError, match="read-only"):
            reader.migrate(decisions.COMPONENT, decisions.MIGRATIONS)
        if location.startswith("postgresql"):  # every session of the reader is read-only
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), reader.read() as session:
                session.execute("CREATE TABLE intruder (x INTEGER)")
        else:
            with pytest.raises(RuntimeError, match="read-only"), reader.write():
                pass
    finally:
        reader.close()
    assert _versions(location) == versions
    assert "intruder" not in _tables(location)


def test_a_read_only_backend_refuses_an_outdated_store_and_leaves_its_versions(
    location: str,
) -> None:
    writer = open_backend(location)
    writer.migrate(decisions.COMPONENT, decisions.MIGRATIONS[:1])
    writer.close()
    reader = open_backend(location, readonly=True)
    try:
        with pytest.raises(Exception) as raised:
            DecisionLog(reader)
        (problem,) = raised.value.diagnostics  # type: ignore[attr-defined]
        assert problem.code == "store_outdated"
    finally:
        reader.close()
    assert _versions(location) == {decisions.COMPONENT: 1}


def test_a_component_the_store_lacks_reads_as_empty_on_sqlite_and_is_outdated_on_postgresql(
    location: str,
) -> None:
    writer = open_backend(location)
    FlowStore(writer)  # a store only flows wrote
    writer.close()
    versions = _versions(location)
    reader: Backend = open_backend(location, readonly=True)
    try:
        FlowStore(reader)
        if location.startswith("postgresql"):
            with pytest.raises(Exception) as raised:
                DecisionLog(reader)
            (problem,) = raised.value.diagnostics  # type: ignore[attr-defined]
            assert problem.code == "store_outdated"
        else:
            log = DecisionLog(reader)
            assert log.query() == [] and log.get("d-1") is None
    finally:
        reader.close()
    assert _versions(location) == versions == {flows.COMPONENT: len(flows.MIGRATIONS)}
    assert "decisions" not in _tables(location)


def test_kimari_log_on_postgresql_runs_no_migration(
    capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    code, _, err = run(capsys, "log", "--store", pg_url)
    assert code == 2 and "store_missing" in err and "holds no store" in err
    assert _tables(pg_url) == set()
    writer = open_backend(pg_url)
    DecisionLog(writer).commit([entry("d-1")])
    writer.close()
    versions = _versions(pg_url)
    code, out, err = run(capsys, "log", "--store", pg_url)
    assert code == 0 and "d-1" in out, err
    assert _versions(pg_url) == versions
