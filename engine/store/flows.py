"""Flow state in the store: entities, their history of moves, refusals.

    flow_entities  one row per (policy, entity): state, facts (JSON), version = moves made
                   (0 for an entity seeded without a move)
    flow_history   append-only: one row per move, numbered by the entity's version, with
                   the event, its time, the transition, states before/after, what it
                   recorded, the facts after it, the actions, settings and policy revision;
                   and, numbered 0, the import of an entity under way elsewhere (`import_
                   entity`): the state and facts it came with, when, and the principal who
                   imported it (no event, no transition: `from_state` and `transition` are
                   empty). Moves are numbered from 1, so version 0 is never a move.
    flow_refusals  append-only, apart from the history: refused events, for audit; a
                   refusal never touches the entity or its history of moves

Both keep the actor of each event ({"id", "roles", "name"?} as JSON; migration 2 added
the column, so rows written before have none). Migration 3 added `principal` to the
history: who imported the entity (the token's principal), on its row 0 only; entities
imported before have no row 0, and nothing else changes for them.

An import is also an entry of the audit trail (`audit_log`, action `import_entity`, the
lifecycle's table: engine/store/revisions.py) when the store holds one, as the service's
always does; a store only flows use (tests, `kimari flow`) has none.

A move is written in ONE transaction, the store's write discipline keyed by the entity
(`backend.write("flow:<policy>/<entity>")`: on SQLite the file's WriteLock and BEGIN
IMMEDIATE; on PostgreSQL an advisory lock of that entity, held to COMMIT): the entity's
version is read and compared, the entity row set and the history row inserted, or
nothing is; a process killed at any instant leaves the entity before or after the move,
never between. This compare-and-set is what serialises writers across processes and
replicas: a writer that decided on a version another one has since moved past gets
`False` and decides again (engine/flow/engine.py). On SQLite the decision is made
outside any lock (the file's one lock would stop every writer); on PostgreSQL the engine
also `hold`s the entity across read, decision and write, so that writers of one entity
take turns instead of deciding in vain. UNIQUE (policy, entity, version) in the history
backs it all: a doubled move cannot be stored even by a writer that skipped the check.

This layer knows rows, not flows: an entity is an `EntityState` record, and a move is
whatever has the fields of `MoveRecord` (engine.flow.decide.Move has them). Deciding a
move, and the entity it leads to, is flow logic (engine/flow/decide.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from engine.core.jsonvalue import dumps_text, format_datetime, loads_exact
from engine.store.backend import (
    DEFAULT_LOCATION,
    Backend,
    Component,
    Location,
    Session,
    Step,
    both,
)

COMPONENT = "flows"
_TABLES = """
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
    ){without_rowid};
    CREATE TABLE flow_history (
        seq {serial},
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
        seq {serial},
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
"""
_CONSULTED = """
    ALTER TABLE flow_history ADD COLUMN consulted_id TEXT;
    ALTER TABLE flow_refusals ADD COLUMN consulted_id TEXT;
    {backfill};
    CREATE INDEX flow_history_consulted ON flow_history (consulted_id)
        WHERE consulted_id IS NOT NULL;
    CREATE INDEX flow_refusals_consulted ON flow_refusals (consulted_id)
        WHERE consulted_id IS NOT NULL
"""
_BACKFILL_SQLITE = ";\n".join(
    f"""UPDATE {table} SET consulted_id = json_extract(event, '$.decision.decision_id')
    WHERE CASE WHEN json_valid(event)
        THEN json_type(event, '$.decision.decision_id') = 'text' END"""
    for table in ("flow_history", "flow_refusals")
)
# PostgreSQL's JSON functions refuse a text holding an escaped NUL (which the event may
# hold, as any stored text may): such a row stays NULL rather than failing the upgrade.
# CASE, because only CASE fixes the order in which PostgreSQL evaluates conditions.
_BACKFILL_POSTGRESQL = ";\n".join(
    f"""UPDATE {table} SET consulted_id = CASE
        WHEN strpos(event, '\\u0000') > 0 THEN NULL
        WHEN json_typeof(event::json -> 'decision' -> 'decision_id') = 'string'
        THEN event::json -> 'decision' ->> 'decision_id' END
    WHERE strpos(event, '"decision"') > 0"""
    for table in ("flow_history", "flow_refusals")
)
MIGRATIONS = (
    Step(
        _TABLES.format(without_rowid=" WITHOUT ROWID", serial="INTEGER PRIMARY KEY AUTOINCREMENT"),
        _TABLES.format(
            without_rowid="", serial="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        ),
    ),
    # 2: who sent each event (its actor, JSON); NULL for the events stored before.
    both(
        """
        ALTER TABLE flow_history ADD COLUMN actor TEXT;
        ALTER TABLE flow_refusals ADD COLUMN actor TEXT
        """
    ),
    # 3: who imported the entity (row 0 of its history); NULL for every move.
    both("ALTER TABLE flow_history ADD COLUMN principal TEXT"),
    # 4: a move or a refusal found by the decision id its answer gave (GET /v1/decisions/{id})
    both(
        """
        CREATE INDEX flow_history_decision ON flow_history (decision_id);
        CREATE INDEX flow_refusals_decision ON flow_refusals (decision_id)
        """
    ),
    # 5: and by the id of the decision its event consulted (event.decision.decision_id);
    # NULL for events that consult nothing. The rows stored before are filled from their
    # stored event, as `_consulted_id` reads it (a text id only)
    Step(
        _CONSULTED.format(backfill=_BACKFILL_SQLITE),
        _CONSULTED.format(backfill=_BACKFILL_POSTGRESQL),
    ),
)
_HISTORY_COLUMNS = (
    "seq, version, event_id, event_type, event, at, transition, from_state, to_state, "
    "recorded, facts, actions, message, settings, revision, decision_id, stored_at, actor, "
    "principal"
)
_REFUSAL_COLUMNS = (
    "seq, version, event_id, event_type, event, at, state, code, refusal, settings, revision, "
    "decision_id, stored_at, actor"
)
DECISION_FIELD = "decision"  # an event's field with the decision it consulted (flow/)
IMPORTED = 0  # the version of the history row that records an import
IMPORT_EVENT = "import"  # its event_type: what `kimari history` shows in the event's place
AUDIT_TABLE = "audit_log"  # the lifecycle's audit trail (engine/store/revisions.py)
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
    principal: str | None = None  # who imported the entity (row 0 only)

    @property
    def imported(self) -> bool:
        """Whether this row records the entity's import, not a move."""
        return self.version == IMPORTED

    def to_dict(self) -> dict[str, Any]:
        """A move as the service and `kimari history --format json` show it; the import
        (row 0) in the same shape, `kind` telling them apart: its `event` is {} and its
        `transition` and `state.before` are empty (nothing was sent, nothing was left), its
        `principal` names who imported it."""
        out = {
            "kind": "import" if self.imported else "move",
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
        if self.imported:
            out["principal"] = self.principal
            out["decision_id"] = None  # nothing was decided
        return out


@dataclass(frozen=True)
class FoundDecision:
    """A flow's decision found by its id: the entity's move (as its history shows it), or
    the refusal (as `?refusals=true` shows it)."""

    policy_id: str
    entity_id: str
    move: dict[str, Any] | None
    refusal: dict[str, Any] | None
    consulted: bool = False  # found by the id of the decision its event consulted

    @property
    def consulted_decision(self) -> dict[str, Any] | None:
        """The decision the event consulted, as its `decision` field holds it."""
        row = self.move or self.refusal or {}
        decision = (row.get("event") or {}).get(DECISION_FIELD)
        return decision if isinstance(decision, dict) else None


class FlowStore(Component):
    """Flow state on a backend: a SQLite file (or memory, for tests and `kimari test`),
    a PostgreSQL database, or a Backend the service's worker shares with its other
    writers (the decision log, data versions)."""

    name = COMPONENT
    steps = MIGRATIONS

    def __init__(self, location: str | Path | Location | Backend = DEFAULT_LOCATION) -> None:
        super().__init__(location)

    def _reading(self) -> AbstractContextManager[Session]:
        return self.backend.read()

    def _writing(self, policy_id: str, entity_id: str) -> AbstractContextManager[Session]:
        """One write transaction holding the entity, in the store's one discipline."""
        return self.backend.write(f"flow:{policy_id}/{entity_id}")

    def hold(self, policy_id: str, entity_id: str) -> AbstractContextManager[None]:
        """Hold the entity while an event for it is read, decided and written: other
        processes' and replicas' events on it wait (no decision wasted on a version about
        to change, none starved of its turn); the compare-and-set stays the safety net."""
        return self.backend.hold(f"flow:{policy_id}/{entity_id}")

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

    def history(
        self,
        policy_id: str,
        entity_id: str,
        *,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[HistoryRow]:
        """The entity's history in version order: its import first (version 0) if it was
        imported, then its moves. `after`: only the rows of higher versions; `limit`: at
        most that many (a page: engine/service/flows.py)."""
        sql = f"SELECT {_HISTORY_COLUMNS} FROM flow_history WHERE policy_id = ? AND entity_id = ?"
        args: list[Any] = [policy_id, entity_id]
        if after is not None:
            sql += " AND version > ?"
            args.append(after)
        sql += " ORDER BY version"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._reading() as conn:
            rows = conn.execute(sql, tuple(args)).fetchall()
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

    def refusals(
        self,
        policy_id: str,
        entity_id: str,
        *,
        after: int | None = None,
        through: int | None = None,
    ) -> list[dict[str, Any]]:
        """The refused events, in order; `after` and `through`: only those refused while the
        entity stood at a version above `after`, and at most `through` (a refusal at version
        v came after move v: a page of moves after..through holds the refusals between)."""
        sql = f"SELECT {_REFUSAL_COLUMNS} FROM flow_refusals WHERE policy_id = ? AND entity_id = ?"
        args: list[Any] = [policy_id, entity_id]
        if after is not None:
            sql += " AND version > ?"
            args.append(after)
        if through is not None:
            sql += " AND version <= ?"
            args.append(through)
        with self._reading() as conn:
            rows = conn.execute(sql + " ORDER BY seq", tuple(args)).fetchall()
        return [_refusal_row(row) for row in rows]

    def find_decision(self, decision_id: str) -> FoundDecision | None:
        """The move or the refusal whose answer gave this decision id, or whose event
        consulted the decision of that id (an import decided nothing: its row is not found
        by the id it was stored with)."""
        with self._reading() as conn:
            for column, consulted in (("decision_id", False), ("consulted_id", True)):
                row = conn.execute(
                    f"SELECT policy_id, entity_id, {_HISTORY_COLUMNS} FROM flow_history "
                    f"WHERE {column} = ? AND version <> ?",
                    (decision_id, IMPORTED),
                ).fetchone()
                if row is not None:
                    move = _history_row(row[2:]).to_dict()
                    return FoundDecision(row[0], row[1], move, None, consulted)
                row = conn.execute(
                    f"SELECT policy_id, entity_id, {_REFUSAL_COLUMNS} FROM flow_refusals "
                    f"WHERE {column} = ?",
                    (decision_id,),
                ).fetchone()
                if row is not None:
                    return FoundDecision(row[0], row[1], None, _refusal_row(row[2:]), consulted)
        return None

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
        with self._writing(policy_id, entity_id) as conn:
            current = conn.execute(
                "SELECT version FROM flow_entities WHERE policy_id = ? AND entity_id = ?",
                (policy_id, entity_id),
            ).fetchone()
            if not _unmoved(current, before):
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
                "message, settings, revision, decision_id, stored_at, actor, consulted_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    _consulted_id(move.event),
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
        with self._writing(policy_id, entity_id) as conn:
            current = conn.execute(
                "SELECT version FROM flow_entities WHERE policy_id = ? AND entity_id = ?",
                (policy_id, entity_id),
            ).fetchone()
            if not _unmoved(current, before):
                return False
            conn.execute(
                "INSERT INTO flow_refusals (policy_id, entity_id, version, event_id, event_type, "
                "event, at, state, code, refusal, settings, revision, decision_id, stored_at, "
                "actor, consulted_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    _consulted_id(move.event),
                ),
            )
        return True

    def seed(self, policy_id: str, entity_id: str, entity: EntityState, revision: str) -> bool:
        """Put an entity in a given state with given facts, without a move and without a
        trace (test fixtures): version 0, no history. False, and nothing changed, if the
        entity already exists. An import from another system is `import_entity`."""
        at = entity.last_at or entity.created_at or _now()
        with self._writing(policy_id, entity_id) as conn:
            return _insert_entity(conn, policy_id, entity_id, entity, revision, at)

    def import_entity(
        self,
        policy_id: str,
        entity_id: str,
        entity: EntityState,
        revision: str,
        *,
        principal: str | None = None,
    ) -> bool:
        """Create an entity under way in another system, in one transaction with its trace:
        the entity at version 0, its history's row 0 (the state and facts it came with,
        when, and `principal`, who imported it), and, where the store keeps the audit
        trail, an `import_entity` entry by `principal`. False, and nothing changed, if the
        entity already exists."""
        now = datetime.now(UTC)
        at = entity.last_at or entity.created_at or format_datetime(now)
        facts = dumps_text(dict(entity.facts))
        with self._writing(policy_id, entity_id) as conn:
            if not _insert_entity(conn, policy_id, entity_id, entity, revision, at):
                return False
            conn.execute(
                "INSERT INTO flow_history (policy_id, entity_id, version, event_id, event_type, "
                "event, at, transition, from_state, to_state, recorded, facts, actions, "
                "message, settings, revision, decision_id, stored_at, actor, principal) "
                "VALUES (?, ?, ?, NULL, ?, '{}', ?, '', '', ?, '{}', ?, '[]', NULL, '{}', ?, "
                "'', ?, NULL, ?)",
                (
                    policy_id,
                    entity_id,
                    IMPORTED,
                    IMPORT_EVENT,
                    at,
                    entity.state,
                    facts,
                    revision,
                    format_datetime(now),
                    principal,
                ),
            )
            if principal is not None and AUDIT_TABLE in self.backend.tables(conn):
                detail = {"entity": entity_id, "state": entity.state, "revision": revision}
                conn.execute(
                    f"INSERT INTO {AUDIT_TABLE} (at, principal, action, policy_id, number, "
                    "detail) VALUES (?, ?, 'import_entity', ?, NULL, ?)",
                    (int(now.timestamp() * 1000), principal, policy_id, dumps_text(detail)),
                )
        return True


def _unmoved(current: Any, before: EntityState) -> bool:
    """Whether the entity is as `before` was read: at its version, and there or not as it
    was (an entity never stored has no created_at). An import landing while another process
    decided the entity's first event is at version 0 too: the first move overwrote it and
    left a history whose row 0 the entity contradicts."""
    if current is None:
        return before.created_at is None and before.version == 0
    return before.created_at is not None and int(current[0]) == before.version


def _insert_entity(
    conn: Session, policy_id: str, entity_id: str, entity: EntityState, revision: str, at: str
) -> bool:
    """Inside a write: the entity's row at version 0, unless it exists (False)."""
    return (
        conn.execute(
            "INSERT INTO flow_entities (policy_id, entity_id, state, facts, version, "
            "created_at, last_at, last_event, state_since, revision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (policy_id, entity_id) DO NOTHING",
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
        ).rowcount
        == 1
    )


def _consulted_id(event: Mapping[str, Any]) -> str | None:
    """The id of the decision an event consulted (the engine fills its `decision` field)."""
    decision = event.get(DECISION_FIELD)
    found = decision.get("decision_id") if isinstance(decision, Mapping) else None
    return found if isinstance(found, str) else None


def _refusal_row(row: tuple[Any, ...]) -> dict[str, Any]:
    names = _REFUSAL_COLUMNS.split(", ")
    return {
        n: loads_exact(v) if n in _JSON_COLUMNS and v is not None else v
        for n, v in zip(names, row, strict=True)
    }


def _history_row(row: tuple[Any, ...]) -> HistoryRow:
    names = _HISTORY_COLUMNS.split(", ")
    values = {
        n: loads_exact(v) if n in _JSON_COLUMNS and v is not None else v
        for n, v in zip(names, row, strict=True)
    }
    return HistoryRow(**values)
