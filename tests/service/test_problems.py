"""The one exception -> problem+json mapping: statuses and codes from the exception classes,
the same for decisions and flow events; only the words of the detail differ."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from engine.core.errors import (
    Diagnostic,
    EngineFault,
    EvaluationError,
    InputError,
    KimariError,
    PolicyError,
    RetryLater,
    UsageError,
)
from engine.service.problems import DECISION, EVENT, Subject, from_error

FACTS = Diagnostic("type_mismatch", "expected a number", pointer="/facts/order/total")
AT = Diagnostic("at_invalid", "not a date-time", pointer="/at")
WHERE = Diagnostic("engine_disagreement", "the backends differ", rule_id="r1", hint="host x")


def answer(exc: KimariError, subject: Subject) -> tuple[int, dict[str, Any]]:
    status, headers, body = from_error(exc, subject)
    # and the language its words are in (English here: no request chose another)
    assert headers == [(b"content-type", b"application/problem+json"), (b"content-language", b"en")]
    return status, orjson.loads(body)


@pytest.mark.parametrize(
    ("exc", "subject", "status", "code", "detail"),
    [
        (InputError([FACTS]), DECISION, 422, "facts_invalid", DECISION.invalid),
        (InputError([AT]), DECISION, 422, "at_invalid", DECISION.invalid),
        (InputError([FACTS, AT]), DECISION, 422, "request_invalid", DECISION.invalid),
        (InputError([FACTS]), EVENT, 422, "event_invalid", "the event is invalid"),
        (EvaluationError([FACTS]), DECISION, 422, "evaluation_error", DECISION.undecidable),
        (EvaluationError([FACTS]), EVENT, 422, "evaluation_error", EVENT.undecidable),
        (EngineFault([WHERE]), DECISION, 500, "engine_fault", DECISION.fault),
        (EngineFault([WHERE]), EVENT, 500, "engine_fault", "the rule engine failed"),
        (
            UsageError([Diagnostic("unknown_policy", "no policy 'x'")]),
            EVENT,
            404,
            "unknown_policy",
            "no policy 'x'",
        ),
        (UsageError([Diagnostic("not_a_flow", "not a flow")]), EVENT, 404, "not_a_flow", None),
        (PolicyError([Diagnostic("yaml_invalid", "bad")]), EVENT, 500, "yaml_invalid", None),
    ],
)
def test_each_error_class_answers_its_own_status_and_code(
    exc: KimariError, subject: Subject, status: int, code: str, detail: str | None
) -> None:
    got_status, body = answer(exc, subject)
    assert (got_status, body["status"], body["code"]) == (status, status, code)
    assert body["type"] == f"urn:kimari:problem:{code}"
    if detail is not None:
        assert body["detail"] == detail


def test_an_entity_that_exists_is_a_conflict_named_by_its_diagnostic() -> None:
    exists = Diagnostic("entity_exists", "entity 'e1' of 'f' already exists", pointer="/state")
    status, body = answer(InputError([exists]), EVENT)
    assert (status, body["code"], body["detail"]) == (409, "entity_exists", exists.message)
    assert body["errors"] == [exists.to_dict()]


def test_an_engine_fault_is_logged_in_full_and_answered_without_where_it_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for subject in (DECISION, EVENT):  # flows log their faults as decisions do
        caplog.clear()
        _, body = answer(EngineFault([WHERE]), subject)
        assert body["errors"] == [{"code": "engine_disagreement", "message": "the backends differ"}]
        assert [r.levelname for r in caplog.records] == ["ERROR"]
        assert "engine_disagreement" in caplog.records[0].getMessage()


def test_other_errors_list_every_diagnostic_with_its_pointer() -> None:
    _, body = answer(InputError([FACTS, AT]), DECISION)
    assert [e["pointer"] for e in body["errors"]] == ["/facts/order/total", "/at"]


def test_flow_contention_is_a_retriable_503_with_retry_after_and_a_warning_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    busy = RetryLater([Diagnostic("flow_contention", "entity 'E-1' kept moving")])
    with caplog.at_level("WARNING", logger="kimari.service"):
        status, headers, body = from_error(busy, EVENT)
    problem = orjson.loads(body)
    assert (status, problem["code"], problem["retriable"]) == (503, "flow_contention", True)
    assert (b"retry-after", b"1") in headers
    assert "send it again" in problem["detail"]
    assert [r.getMessage() for r in caplog.records] == ["flow_contention: entity 'E-1' kept moving"]


@pytest.mark.parametrize("subject", [DECISION, EVENT])
def test_a_damaged_store_is_a_500_saying_so_without_its_file_or_sqlites_words(
    subject: Subject,
) -> None:
    import sqlite3

    from engine.store.sqlite import damaged

    exc = damaged(
        "/srv/kimari/var/kimari.sqlite3", sqlite3.DatabaseError("disk image is malformed")
    )
    status, body = answer(exc, subject)
    assert (status, body["code"]) == (500, "store_damaged")
    assert body["detail"].startswith("the store is damaged and cannot be read or written")
    assert "/srv" not in orjson.dumps(body).decode() and "malformed" not in body["detail"]
    assert "errors" not in body or body["errors"] == []


def test_a_refusal_is_detailed_by_its_own_words_not_a_generic_sentence() -> None:
    from engine.core.errors import Refused

    busy = Refused([Diagnostic("job_running", "policy 'p' already has a job running: j1")])
    status, body = answer(busy, DECISION)
    assert (status, body["code"]) == (409, "job_running")
    assert body["detail"] == "policy 'p' already has a job running: j1"
