"""The semantic diff: what an editor changed, section by section, beside the text diff."""

from __future__ import annotations

import json
from pathlib import Path

from engine.cli.lifecycle import diff_text
from engine.lifecycle.candidates import from_path
from engine.lifecycle.diff import diff, schema_fields
from engine.lifecycle.workflow import Lifecycle
from tests.lifecycle.conftest import drop_workload_percent


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_unchanged_file_is_identical_to_the_published_revision(
    lifecycle: Lifecycle, folder: Path
) -> None:
    result = lifecycle.diff(
        "cancellation-fees", "published", str(folder / "cancellation-fees.yaml")
    )
    assert result["identical"] and result["changes"] == {} and result["text"] == ""


def test_a_changed_condition_is_named_by_rule_and_position(
    lifecycle: Lifecycle, folder: Path
) -> None:
    path = folder / "cancellation-fees.yaml"
    _edit(path, "days_since_contract_start <= settings", "days_since_contract_start < settings")
    result = lifecycle.diff("cancellation-fees", "published", str(path))
    assert not result["identical"]
    rules = result["changes"]["rules"]
    assert rules["added"] == rules["removed"] == [] and rules["order"] is None
    [changed] = rules["changed"]
    assert changed["id"] == "fee-none"
    [field] = changed["fields"]
    assert field["field"] == "when"
    assert field["from"][1].endswith("<= settings.no_fee_days")
    assert field["to"][1].endswith("< settings.no_fee_days")
    assert set(result["changes"]) == {"rules"}
    assert "-      - derived.days_since_contract_start <= settings.no_fee_days" in result["text"]
    assert "+      - derived.days_since_contract_start < settings.no_fee_days" in result["text"]


def test_reason_codes_messages_refs_settings_and_the_title_are_compared(
    lifecycle: Lifecycle, folder: Path
) -> None:
    path = folder / "cancellation-fees.yaml"
    _edit(path, "code: FEE_HALF", "code: FEE_HALVED")
    _edit(path, "キャンセル料は半額です", "キャンセル料は報酬の半額です")
    _edit(path, "  - id: fee-half\n    refs: [FE-2]", "  - id: fee-half\n    refs: [FE-2, FE-3]")
    _edit(path, "    default: 7\n", "    default: 5\n")
    _edit(path, "en: Cancellation fees}", "en: Cancellation charges}")
    changes = lifecycle.diff("cancellation-fees", "published", str(path))["changes"]
    [title] = changes["policy"]
    assert title["field"] == "title" and title["to"]["en"] == "Cancellation charges"
    [half] = changes["rules"]["changed"]
    fields = {f["field"]: (f["from"], f["to"]) for f in half["fields"]}
    assert fields["reason.code"] == ("FEE_HALF", "FEE_HALVED")
    assert fields["refs"] == (["FE-2"], ["FE-2", "FE-3"])
    assert fields["reason.message.ja"][1].endswith("報酬の半額です")
    [setting] = changes["settings"]["changed"]
    assert setting == {
        "id": "no_fee_days",
        "fields": [{"field": "default", "from": 7, "to": 5}],
    }


def test_added_removed_and_reordered_rules_are_told_apart(
    lifecycle: Lifecycle, folder: Path
) -> None:
    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    full = text[text.index("  - id: fee-full") : text.index("  - id: fee-half")]
    text = text.replace(full, "").replace("  - id: fee-none", full + "  - id: fee-none", 1)
    text = text.replace("id: fee-by-workload", "id: fee-by-work")
    path.write_text(text, encoding="utf-8")
    rules = lifecycle.diff("cancellation-fees", "published", str(path))["changes"]["rules"]
    assert [r["id"] for r in rules["added"]] == ["fee-by-work"]
    assert [r["id"] for r in rules["removed"]] == ["fee-by-workload"]
    assert rules["order"]["from"][:3] == ["fee-full", "fee-half", "fee-none"]
    assert rules["order"]["to"][:3] == ["fee-half", "fee-full", "fee-none"]


def test_facts_schema_fields_added_removed_and_retyped_are_listed(
    lifecycle: Lifecycle, folder: Path
) -> None:
    drop_workload_percent(folder)
    schema_path = folder.parent / "schemas" / "cancellation-fees.facts.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    assert "cancellation.workload_percent" not in schema_fields(schema)
    cancellation = schema["properties"]["cancellation"]["properties"]
    cancellation["reason"] = {"type": "string", "description": "why"}
    cancellation["reward"]["minimum"] = 1
    schema_path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    result = lifecycle.diff(
        "cancellation-fees", "published", str(folder / "cancellation-fees.yaml")
    )
    facts = result["changes"]["facts"]
    assert [f["field"] for f in facts["removed"]] == ["cancellation.workload_percent"]
    assert [(f["field"], f["type"]) for f in facts["added"]] == [("cancellation.reason", "string")]
    [reward] = facts["changed"]
    assert reward["field"] == "cancellation.reward"
    assert {"field": "minimum", "from": 0, "to": 1} in reward["changes"]
    assert "cancellation-fees.facts.schema.json" in result["text"]


def test_flow_states_events_and_transitions_are_compared(
    lifecycle: Lifecycle, folder: Path
) -> None:
    path = folder / "claim-status.yaml"
    _edit(
        path,
        "      label: {ja: 確認中, en: under review}",
        "      label: {ja: 審査中, en: in review}",
    )
    _edit(path, "    - id: claim\n", "    - id: file-claim\n")
    changes = lifecycle.diff("claim-status", "published", str(path))["changes"]
    flow = changes["flow"]
    [state] = flow["states"]["changed"]
    assert state["id"] == "under_review"
    assert {f["field"] for f in state["fields"]} == {"label.ja", "label.en"}
    assert [t["id"] for t in flow["transitions"]["added"]] == ["file-claim"]
    assert [t["id"] for t in flow["transitions"]["removed"]] == ["claim"]


def test_flow_roles_are_compared_and_shown(lifecycle: Lifecycle, folder: Path) -> None:
    """A role's label or description changed, or a role added, was left out of the diff: an
    approver saw "identical" sections for a change to who may act."""
    path = folder / "claim-status.yaml"
    unchanged = lifecycle.diff("claim-status", "published", str(path))
    assert unchanged["identical"] and "flow" not in unchanged["changes"]
    text = path.read_text(encoding="utf-8")
    roles = text.index("  roles:\n") + len("  roles:\n")
    path.write_text(
        text[:roles] + "    監査:\n      label: {ja: 監査担当, en: auditor}\n" + text[roles:],
        encoding="utf-8",
    )
    result = lifecycle.diff("claim-status", "published", str(path))
    assert [r["id"] for r in result["changes"]["flow"]["roles"]["added"]] == ["監査"]
    assert "  roles:\n    + 監査" in diff_text(result)


def test_nothing_on_one_side_lists_everything_as_added(folder: Path) -> None:
    new = from_path(folder / "order-holds.yaml")
    result = diff(None, new)
    assert result["from"] is None and not result["identical"]
    assert len(result["changes"]["rules"]["added"]) == len(new.policy.rules)
