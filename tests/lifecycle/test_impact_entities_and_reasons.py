"""Impact shows what an approver would otherwise not see: a flow revision's effect on the
entities stored under it (a renamed or abolished state strands them; an event no longer
allowed changes them; a narrower entity schema refuses their facts), and decisions whose
outcome and rules stay the same but whose reasons read otherwise (a customer-facing
message reworded). Each through the Python API, the submission's summary and the CLI."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.api import open_flow_engine
from engine.cli.main import main
from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, Rules, StrandsEntities
from engine.store.flows import EntityState, FlowStore
from tests.lifecycle.conftest import cancellation, log_decisions

FLOW = "claim-status"
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
HALF = "キャンセル料は半額です"
FULL = "キャンセル料は全額です"


# -- helpers -----------------------------------------------------------------------------
def _claims_requested(lifecycle: Lifecycle, folder: Path, ids: list[str]) -> None:
    """Entities moved to `requested` by real events, as the service moves them."""
    engine, policy = open_flow_engine(FLOW, folder, lifecycle.path)
    try:
        for entity in ids:
            engine.apply(
                policy, entity, {"type": "exclude", "exclusion_reason": "重複"}, actor=DEALER
            )
            result = engine.apply(policy, entity, {"type": "claim"}, actor=DEALER)
            assert result.state == "requested"
    finally:
        engine.store.close()


def _seed(lifecycle: Lifecycle, entities: dict[str, tuple[str, dict[str, Any]]]) -> None:
    store = FlowStore(lifecycle.path)
    try:
        for entity, (state, facts) in entities.items():
            assert store.seed(FLOW, entity, EntityState(state, facts), "seeded")
    finally:
        store.close()


def _rename_requested(folder: Path) -> Path:
    """The QA's revision: state `requested` renamed `submitted`, tests and all."""
    for name in (f"{FLOW}.yaml", f"{FLOW}.tests.yaml"):
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert re.search(r"\brequested\b", text)
        path.write_text(re.sub(r"\brequested\b", "submitted", text), encoding="utf-8")
    return folder / f"{FLOW}.yaml"


def _retitle(folder: Path) -> Path:
    path = folder / f"{FLOW}.yaml"
    text = path.read_text(encoding="utf-8")
    old = "en: Billing-exemption claim status}"
    assert old in text
    path.write_text(text.replace(old, "en: Claim status (billing exemption)}"), encoding="utf-8")
    return path


def _abolish_rejected(folder: Path) -> Path:
    """`rejected` abolished: nothing leaves it any more (no re-claim, no 対象外 from it), and
    the rejection that led into it is refused, so `under_review` no longer allows `reject`."""
    path = folder / f"{FLOW}.yaml"
    text = path.read_text(encoding="utf-8")
    label = "      label: {ja: 非承認, en: rejected}\n"
    assert label in text
    text = text.replace(label, label + "      abolished: true\n", 1)
    assert text.count("from: [not_claimed, rejected]") == 3
    text = text.replace("from: [not_claimed, rejected]", "from: not_claimed")
    text = text[: text.index("    - id: reclaim")]
    path.write_text(text, encoding="utf-8")
    return path


def _cap_claims(folder: Path, maximum: int) -> None:
    """The draft's entity schema: at most `maximum` claims (the published one has none)."""
    path = folder.parent / "schemas" / f"{FLOW}.facts.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["claims"]["maximum"] = maximum
    path.write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")


def _reword_half(folder: Path) -> Path:
    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(HALF) == 1
    path.write_text(text.replace(HALF, FULL), encoding="utf-8")
    return path


STAGES = ("application_in_progress", "documents_filed", "initial_only", "work_started")


def _log_cancellations(lifecycle: Lifecycle, folder: Path) -> list[str]:
    """Eight decisions, two of each stage: two of them say 半額 (fee-half)."""
    requests = [cancellation(day, stage) for day in (3, 10) for stage in STAGES]
    return log_decisions(lifecycle.path, folder, "cancellation-fees", requests)


def _cli(capsys: pytest.CaptureFixture[str], folder: Path, *args: str) -> tuple[int, str]:
    store = ["--store", str(folder.parent / "var" / "kimari.sqlite3")]
    code = main([*args, *store])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out


