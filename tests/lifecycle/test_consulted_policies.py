"""A flow that consults a decision policy (order-hold-status consults order-holds) is tested
at submission against what it will consult once published: the store's published revision
of that policy, with the data the service serves it with; and a flow drafted as text reads
the published text of the policy it consults, not the copy its base was compiled with."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main
from engine.lifecycle import candidates, jobs
from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, draft_from_text

FLOW = "order-hold-status"
CONSULTED = "order-holds"
TITLE = ("en: The hold of an order}", "en: The hold of one order}")
HOLDS_TITLE = ("en: Order holds}", "en: Holds of orders}")
BLACKLISTED_CASE = "an order from a blacklisted customer is held by the check"


def _edit(folder: Path, name: str, old: str, new: str) -> Path:
    path = folder / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _store(lifecycle: Lifecycle) -> list[str]:
    return ["--store", str(lifecycle.path)]


def test_a_flow_that_consults_a_policy_is_published_from_its_file_with_every_case_passing(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(folder, FLOW, *TITLE)
    code = main(["publish", FLOW, "--as", "alice", "--policies", str(folder), *_store(lifecycle)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "tests: 22 of 22 cases pass" in out and "published as publication" in out, out
    assert lifecycle.record(FLOW, 2).state == "published"


def test_a_flow_draft_is_submitted_by_number_with_its_consulted_policy_decided(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = lifecycle.draft(from_path(_edit(folder, FLOW, *TITLE)), "alice", "title")
    code = main(["publish", FLOW, "--draft", str(draft.number), "--as", "bob",
                 "--policies", str(folder), *_store(lifecycle)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    record = lifecycle.record(FLOW, draft.number)
    assert record.state == "published" and record.tests is not None
    assert (record.tests["passed"], record.tests["failed"]) == (22, 0), record.tests


def test_a_flow_sent_as_text_is_submitted_as_the_service_s_job_submits_it(
    lifecycle: Lifecycle, folder: Path
) -> None:
    text = (folder / f"{FLOW}.yaml").read_text(encoding="utf-8").replace(*TITLE)
    record, publication = lifecycle.submit(draft_from_text(lifecycle, FLOW, text), "alice", "")
    assert publication is not None and record.tests is not None
    assert (record.tests["passed"], record.tests["failed"]) == (22, 0), record.tests


def test_the_tests_consult_the_published_revision_with_its_default_data_not_the_live_one(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """Test cases are written against the data shipped with the policies: a blacklist
    replaced through the API (as services do) failed the cases of a blacklisted customer and
    refused every submission of the flow until it was set back."""
    lifecycle.store.put_data("blacklist", "empty-blacklist", [], "ops")
    flow = from_path(_edit(folder, FLOW, *TITLE))
    record, publication = lifecycle.submit(flow, "alice", "")
    assert publication is not None and record.tests is not None
    assert (record.tests["passed"], record.tests["failed"]) == (22, 0), record.tests


def test_the_consulted_revision_is_the_one_published_not_the_folder_s(
    lifecycle: Lifecycle, folder: Path
) -> None:
    published = lifecycle.resolve(CONSULTED, "published")
    # an edit of order-holds.yaml beside the flow, not published: the tests still decide
    # with the published revision, the one the flow will consult when served
    _edit(folder, CONSULTED, *HOLDS_TITLE)
    flow = from_path(_edit(folder, FLOW, *TITLE))
    served = lifecycle.consulted(flow)
    assert list(served) == [CONSULTED]
    policy, data = served[CONSULTED]
    assert policy.revision == published.revision
    assert {n: d.version for n, d in data.items()} == published.data_versions
    # a decision policy consults nothing
    assert lifecycle.consulted(lifecycle.resolve(CONSULTED, "published")) == {}


def test_a_consulted_policy_is_tested_with_its_published_default_data(
    lifecycle: Lifecycle,
) -> None:
    flow = lifecycle.resolve(FLOW, "published")
    defaults = lifecycle.resolve(CONSULTED, "published").data_versions
    lifecycle.store.put_data("customers", "api-customers", [], "ops")
    data = lifecycle.consulted(flow)[CONSULTED][1]
    assert {name: d.version for name, d in data.items()} == defaults
    assert len(data["customers"]) > 0 and len(data["blacklist"]) > 0


def test_a_flow_drafted_as_text_reads_the_published_text_of_the_policy_it_consults(
    lifecycle: Lifecycle, folder: Path
) -> None:
    stale = lifecycle.resolve(FLOW, "published").source.files[f"{CONSULTED}.yaml"]
    record, _ = lifecycle.submit(
        from_path(_edit(folder, CONSULTED, *HOLDS_TITLE)), "alice", "title"
    )
    fresh = lifecycle.store.stored_revision(record.revision)
    assert fresh is not None and fresh.source.text.encode("utf-8") != stale
    text = (folder / f"{FLOW}.yaml").read_text(encoding="utf-8").replace(*TITLE)
    drafted = draft_from_text(lifecycle, FLOW, text)
    assert drafted.source.files[f"{CONSULTED}.yaml"] == fresh.source.text.encode("utf-8")
    # the flow's other files still come from its base
    base = lifecycle.resolve(FLOW, "published").source.files
    others = {k: v for k, v in drafted.source.files.items() if k != f"{CONSULTED}.yaml"}
    assert others == {k: v for k, v in base.items() if k != f"{CONSULTED}.yaml"}
    # a text sent with the file keeps the text sent
    sent = stale.decode("utf-8")
    given = draft_from_text(lifecycle, FLOW, text, files={f"{CONSULTED}.yaml": sent})
    assert given.source.files[f"{CONSULTED}.yaml"] == stale


def test_the_policies_a_text_consults_are_read_without_compiling_it() -> None:
    text = (
        "kind: flow\nid: f\nflow:\n  events:\n    a: {decide: {policy: x}}\n"
        "    b: {decide: {policy: y}}\n    c: {label: none}\n    d: {decide: {policy: f}}\n"
    )
    assert candidates.consulted_in(text, "f") == ["x", "y"]
    assert candidates.consulted_in("kind: decision\nid: f\n", "f") == []
    assert candidates.consulted_in("kind: flow\nflow: [", "f") == []


def test_the_editor_s_tests_job_runs_a_flow_text_against_the_published_consulted_policy(
    lifecycle: Lifecycle, folder: Path
) -> None:
    text = (folder / f"{FLOW}.yaml").read_text(encoding="utf-8").replace(*TITLE)
    job = lifecycle.revisions.start_job("tests", FLOW, "alice", {"source": text})
    assert jobs.run_job(str(lifecycle.path), job.id) == 0
    done = lifecycle.revisions.job(job.id)
    assert done is not None and done.state == "done" and done.report is not None, done
    tests = done.report["tests"]
    assert (tests["cases"], tests["passed"], tests["failed"]) == (22, 22, 0), tests
