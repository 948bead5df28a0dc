"""Mistakes the lifecycle refuses where they are, and values it keeps exactly: a decimal in a
diff, the counts, window and data of an impact request, files a draft does not read, a
rollback to a hash a later draft shares, a submitter's message, test-file problems and
data-file problems at their file and line. The HTTP operations are called on the worker's
LifecycleService directly, jobs recorded but not started."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.errors import FailingTests, PolicyError, Refused, UsageError
from engine.lifecycle import candidates, jobs
from engine.lifecycle.workflow import Lifecycle, check_overrides
from engine.service.lifecycle import LifecycleService
from engine.store.revisions import Job

POLICY = "cancellation-fees"
SCHEMA = "../schemas/cancellation-fees.facts.schema.json"
TITLE = "en: Cancellation fees}"
ENTRY = {"id": "BL-900", "customer_id": "C-502", "name": "森 花子"}


@pytest.fixture
def service(lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> Iterator[LifecycleService]:
    """The worker's lifecycle operations over the fixture's store; a job is recorded in
    `service.started` instead of running in a process of its own."""
    started: list[dict[str, Any]] = []

    def start(_revisions: Any, kind: str, policy: str, who: str, params: Mapping[str, Any]) -> Job:
        started.append(dict(params))
        return Job("j1", kind, policy, "running", who, 0, 0, None, 0, 0, None, dict(params))

    monkeypatch.setattr(jobs, "start", start)
    known = lambda: ["cancellation-fees", "order-holds"]  # noqa: E731
    svc = LifecycleService(
        str(lifecycle.path), lifecycle.rules, (lifecycle.store, lifecycle.revisions), known
    )
    svc.started = started  # type: ignore[attr-defined]
    yield svc


def call(operation: Any, policy: str, body: Any = None, **meta: str) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()  # integers past 64 bits too
    status, _headers, answer = operation({"policy_id": policy, "principal": "alice", **meta}, raw)
    return status, orjson.loads(answer)


def pointers(problem: Mapping[str, Any]) -> list[str]:
    return [e.get("pointer") for e in problem.get("errors", [])]


# -- 1. a decimal in a policy --------------------------------------------------------------
def test_a_decimal_in_a_policy_is_diffed_exactly_and_an_unchanged_one_is_no_change(
    lifecycle: Lifecycle, folder: Path, service: LifecycleService
) -> None:
    from engine.cli.lifecycle import diff_text

    path = folder / "cancellation-fees.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    maximum: 100\n", "    maximum: 100.5\n", 1), encoding="utf-8")
    result = lifecycle.diff(POLICY, "published", str(path))
    [setting] = result["changes"]["settings"]["changed"]
    assert setting["fields"] == [{"field": "maximum", "from": 100, "to": 100.5}]
    assert "maximum: 100\n" in diff_text(result) and "-> 100.5" in diff_text(result)
    # the same decimal on both sides is no change
    lifecycle.draft(candidates.from_path(path, POLICY), "alice", "")
    assert lifecycle.diff(POLICY, "2", str(path))["identical"]
    # over HTTP: 200, the decimal exact
    status, body = call(service.diff, POLICY, **{"from": "published", "to": "2"})
    assert status == 200, body
    assert b'"to":100.5' in orjson.dumps(body["changes"]["settings"])


# -- 2. the body of an impact request ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sample", True),
        ("sample", False),
        ("sample", 0),
        ("sample", 2**64),
        ("max_changed", True),
        ("max_changed", -1),
        ("max_changed", 2**64),
        ("list", False),
        ("list", -1),
        ("list", 2**70),
        ("list", "5"),
        ("sample", 1.5),
    ],
)
def test_an_impact_count_that_is_no_count_is_a_422_pointing_at_it(
    service: LifecycleService, name: str, value: Any
) -> None:
    status, body = call(service.impact, POLICY, {"draft": 1, name: value})
    assert status == 422, body
    assert body["code"] == "request_invalid" and pointers(body) == [f"/{name}"], body
    assert not service.started  # type: ignore[attr-defined]


def test_the_lowest_and_highest_counts_of_an_impact_are_taken(service: LifecycleService) -> None:
    highest = 2**63 - 1
    for request in (
        {"sample": 1, "max_changed": 0, "list": 0},
        {"sample": highest, "list": highest},
    ):
        status, body = call(service.impact, POLICY, {"draft": 1, **request})
        assert status == 202, body
    first, second = service.started  # type: ignore[attr-defined]
    assert (first["sample"], first["max_changed"], first["list"]) == (1, 0, 0)
    assert (second["sample"], second["max_changed"], second["list"]) == (highest, None, highest)


@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", [True, {"a": 1}, ["30d"]])
def test_a_window_that_is_not_a_text_is_refused_as_not_a_text(
    service: LifecycleService, name: str, value: Any
) -> None:
    status, body = call(service.impact, POLICY, {"draft": 1, name: value})
    assert status == 422, body
    [error] = body["errors"]
    assert (error["pointer"], error["message"]) == (f"/{name}", "not a text")
    assert "True" not in body["detail"] and "'a'" not in body["detail"]
    assert call(service.impact, POLICY, {"draft": 1, name: "30d"})[0] == 202


def test_impact_data_that_is_no_list_or_no_data_set_of_the_policy_points_into_the_body(
    service: LifecycleService,
) -> None:
    status, body = call(service.impact, "order-holds", {"data": {"blacklist": 1}})
    assert (status, pointers(body)) == (422, ["/data/blacklist"]), body
    status, body = call(service.impact, "order-holds", {"data": {"a/b": {}}})
    assert (status, pointers(body)) == (422, ["/data/a~1b"]), body
    status, body = call(service.impact, "order-holds", {"data": {"blacklst": []}})
    assert status == 422, body
    [error] = body["errors"]
    assert (error["code"], error["pointer"]) == ("unknown_data_set", "/data/blacklst")
    assert error["hint"] == "did you mean 'blacklist'?"
    status, body = call(service.impact, "order-holds", {"data": {"blacklist": [ENTRY, ENTRY]}})
    assert status == 422 and body["code"] == "data_invalid", body
    assert all(p.startswith("/data/blacklist/") for p in pointers(body)), body
    assert call(service.impact, "order-holds", {"data": {"blacklist": [ENTRY]}})[0] == 202


# -- 3. a rollback by a content hash a later draft shares ----------------------------------
def test_a_rollback_by_hash_publishes_the_revision_that_was_published_not_a_later_draft(
    lifecycle: Lifecycle, folder: Path
) -> None:
    path = folder / "cancellation-fees.yaml"
    original = path.read_text(encoding="utf-8")
    first = lifecycle.record(POLICY, 1).revision
    path.write_text(original.replace(TITLE, "en: Cancellation charges}", 1), "utf-8")
    lifecycle.submit(candidates.from_path(path, POLICY), "alice", "retitled")  # @2, published
    path.write_text(original.replace(TITLE, "en: Cancellation costs}", 1), "utf-8")
    only_drafted = lifecycle.draft(candidates.from_path(path, POLICY), "alice", "")  # @3
    path.write_text(original, "utf-8")
    again = lifecycle.draft(candidates.from_path(path, POLICY), "alice", "")  # @4: as @1
    assert again.revision == first
    with pytest.raises(Refused) as never:  # a draft by its number is still no rollback target
        lifecycle.rollback(POLICY, str(again.number), "bob", "")
    assert never.value.code == "never_published"
    with pytest.raises(Refused) as never:  # nor a hash that only a draft has
        lifecycle.rollback(POLICY, only_drafted.revision, "bob", "")
    assert never.value.code == "never_published"
    publication = lifecycle.rollback(POLICY, first[:10], "bob", "back")
    assert (publication.number, publication.revision) == (1, first)


# -- 4. the message of a submitted draft ---------------------------------------------------
def test_the_message_of_a_submitted_draft_is_kept_in_the_audit_trail(
    lifecycle: Lifecycle, folder: Path, service: LifecycleService
) -> None:
    path = folder / "cancellation-fees.yaml"
    path.write_text(path.read_text("utf-8").replace(TITLE, "en: Cancellation charges}"), "utf-8")
    draft = lifecycle.draft(candidates.from_path(path, POLICY), "alice", "draft message")
    lifecycle.submit(lifecycle.resolve(POLICY, str(draft.number)), "bob", "submit message")
    submitted = next(e for e in lifecycle.revisions.audit(POLICY) if e.action == "submit")
    assert (submitted.principal, submitted.detail["message"]) == ("bob", "submit message")
    assert lifecycle.record(POLICY, draft.number).message == "draft message"
    # over HTTP: {"message"} with the submission, checked before anything is looked up
    status, body = call(service.submit, POLICY, {"message": 5}, number="1")
    assert (status, pointers(body)) == (422, ["/message"]), body
    other = lifecycle.draft(candidates.from_path(path, POLICY), "alice", "")
    status, body = call(service.submit, POLICY, {"message": "why"}, number=str(other.number))
    assert status == 202, body
    assert service.started[-1]["message"] == "why"  # type: ignore[attr-defined]


# -- 5. a file the draft does not read -----------------------------------------------------
def test_a_file_sent_under_a_name_the_policy_does_not_read_is_refused_with_the_name_it_reads(
    lifecycle: Lifecycle, service: LifecycleService
) -> None:
    base = lifecycle.resolve(POLICY, "published")
    schema = base.source.files[SCHEMA].decode("utf-8")
    with pytest.raises(PolicyError) as caught:
        candidates.from_text(
            POLICY, base.source.text, files={"schemas/x~y.json": "{}"}, base=base, tests_source=None
        )
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.pointer) == ("unknown_file", "/files/schemas~1x~0y.json")
    assert problem.hint == f"it reads '{SCHEMA}'"
    with pytest.raises(PolicyError) as caught:
        candidates.from_text(
            POLICY,
            base.source.text,
            files={SCHEMA[3:]: schema},
            base=base,
            tests_source=None,
        )
    assert caught.value.diagnostics[0].hint == f"did you mean '{SCHEMA}'?"
    sent = candidates.from_text(
        POLICY, base.source.text, files={SCHEMA: schema}, base=base, tests_source=None
    )
    assert sent.revision == base.revision
    for operation in (service.validate, service.create):
        request = {"source": base.source.text, "files": {"unused.json": "{}"}}
        status, body = call(operation, POLICY, request)
        assert status == 422 and body["code"] == "request_invalid", body
        assert pointers(body) == ["/files/unused.json"], body
    status, body = call(
        service.validate, POLICY, {"source": base.source.text, "files": {SCHEMA: schema}}
    )
    assert (status, body["valid"]) == (200, True), body


# -- 8. problems of a test file ------------------------------------------------------------
def test_problems_of_a_submitted_test_file_are_located_in_it(lifecycle: Lifecycle) -> None:
    base = lifecycle.resolve(POLICY, "published")
    text = base.source.text.replace("    default: 7\n", "    default: 8\n", 1)
    broken = "- name: x\n  facts: [\n"
    candidate = candidates.from_text(POLICY, text, files=None, base=base, tests_source=broken)
    summary = candidates.run_tests(candidate)
    [shown] = summary["problems"]
    assert shown.startswith("cancellation-fees.tests.yaml:3:1: yaml_syntax: "), shown
    with pytest.raises(FailingTests) as caught:
        lifecycle.submit(candidate, "alice", "")
    _headline, problem = caught.value.diagnostics
    assert problem.code == "yaml_syntax"
    assert problem.location is not None
    assert (problem.location.file, problem.location.line) == ("cancellation-fees.tests.yaml", 3)


# -- 9. problems of a --data file ----------------------------------------------------------
def test_problems_of_a_data_file_name_the_file_and_the_line_of_the_entry(
    lifecycle: Lifecycle, tmp_path: Path
) -> None:
    holds = lifecycle.resolve("order-holds", "published")
    line = orjson.dumps(ENTRY).decode()
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(f"{line}\n{{bad\n", "utf-8")
    with pytest.raises(UsageError) as caught:
        check_overrides(holds, {"blacklist": bad_json})
    [problem] = caught.value.diagnostics
    assert problem.location is not None
    assert (problem.location.file.endswith("bad.jsonl"), problem.location.line) == (True, 2)
    twice = tmp_path / "twice.jsonl"
    twice.write_text(f"{line}\n\n{line}\n", "utf-8")
    with pytest.raises(PolicyError) as caught:
        check_overrides(holds, {"blacklist": twice})
    [problem] = caught.value.diagnostics
    assert problem.code == "data_duplicate_key" and problem.location is not None
    assert problem.location.file.endswith("twice.jsonl") and problem.location.line == 3
    listed = tmp_path / "twice.yaml"
    listed.write_text(f"- {line}\n- {line}\n", "utf-8")
    with pytest.raises(PolicyError) as caught:
        check_overrides(holds, {"blacklist": listed})
    [problem] = caught.value.diagnostics
    assert problem.location is not None and problem.location.line == 2
    once = tmp_path / "once.jsonl"
    once.write_text(f"{line}\n", "utf-8")
    assert check_overrides(holds, {"blacklist": once})["blacklist"][1] == [ENTRY]
