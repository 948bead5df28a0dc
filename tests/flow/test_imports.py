"""An imported entity (FlowEngine.import_entity: a case under way in another system) is
recorded: its history starts with the import (version 0: who, when, the state and facts it
came with), and its moves follow from version 1 as any entity's do. Before, an import left
no history row, and the only marker, `last_event: "seed"`, went with the next move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.errors import InputError
from engine.flow.engine import FlowEngine
from engine.store.flows import FlowStore
from tests.strategies import shipped_project

AT = "2024-09-20T10:00:00+09:00"
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}
FACTS = {"claims": 1, "claimed_by": "dealer-9"}


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[FlowEngine]:
    store = FlowStore(tmp_path / "flows.sqlite3")
    yield FlowEngine(shipped_project(), store)
    store.close()


def test_an_import_is_the_first_row_of_the_history_and_the_moves_follow_it(
    engine: FlowEngine,
) -> None:
    view = engine.import_entity("claim-status", "EST-1", "under_review", FACTS, principal="ops")
    assert view["entity"]["version"] == 0 and view["last_event"] == "seed"
    (row,) = engine.history("claim-status", "EST-1")
    assert (row.version, row.imported, row.principal) == (0, True, "ops")
    assert (row.from_state, row.to_state, row.facts) == ("", "under_review", FACTS)
    assert row.at == view["created_at"] and row.revision == view["policy"]["revision"]
    moved = engine.apply("claim-status", "EST-1", {"type": "approve"}, actor=OPERATOR, at=AT)
    assert moved.allowed and moved.version == 1  # the import is no move
    rows = engine.history("claim-status", "EST-1")
    assert [(r.version, r.from_state, r.to_state) for r in rows] == [
        (0, "", "under_review"),
        (1, "under_review", "approved"),
    ]
    assert [r.to_dict()["kind"] for r in rows] == ["import", "move"]
    # the import is still told after the move overwrote last_event
    assert engine.entity("claim-status", "EST-1")["last_event"] == "approve"
    assert rows[0].principal == "ops"


def test_an_import_through_the_python_api_names_no_principal(engine: FlowEngine) -> None:
    engine.import_entity("claim-status", "EST-2", "requested", {})
    (row,) = engine.history("claim-status", "EST-2")
    assert row.imported and row.principal is None and row.to_dict()["principal"] is None


def test_a_refused_import_leaves_no_row(engine: FlowEngine) -> None:
    engine.import_entity("claim-status", "EST-3", "requested", {}, principal="ops")
    with pytest.raises(InputError) as caught:
        engine.import_entity("claim-status", "EST-3", "approved", {}, principal="other")
    assert caught.value.code == "entity_exists"
    with pytest.raises(InputError):
        engine.import_entity("claim-status", "EST-4", "nowhere", {}, principal="ops")
    assert [r.principal for r in engine.history("claim-status", "EST-3")] == ["ops"]
    assert engine.history("claim-status", "EST-4") == []
    assert engine.store.load("claim-status", "EST-4") is None


def test_kimari_history_shows_the_import_with_who_made_it(engine: FlowEngine) -> None:
    """The text history showed the import as a move of event '' from '' by '-'."""
    from engine.flow.render import history_text

    engine.import_entity("claim-status", "EST-3", "under_review", FACTS, principal="ops")
    engine.apply("claim-status", "EST-3", {"type": "approve"}, actor=OPERATOR, at=AT)
    rows = engine.history("claim-status", "EST-3")
    lines = history_text(engine.entity("claim-status", "EST-3"), rows, []).splitlines()
    imported = f"0  {rows[0].at}  imported into under_review by ops rev {rows[0].revision}"
    assert lines[1].strip() == imported, lines
    assert "under_review -> approved" in lines[2] and "by op-1" in lines[2]
