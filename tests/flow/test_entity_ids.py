"""A new entity's id has no blank at either end: "EST-1 " (a copy and paste, a padded column
of a spreadsheet) was a second entity beside "EST-1", and " " an entity at all. Entities
stored before the rule keep their ids, and every event still reaches them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.errors import InputError
from engine.flow.engine import FlowEngine
from engine.store.flows import EntityState, FlowStore
from tests.strategies import shipped_project

FLOW = "claim-status"
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
EXCLUDE = {"type": "exclude", "exclusion_reason": "重複"}


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FlowStore]:
    flows = FlowStore(tmp_path / "flows.sqlite3")
    yield flows
    flows.close()


@pytest.fixture()
def engine(store: FlowStore) -> FlowEngine:
    return FlowEngine(shipped_project(), store)


@pytest.mark.parametrize("entity", ["EST-1 ", " EST-1", "EST-1\t", "\u3000EST-1", " "])
def test_a_new_entity_with_a_blank_at_either_end_is_refused_and_nothing_stored(
    engine: FlowEngine, store: FlowStore, entity: str
) -> None:
    with pytest.raises(InputError) as caught:
        engine.apply(FLOW, entity, EXCLUDE, actor=DEALER)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.pointer) == ("entity_id_invalid", "/entity_id")
    if entity.isprintable():  # a tab or an ideographic space: no printable id at all
        assert "no blank at either end" in problem.message
    if entity.strip(" ") == "EST-1":
        assert problem.hint == "did you mean 'EST-1'?"
    with pytest.raises(InputError):
        engine.import_entity(FLOW, entity, "requested", {})
    assert store.load(FLOW, entity) is None
    assert store.history(FLOW, entity) == []


def test_blanks_inside_an_id_are_taken_as_given(engine: FlowEngine) -> None:
    assert engine.apply(FLOW, "EST 2", EXCLUDE, actor=DEALER).allowed
    assert engine.entity(FLOW, "EST 2")["entity"]["version"] == 1


def test_an_entity_stored_before_the_rule_is_still_moved(
    engine: FlowEngine, store: FlowStore
) -> None:
    assert store.seed(FLOW, "EST-3 ", EntityState("not_claimed", {}), "seeded")
    moved = engine.apply(FLOW, "EST-3 ", EXCLUDE, actor=DEALER)
    assert moved.allowed and moved.version == 1
    assert [row.version for row in engine.history(FLOW, "EST-3 ")] == [1]


def test_importing_over_an_entity_stored_before_the_rule_is_refused_as_existing(
    engine: FlowEngine, store: FlowStore
) -> None:
    assert store.seed(FLOW, "EST-4 ", EntityState("not_claimed", {}), "seeded")
    with pytest.raises(InputError) as caught:
        engine.import_entity(FLOW, "EST-4 ", "requested", {})
    assert caught.value.diagnostics[0].code == "entity_exists"
