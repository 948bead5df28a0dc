"""A replay of an imported entity starts where it was imported (its history's row 0), not
at the flow's initial state, which re-decided every move from the wrong state."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.flow.engine import FlowEngine, replay
from engine.store.flows import FlowStore
from tests.strategies import shipped_project

AT = "2024-09-20T10:00:00+09:00"
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}
DEALER = {"id": "dealer-1", "roles": ["販売店"]}


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[FlowEngine]:
    store = FlowStore(tmp_path / "flows.sqlite3")
    yield FlowEngine(shipped_project(), store)
    store.close()


def test_a_replay_of_an_imported_entity_starts_from_its_import(engine: FlowEngine) -> None:
    facts = {"exclusion_reason": "重複", "estimate_status": "対象外"}
    engine.import_entity("claim-status", "E-1", "requested", facts, principal="ops")
    for event, actor in (({"type": "start_review"}, OPERATOR), ({"type": "approve"}, OPERATOR)):
        assert engine.apply("claim-status", "E-1", event, actor=actor, at=AT).allowed
    policy = engine.policy("claim-status")
    rows = engine.history("claim-status", "E-1")
    snapshot, differences = replay(policy, rows)
    assert differences == []
    assert snapshot == engine.store.load("claim-status", "E-1")
    assert replay(policy, rows[:1])[0] == dataclasses.replace(
        snapshot,
        state="requested",
        facts=facts,
        version=0,
        last_at=rows[0].at,
        last_event="seed",
        state_since=rows[0].at,
    )
    # an entity imported before imports were recorded: no row 0, said, not passed over
    _, differences = replay(policy, rows[1:])
    assert differences and "version 1" in differences[0] and "requested" in differences[0]


def test_a_replay_of_an_import_with_other_facts_finds_the_difference(engine: FlowEngine) -> None:
    facts = {"exclusion_reason": "重複", "estimate_status": "対象外"}
    engine.import_entity("claim-status", "E-2", "not_claimed", facts)
    assert engine.apply("claim-status", "E-2", {"type": "claim"}, actor=DEALER, at=AT).allowed
    rows = engine.history("claim-status", "E-2")
    other = {**facts, "exclusion_reason": "返信なし"}  # EX-4: never claimable
    tampered = [dataclasses.replace(rows[0], facts=other), rows[1]]
    _, differences = replay(engine.policy("claim-status"), tampered)
    assert len(differences) == 1 and "version 1" in differences[0]


def test_a_row_stored_before_a_stricter_check_is_a_difference_not_an_error(
    engine: FlowEngine,
) -> None:
    """An actor id with a blank at its end was taken before ids were checked for it: a
    replay raised actor_invalid at that row instead of listing it."""
    exclude = {"type": "exclude", "exclusion_reason": "重複"}
    assert engine.apply("claim-status", "E-9", exclude, actor=DEALER, at=AT).allowed
    policy = engine.policy("claim-status")
    [row] = engine.history("claim-status", "E-9")
    assert replay(policy, [row])[1] == []
    old = dataclasses.replace(row, actor={"id": "dealer-1 ", "roles": ["販売店"]})
    entity, differences = replay(policy, [old])
    assert len(differences) == 1 and differences[0].startswith("version 1: now invalid (")
    assert "actor_invalid" in differences[0] and entity.version == 0
