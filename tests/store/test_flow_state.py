"""Flow state keeps exact values: what is stored is what is read back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.store.flows import EntityState, FlowStore


def test_stored_facts_come_back_with_their_exact_decimals(tmp_path: Path) -> None:
    store = FlowStore(tmp_path / "flows.sqlite3")
    facts = {"rate": Decimal("0.1000000000000000055511151231257827"), "fee": 80000}
    try:
        store.seed("p", "E-1", EntityState("open", facts), revision="r1")
        loaded = store.load("p", "E-1")
    finally:
        store.close()
    assert loaded is not None
    assert loaded.facts == facts
    assert isinstance(loaded.facts["rate"], Decimal) and isinstance(loaded.facts["fee"], int)


def test_a_file_written_before_actors_gains_the_actor_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """Migration 2 of the flows component adds `actor` to the history and the refusals:
    an old file is upgraded in place, its rows kept, their actor read as None."""
    import sqlite3

    from engine.store.flows import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    for statement in (s.strip() for s in MIGRATIONS[0].split(";")):
        if statement:
            conn.execute(statement)
    conn.execute("INSERT INTO schema_versions VALUES ('flows', 1)")
    conn.execute(
        "INSERT INTO flow_history (policy_id, entity_id, version, event_type, event, at, "
        "transition, from_state, to_state, recorded, facts, actions, settings, revision, "
        "decision_id, stored_at) VALUES ('p', 'E-1', 1, 'claim', '{}', "
        "'2024-09-20T10:00:00+09:00', 'claim', 'a', 'b', '{}', '{}', '[]', '{}', 'r1', "
        "'d1', '2024-09-20T10:00:00Z')"
    )
    conn.commit()
    conn.close()
    store = FlowStore(path)
    try:
        (row,) = store.history("p", "E-1")
        assert row.actor is None and row.transition == "claim"
        assert row.to_dict()["actor"] is None
        columns = {r[1] for r in store._connection().execute("PRAGMA table_info(flow_refusals)")}
        assert "actor" in columns
    finally:
        store.close()