# -- a flow's stored entities --------------------------------------------------------------
def test_a_renamed_state_strands_every_entity_standing_in_it(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _claims_requested(lifecycle, folder, ["c-1", "c-2", "c-3"])
    _seed(lifecycle, {"n-1": ("not_claimed", {}), "a-1": ("approved", {"claims": 1})})
    result = lifecycle.impact(FLOW, draft=str(_rename_requested(folder)))
    assert (result["replayed"], result["changed"]) == (0, 0)  # a flow logs no decision
    entities = result["entities"]
    assert entities["total"] == 5
    assert entities["stranded"] == 3
    assert entities["removed_states"] == [
        {"state": "requested", "count": 3, "entities": ["c-1", "c-2", "c-3"]}
    ]
    assert entities["abolished_states"] == []
    # not_claimed still allows claim (it now leads to `submitted`): no event changes
    assert entities["events_changed"] == []
    assert entities["facts"]["schema_changed"] is False


def test_a_revision_that_keeps_every_state_and_event_strands_nothing(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _claims_requested(lifecycle, folder, ["c-1"])
    _seed(lifecycle, {"r-1": ("rejected", {"claims": 1})})
    entities = lifecycle.impact(FLOW, draft=str(_retitle(folder)))["entities"]
    assert entities["total"] == 2
    assert entities["stranded"] == 0
    assert entities["removed_states"] == entities["abolished_states"] == []
    assert entities["events_changed"] == []
    assert entities["facts"] == {
        "schema_changed": False,
        "checked": 0,
        "of": 2,
        "refused": 0,
        "kinds": [],
    }


def test_an_abolished_state_strands_and_an_event_no_longer_allowed_changes(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _seed(
        lifecycle,
        {
            "r-1": ("rejected", {"claims": 1}),
            "r-2": ("rejected", {"claims": 2}),
            "u-1": ("under_review", {"claims": 1}),
            "n-1": ("not_claimed", {}),
        },
    )
    entities = lifecycle.impact(FLOW, draft=str(_abolish_rejected(folder)))["entities"]
    assert entities["stranded"] == 2
    assert entities["removed_states"] == []
    assert entities["abolished_states"] == [
        {"state": "rejected", "count": 2, "entities": ["r-1", "r-2"]}
    ]
    assert entities["events_changed"] == [
        {
            "state": "under_review",
            "count": 1,
            "entities": ["u-1"],
            "removed": ["reject"],
            "added": [],
        }
    ]


def test_stored_facts_that_the_drafts_entity_schema_refuses_are_counted(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _seed(
        lifecycle,
        {
            "ok-1": ("not_claimed", {"claims": 1}),
            "ok-2": ("requested", {}),
            "two-1": ("requested", {"claims": 2}),
            "two-2": ("rejected", {"claims": 2}),
            "bad-1": ("rejected", {"claims": -1}),  # refused by the published one already
        },
    )
    _cap_claims(folder, 1)
    entities = lifecycle.impact(FLOW, draft=str(_retitle(folder)))["entities"]
    assert entities["stranded"] == 0
    facts = entities["facts"]
    assert (facts["schema_changed"], facts["checked"], facts["of"]) == (True, 5, 5)
    assert facts["refused"] == 2
    [kind] = facts["kinds"]
    assert (kind["pointer"], kind["count"], kind["entities"]) == (
        "/entity/claims",
        2,
        ["two-1", "two-2"],
    )


def test_a_schema_that_still_accepts_the_stored_facts_refuses_none(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _seed(lifecycle, {"one": ("requested", {"claims": 1}), "two": ("rejected", {"claims": 2})})
    _cap_claims(folder, 5)
    facts = lifecycle.impact(FLOW, draft=str(_retitle(folder)))["entities"]["facts"]
    assert (facts["schema_changed"], facts["checked"], facts["refused"]) == (True, 2, 0)


def test_a_decision_policy_has_no_entities(lifecycle: Lifecycle, folder: Path) -> None:
    _log_cancellations(lifecycle, folder)
    result = lifecycle.impact("cancellation-fees", draft=str(_reword_half(folder)))
    assert "entities" not in result


def test_the_submission_keeps_the_stranded_entities_for_the_approver(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """Shown, not refused: the approver decides, with the count in front of them."""
    lifecycle.require(1)
    _claims_requested(lifecycle, folder, ["c-1", "c-2"])
    candidate = from_path(_rename_requested(folder), FLOW)
    record, publication = lifecycle.submit(candidate, "alice", "rename requested")
    assert publication is None and record.state == "pending"
    assert record.tests is not None and record.tests["failed"] == 0
    assert record.impact is not None
    entities = record.impact["entities"]
    assert entities["stranded"] == 2
    assert entities["removed_states"][0]["state"] == "requested"
    stored = lifecycle.record(FLOW, record.number).impact
    assert stored is not None and stored["entities"]["stranded"] == 2


def test_the_entities_are_read_from_a_postgresql_store_too(folder: Path, pg_url: str) -> None:
    with Lifecycle(pg_url, Rules(workers=1), files=True) as lifecycle:
        lifecycle.bootstrap(folder)
        _seed(lifecycle, {"c-1": ("requested", {"claims": 1}), "n-1": ("not_claimed", {})})
        _cap_claims(folder, 0)
        entities = lifecycle.impact(FLOW, draft=str(_rename_requested(folder)))["entities"]
    assert (entities["total"], entities["stranded"]) == (2, 1)
    assert entities["removed_states"] == [{"state": "requested", "count": 1, "entities": ["c-1"]}]
    assert (entities["facts"]["checked"], entities["facts"]["refused"]) == (1, 0)  # n-1: {}


# -- reasons that read otherwise -----------------------------------------------------------
def test_a_reworded_reason_is_counted_apart_with_before_and_after(
    lifecycle: Lifecycle, folder: Path
) -> None:
    ids = _log_cancellations(lifecycle, folder)
    result = lifecycle.impact("cancellation-fees", draft=str(_reword_half(folder)))
    assert (result["replayed"], result["changed"], result["rules_only"]) == (8, 0, 0)
    assert (result["reasons_only"], result["unchanged"]) == (2, 6)
    assert result["reason_rules"] == {"fee-half": 2}
    assert [c["decision_id"] for c in result["reason_changes"]] == [ids[0], ids[4]]
    [change] = result["reason_changes"][0]["reasons"]
    assert change["rule"] == "fee-half"
    assert change["before"]["code"] == change["after"]["code"] == "FEE_HALF"
    assert change["before"]["message"]["ja"].endswith(HALF)
    assert change["after"]["message"]["ja"].endswith(FULL)
    assert change["before"]["message"]["en"] == change["after"]["message"]["en"]
    assert "refs" not in change["before"]


def test_unchanged_reasons_leave_the_decisions_unchanged(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _log_cancellations(lifecycle, folder)
    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("en: Cancellation fees}", "en: Fees on cancellation}", 1))
    result = lifecycle.impact("cancellation-fees", draft=str(path))
    assert (result["unchanged"], result["reasons_only"], result["changed"]) == (8, 0, 0)
    assert result["reason_rules"] == {} and result["reason_changes"] == []


def test_a_changed_outcome_is_not_counted_again_as_reasons(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """The categories stay apart: a decision whose outcome changes is `changed` only."""
    _log_cancellations(lifecycle, folder)
    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    old = "then: {fee_tier: half, fee_percent: 50}"
    assert old in text
    path.write_text(
        text.replace(old, "then: {fee_tier: half, fee_percent: 60}").replace(HALF, FULL)
    )
    result = lifecycle.impact("cancellation-fees", draft=str(path))
    assert (result["changed"], result["reasons_only"], result["unchanged"]) == (2, 0, 6)


def test_the_submission_keeps_the_reworded_reasons(lifecycle: Lifecycle, folder: Path) -> None:
    lifecycle.require(1)
    _log_cancellations(lifecycle, folder)
    candidate = from_path(_reword_half(folder), "cancellation-fees")
    record, _ = lifecycle.submit(candidate, "alice", "say it is the full fee")
    assert record.impact is not None
    effect = record.impact
    assert (effect["changed"], effect["reasons_only"], effect["unchanged"]) == (0, 2, 6)
    assert effect["reason_rules"] == {"fee-half": 2}
    assert len(effect["reason_changes"]) == 2
    assert effect["reason_changes"][0]["reasons"][0]["after"]["message"]["ja"].endswith(FULL)
    assert "entities" not in effect


def test_a_window_read_exactly_still_measures_the_submission(folder: Path) -> None:
    """A submission job reads its parameters exactly when a text sent with them holds a
    long number (cancellation-fees' tests do): its impact_days was a Decimal, and
    time.time() minus it an internal error instead of an impact."""
    days: Any = Decimal("7.0")
    store = folder.parent / "var" / "kimari.sqlite3"
    with Lifecycle(store, Rules(workers=1, impact_days=days), files=True) as lifecycle:
        lifecycle.bootstrap(folder)
        lifecycle.require(1)
        _log_cancellations(lifecycle, folder)
        candidate = from_path(_reword_half(folder), "cancellation-fees")
        record, _ = lifecycle.submit(candidate, "alice", "say it is the full fee")
    assert record.impact is not None and record.impact["reasons_only"] == 2


# -- the CLI ---------------------------------------------------------------------------------
def test_the_cli_shows_stranded_entities_in_impact_publish_and_revisions(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    lifecycle.require(1)
    _claims_requested(lifecycle, folder, ["c-1", "c-2"])
    draft = str(_rename_requested(folder))
    code, out = _cli(capsys, folder, "impact", FLOW, "--draft", draft)
    assert code == 0, out
    assert "stored entities of claim-status: 2" in out
    assert "STRANDED 2: in a state the draft no longer has or makes abolished" in out
    assert "requested (no longer a state): 2 (e.g. c-1, c-2)" in out
    code, out = _cli(capsys, folder, "impact", FLOW, "--draft", draft, "--format", "json")
    assert code == 0 and json.loads(out)["entities"]["stranded"] == 2
    policies = ["--policies", str(folder)]
    code, out = _cli(capsys, folder, "publish", FLOW, "--as", "alice", *policies)
    assert code == 0, out
    assert "STRANDED 2" in out and "requested (no longer a state): 2" in out
    code, out = _cli(capsys, folder, "revisions", FLOW)
    assert code == 0 and "entities: 2 STRANDED" in out, out


def test_the_cli_says_nothing_is_stranded_when_nothing_is(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    _claims_requested(lifecycle, folder, ["c-1"])
    code, out = _cli(capsys, folder, "impact", FLOW, "--draft", str(_retitle(folder)))
    assert code == 0, out
    assert "stored entities of claim-status: 1" in out
    assert "STRANDED" not in out and "allowed events change" not in out
    assert "stored facts: not checked, the entity schema is unchanged" in out


def test_the_cli_shows_reworded_reasons_before_and_after(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    lifecycle.require(1)
    ids = _log_cancellations(lifecycle, folder)
    draft = str(_reword_half(folder))
    code, out = _cli(capsys, folder, "impact", "cancellation-fees", "--draft", draft)
    assert code == 0, out
    assert re.search(r"reasons only +2 ", out), out
    assert re.search(r"unchanged +6\n", out), out
    assert "reasons that read otherwise, by rule: fee-half 2" in out
    assert "decisions whose reasons read otherwise (the first 2):" in out
    line = next(line for line in out.splitlines() if ids[0] in line)
    assert f"fee-half message.ja: 申請途上のキャンセルのため、{HALF} -> " in line
    assert line.endswith(f"申請途上のキャンセルのため、{FULL}")
    assert "message.en" not in line  # what reads the same is not repeated
    code, out = _cli(
        capsys, folder, "impact", "cancellation-fees", "--draft", draft, "--format", "json"
    )
    assert json.loads(out)["reasons_only"] == 2
    policies = ["--policies", str(folder)]
    code, out = _cli(capsys, folder, "publish", "cancellation-fees", "--as", "alice", *policies)
    assert code == 0, out
    assert re.search(r"reasons only +2 ", out) and FULL in out, out
    code, out = _cli(capsys, folder, "revisions", "cancellation-fees")
    assert "2 with other reasons" in out, out


def test_the_cli_counts_no_reasons_when_they_read_the_same(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    _log_cancellations(lifecycle, folder)
    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("en: Cancellation fees}", "en: Fees on cancellation}", 1))
    code, out = _cli(capsys, folder, "impact", "cancellation-fees", "--draft", str(path))
    assert code == 0, out
    assert re.search(r"reasons only +0 ", out) and re.search(r"unchanged +8\n", out), out
    assert "read otherwise" not in out


def test_a_long_reason_is_shown_where_it_differs() -> None:
    """A message changed at its end is not cut off before the change."""
    from engine.cli.lifecycle import _reason_fields

    head = "初動のみ、かつ契約開始から3日目のため、" * 6
    before = {"code": "FEE", "message": {"ja": head + HALF, "en": "half"}}
    after = {"code": "FEE", "message": {"ja": head + FULL, "en": "half"}}
    [(name, old, new)] = _reason_fields(before, after)
    assert name == "message.ja"
    assert old.startswith("...") and old.endswith(HALF) and len(old) < 60
    assert new.startswith("...") and new.endswith(FULL)
    assert _reason_fields(None, {"code": "NEW"}) == [("code", "(absent)", "NEW")]


# -- the approval: stranding is accepted knowingly, counted at the approval -------------------
def test_a_revision_that_strands_entities_is_approved_only_acknowledging_as_many(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """The console's approve button waited for a tick; the API and the CLI published it
    without a word."""
    lifecycle.require(1)
    _claims_requested(lifecycle, folder, ["c-1", "c-2"])
    record, _ = lifecycle.submit(from_path(_rename_requested(folder), FLOW), "alice", "rename")
    with pytest.raises(StrandsEntities) as refused:
        lifecycle.approve(FLOW, record.number, "bob")
    assert (refused.value.count, refused.value.states) == (2, ["requested"])
    [problem] = refused.value.diagnostics
    assert problem.code == "strands_entities" and "strands 2 stored entities" in problem.message
    with pytest.raises(StrandsEntities):
        lifecycle.approve(FLOW, record.number, "bob", acknowledged=1)
    assert lifecycle.record(FLOW, record.number).state == "pending"  # nothing published
    publication = lifecycle.approve(FLOW, record.number, "bob", acknowledged=2)
    assert publication.number == record.number


def test_the_entities_stranded_are_counted_at_the_approval_not_at_the_submission(
    lifecycle: Lifecycle, folder: Path
) -> None:
    lifecycle.require(1)
    record, _ = lifecycle.submit(from_path(_rename_requested(folder), FLOW), "alice", "rename")
    assert record.impact is not None and record.impact["entities"]["stranded"] == 0
    _seed(lifecycle, {"c-9": ("requested", {"claims": 1})})  # it reached `requested` since
    with pytest.raises(StrandsEntities) as refused:
        lifecycle.approve(FLOW, record.number, "bob")
    assert refused.value.count == 1
    assert lifecycle.approve(FLOW, record.number, "bob", acknowledged=1).number == record.number


def test_a_revision_stranding_nothing_and_a_decision_policy_need_no_acknowledgement(
    lifecycle: Lifecycle, folder: Path
) -> None:
    lifecycle.require(1)
    _claims_requested(lifecycle, folder, ["c-1"])
    flow, _ = lifecycle.submit(from_path(_retitle(folder), FLOW), "alice", "retitle")
    assert lifecycle.approve(FLOW, flow.number, "bob").number == flow.number
    fees, _ = lifecycle.submit(from_path(_reword_half(folder), "cancellation-fees"), "alice", "")
    assert lifecycle.approve("cancellation-fees", fees.number, "bob").number == fees.number


def test_the_cli_approves_a_stranding_revision_with_acknowledge_stranded(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    lifecycle.require(1)
    _claims_requested(lifecycle, folder, ["c-1", "c-2"])
    record, _ = lifecycle.submit(from_path(_rename_requested(folder), FLOW), "alice", "rename")
    ref = f"{FLOW}@{record.number}"
    store = ["--store", str(lifecycle.path)]

    def approve(*more: str) -> tuple[int, str]:
        code = main(["approve", ref, "--as", "bob", *store, *more])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out + err

    code, said = approve()
    assert code == 1
    assert "strands_entities" in said and "strands 2 stored entities" in said, said
    assert "--acknowledge-stranded" in said
    code, said = approve("--acknowledge-stranded", "1")
    assert code == 1 and "more than the 1 acknowledged" in said, said
    code, said = approve("--acknowledge-stranded", "-1")
    assert code == 2, said
    code, said = approve("--acknowledge-stranded", "2")
    assert code == 0, said
    assert f"published {ref}" in said


def _renamed_and_submitted(lifecycle: Lifecycle, folder: Path) -> None:
    """claim-status@2 (`requested` renamed `submitted`) published, and two entities standing
    in `submitted` under it: claim-status@1 lacks that state."""
    record, publication = lifecycle.submit(from_path(_rename_requested(folder), FLOW), "a", "")
    assert publication is not None and record.number == 2
    _seed(lifecycle, {e: ("submitted", {"claims": 1}) for e in ("c-1", "c-2")})


def test_a_rollback_that_strands_entities_is_made_only_acknowledging_as_many(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """Only the approval counted them: rolling a flow back to a revision without the state
    entities reached since stranded them without a word, on every route."""
    _renamed_and_submitted(lifecycle, folder)
    with pytest.raises(StrandsEntities) as refused:
        lifecycle.rollback(FLOW, "1", "bob", "back")
    assert (refused.value.count, refused.value.states) == (2, ["submitted"])
    [problem] = refused.value.diagnostics
    assert "strands 2 stored entities" in problem.message
    assert problem.hint is not None and "roll back acknowledging 2" in problem.hint
    with pytest.raises(StrandsEntities):
        lifecycle.rollback(FLOW, "1", "bob", "back", acknowledged=1)
    published = lifecycle.revisions.publication_of(FLOW)
    assert published is not None and published.number == 2  # nothing published
    assert lifecycle.rollback(FLOW, "1", "bob", "back", acknowledged=2).number == 1
    # back to the revision that has the state: nothing stranded, nothing to acknowledge
    assert lifecycle.rollback(FLOW, "2", "bob", "forth").number == 2


def test_the_cli_rolls_back_stranding_entities_with_acknowledge_stranded(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    _renamed_and_submitted(lifecycle, folder)

    def rollback(*more: str) -> tuple[int, str]:
        store = ["--store", str(lifecycle.path)]
        code = main(["rollback", FLOW, "--to", "1", "--as", "bob", *store, *more])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out + err

    code, said = rollback()
    assert code == 1 and "strands 2 stored entities" in said, said
    assert "roll back acknowledging 2" in said and "--acknowledge-stranded" in said
    code, said = rollback("--acknowledge-stranded", "1")
    assert code == 1 and "more than the 1 acknowledged" in said, said
    code, said = rollback("--acknowledge-stranded", "2")
    assert code == 0 and f"published {FLOW}@1" in said, said


def test_with_no_approval_required_a_stranding_revision_waits_for_its_acknowledgement(
    capsys: pytest.CaptureFixture[str], lifecycle: Lifecycle, folder: Path
) -> None:
    """No one else has to approve, but `kimari publish` published it at once, stranding the
    entities with the count printed after the fact. It stays pending; its author approves
    it acknowledging how many."""
    _claims_requested(lifecycle, folder, ["c-1", "c-2"])
    _rename_requested(folder)
    store = ["--store", str(lifecycle.path), "--policies", str(folder)]
    assert main(["publish", FLOW, "--as", "alice", *store]) == 0
    out = capsys.readouterr().out
    ref = f"{FLOW}@2"
    held = f"not published: it strands 2 stored entities; kimari approve {ref} "
    assert held + "--acknowledge-stranded 2 publishes it" in out, out
    assert lifecycle.record(FLOW, 2).state == "pending"
    with pytest.raises(StrandsEntities):
        lifecycle.approve(FLOW, 2, "alice")
    assert lifecycle.approve(FLOW, 2, "alice", acknowledged=2).number == 2  # its author may


def test_with_no_approval_required_a_revision_stranding_nothing_is_published_at_once(
    lifecycle: Lifecycle, folder: Path
) -> None:
    _claims_requested(lifecycle, folder, ["c-1"])
    record, publication = lifecycle.submit(from_path(_retitle(folder), FLOW), "alice", "")
    assert publication is not None and record.state == "published"
