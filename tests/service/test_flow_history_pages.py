"""The flow service's history, a page at a time, and answers too large for a frame.

1,000 small events made a 41 MB history answer, every row carrying the entity's facts after
its move; with large facts, the worker's answer frame passed ipc.MAX_FRAME, which the front
read as the worker dying (503 worker_crashed, retriable, a restart, and the same again on
every retry). A history is now answered a page at a time (`?limit=`, `?after=`,
`next_after`), and no answer too large for a frame is ever sent: the worker answers a 500
`answer_too_large`, not retriable, instead. Here in-process, on the FlowService a worker
calls and on the frames it sends (tests/service/test_flow_answers.py: over HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from engine.core.i18n import using_language
from engine.service import flows, ipc
from engine.service.flows import FlowService
from engine.service.problems import Response
from tests.strategies import shipped_project

AT = "2024-09-20T10:00:00+09:00"
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
POLICY = "claim-status"


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[FlowService]:
    project = shipped_project()
    snapshot = SimpleNamespace(policies=project.policies, data_for=project.data_for)
    served = FlowService(lambda: snapshot, str(tmp_path / "kimari.sqlite3"))  # type: ignore[return-value]
    yield served
    served.close()


def answer(response: Response) -> tuple[int, dict[str, Any]]:
    status, _, body = response
    return status, orjson.loads(body)


def status_changes(service: FlowService, entity: str, count: int, detail: str = "") -> None:
    """`count` moves of the dealer (the estimate's status, each appended to the facts)."""
    for n in range(count):
        event = {"type": "change_status", "status": f"商談中{n}{detail}"}
        body = orjson.dumps({"event": event, "actor": DEALER, "at": AT})
        assert service.event(POLICY, entity, body)[0] == 200


def big_moves(service: FlowService, entity: str, count: int, size: int) -> None:
    """An entity imported with a detail of `size` bytes in its facts, then `count` moves
    (cancel, claim, ...): every row of its history carries the detail."""
    facts = {
        "exclusion_reason": "重複",
        "estimate_status": "対象外",
        "exclusion_detail": "y" * size,
    }
    body = orjson.dumps({"state": "requested", "facts": facts})
    assert service.import_entity(POLICY, entity, body, "ops")[0] == 201
    for n in range(count):
        event = {"type": "claim" if n % 2 else "cancel"}
        body = orjson.dumps({"event": event, "actor": DEALER, "at": AT})
        assert service.event(POLICY, entity, body)[0] == 200


def page(service: FlowService, entity: str, **query: str) -> dict[str, Any]:
    status, body = answer(service.history(POLICY, entity, bool(query.pop("refusals", "")), query))
    assert status == 200, body
    return body


def test_a_history_that_fits_the_default_page_is_answered_whole(service: FlowService) -> None:
    status_changes(service, "E-1", 3)
    body = page(service, "E-1")
    assert [m["version"] for m in body["moves"]] == [1, 2, 3]
    assert body["next_after"] is None
    assert set(body) == {"policy", "entity", "moves", "next_after"}


def test_a_longer_history_is_paged_and_the_pages_join_up(service: FlowService) -> None:
    assert service.import_entity(POLICY, "E-2", b'{"state": "not_claimed"}', "ops")[0] == 201
    status_changes(service, "E-2", 7)
    first = page(service, "E-2", limit="3")
    assert [m["version"] for m in first["moves"]] == [0, 1, 2]
    assert first["moves"][0]["kind"] == "import" and first["next_after"] == 2
    second = page(service, "E-2", limit="3", after="2")
    assert [m["version"] for m in second["moves"]] == [3, 4, 5] and second["next_after"] == 5
    last = page(service, "E-2", limit="3", after="5")
    assert [m["version"] for m in last["moves"]] == [6, 7] and last["next_after"] is None
    assert page(service, "E-2", after="0", limit="1")["moves"][0]["version"] == 1
    assert page(service, "E-2", after="7") == {**last, "moves": []}


def test_the_default_page_holds_100_rows(service: FlowService) -> None:
    status_changes(service, "E-3", 101)
    body = page(service, "E-3")
    assert len(body["moves"]) == flows.DEFAULT_LIMIT == 100 and body["next_after"] == 100
    assert [m["version"] for m in page(service, "E-3", after="100")["moves"]] == [101]


def test_a_page_ends_early_at_its_bytes_and_holds_one_row_at_least(
    service: FlowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    status_changes(service, "E-4", 6, detail="x" * 40)
    monkeypatch.setattr(flows, "PAGE_BYTES", 2_500)  # each row is some 700-1,000 bytes
    versions, after = [], None
    while True:
        body = page(service, "E-4", **({} if after is None else {"after": str(after)}))
        assert body["moves"], "a page holds a row at least"
        assert len(body["moves"]) == 1 or len(orjson.dumps(body["moves"])) <= 2_500
        versions += [m["version"] for m in body["moves"]]
        after = body["next_after"]
        if after is None:
            break
    assert versions == [1, 2, 3, 4, 5, 6]
    monkeypatch.setattr(flows, "PAGE_BYTES", 1)
    assert [m["version"] for m in page(service, "E-4", after="2")["moves"]] == [3]


def test_the_refusals_of_a_page_are_those_between_its_moves(service: FlowService) -> None:
    refused = orjson.dumps({"event": {"type": "approve"}, "actor": DEALER, "at": AT})
    for _ in range(2):
        assert service.event(POLICY, "E-5", refused)[0] == 409  # at version 0, then 2
        status_changes(service, "E-5", 2)
    whole = page(service, "E-5", refusals="true")
    assert [r["version"] for r in whole["refusals"]] == [0, 2]
    first = page(service, "E-5", refusals="true", limit="2")
    assert [r["version"] for r in first["refusals"]] == [0, 2]  # up to move 2, and after it
    assert [r["version"] for r in page(service, "E-5", refusals="t", limit="1")["refusals"]] == [0]
    rest = page(service, "E-5", refusals="true", after="2")
    assert rest["refusals"] == [] and [m["version"] for m in rest["moves"]] == [3, 4]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"after": "1.5"}, "after"),
    ],
)
def test_a_bad_limit_or_after_is_a_422_naming_it(
    service: FlowService, query: dict[str, str], parameter: str
) -> None:
    status, body = answer(service.history(POLICY, "E-6", False, query))
    assert (status, body["code"], body["parameter"]) == (422, "query_invalid", parameter)


