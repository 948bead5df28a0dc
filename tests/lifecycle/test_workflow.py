"""Drafts, submission, approval, publication and rollback, and their refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.core.errors import DraftInvalid, FailingTests, NotPermitted, Refused, UsageError
from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, Rules, draft_from_text
from tests import ROOT
from tests.lifecycle.conftest import cancellation, log_decisions

WORDING = ("キャンセル料は半額です", "キャンセル料は報酬の半額です")


def _edit(folder: Path, old: str, new: str, name: str = "cancellation-fees.yaml") -> Path:
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.fixture
def governed(lifecycle: Lifecycle) -> Lifecycle:
    lifecycle.require(1)
    return lifecycle


def test_an_empty_store_publishes_the_folder_once(lifecycle: Lifecycle, folder: Path) -> None:
    published = lifecycle.revisions.published()
    assert sorted(published) == sorted(
        p.stem for p in folder.glob("*.yaml") if ".tests" not in p.name
    )
    assert all(p.kind == "bootstrap" and p.principal == "bootstrap" for p in published.values())
    assert lifecycle.bootstrap(folder) == []  # a store that published anything is left alone


def test_a_submission_runs_the_tests_and_the_impact_and_waits_for_another_principal(
    governed: Lifecycle, folder: Path
) -> None:
    log_decisions(governed.path, folder, "cancellation-fees", [cancellation(d) for d in range(5)])
    candidate = from_path(_edit(folder, *WORDING))
    record, publication = governed.submit(candidate, "alice", "wording")
    assert publication is None and record.state == "pending" and record.base == 1
    assert record.tests is not None and record.tests["passed"] == record.tests["cases"] > 20
    assert record.impact is not None
    assert (record.impact["replayed"], record.impact["changed"]) == (5, 0)
    with pytest.raises(NotPermitted) as refused:
        governed.approve("cancellation-fees", record.number, "alice")
    assert refused.value.code == "self_approval" and refused.value.http_status == 403
    published = governed.approve("cancellation-fees", record.number, "bob", "looks right")
    assert (published.number, published.kind, published.principal) == (2, "approval", "bob")
    assert governed.record("cancellation-fees", 1).state == "retired"
    after = governed.record("cancellation-fees", 2)
    assert (after.state, after.approver) == ("published", "bob")


def test_an_approval_after_another_publication_is_refused_as_stale(
    governed: Lifecycle, folder: Path
) -> None:
    first, _ = governed.submit(from_path(_edit(folder, *WORDING)), "alice", "one")
    second, _ = governed.submit(
        from_path(_edit(folder, "報酬の半額です", "報酬の半分です")), "carol", "two"
    )
    governed.approve("cancellation-fees", second.number, "bob")
    with pytest.raises(Refused) as refused:
        governed.approve("cancellation-fees", first.number, "bob")
    assert refused.value.code == "stale_base" and refused.value.http_status == 409
    assert "rebase" in (refused.value.diagnostics[0].hint or "")
    assert governed.listing("cancellation-fees")["revisions"][1]["stale"] is True


DAY_SEVEN_CASES = (
    "initial actions only on day 7 after the contract start cost nothing",
    "the cancellation date defaults to the decision date",
    "an agreement to an approximate rate is not reported where no fee is proposed",
    "a refusal of the approximate rate is not reported where no fee is proposed either",
)


def _line_of(folder: Path, name: str) -> int:
    """The line of the test case whose name starts with `name` ("  - name: ...")."""
    lines = (folder / "cancellation-fees.tests.yaml").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(f"  - name: {name}"))


def test_failing_tests_refuse_a_submission_naming_each_failing_case(
    governed: Lifecycle, folder: Path
) -> None:
    path = _edit(
        folder, "days_since_contract_start <= settings", "days_since_contract_start < settings"
    )
    with pytest.raises(FailingTests) as refused:
        governed.submit(from_path(path), "alice", "")
    first, *cases = refused.value.diagnostics
    # every case decided on day 7 after the contract start (no fee yet; no rate reason beside
    # it; the cancellation date defaulted to such a decision date) fails, each named
    lines = sorted(d.location.line for d in cases if d.location)
    assert lines == [_line_of(folder, name) for name in DAY_SEVEN_CASES]
    assert first.code == "tests_failed" and f"{len(lines)} of" in first.message
    assert all(d.code == "test_failed" for d in cases)
    assert all(d.location and d.location.file.endswith(".tests.yaml") for d in cases)
    assert governed.revisions.records("cancellation-fees", ("pending",)) == []


def test_an_unchanged_policy_is_not_submitted(governed: Lifecycle, folder: Path) -> None:
    with pytest.raises(Refused, match="nothing to submit"):
        governed.submit(from_path(folder / "cancellation-fees.yaml"), "alice", "")


def test_without_required_approval_a_submission_is_published_at_once(
    lifecycle: Lifecycle, folder: Path
) -> None:
    record, publication = lifecycle.submit(from_path(_edit(folder, *WORDING)), "alice", "")
    assert publication is not None and publication.kind == "direct"
    assert record.state == "published"


def test_a_draft_is_stored_then_submitted_and_can_be_rejected(
    governed: Lifecycle, folder: Path
) -> None:
    draft = governed.draft(from_path(_edit(folder, *WORDING)), "alice", "for review")
    assert draft.state == "draft" and draft.tests is None
    record, _ = governed.submit(
        governed.resolve("cancellation-fees", str(draft.number)), "alice", ""
    )
    assert (record.number, record.state) == (draft.number, "pending")
    rejected = governed.reject("cancellation-fees", record.number, "bob", "not now")
    assert rejected.state == "rejected"
    with pytest.raises(Refused):
        governed.approve("cancellation-fees", record.number, "bob")


def test_a_rollback_publishes_the_old_content_again_as_a_new_publication(
    governed: Lifecycle, folder: Path
) -> None:
    record, _ = governed.submit(from_path(_edit(folder, *WORDING)), "alice", "")
    governed.approve("cancellation-fees", record.number, "bob")
    first = governed.revisions.publications("cancellation-fees")[-1]
    back = governed.rollback("cancellation-fees", "1", "bob", "oops")
    assert (back.number, back.kind, back.revision) == (1, "rollback", first.revision)
    assert back.id > first.id
    history = [
        (p.number, p.kind) for p in reversed(governed.revisions.publications("cancellation-fees"))
    ]
    assert history == [(1, "bootstrap"), (2, "approval"), (1, "rollback")]
    with pytest.raises(Refused, match="already"):
        governed.rollback("cancellation-fees", "1", "bob", "")
    actions = [e.action for e in governed.revisions.audit("cancellation-fees")]
    assert actions[:3] == ["rollback", "approve", "submit"]


def test_a_rollback_to_a_file_finds_the_revision_published_with_its_content(
    governed: Lifecycle, folder: Path
) -> None:
    """lifecycle.md: a REV may be a file; rolling back to one holding the text of a retired
    publication was refused as 'never published'. A file whose text never was, still is."""
    path = folder / "cancellation-fees.yaml"
    shipped = path.read_text(encoding="utf-8")
    record, _ = governed.submit(from_path(_edit(folder, *WORDING)), "alice", "")
    governed.approve("cancellation-fees", record.number, "bob")
    path.write_text(shipped, encoding="utf-8")  # the file as it was when @1 was published
    back = governed.rollback("cancellation-fees", str(path), "bob", "")
    assert (back.number, back.kind) == (1, "rollback")
    _edit(folder, "キャンセル料は半額です", "キャンセル料は半分です")
    with pytest.raises(Refused) as caught:
        governed.rollback("cancellation-fees", str(path), "bob", "")
    assert caught.value.code == "never_published"


def test_a_rollback_that_loses_a_race_to_the_same_rollback_is_already_published(
    governed: Lifecycle, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saw @1 retired; the other published it first: the same answer as one that came
    after (already_published), not a generic refusal."""
    record, _ = governed.submit(from_path(_edit(folder, *WORDING)), "alice", "")
    governed.approve("cancellation-fees", record.number, "bob")
    real = governed.revisions.publish

    def other_first(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(governed.revisions, "publish", real)
        real(*args, **kwargs)  # the racing rollback, committed in between
        return real(*args, **kwargs)

    monkeypatch.setattr(governed.revisions, "publish", other_first)
    with pytest.raises(Refused) as caught:
        governed.rollback("cancellation-fees", "1", "carol", "")
    assert caught.value.code == "already_published"


def test_a_revision_sent_as_text_takes_its_schemas_from_the_published_one(
    lifecycle: Lifecycle, folder: Path
) -> None:
    text = (folder / "cancellation-fees.yaml").read_text(encoding="utf-8")
    candidate = draft_from_text(lifecycle, "cancellation-fees", text.replace(*WORDING))
    assert (
        candidate.source.files == lifecycle.resolve("cancellation-fees", "published").source.files
    )
    with pytest.raises(DraftInvalid) as invalid:
        draft_from_text(
            lifecycle, "cancellation-fees", text.replace("fee_tier: full", "fee_tire: full")
        )
    assert invalid.value.http_status == 422 and invalid.value.diagnostics[0].location is not None


def test_the_approvals_the_service_requires_bind_every_user_of_the_store(
    lifecycle: Lifecycle,
) -> None:
    lifecycle.require(1)
    with Lifecycle(lifecycle.path, Rules(approvals_required=0)) as other:
        assert other.rules.approvals_required == 1


def test_a_revision_is_named_by_number_ref_hash_prefix_or_published_but_a_file_only_locally(
    lifecycle: Lifecycle, folder: Path
) -> None:
    published = lifecycle.resolve("cancellation-fees", "published")
    revision = published.revision
    for ref in ("1", "cancellation-fees@1", revision, revision[:8]):
        assert lifecycle.resolve("cancellation-fees", ref).revision == revision, ref
    path = str(folder / "cancellation-fees.yaml")
    assert lifecycle.resolve("cancellation-fees", path).label.endswith("cancellation-fees.yaml")
    with Lifecycle(lifecycle.path, files=False) as served:  # as the service resolves refs
        with pytest.raises(UsageError, match="names no revision"):
            served.resolve("cancellation-fees", path)
        with pytest.raises(UsageError, match="not a revision of"):
            served.resolve("cancellation-fees", "order-holds@1")


def test_the_lifecycle_runs_on_postgresql_too(folder: Path, pg_url: str) -> None:
    """Bootstrap, an impact replay in two processes, a submission, a self-approval refused,
    an approval and a rollback, all on a PostgreSQL store."""
    with Lifecycle(pg_url, Rules(workers=2), files=True) as lifecycle:
        assert len(lifecycle.bootstrap(folder)) >= 5
        log_decisions(pg_url, folder, "cancellation-fees", [cancellation(d) for d in range(9)])
        path = _edit(folder, "    default: 7\n", "    default: 5\n")
        result = lifecycle.impact("cancellation-fees", draft=str(path))
        assert (result["replayed"], result["changed"], result["not_reproduced"]) == (9, 2, 0)
        path.write_text(
            path.read_text(encoding="utf-8").replace("    default: 5\n", "    default: 7\n"),
            encoding="utf-8",
        )
        lifecycle.require(1)
        record, _ = lifecycle.submit(from_path(_edit(folder, *WORDING)), "alice", "wording")
        assert record.impact is not None and record.impact["replayed"] == 9
        with pytest.raises(NotPermitted):
            lifecycle.approve("cancellation-fees", record.number, "alice")
        published = lifecycle.approve("cancellation-fees", record.number, "bob")
        back = lifecycle.rollback("cancellation-fees", "1", "bob", "")
        assert back.id > published.id and back.number == 1
        assert lifecycle.revisions.generations()["policies"] >= 3


def _twin(folder: Path, twin: str) -> Path:
    """cancellation-fees again under an id that differs only in hyphens (and its tests)."""
    text = (folder / "cancellation-fees.yaml").read_text(encoding="utf-8")
    path = folder / f"{twin}.yaml"
    path.write_text(text.replace("\nid: cancellation-fees\n", f"\nid: {twin}\n"), encoding="utf-8")
    return path


def test_a_new_policy_whose_id_clients_could_not_tell_apart_is_refused_before_it_is_stored(
    lifecycle: Lifecycle, folder: Path
) -> None:
    candidate = from_path(_twin(folder, "cancellationfees"))
    for step in (
        lambda: lifecycle.draft(candidate, "alice", ""),
        lambda: lifecycle.submit(candidate, "alice", ""),
    ):
        with pytest.raises(Refused) as refused:
            step()
        (clash,) = refused.value.diagnostics
        assert clash.code == "client_name_clash" and "'cancellation-fees'" in clash.message
        assert clash.location is not None and clash.location.file.endswith("cancellationfees.yaml")
    assert lifecycle.revisions.records("cancellationfees", ("draft", "pending", "published")) == []


def test_a_new_policy_with_a_distinct_id_is_drafted(lifecycle: Lifecycle, folder: Path) -> None:
    candidate = from_path(_twin(folder, "cancellation-fees-b"))
    record = lifecycle.draft(candidate, "alice", "")
    assert (record.policy_id, record.state) == ("cancellation-fees-b", "draft")


def test_bootstrap_leaves_out_a_policy_whose_id_clashes_and_says_so(tmp_path: Path) -> None:
    for name in ("policies", "schemas"):
        shutil.copytree(ROOT / name, tmp_path / name)
    _twin(tmp_path / "policies", "cancellationfees")
    with Lifecycle(tmp_path / "kimari.sqlite3", Rules(workers=1), files=True) as lc:
        lines = lc.bootstrap(tmp_path / "policies")
        published = lc.revisions.published()
    assert "cancellation-fees" in published and "cancellationfees" not in published
    (line,) = [t for t in lines if "cancellationfees" in t]
    assert "not published" in line and "client_name_clash" in line


def test_a_submission_cancelled_before_it_records_leaves_the_draft_a_draft(
    governed: Lifecycle, folder: Path
) -> None:
    draft = governed.draft(from_path(_edit(folder, *WORDING)), "alice", "for review")
    candidate = governed.resolve("cancellation-fees", str(draft.number))
    with pytest.raises(Refused) as caught:
        governed.submit(candidate, "alice", "", cancelled=lambda: True)
    assert [d.code for d in caught.value.diagnostics] == ["cancelled"]
    assert governed.record("cancellation-fees", draft.number).state == "draft"
    record, _ = governed.submit(candidate, "alice", "", cancelled=lambda: False)
    assert record.state == "pending"


def test_a_submit_job_cancelled_while_it_ran_ends_cancelled_with_nothing_recorded(
    governed: Lifecycle, folder: Path
) -> None:
    """A submission with no decision to replay never reported progress, the one place the
    cancel was read: the job said done and the revision went pending, the cancel ignored."""
    from engine.lifecycle.jobs import run_job

    draft = governed.draft(from_path(_edit(folder, *WORDING)), "alice", "for review")
    revisions = governed.revisions
    job = revisions.start_job(
        "submit", "cancellation-fees", "alice", {"draft": draft.number, "rules": {"workers": 1}}
    )
    assert revisions.cancel_job(job.id, "bob") is not None  # asked before it records
    assert run_job(str(governed.path), job.id) == 1
    finished = revisions.job(job.id)
    assert finished is not None and finished.state == "cancelled"
    assert governed.record("cancellation-fees", draft.number).state == "draft"


def test_whoever_submitted_a_colleagues_draft_may_not_also_approve_it(
    governed: Lifecycle, folder: Path
) -> None:
    """Four eyes: bob wrote the draft to share it, alice asked for it to be published; had
    alice approved it too, one person alone would have decided to publish."""
    draft = governed.draft(from_path(_edit(folder, *WORDING)), "bob", "to share")
    candidate = governed.resolve("cancellation-fees", str(draft.number))
    record, _ = governed.submit(candidate, "alice", "please publish")
    with pytest.raises(NotPermitted) as caught:
        governed.approve("cancellation-fees", record.number, "alice")
    [problem] = caught.value.diagnostics
    assert problem.code == "self_approval"
    assert problem.message == (
        f"alice submitted cancellation-fees@{record.number} for approval: another principal "
        "must approve it"
    )
    with pytest.raises(NotPermitted):  # nor its author
        governed.approve("cancellation-fees", record.number, "bob")
    assert governed.approve("cancellation-fees", record.number, "carol").number >= 2
