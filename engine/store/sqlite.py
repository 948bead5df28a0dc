"""The embedded SQLite store: one file, shared by the decision log, flow state and data sets.

Each component owns its tables and declares them as a list of migrations;
`migrate` applies the ones a database has not seen, in one transaction, so
that an old file is upgraded in place and a crash mid-upgrade changes
nothing. Connections use WAL (readers never block the writer) and
synchronous=FULL: an acknowledged write survives a power cut; callers batch
writes into one transaction (group commit) to pay for fsync once per batch.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

DEFAULT_PATH = Path("var") / "kimari.sqlite3"
BUSY_TIMEOUT_MS = 10_000


def connect(path: str | Path = DEFAULT_PATH, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's pragmas; creates the file and its folder if needed."""
    path = Path(path)
    if readonly:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None
        )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def migrate(conn: sqlite3.Connection, component: str, migrations: Sequence[str]) -> None:
    """Apply the migrations of `component` that this database has not applied yet."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions ("
        " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            "SELECT version FROM schema_versions WHERE component = ?", (component,)
        ).fetchone()
        current = row[0] if row else 0
        for script in migrations[current:]:
            for statement in (s.strip() for s in script.split(";")):
                if statement:
                    conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
            "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            (component, len(migrations)),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    IMMEDIATE takes the write lock before the first read, so what a writer reads
    inside the transaction cannot change before it commits.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
