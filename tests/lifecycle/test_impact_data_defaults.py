"""A revision whose change is its default data (a data file edited beside the policy) is
measured with that data: a decision the service served with the published default is
replayed with the new one, as it would be served once the revision is published. Before,
every decision was replayed with the versions it logged, under both revisions, and such a
revision always showed 0 changed, whatever the new data held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.cli.main import main
from engine.lifecycle.impact import Side, default_swaps
from engine.lifecycle.workflow import Lifecycle
from tests.lifecycle.conftest import log_decisions

POLICY = "order-holds"
NEW_ENTRY = (
    "- {id: BL-900, customer_id: C-77777, name: 新井 一郎, postal_code: 999-9999, "
    'phone: 099-999-9999, registered_on: "2024-09-01", note: 受取拒否}\n'
)


def _order(customer: str, name: str) -> dict[str, Any]:
    order = {
        "id": f"O-{customer}",
        "total": 5980,
        "sequence": 1,
        "customer": {"id": customer, "name": name, "postal_code": "100-0001"},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
    return {"facts": {"order": order}, "at": "2024-10-01T10:00:00+09:00"}


def _blacklist_customer(folder: Path) -> None:
    path = folder / "data" / "blacklist.yaml"
    path.write_text(path.read_text(encoding="utf-8") + NEW_ENTRY, encoding="utf-8")


def test_a_new_default_blacklist_changes_the_decisions_it_would_hold(
    lifecycle: Lifecycle, folder: Path
) -> None:
    log_decisions(
        lifecycle.path, folder, POLICY, [_order("C-77777", "新井 一郎"), _order("C-1", "別人")]
    )
    old = lifecycle.resolve(POLICY, "published").data_versions["blacklist"]
    _blacklist_customer(folder)
    result = lifecycle.impact(POLICY, draft=str(folder / f"{POLICY}.yaml"))
    [swap] = result["data_defaults"]
    assert (swap["name"], swap["from"]) == ("blacklist", old) and swap["to"] != old
    assert (result["replayed"], result["changed"]) == (2, 1)
    held = {(t["from"], t["to"]): t["count"] for t in result["transitions"]["held"]}
    assert held == {("false", "true"): 1}
    assert result["not_reproduced"] == 0  # the published side still decides as logged


def test_the_submission_keeps_the_data_defaults_and_counts_the_change(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_decisions(lifecycle.path, folder, POLICY, [_order("C-77777", "新井 一郎")])
    _blacklist_customer(folder)
    store = ["--store", str(lifecycle.path), "--policies", str(folder)]
    assert main(["impact", POLICY, "--draft", str(folder / f"{POLICY}.yaml"), *store[:2]]) == 0
    out = capsys.readouterr().out
    assert "data set blacklist: its default " in out and "are replayed with" in out, out
    assert main(["publish", POLICY, "--as", "alice", *store]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "1 changed" in out and "data set blacklist: its default" in out, out
    record = lifecycle.record(POLICY, 2)
    assert record.impact is not None and record.impact["changed"] == 1
    assert record.impact["data_defaults"][0]["name"] == "blacklist"


def _side(defaults: dict[str, str], overrides: dict[str, Any] | None = None) -> Side:
    return Side("x", POLICY, "r", "p", None, defaults, {}, overrides or {})  # type: ignore[arg-type]


def test_only_a_default_both_sides_have_and_no_data_given_for_the_replay_is_swapped() -> None:
    before = _side({"blacklist": "b1", "customers": "c1", "gone": "g1"})
    after = _side({"blacklist": "b2", "customers": "c1", "new": "n1"})
    assert default_swaps(before, after) == {"blacklist": ("b1", "b2")}
    given = _side({"blacklist": "b2"}, {"blacklist": ("file.json", [])})  # --data wins
    assert default_swaps(before, given) == {}
