"""A decision policy that published flows consult is submitted only if those flows' test cases
still pass with it: each flow's published revision (compiled against an older text of the
policy) has its cases run with the candidate as the policy its events consult, served with
the data it would be served with. order-holds renaming `payment_switched_to_cod` passes its
own tests, but order-hold-status (compiled against the old text) would then fail every
`check` with decision_answer_invalid: the submission is refused, naming the flow's cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.main import main
from engine.core.errors import FailingTests
from engine.durable.adapter import DurableAdapter
from engine.lifecycle import candidates, jobs
from engine.lifecycle.candidates import from_path
from engine.lifecycle.workflow import Lifecycle, draft_from_text
from engine.project.project import shown_path

POLICY = "order-holds"
FLOWS = ("order-hold-status", "subscription-hold-status")
OLD, NEW = "payment_switched_to_cod", "payment_moved_to_cod"
TITLE = ("en: Order holds}", "en: Holds of orders}")
BLACKLISTED_CASE = "an order from a blacklisted customer is held by the check"


def _rename(folder: Path) -> Path:
    """order-holds with an outcome field renamed, its own tests following: they all pass."""
    for name in (f"{POLICY}.yaml", f"{POLICY}.tests.yaml"):
        path = folder / name
        path.write_text(path.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
    return folder / f"{POLICY}.yaml"


def _retitle(folder: Path) -> Path:
    path = folder / f"{POLICY}.yaml"
    text = path.read_text(encoding="utf-8")
    assert TITLE[0] in text
    path.write_text(text.replace(*TITLE, 1), encoding="utf-8")
    return path


def _case_line(folder: Path, flow: str, name: str) -> int:
    lines = (folder / f"{flow}.tests.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip() == f"- name: {name}")


def _case_count(folder: Path, flow: str) -> int:
    text = (folder / f"{flow}.tests.yaml").read_text(encoding="utf-8")
    return sum(line.startswith("  - name: ") for line in text.splitlines())


def _without_correction_needed(folder: Path) -> Path:
    """order-holds without its outcome field order_correction_needed and the one rule that
    sets it; its test file goes too (the point is the flows' cases)."""
    path = folder / f"{POLICY}.yaml"
    text = path.read_text(encoding="utf-8")
    for first, after in (
        ("  order_correction_needed:\n", "  effects:\n"),
        ("  - id: release-after-ship-date\n", "  # -- HO-4"),
    ):
        start = text.index(first)
        text = text[:start] + text[text.index(after, start) :]
    path.write_text(text, encoding="utf-8")
    (folder / f"{POLICY}.tests.yaml").unlink()
    return path


def _flow_reading(folder: Path, field: str, code: str) -> Path:
    """order-hold-status with one more action of its `check`, reading order-holds' `field`."""
    flow = folder / "order-hold-status.yaml"
    reads = "          when: event.decision.outcome.payment_switched_to_cod == true\n"
    source = flow.read_text(encoding="utf-8")
    assert source.count(reads) == 1
    extra = (
        f"        - code: {code}\n"
        f"          when: event.decision.outcome.{field} == true\n"
        "          text: {ja: 確認が必要, en: a check is needed}\n"
    )
    at = source.index("      message:", source.index(reads))
    flow.write_text(source[:at] + extra + source[at:], encoding="utf-8")
    return flow


def _cli(lifecycle: Lifecycle, folder: Path, *args: str) -> int:
    store = ["--store", str(lifecycle.path), "--policies", str(folder)]
    return main(["publish", POLICY, *args, *store])


def test_a_harmless_change_is_published_with_the_flows_that_consult_it_checked(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _retitle(folder)
    assert _cli(lifecycle, folder, "--as", "alice") == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    for flow in FLOWS:  # said where the author reads the submission's tests
        cases = _case_count(folder, flow)
        line = f"    {flow}@1, a published flow that consults it: {cases} of {cases} cases pass"
        assert line in out.splitlines(), out
    record = lifecycle.record(POLICY, 2)
    assert record.state == "published" and record.tests is not None
    checked = {flow["policy"]: flow for flow in record.tests["consulting_flows"]}
    assert sorted(checked) == list(FLOWS)
    for flow in checked.values():
        assert flow["ref"] == f"{flow['policy']}@1" and flow["cases"] > 20, flow
        assert flow["passed"] == flow["cases"] and (flow["failed"], flow["errors"]) == (0, 0)


def test_an_outcome_field_renamed_is_refused_naming_each_flow_s_failing_cases(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = candidates.run_tests(from_path(_rename(folder)))
    assert own["failed"] == 0 and own["passed"] == own["cases"] > 100  # its own tests pass
    assert _cli(lifecycle, folder, "--as", "alice") == 1
    err = capsys.readouterr().err
    assert f"tests_failed: order-hold-status@1, a published flow that consults {POLICY}" in err
    # subscription-hold-status does not read the field: its cases pass with the rename
    assert "tests_failed: subscription-hold-status@1" not in err
    # each failing case where `kimari test` shows it: the flow's test file, the case's line
    line = _case_line(folder, "order-hold-status", f"{BLACKLISTED_CASE}, with order-holds' reasons")
    where = f"{shown_path(folder / 'order-hold-status.tests.yaml')}:{line}:5: test_failed: "
    assert where + BLACKLISTED_CASE in err, err
    assert "decision_answer_invalid" in err and f"missing required field '{OLD}'" in err
    # nothing was stored: the published revision is still the first
    assert [r.number for r in lifecycle.revisions.records(POLICY)] == [1]


def test_a_draft_submitted_by_number_is_refused_the_same_way(
    lifecycle: Lifecycle, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = lifecycle.draft(from_path(_rename(folder)), "alice", "rename")
    assert _cli(lifecycle, folder, "--draft", str(draft.number), "--as", "bob") == 1
    err = capsys.readouterr().err
    assert "order-hold-status@1, a published flow that consults" in err
    assert "order-hold-status.tests.yaml:" in err
    assert lifecycle.record(POLICY, draft.number).state == "draft"


def test_the_refusal_is_a_failing_tests_problem_with_the_flow_s_cases_located(
    lifecycle: Lifecycle, folder: Path
) -> None:
    with pytest.raises(FailingTests) as refused:
        lifecycle.submit(from_path(_rename(folder)), "alice", "")
    found = refused.value.diagnostics
    assert refused.value.problem_name() == "tests_failed" and refused.value.http_status == 422
    headlines = [d for d in found if d.code == "tests_failed"]
    assert [d.extra["flow"] for d in headlines] == ["order-hold-status"]  # the one reading it
    assert all(d.hint and "compiled against this text" in d.hint for d in headlines)
    cases = [d for d in found if d.code == "test_failed"]
    assert {d.extra["flow"] for d in cases} == {"order-hold-status"}
    assert all(d.location and d.location.file.endswith(".tests.yaml") for d in cases)
    first = next(d for d in cases if d.extra["flow"] == "order-hold-status")
    assert first.location is not None and first.location.file == shown_path(
        folder / "order-hold-status.tests.yaml"
    )


def test_a_submission_job_over_http_is_refused_with_the_flow_s_cases(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """POST /v1/policies/order-holds/revisions (state pending) runs this job: a text, compiled
    and submitted in the job's process."""
    text = _rename(folder).read_text(encoding="utf-8")
    tests = (folder / f"{POLICY}.tests.yaml").read_text(encoding="utf-8")
    params = {"source": text, "tests": tests, "message": "rename"}
    job = lifecycle.revisions.start_job("submit", POLICY, "alice", params)
    assert jobs.run_job(str(lifecycle.path), job.id) == 1
    done = lifecycle.revisions.job(job.id)
    assert done is not None and done.state == "failed" and done.error is not None, done
    assert done.error["code"] == "tests_failed" and done.error["status"] == 422
    errors = done.error["errors"]
    assert errors[0]["code"] == "tests_failed" and errors[0]["flow"] == "order-hold-status"
    located = [e for e in errors if e["code"] == "test_failed" and BLACKLISTED_CASE in e["message"]]
    assert located and located[0]["location"]["file"].endswith("order-hold-status.tests.yaml")


def test_a_draft_submitted_over_http_is_refused_and_a_harmless_one_published(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """POST .../revisions/N:submit runs this job: the draft by its number."""
    original = (folder / f"{POLICY}.yaml").read_text(encoding="utf-8")
    breaking = lifecycle.draft(from_path(_rename(folder)), "alice", "rename")
    job = lifecycle.revisions.start_job("submit", POLICY, "bob", {"draft": breaking.number})
    assert jobs.run_job(str(lifecycle.path), job.id) == 1
    done = lifecycle.revisions.job(job.id)
    assert done is not None and done.error is not None and done.error["code"] == "tests_failed"
    assert lifecycle.record(POLICY, breaking.number).state == "draft"
    lifecycle.reject(POLICY, breaking.number, "bob")
    text = original.replace(*TITLE, 1)
    harmless = lifecycle.draft(draft_from_text(lifecycle, POLICY, text), "alice", "title")
    job = lifecycle.revisions.start_job("submit", POLICY, "bob", {"draft": harmless.number})
    assert jobs.run_job(str(lifecycle.path), job.id) == 0
    assert lifecycle.record(POLICY, harmless.number).state == "published"


def test_the_editor_s_tests_job_reports_the_flows_that_consult_the_text(
    lifecycle: Lifecycle, folder: Path
) -> None:
    reports = {}
    for name, edit in (("harmless", _retitle), ("breaking", _rename)):
        params = {"source": edit(folder).read_text(encoding="utf-8")}
        job = lifecycle.revisions.start_job("tests", POLICY, "alice", params)
        assert jobs.run_job(str(lifecycle.path), job.id) == 0
        done = lifecycle.revisions.job(job.id)
        assert done is not None and done.report is not None
        reports[name] = {f["policy"]: f for f in done.report["consulting_flows"]}
    assert sorted(reports["harmless"]) == list(FLOWS)
    assert all(f["failed"] == 0 and f["failures"] == [] for f in reports["harmless"].values())
    broken = reports["breaking"]["order-hold-status"]
    assert broken["failed"] > 0 and broken["ref"] == "order-hold-status@1"
    assert any(BLACKLISTED_CASE in f["name"] for f in broken["failures"])


def test_the_flows_consult_the_candidate_with_its_own_data_whatever_the_live_data(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """The flows' cases are written against the data shipped with order-holds: with the
    blacklist replaced through the API (as services do), every order-holds change was
    refused, its flows' case of a blacklisted customer failing (found by the review)."""
    lifecycle.store.put_data("blacklist", "empty-blacklist", [], "ops")
    candidate = from_path(_retitle(folder))
    record, publication = lifecycle.submit(candidate, "alice", "")
    assert publication is not None and record.tests is not None
    assert all(f["failed"] == 0 for f in record.tests["consulting_flows"])
    # a change that does break a flow's case with that data is still refused
    blacklist = folder / "data" / "blacklist.yaml"
    text = blacklist.read_text(encoding="utf-8")
    assert "C-10021" in text
    blacklist.write_text(text.replace("C-10021", "C-99999"), encoding="utf-8")
    with pytest.raises(FailingTests) as refused:
        lifecycle.submit(from_path(folder / f"{POLICY}.yaml"), "alice", "")
    failing = [d.message for d in refused.value.diagnostics if d.code == "test_failed"]
    assert any(BLACKLISTED_CASE in message for message in failing), failing
    headline = next(d for d in refused.value.diagnostics if d.code == "tests_failed")
    assert headline.hint is not None and "outcome fields" not in headline.hint  # not the schema


def test_a_field_no_flow_reads_may_be_dropped_and_one_a_flow_reads_only_after_the_flow(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """A flow needs in each answer only the outcome fields it reads: order_correction_needed,
    which no flow reads, goes at once (the flows' cases still pass); payment_switched_to_cod,
    which order-hold-status reads, only once the flow no longer reads it (its published
    revision, compiled against the old text, would fail every check)."""
    path = _without_correction_needed(folder)
    assert "order_correction_needed" not in path.read_text(encoding="utf-8")
    assert "order_correction_needed" not in "".join(
        (folder / f"{flow}.yaml").read_text(encoding="utf-8") for flow in FLOWS
    )
    record, publication = lifecycle.submit(from_path(path), "alice", "drop a field")
    assert publication is not None and record.tests is not None
    assert [f["failed"] for f in record.tests["consulting_flows"]] == [0, 0]
    # a field the flow reads: refused, naming it
    path.write_text(path.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
    with pytest.raises(FailingTests) as refused:
        lifecycle.submit(from_path(path), "alice", "rename")
    assert f"missing required field '{OLD}'" in str(refused.value)


def test_only_a_decision_policy_has_flows_checked_against_it(
    lifecycle: Lifecycle, folder: Path
) -> None:
    flow = lifecycle.resolve("order-hold-status", "published")
    assert lifecycle.flows_tested(flow) == []
    fees = lifecycle.resolve("cancellation-fees", "published")
    assert lifecycle.flows_tested(fees) == []  # no flow consults it
    found = candidates.consulting_flows(lifecycle.store, lifecycle.revisions, POLICY)
    assert [f.id for f in found] == list(FLOWS)
    assert all(f.record is not None and f.record.state == "published" for f in found)


def test_an_approval_tests_the_flows_published_since_the_submission(
    lifecycle: Lifecycle, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """order-holds without order_correction_needed passes the flows at its submission (none
    reads it); order-hold-status, published while it waits, reads it: approving it then
    would fail every `check` of the flow. The approval runs the flows' cases again."""
    lifecycle.require(1)
    # a revision of the flow that reads the field (compiled against the published text)
    flow = _flow_reading(folder, "order_correction_needed", "CORRECTION_NEEDED")
    status, _ = lifecycle.submit(from_path(flow), "alice", "say when a correction is needed")
    assert status.state == "pending"

    # order-holds without the field: the published flows (not reading it yet) pass
    path = _without_correction_needed(folder)
    holds, _ = lifecycle.submit(from_path(path), "alice", "drop a field no flow reads")
    assert holds.state == "pending" and holds.tests is not None
    assert [f["failed"] for f in holds.tests["consulting_flows"]] == [0, 0]

    # the flow is published first; then order-holds would break it
    lifecycle.approve("order-hold-status", status.number, "bob")
    registered: list[str] = []
    register = DurableAdapter.register

    def counted(self: DurableAdapter, name: str, *args: object, **kwargs: object) -> object:
        registered.append(name)
        return register(self, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DurableAdapter, "register", counted)
    with pytest.raises(FailingTests) as refused:
        lifecycle.approve(POLICY, holds.number, "bob")
    # decided with the python backend: durable_rules never unregisters what a worker
    # registers, and an approval runs in one
    assert registered == []
    said = str(refused.value)
    assert f"order-hold-status@{status.number}, a published flow that consults" in said
    assert "order_correction_needed" in said
    assert lifecycle.record(POLICY, holds.number).state == "pending"  # nothing published


def test_a_rollback_that_would_break_a_flow_is_refused_until_the_flow_is_rolled_back(
    lifecycle: Lifecycle, folder: Path
) -> None:
    """order-holds@2 adds an outcome field; order-hold-status@2 reads it. Rolling order-holds
    back to @1 (without it) failed every `check` of the flow from then on."""
    path = folder / f"{POLICY}.yaml"
    field = (
        "  extra_check:\n"
        "    label: {ja: 追加の確認, en: An extra check}\n"
        "    type: boolean\n"
        "    default: false\n"
        "    merge: any\n"
        "    refs: [HO-3]\n"
    )
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("  order_correction_needed:\n", field + "  order_correction_needed:\n", 1),
        encoding="utf-8",
    )
    holds, published = lifecycle.submit(from_path(path), "alice", "add extra_check")
    assert published is not None
    flow = _flow_reading(folder, "extra_check", "EXTRA_CHECK")
    status, published = lifecycle.submit(from_path(flow), "alice", "read extra_check")
    assert published is not None

    with pytest.raises(FailingTests) as refused:
        lifecycle.rollback(POLICY, f"{POLICY}@1", "bob", "")
    said = str(refused.value)
    assert f"order-hold-status@{status.number}, a published flow that consults" in said, said
    assert "extra_check" in said
    current = lifecycle.revisions.publication_of(POLICY)
    assert current is not None and current.number == holds.number  # nothing published
    # the flow back first, then the policy
    lifecycle.rollback("order-hold-status", "order-hold-status@1", "bob", "")
    assert lifecycle.rollback(POLICY, f"{POLICY}@1", "bob", "").number == 1
