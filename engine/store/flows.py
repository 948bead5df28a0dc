"""Flow state in the embedded SQLite store: entities, their history of moves, refusals.

    flow_entities  one row per (policy, entity): state, facts (JSON), version = moves made
                   (0 for an entity seeded without a move)
    flow_history   append-only: one row per move, numbered by the entity's version, with
                   the event, its time, the transition, states before/after, what it
                   recorded, the facts after it, the actions, settings and policy revision
    flow_refusals  append-only, apart from the history: refused events, for audit; a
                   refusal never touches the entity or its history of moves

Both keep the actor of each event ({"id", "roles", "name"?} as JSON; migration 2 added
the column, so rows written before have none).

A move is written in ONE transaction (engine/store/sqlite.py: the file's WriteLock, then
BEGIN IMMEDIATE): the entity row is compared and set on its version, and the history row
is inserted, or neither is; a process killed at any instant leaves the entity before or
after the move, never between. The version check is what serialises writers across
processes: a writer that decided on a version another process has since moved past gets
`False` and decides again.

This layer knows rows, not flows: an entity is an `EntityState` record, and a move is
whatever has the fields of `MoveRecord` (engine.flow.decide.Move has them). Deciding a
move, and the entity it leads to, is flow logic (engine/flow/decide.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.core.jsonvalue import dumps_text, format_datetime, loads_exact
from engine.store.sqlite import (
    DEFAULT_PATH,
    Connections,
    WriteLock,
    migrate,
    transaction,
)

COMPONENT = "flows"
MIGRATIONS = (
    """
    CREATE TABLE flow_entities (
        policy_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        state TEXT NOT NULL,
        facts TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 0),
        created_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        last_event TEXT NOT NULL,
        state_since TEXT NOT NULL,
        revision TEXT NOT NULL,
        PRIMARY KEY (policy_id, entity_id)
    ) WITHOUT ROWID;
    CREATE TABLE flow_history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        event_id TEXT,
        event_type TEXT NOT NULL,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        transition TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        recorded TEXT NOT NULL,
        facts TEXT NOT NULL,
        actions TEXT NOT NULL,
        message TEXT,
        settings TEXT NOT NULL,
        revision TEXT NOT NULL,
        decision_id TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        UNIQUE (policy_id, entity_id, version)
    );
    CREATE UNIQUE INDEX flow_history_event_id
        ON flow_history (policy_id, entity_id, event_id) WHERE event_id IS NOT NULL;
    CREATE TABLE flow_refusals (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        event_id TEXT,
        event_type TEXT NOT NULL,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        code TEXT NOT NULL,
        refusal TEXT NOT NULL,
        settings TEXT NOT NULL,
        revision TEXT NOT NULL,
        decision_id TEXT NOT NULL,
        stored_at TEXT NOT NULL
    );
    CREATE INDEX flow_refusals_entity ON flow_refusals (policy_id, entity_id, seq)
    """,
    # 2: who sent each event (its actor, JSON); NULL for the events stored before.
    """
    ALTER TABLE flow_history ADD COLUMN actor TEXT;
    ALTER TABLE flow_refusals ADD COLUMN actor TEXT
    """,
)
_HISTORY_COLUMNS = (
    "seq, version, event_id, event_type, event, at, transition, from_state, to_state, "
    "recorded, facts, actions, message, settings, revision, decision_id, stored_at, actor"
)
_JSON_COLUMNS = frozenset(
    {"event", "recorded", "facts", "actions", "message", "settings", "refusal", "actor"}
)


@dataclass(frozen=True)
class EntityState:
    """An entity as the store holds it: its state, recorded facts (JSON) and move count,
    with the times of its first and last move (ISO texts) and the event of the last."""

    state: str
    facts: Mapping[str, Any]
    version: int = 0
    created_at: str | None = None
    last_at: str | None = None
    last_event: str | None = None
    state_since: str | None = None


class MoveRecord(Protocol):
    """What the store keeps of one decided event: a move (transition_id set) or a refusal."""

    @property
    def decision_id(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def event(self) -> Mapping[str, Any]: ...  # stored JSON form
    @property
    def event_type(self) -> str: ...
    @property
    def actor(self) -> Any: ...  # has to_dict(): {"id", "roles", "name"?}
    @property
    def transition_id(self) -> str | None: ...
    @property
    def changes(self) -> Mapping[str, Any]: ...
    @property
    def actions(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def message(self) -> Mapping[str, str] | None: ...
    @property
    def settings(self) -> Mapping[str, Any]: ...
    @property
    def refusal(self) -> Mapping[str, Any] | None: ...


def _now() -> str:
    """When a row was stored (audit only: no decision ever reads it)."""
    return format_datetime(datetime.now(UTC))


@dataclass(frozen=True)
class HistoryRow:
    """One move, as stored."""

    seq: int
    version: int
    event_id: str | None
    event_type: str
    event: dict[str, Any]
    at: str
    transition: str
    from_state: str
    to_state: str
    recorded: dict[str, Any]
    facts: dict[str, Any]
    actions: list[dict[str, Any]]
    message: dict[str, str] | None
    settings: dict[str, Any]
    revision: str
    decision_id: str
    stored_at: str
    actor: dict[str, Any] | None = None  # who sent the event (None: stored before actors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "version": self.version,
            "event_id": self.event_id,
            "event": self.event,
            "actor": self.actor,
            "at": self.at,
            "transition": self.transition,
            "state": {"before": self.from_state, "after": self.to_state},
            "recorded": self.recorded,
            "facts": self.facts,
            "actions": self.actions,
            "message": self.message,
            "settings": self.settings,
            "revision": self.revision,
            "decision_id": self.decision_id,
            "stored_at": self.stored_at,
        }


class FlowStore:
    """Flow state in one SQLite file (or in memory, for tests and `kimari test`).

    Each thread reads on its own connection (engine.store.sqlite.Connections); every
    write takes `lock`, the WriteLock of the file, which the service's worker shares
    with its other writers (the decision log, data versions).
    """

    def __init__(self, path: str | Path = DEFAULT_PATH, lock: WriteLock | None = None) -> None:
        self.path = str(path)
        self._own_lock = lock is None
        self.lock = lock or WriteLock(self.path)
        self._connections = Connections(self.path)
        migrate(self._connection(), self.lock, COMPONENT, MIGRATIONS)

    # -- connections ------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        if self._connections.shared is not None:  # one connection: threads take turns
            with self.lock:
                yield self._connection()
        else:
            yield self._connection()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, in the store's one discipline (sqlite.transaction)."""
        with self._reading() as conn, transaction(conn, self.lock):
            yield conn

    def close(self) -> None:
        self._connections.close()
        if self._own_lock:
            self.lock.close()

    # -- reads ------------------------------------------------------------------------
    def load(self, policy_id: str, entity_id: str) -> EntityState | None:
        with self._reading() as conn:
            row = conn.execute(
                "SELECT state, facts, version, created_at, last_at, last_event, state_since "
                "FROM flow_entities WHERE policy_id = ? AND entity_id = ?",
                (policy_id, entity_id),
            ).fetchone()
        if row is None:
            return None
        return EntityState(row[0], loads_exact(row[1]), *row[2:])

    def history(self, policy_id: str, entity_id: str) -> list[HistoryRow]:
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM flow_history "
                "WHERE policy_id = ? AND entity_id = ? ORDER BY version",
                (policy_id, entity_id),
            ).fetchall()
        return [_history_row(row) for row in rows]

    def find_event(self, policy_id: str, entity_id: str, event_id: str) -> HistoryRow | None:
        """The move an event with this id already made (idempotent retries)."""
        with self._reading() as conn:
            row = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM flow_history "
                "WHERE policy_id = ? AND entity_id = ? AND event_id = ?",
                (policy_id, entity_id, event_id),
            ).fetchone()
        return _history_row(row) if row else None

    def refusals(self, policy_id: str, entity_id: str) -> list[dict[str, Any]]:
        with self._reading() as conn:
            cursor = conn.execute(
                "SELECT seq, version, event_id, event_type, event, at, state, code, refusal, "
                "settings, revision, decision_id, stored_at, actor FROM flow_refusals "
                "WHERE policy_id = ? AND entity_id = ? ORDER BY seq",
                (policy_id, entity_id),
            )
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [
            {
                n: loads_exact(v) if n in _JSON_COLUMNS and v is not None else v
                for n, v in zip(names, row, strict=True)
            }
            for row in rows
        ]

    def entity_ids(self, policy_id: str) -> list[str]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT entity_id FROM flow_entities WHERE policy_id = ? ORDER BY entity_id",
                (policy_id,),
            ).fetchall()
        return [r[0] for r in rows]

    # -- writes -----------------------------------------------------------------------
    def commit_move(
        self,
        policy_id: str,
        entity_id: str,
        before: EntityState,
        after: EntityState,
        move: MoveRecord,
        *,
        event_id: str | None = None,
    ) -> bool:
        """Store a move that takes the entity from `before` to `after`; False if the entity
        is no longer at `before.version` (another writer moved it: decide again)."""
        transition = move.transition_id
        assert transition is not None and move.refusal is None, "a refusal is not a move"
        assert after.version == before.version + 1
        with self._writing() as conn:
            current = conn.execute(
                "SELECT version FROM flow_entities WHERE policy_id = ? AND entity_id = ?",
                (policy_id, entity_id),
            ).fetchone()
            if (current[0] if current else 0) != before.version:
                return False
            facts = dumps_text(after.facts)
            conn.execute(
                "INSERT INTO flow_entities (policy_id, entity_id, state, facts, version, "
                "created_at, last_at, last_event, state_since, revision) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (policy_id, entity_id) DO UPDATE SET state = excluded.state, "
                "facts = excluded.facts, version = excluded.version, "
                "last_at = excluded.last_at, last_event = excluded.last_event, "
                "state_since = excluded.state_since, revision = excluded.revision",
                (
                    policy_id,
                    entity_id,
                    after.state,
                    facts,
                    after.version,
                    after.created_at,
                    after.last_at,
                    after.last_event,
                    after.state_since,
                    move.revision,
                ),
            )
            conn.execute(
                "INSERT INTO flow_history (policy_id, entity_id, version, event_id, event_type, "
                "event, at, transition, from_state, to_state, recorded, facts, actions, "
                "message, settings, revision, decision_id, stored_at, actor) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    policy_id,
                    entity_id,
                    after.version,
                    event_id,
                    move.event_type,
                    dumps_text(move.event),
                    after.last_at,
                    transition,
                    before.state,
                    after.state,
                    dumps_text(move.changes),
                    facts,
                    dumps_text(move.actions),
                    dumps_text(move.message) if move.message is not None else None,
                    dumps_text(move.settings),
                    move.revision,
                    move.decision_id,
                    _now(),
                    dumps_text(move.actor.to_dict()),
                ),
            )
        return True

    def log_refusal(
        self,
        policy_id: str,
        entity_id: str,
        before: EntityState,
        move: MoveRecord,
        *,
        event_id: str | None = None,
    ) -> bool:
        """Record a refused event, apart from the history; False if the entity moved since
        `before` was read (the refusal may no longer hold: decide again)."""
        assert move.refusal is not None, "a move is not a refusal"
        with self._writing() as conn:
            current = conn.execute(
                "SELECT version FROM flow_entities WHERE policy_id = ? AND entity_id = ?",
                (policy_id, entity_id),
            ).fetchone()
            if (current[0] if current else 0) != before.version:
                return False
            conn.execute(
                "INSERT INTO flow_refusals (policy_id, entity_id, version, event_id, event_type, "
                "event, at, state, code, refusal, settings, revision, decision_id, stored_at, "
                "actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    policy_id,
                    entity_id,
                    before.version,
                    event_id,
                    move.event_type,
                    dumps_text(move.event),
                    format_datetime(move.at),
                    before.state,
                    move.refusal["code"],
                    dumps_text(move.refusal),
                    dumps_text(move.settings),
                    move.revision,
                    move.decision_id,
                    _now(),
                    dumps_text(move.actor.to_dict()),
                ),
            )
        return True

    def seed(self, policy_id: str, entity_id: str, entity: EntityState, revision: str) -> None:
        """Put an entity in a given state with given facts, without a move (test fixtures,
        imports from another system): version 0, no history. Refused (IntegrityError) if
        the entity already exists."""
        at = entity.last_at or entity.created_at or _now()
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO flow_entities (policy_id, entity_id, state, facts, version, "
                "created_at, last_at, last_event, state_since, revision) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    policy_id,
                    entity_id,
                    entity.state,
                    dumps_text(dict(entity.facts)),
                    0,
                    entity.created_at or at,
                    at,
                    entity.last_event or "seed",
                    entity.state_since or at,
                    revision,
                ),
            )


def _history_row(row: tuple[Any, ...]) -> HistoryRow:
    names = _HISTORY_COLUMNS.split(", ")
    values = {
        n: loads_exact(v) if n in _JSON_COLUMNS and v is not None else v
        for n, v in zip(names, row, strict=True)
    }
    return HistoryRow(**values)
