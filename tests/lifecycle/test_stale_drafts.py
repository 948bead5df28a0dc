"""A draft is a change to the publication it was drafted from: once another is live, its
submission is refused (409 stale_base), over the Python API, the CLI, the service's submit
and the submit job, so that approving it cannot silently undo what was published since."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from engine.cli.main import main
from engine.core.errors import Refused
from engine.lifecycle import jobs
from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, draft_from_text
from engine.service.lifecycle import LifecycleService

POLICY = "cancellation-fees"
TITLE = ("en: Cancellation fees}", "en: Cancellation charges}")
WORDING = ("キャンセル料は半額です", "キャンセル料は報酬の半額です")


def _text(folder: Path, *edits: tuple[str, str]) -> str:
    text = (folder / f"{POLICY}.yaml").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.fixture
def governed(lifecycle: Lifecycle) -> Lifecycle:
    lifecycle.require(1)
    return lifecycle


def _two_drafts_then_one_published(governed: Lifecycle, folder: Path) -> tuple[int, int]:
    """alice drafts a title change, bob a wording change, both on @1; bob's is submitted and
    alice approves it: (alice's draft, bob's published revision)."""
    mine = governed.draft(draft_from_text(governed, POLICY, _text(folder, TITLE)), "alice", "t")
    theirs = governed.draft(draft_from_text(governed, POLICY, _text(folder, WORDING)), "bob", "w")
    assert mine.base == theirs.base == 1
    governed.submit(governed.resolve(POLICY, str(theirs.number)), "bob", "")
    governed.approve(POLICY, theirs.number, "alice")
    return mine.number, theirs.number


def test_a_draft_whose_base_is_no_longer_live_is_refused_not_rebased(
    governed: Lifecycle, folder: Path
) -> None:
    mine, theirs = _two_drafts_then_one_published(governed, folder)
    with pytest.raises(Refused) as refused:
        governed.submit(governed.resolve(POLICY, str(mine)), "alice", "")
    found = refused.value.diagnostics[0]
    assert refused.value.code == "stale_base" and refused.value.http_status == 409
    assert f"{POLICY}@1" in found.message and f"{POLICY}@{theirs}" in found.message
    assert "kimari draft" in (found.hint or "") and f"{POLICY}@{theirs}" in (found.hint or "")
    record = governed.record(POLICY, mine)
    assert (record.state, record.base, record.tests) == ("draft", 1, None)  # left as it was
    listed = {r["number"]: r for r in governed.listing(POLICY)["revisions"]}
    assert listed[mine]["stale"] is True and listed[theirs]["stale"] is False

    # drafted again from what is published: both changes are in what gets published
    again = governed.draft(
        draft_from_text(governed, POLICY, _text(folder, WORDING, TITLE)), "alice", "t"
    )
    assert again.base == theirs
    record, _ = governed.submit(governed.resolve(POLICY, str(again.number)), "alice", "")
    assert record.state == "pending" and record.base == theirs
    governed.approve(POLICY, again.number, "bob")
    published = governed.detail(POLICY, again.number)["source"]
    assert TITLE[1] in published and WORDING[1] in published


def test_a_draft_of_the_live_publication_is_submitted_as_before(
    governed: Lifecycle, folder: Path
) -> None:
    draft = governed.draft(draft_from_text(governed, POLICY, _text(folder, TITLE)), "alice", "")
    record, _ = governed.submit(governed.resolve(POLICY, str(draft.number)), "alice", "")
    assert (record.number, record.state, record.base) == (draft.number, "pending", 1)
    assert governed.listing(POLICY)["revisions"][0]["stale"] is False


def test_a_pending_revision_overtaken_is_still_refused_at_approval(
    governed: Lifecycle, folder: Path
) -> None:
    mine = governed.draft(draft_from_text(governed, POLICY, _text(folder, TITLE)), "alice", "")
    governed.submit(governed.resolve(POLICY, str(mine.number)), "alice", "")
    theirs, _ = governed.submit(draft_from_text(governed, POLICY, _text(folder, WORDING)), "c", "")
    governed.approve(POLICY, theirs.number, "bob")
    with pytest.raises(Refused) as refused:
        governed.approve(POLICY, mine.number, "bob")
    assert refused.value.code == "stale_base"


def _new_policy(folder: Path, policy_id: str, title: str) -> Path:
    text = _text(folder).replace(f"id: {POLICY}", f"id: {policy_id}", 1)
    path = folder / f"{policy_id}.yaml"
    path.write_text(text.replace(TITLE[0], f"en: {title}}}", 1), encoding="utf-8")
    return path


def test_a_draft_of_a_policy_never_published_has_no_base_to_lose(
    lifecycle: Lifecycle, folder: Path
) -> None:
    draft = lifecycle.draft(from_path(_new_policy(folder, "late-fees", "Late fees")), "a", "")
    assert draft.base is None
    record, publication = lifecycle.submit(lifecycle.resolve("late-fees", "1"), "alice", "")
    assert publication is not None and record.state == "published"


def test_a_draft_made_when_nothing_was_published_is_stale_once_something_is(
    lifecycle: Lifecycle, folder: Path
) -> None:
    early = lifecycle.draft(from_path(_new_policy(folder, "late-fees", "Late fees")), "a", "")
    lifecycle.submit(from_path(_new_policy(folder, "late-fees", "Fees for lateness")), "b", "")
    with pytest.raises(Refused) as refused:
        lifecycle.submit(lifecycle.resolve("late-fees", str(early.number)), "alice", "")
    assert refused.value.code == "stale_base"
    assert "nothing was published" in refused.value.diagnostics[0].message
    assert lifecycle.listing("late-fees")["revisions"][-1]["stale"] is True


def test_the_command_line_refuses_a_stale_draft_with_exit_1(
    governed: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine, theirs = _two_drafts_then_one_published(governed, folder)
    store = ["--store", str(governed.path), "--policies", str(folder)]
    code = main(["publish", POLICY, "--draft", str(mine), "--as", "alice", *store])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("stale_base:"), err
    assert f"{POLICY}@{theirs}" in err and "kimari draft" in err
    assert "internal error" not in err and "Traceback" not in err


def test_the_service_refuses_to_start_the_submission_of_a_stale_draft(
    governed: Lifecycle, folder: Path
) -> None:
    mine, theirs = _two_drafts_then_one_published(governed, folder)
    service = LifecycleService(
        str(governed.path), governed.rules, (governed.store, governed.revisions), lambda: []
    )
    meta = {"policy_id": POLICY, "number": str(mine), "principal": "alice"}
    status, _, body = service.submit(meta, b"")
    answer = orjson.loads(body)
    assert status == 409 and answer["code"] == "stale_base", answer
    assert f"{POLICY}@{theirs}" in answer["detail"]
    assert "kimari draft" in answer["errors"][0]["hint"]
    assert governed.revisions.jobs(POLICY) == []  # no job was started


def test_a_submit_job_of_a_draft_overtaken_while_it_waited_fails_stale_base(
    governed: Lifecycle, folder: Path
) -> None:
    mine, _ = _two_drafts_then_one_published(governed, folder)
    job = governed.revisions.start_job("submit", POLICY, "alice", {"draft": mine})
    assert jobs.run_job(str(governed.path), job.id) == 1
    failed = governed.revisions.job(job.id)
    assert failed is not None and failed.state == "failed"
    assert failed.error is not None and failed.error["errors"][0]["code"] == "stale_base"
    assert governed.record(POLICY, mine).state == "draft"
