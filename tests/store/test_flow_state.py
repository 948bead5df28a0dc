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
