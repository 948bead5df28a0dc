"""The decision log: every decision the service acknowledged, durable before the answer.

One row per decision, with what a replay needs (DESIGN "Growth: Replay"): the request as
the client sent it (facts, `at`, settings), the resolved `at`, the policy revision, and
the response (outcome, reasons, fired rules, effective settings, data set versions).

    decisions(seq, decision_id UNIQUE, policy_id, revision, at, logged_at, latency_us,
              request_hash, request, outcome, fired, response)

Writes come in groups (`commit`): one transaction, one fsync (WAL, synchronous=FULL) for
every decision a worker finished while the previous group was being synced. A client's
idempotency key is the decision id; `request_hash` tells a retry (same request: the
logged decision is returned) from a reuse of the key for another request (a conflict).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.core.jsonvalue import loads_exact
from engine.store import sqlite
from engine.store.sqlite import WriteLock, transaction

COMPONENT = "decision-log"
MIGRATIONS = [
    """
    CREATE TABLE decisions (
        seq INTEGER PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        policy_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        at TEXT NOT NULL,
        logged_at INTEGER NOT NULL,
        latency_us INTEGER NOT NULL,
        request_hash TEXT,
        request TEXT NOT NULL,
        outcome TEXT NOT NULL,
        fired TEXT NOT NULL,
        response TEXT NOT NULL
    );
    CREATE INDEX decisions_by_time ON decisions (logged_at);
    CREATE INDEX decisions_by_policy ON decisions (policy_id, logged_at)
    """,
]

_INSERT = (
    "INSERT INTO decisions (decision_id, policy_id, revision, at, logged_at, latency_us, "
    "request_hash, request, outcome, fired, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_KEYED = _INSERT + " ON CONFLICT (decision_id) DO NOTHING"
_COLUMNS = (
    "seq, decision_id, policy_id, revision, at, logged_at, latency_us, request_hash, request, "
    "outcome, fired, response"
)


@dataclass(slots=True)
class Entry:
    """One decision to log. `keyed`: the id came from the client (it may exist already)."""

    decision_id: str
    policy_id: str
    revision: str
    at: str
    logged_at: int
    latency_us: int
    request_hash: str | None
    request: str
    outcome: str
    fired: str
    response: bytes
    keyed: bool = False

    def row(self) -> tuple[Any, ...]:
        return (
            self.decision_id,
            self.policy_id,
            self.revision,
            self.at,
            self.logged_at,
            self.latency_us,
            self.request_hash,
            self.request,
            self.outcome,
            self.fired,
            self.response.decode(),
        )


@dataclass(frozen=True, slots=True)
class Logged:
    """What became of an entry: written, or the decision already logged under its id."""

    written: bool
    existing_hash: str | None = None
    existing_response: bytes | None = None


class DecisionLog:
    def __init__(self, path: str | Path, lock: WriteLock | None = None) -> None:
        self.path = Path(path)
        self._own_lock = lock is None
        self.lock = lock or WriteLock(self.path)
        self.conn = sqlite.connect(self.path)
        sqlite.migrate(self.conn, self.lock, COMPONENT, MIGRATIONS)
        self.commits = 0
        self.rows = 0

    def close(self) -> None:
        self.conn.close()
        if self._own_lock:
            self.lock.close()

    def commit(self, entries: Sequence[Entry]) -> list[Logged]:
        """Write a group in one transaction (one fsync); raises if nothing could be written."""
        results: list[Logged] = []
        with transaction(self.conn, self.lock) as conn:
            plain: list[tuple[Any, ...]] = []  # runs of generated ids: one executemany each
            for entry in entries:
                if not entry.keyed:
                    plain.append(entry.row())
                    results.append(Logged(True))
                    continue
                if plain:
                    conn.executemany(_INSERT, plain)
                    plain = []
                if conn.execute(_INSERT_KEYED, entry.row()).rowcount == 1:
                    results.append(Logged(True))
                    continue
                row = conn.execute(
                    "SELECT request_hash, response FROM decisions WHERE decision_id = ?",
                    (entry.decision_id,),
                ).fetchone()
                results.append(Logged(False, row[0], row[1].encode()))
            if plain:
                conn.executemany(_INSERT, plain)
        self.commits += 1
        self.rows += len(entries)
        return results

    def get(self, decision_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM decisions WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        return _row(row) if row else None

    def query(
        self,
        *,
        policy: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        revision: str | None = None,
        rule: str | None = None,
        outcome: OutcomeIs | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Decisions matching every filter given, newest first (or oldest first).

        `outcome`: a field of the outcome has that value, or holds it when it is a list.
        `before_seq`: only rows older than that one (a cursor: the last `seq` of a page)."""
        where, args = [], []
        for clause, value in (
            ("policy_id = ?", policy),
            ("logged_at >= ?", since_ms),
            ("logged_at < ?", until_ms),
            ("revision = ?", revision),
            ("seq < ?", before_seq),
        ):
            if value is not None:
                where.append(clause)
                args.append(value)
        if rule is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(decisions.fired) WHERE value = ?)")
            args.append(rule)
        if outcome is not None:
            clause, more = outcome.sql()
            where.append(clause)
            args.extend(more)
        sql = f"SELECT {_COLUMNS} FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        args.append(limit)
        return [_row(r) for r in self.conn.execute(sql, args)]

    def daily(
        self, policy: str, field: str | None, since_ms: int, offset_ms: int
    ) -> list[tuple[int, Any, int]]:
        """(day, value of the outcome `field`, decisions) for `policy` since `since_ms`; a
        day is counted in the local time `offset_ms` ahead of UTC, as days since 1970-01-01.
        Without a field, every decision counts under the value None."""
        value = "json_extract(outcome, ?)" if field is not None else "NULL"
        sql = (
            f"SELECT (logged_at + ?) / 86400000 AS day, {value} AS value, count(*) "
            "FROM decisions WHERE policy_id = ? AND logged_at >= ? GROUP BY day, value "
            "ORDER BY day, value"
        )
        args: list[Any] = [offset_ms]
        if field is not None:
            args.append(json_path(field))
        args += [policy, since_ms]
        return [(int(d), v, int(n)) for d, v, n in self.conn.execute(sql, args)]

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM decisions").fetchone()[0])

    def prune(self, before_ms: int, chunk: int = 5000) -> int:
        """Delete decisions logged before `before_ms`, in small transactions; how many."""
        total = 0
        while True:
            with transaction(self.conn, self.lock) as conn:
                deleted = conn.execute(
                    "DELETE FROM decisions WHERE seq IN (SELECT seq FROM decisions "
                    "WHERE logged_at < ? ORDER BY seq LIMIT ?)",
                    (before_ms, chunk),
                ).rowcount
            total += deleted
            if deleted < chunk:
                return total


