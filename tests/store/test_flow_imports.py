"""An imported entity's trace, and a history read a page at a time, on both backends.

An import (PUT /v1/flows/{policy}/{id}) left no trace: no history row, nothing in the audit
trail, the principal nowhere, and only `last_event: "seed"`, which the next move overwrote.
It is now its history's row 0, written in the transaction that creates the entity, and an
audit entry where the store keeps the audit trail. Migration 3 of the flows component adds
the principal's column; an older file keeps its rows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.store.backend import Backend, statements
from engine.store.flows import MIGRATIONS, EntityState, FlowStore
from engine.store.revisions import RevisionStore
from engine.store.sqlite import SqliteBackend
from tests.store.test_flows import Move, step

FACTS = {"claims": 2, "note": "前のシステムで申請済み"}


def imported(store: FlowStore, entity: str = "E-1", principal: str | None = "ops") -> EntityState:
    assert store.import_entity(
        "p", entity, EntityState("under_review", FACTS), "r1", principal=principal
    )
    found = store.load("p", entity)
    assert found is not None
    return found


def test_an_import_is_the_first_row_of_the_history_with_who_when_state_and_facts(
    backend: Backend,
) -> None:
    store = FlowStore(backend)
    entity = imported(store)
    assert (entity.state, entity.facts, entity.version) == ("under_review", FACTS, 0)
    (row,) = store.history("p", "E-1")
    assert row.imported and row.version == 0 and row.principal == "ops"
    assert (row.to_state, row.facts, row.revision) == ("under_review", FACTS, "r1")
    assert row.at == entity.created_at == entity.last_at == entity.state_since
    shown = row.to_dict()
    assert shown["kind"] == "import" and shown["principal"] == "ops"
    assert shown["state"] == {"before": "", "after": "under_review"}
    assert (shown["event"], shown["transition"], shown["decision_id"]) == ({}, "", None)
    assert shown["actor"] is None and shown["facts"] == FACTS


def test_the_moves_after_an_import_follow_it_and_keep_its_row(backend: Backend) -> None:
    store = FlowStore(backend)
    before = imported(store)
    after = step(before, "approved")
    assert store.commit_move("p", "E-1", before, after, Move("d1"))
    rows = store.history("p", "E-1")
    assert [(r.version, r.imported, r.to_state) for r in rows] == [
        (0, True, "under_review"),
        (1, False, "approved"),
    ]
    assert rows[1].principal is None and rows[1].to_dict()["kind"] == "move"
    assert "principal" not in rows[1].to_dict()
    assert store.find_event("p", "E-1", "") is None  # row 0 holds no event id


def test_an_import_of_an_entity_that_exists_changes_nothing_and_leaves_no_trace(
    backend: Backend,
) -> None:
    store = FlowStore(backend)
    imported(store)
    again = EntityState("approved", {"claims": 9})
    assert not store.import_entity("p", "E-1", again, "r2", principal="other")
    assert [r.principal for r in store.history("p", "E-1")] == ["ops"]
    assert store.seed("p", "E-2", EntityState("open", {}), "r1")  # a fixture: no trace
    assert store.history("p", "E-2") == []


def test_an_import_is_audited_where_the_store_keeps_the_audit_trail(backend: Backend) -> None:
    store = FlowStore(backend)
    imported(store, "E-0")  # no audit trail in this store yet: the history only
    revisions = RevisionStore(backend)
    assert revisions.audit() == []
    imported(store, "E-1")
    imported(store, "E-2", principal=None)  # the Python API names no one: history only
    (entry,) = revisions.audit()
    assert (entry.principal, entry.action, entry.policy_id, entry.number) == (
        "ops",
        "import_entity",
        "p",
        None,
    )
    assert entry.detail == {"entity": "E-1", "state": "under_review", "revision": "r1"}
    assert revisions.audit("p") == [entry]


def test_a_history_is_read_a_page_at_a_time_after_a_version(backend: Backend) -> None:
    store = FlowStore(backend)
    entity = imported(store)
    for n in range(5):
        after = step(entity, f"s{n}")
        assert store.commit_move("p", "E-1", entity, after, Move(f"d{n}"))
        entity = after
    assert [r.version for r in store.history("p", "E-1")] == [0, 1, 2, 3, 4, 5]
    assert [r.version for r in store.history("p", "E-1", limit=2)] == [0, 1]
    assert [r.version for r in store.history("p", "E-1", after=0, limit=2)] == [1, 2]
    assert [r.version for r in store.history("p", "E-1", after=3)] == [4, 5]
    assert store.history("p", "E-1", after=5) == []


def test_the_refusals_of_a_page_are_those_between_its_moves(backend: Backend) -> None:
    """A refusal at version v came after move v: a page of moves after..through holds
    the refusals refused at versions above `after` up to `through`."""
    store = FlowStore(backend)
    entity = imported(store)
    for n in range(3):
        refused = Move(f"r{n}", transition_id=None, refusal={"code": "no"})
        assert store.log_refusal("p", "E-1", entity, refused)
        after = step(entity, f"s{n}")
        assert store.commit_move("p", "E-1", entity, after, Move(f"d{n}"))
        entity = after
    assert [r["version"] for r in store.refusals("p", "E-1")] == [0, 1, 2]
    assert [r["version"] for r in store.refusals("p", "E-1", through=1)] == [0, 1]
    assert [r["version"] for r in store.refusals("p", "E-1", after=1)] == [2]
    assert [r["version"] for r in store.refusals("p", "E-1", after=0, through=1)] == [1]


def test_a_file_written_before_imports_were_recorded_gains_the_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """Migration 3 adds `principal` to the history of an older store (two steps applied):
    its entities, imported ones among them (no row 0), and their moves read as before."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    for migration in MIGRATIONS[:2]:
        for statement in statements(migration.sqlite):
            conn.execute(statement)
    conn.execute("INSERT INTO schema_versions VALUES ('flows', 2)")
    conn.execute(
        "INSERT INTO flow_entities VALUES ('p', 'E-1', 'b', '{}', 1, '2024-09-20T10:00:00Z', "
        "'2024-09-20T10:00:00Z', 'claim', '2024-09-20T10:00:00Z', 'r1')"
    )
    conn.execute(
        "INSERT INTO flow_history (policy_id, entity_id, version, event_type, event, at, "
        "transition, from_state, to_state, recorded, facts, actions, settings, revision, "
        "decision_id, stored_at, actor) VALUES ('p', 'E-1', 1, 'claim', '{}', "
        "'2024-09-20T10:00:00+09:00', 'claim', 'a', 'b', '{}', '{}', '[]', '{}', 'r1', "
        "'d1', '2024-09-20T10:00:00Z', '{\"id\": \"x\", \"roles\": []}')"
    )
    conn.commit()
    conn.close()
    backend = SqliteBackend(path)
    store = FlowStore(backend)
    try:
        (row,) = store.history("p", "E-1")
        assert (row.version, row.principal, row.imported) == (1, None, False)
        assert row.to_dict()["kind"] == "move" and row.actor == {"id": "x", "roles": []}
        pragma = backend.connection().execute("PRAGMA table_info(flow_history)")
        assert "principal" in {r[1] for r in pragma}
        imported(store, "E-2")  # and it records imports from now on
        assert store.history("p", "E-2")[0].principal == "ops"
    finally:
        store.close()
        backend.close()


def test_a_first_move_decided_before_an_import_landed_is_refused_and_decided_again(
    backend: Backend,
) -> None:
    """Read as absent (version 0, never stored), then imported by another process (version
    0 too): the first move overwrote the import, and the history's row 0 contradicted the
    entity. Now the move is refused as one made on a moved entity: decided again."""
    store = FlowStore(backend)
    never = EntityState("not_claimed", {})  # what the deciding process read: no entity
    imported(store)
    assert not store.commit_move("p", "E-1", never, step(never, "not_claimed"), Move("d1"))
    entity = store.load("p", "E-1")
    assert entity is not None and (entity.state, entity.facts) == ("under_review", FACTS)
    assert [r.version for r in store.history("p", "E-1")] == [0]
    # the other side: an entity that is there as read, or absent as read, is moved
    assert store.commit_move("p", "E-1", entity, step(entity, "approved"), Move("d2"))
    assert store.commit_move("p", "E-2", never, step(never, "not_claimed"), Move("d3"))
    assert [r.version for r in store.history("p", "E-2")] == [1]
