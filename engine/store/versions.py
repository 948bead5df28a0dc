"""The service's part of the embedded store: reference data versions and policy sources.

Tables (beside the decision log, `engine/store/decisions.py`):

    dataset_versions   every version of every reference data set the service has used or
                       been given: (name, version) -> entries; API versions are the ones
                       a client PUT, file versions are snapshots of the default files
    dataset_current    name -> version put through the API (absent: the file default)
    policy_revisions   revision -> the policy text and the schema files it was compiled from
    generations        counters that workers poll ('data': bumped on every data PUT)

With the decision log's `data` versions and `policy.revision`, these keep everything a
replay of a past decision needs (DESIGN "Growth: Replay").

Writes follow the store's one discipline (engine/store/sqlite.py): the `WriteLock` shared
by every writer of the file, then BEGIN IMMEDIATE.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.compile.model import PolicySource
from engine.core.jsonvalue import dumps_text, loads_exact
from engine.store import sqlite
from engine.store.sqlite import WriteLock, transaction

COMPONENT = "service-store"
MIGRATIONS = [
    """
    CREATE TABLE dataset_versions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        count INTEGER NOT NULL,
        entries TEXT NOT NULL,
        UNIQUE (name, version)
    );
    CREATE TABLE dataset_current (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE policy_revisions (
        revision TEXT PRIMARY KEY,
        policy_id TEXT NOT NULL,
        path TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        source TEXT NOT NULL,
        facts_schema TEXT NOT NULL
    );
    CREATE TABLE generations (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    )
    """,
    # Revisions first seen before this column existed keep '{}': their data schemas
    # were not kept, so they cannot be compiled again (explanations say so).
    """
    ALTER TABLE policy_revisions ADD COLUMN files TEXT NOT NULL DEFAULT '{}'
    """,
]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class StoredRevision:
    revision: str
    policy_id: str
    path: str
    source: PolicySource


@dataclass(frozen=True)
class StoredData:
    name: str
    version: str
    source: str
    updated_at: int
    entries: list[Any]


class Store:
    """Reference data versions, policy sources and generation counters in one SQLite file."""

    def __init__(self, path: str | Path, lock: WriteLock | None = None) -> None:
        self.path = Path(path)
        self.conn = sqlite.connect(self.path)
        self._own_lock = lock is None
        self.lock = lock or WriteLock(self.path)
        sqlite.migrate(self.conn, self.lock, COMPONENT, MIGRATIONS)

    def close(self) -> None:
        self.conn.close()
        if self._own_lock:
            self.lock.close()

    # -- reference data ----------------------------------------------------------------
    def data_generation(self) -> int:
        row = self.conn.execute("SELECT value FROM generations WHERE name = 'data'").fetchone()
        return int(row[0]) if row else 0

    def current_data(self) -> dict[str, tuple[str, int]]:
        """name -> (version, updated_at) of the data sets replaced through the API."""
        rows = self.conn.execute("SELECT name, version, updated_at FROM dataset_current")
        return {name: (version, updated) for name, version, updated in rows}

    def data_version(self, name: str, version: str) -> StoredData | None:
        row = self.conn.execute(
            "SELECT source, created_at, entries FROM dataset_versions WHERE name = ? "
            "AND version = ?",
            (name, version),
        ).fetchone()
        if row is None:
            return None
        return StoredData(name, version, row[0], row[1], loads_exact(row[2]))

    def put_data(self, name: str, version: str, entries: Sequence[Any]) -> int:
        """Store a version given through the API and make it current; the new generation."""
        stamp = now_ms()
        raw = dumps_text(list(entries))
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "INSERT INTO dataset_versions (name, version, source, created_at, count, entries)"
                " VALUES (?, ?, 'api', ?, ?, ?) ON CONFLICT (name, version) DO NOTHING",
                (name, version, stamp, len(entries), raw),
            )
            conn.execute(
                "INSERT INTO dataset_current (name, version, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
                "updated_at = excluded.updated_at",
                (name, version, stamp),
            )
            return self._bump(conn, "data")

    def reset_data(self, name: str) -> int:
        """Go back to the file default of a data set; the new generation."""
        with transaction(self.conn, self.lock) as conn:
            conn.execute("DELETE FROM dataset_current WHERE name = ?", (name,))
            return self._bump(conn, "data")

    def remember_data(self, name: str, version: str, entries: Sequence[Any]) -> None:
        """Keep a file default's content under its version, once (replay needs it later)."""
        known = self.conn.execute(
            "SELECT 1 FROM dataset_versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        if known:
            return
        raw = dumps_text(list(entries))
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "INSERT INTO dataset_versions (name, version, source, created_at, count, entries)"
                " VALUES (?, ?, 'file', ?, ?, ?) ON CONFLICT (name, version) DO NOTHING",
                (name, version, now_ms(), len(entries), raw),
            )

    # -- policy sources ----------------------------------------------------------------
    def remember_revision(
        self, policy_id: str, revision: str, path: str, source: PolicySource
    ) -> None:
        """Keep what `revision` was compiled from, once (the first copy wins)."""
        known = self.conn.execute(
            "SELECT 1 FROM policy_revisions WHERE revision = ?", (revision,)
        ).fetchone()
        if known:
            return
        files = {name: raw.decode("utf-8") for name, raw in source.files.items()}
        facts = next(iter(files.values()), "")
        with transaction(self.conn, self.lock) as conn:
            conn.execute(
                "INSERT INTO policy_revisions (revision, policy_id, path, first_seen, source, "
                "facts_schema, files) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (revision) DO NOTHING",
                (revision, policy_id, path, now_ms(), source.text, facts, orjson.dumps(files)),
            )

    def stored_revision(self, revision: str) -> StoredRevision | None:
        """The source of a revision kept by remember_revision, or None."""
        row = self.conn.execute(
            "SELECT policy_id, path, source, files FROM policy_revisions WHERE revision = ?",
            (revision,),
        ).fetchone()
        if row is None:
            return None
        files = {name: text.encode("utf-8") for name, text in orjson.loads(row[3]).items()}
        return StoredRevision(revision, row[0], row[1], PolicySource(row[2], files))

    @staticmethod
    def _bump(conn: sqlite3.Connection, name: str) -> int:
        conn.execute(
            "INSERT INTO generations (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )
        row = conn.execute("SELECT value FROM generations WHERE name = ?", (name,)).fetchone()
        return int(row[0])