def test_a_history_asked_for_without_paging_is_every_row(service: FlowService) -> None:
    """What a caller that passes no query gets (a worker before the paging's route): every
    row, as before, but never an answer too large for a frame."""
    status_changes(service, "E-7", 101)
    status, body = answer(service.history(POLICY, "E-7", False))
    assert status == 200 and len(body["moves"]) == 101 and body["next_after"] is None


def test_a_page_too_large_to_answer_is_a_500_that_says_how_to_ask(
    service: FlowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    big_moves(service, "E-8", 3, 3_000)
    monkeypatch.setattr(ipc, "MAX_ANSWER", 4096 + 5_000)  # a row is some 3,300 bytes
    with using_language("ja"):
        status, body = answer(service.history(POLICY, "E-8", False, {}))
    assert (status, body["code"], body["retriable"]) == (500, "answer_too_large", False)
    assert body["limit"] == 9_096 and "?limit=" in body["hint"]
    assert "9096" in body["detail"] and body["title"] != "Internal error"  # in Japanese
    status, body = answer(service.history(POLICY, "E-8", False, {"limit": "1"}))
    assert status == 200 and [m["version"] for m in body["moves"]] == [0]
    monkeypatch.setattr(ipc, "MAX_ANSWER", 4096 + 1_000)
    status, body = answer(service.history(POLICY, "E-8", False, {"after": "1", "limit": "1"}))
    assert (status, body["code"]) == (500, "answer_too_large")
    assert "?after=2" in body["hint"]  # the one row too large, and how to read past it


# -- the frames a worker sends ------------------------------------------------------------


def frames(data: bytes) -> list[tuple[int, int, Any, bytes]]:
    return ipc.FrameReader().feed(data)


def test_a_reply_too_large_for_a_frame_is_sent_as_answer_too_large(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ipc, "MAX_ANSWER", 10_000)
    meta = {"h": [["content-type", "application/json"]]}
    big = ipc.encode(7, 200, meta, b'"' + b"x" * 20_000 + b'"')
    assert len(big) < 10_000
    ((frame_id, status, got, body),) = frames(big)
    assert (frame_id, status, got["c"]) == (7, 500, "answer_too_large")
    assert ["content-type", "application/problem+json"] in got["h"]
    problem = orjson.loads(body)
    assert (problem["code"], problem["retriable"], problem["limit"]) == (
        "answer_too_large",
        False,
        10_000,
    )
    assert (
        str(20_000 + 2 + ipc.HEADER.size - ipc.LENGTH.size + len(orjson.dumps(meta)))
        in (problem["detail"])
    )


def test_a_reply_at_the_limit_and_every_request_or_event_go_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ipc, "MAX_ANSWER", 10_000)
    fits = b"x" * (10_000 - (ipc.HEADER.size - ipc.LENGTH.size))
    ((_, status, _, body),) = frames(ipc.encode(3, 200, None, fits))
    assert (status, body) == (200, fits)
    request = b"y" * 20_000  # a request's limit is the front's body limit, not this
    ((_, op, _, body),) = frames(ipc.encode(4, ipc.Op.FLOW_HISTORY, None, request))
    assert (op, body) == (ipc.Op.FLOW_HISTORY, request)
    ((_, code, _, _),) = frames(ipc.encode(ipc.EVENT_ID, ipc.Event.RELOAD, {"x": "z" * 20_000}))
    assert code == ipc.Event.RELOAD


def test_every_operation_is_numbered_below_the_first_status() -> None:
    """encode tells a reply (an HTTP status) from a request (an operation) by its code."""
    assert max(ipc.Op) < ipc.FIRST_STATUS and max(ipc.Event) < ipc.FIRST_STATUS