_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def json_path(field: str) -> str:
    """The SQLite JSON path of an outcome field (checked: a name, never a path of its own)."""
    if not _FIELD.fullmatch(field):
        raise ValueError(f"not an outcome field name: {field!r}")
    return f"$.{field}"


@dataclass(frozen=True, slots=True)
class OutcomeIs:
    """An outcome filter: `field` is `value` (JSON: true, 2, "held", null) or, for a list
    field, holds it. Booleans and numbers are told apart (true is not 1)."""

    field: str
    value: Any

    def sql(self) -> tuple[str, list[Any]]:
        value = self.value
        if value is True or value is False or value is None:
            kind, compared = {True: "true", False: "false", None: "null"}[value], None
        elif isinstance(value, int):
            kind, compared = "integer", value
        elif isinstance(value, str):
            kind, compared = "text", value
        else:
            raise ValueError(f"compares a boolean, integer, text or null, not {value!r}")
        clause = (
            "EXISTS (SELECT 1 FROM json_each(decisions.outcome, ?) "
            "WHERE type = ? AND (? IS NULL OR value = ?))"
        )
        return clause, [json_path(self.field), kind, compared, compared]


def _row(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    (seq, decision_id, policy_id, revision, at, logged_at, latency, req_hash) = row[:8]
    request, outcome, fired, response = row[8:]
    return {
        "seq": seq,
        "decision_id": decision_id,
        "policy_id": policy_id,
        "revision": revision,
        "at": at,
        "logged_at": logged_at,
        "latency_us": latency,
        "request_hash": req_hash,
        # the request as the live decision read it (orjson), so that a replay reads the
        # same facts; what the engine wrote (exact decimals) back without float
        "request": orjson.loads(request),
        "outcome": loads_exact(outcome),
        "fired": orjson.loads(fired),
        "response": loads_exact(response),
    }


def iter_json_lines(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    for row in rows:
        yield orjson.dumps(row).decode()
