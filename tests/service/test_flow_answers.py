"""The flow endpoints over HTTP: answers too large for a frame, envelope problems, byte
order marks and imports, against a running `kimari serve` of the shipped policies.

An answer too large for a worker's frame (a history of large facts: 810 MB) crashed the
worker: the front read the frame as garbage, answered 503 worker_crashed (retriable), the
worker restarted, and every retry crashed it again. The limit is lowered here
(KIMARI_TEST_MAX_ANSWER, test mode only) so that an answer past it takes 150 kB, not a
quarter of a gigabyte.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped

LIMIT = 150_000
AT = "2024-09-20T10:00:00+09:00"
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
BOM = b"\xef\xbb\xbf"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("flow-answers")
    env = {"KIMARI_TEST_FAULTS": "1", "KIMARI_TEST_MAX_ANSWER": str(LIMIT)}
    srv = Server(copy_shipped(tmp), tmp / "var" / "kimari.sqlite3", workers=1, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as c:
        yield c


def worker_pids(metrics: str) -> dict[str, str]:
    return dict(re.findall(r'kimari_worker_info\{worker="(\d+)",pid="(\d+)"\} 1', metrics))


def too_large(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 500, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["code"], problem["retriable"], problem["limit"]) == (
        "answer_too_large",
        False,
        LIMIT,
    )
    assert "retry-after" not in answer.headers
    return problem


def imported(admin: httpx.Client, entity: str, detail: int, state: str = "requested") -> str:
    path = f"/v1/flows/claim-status/{entity}"
    facts = {
        "exclusion_reason": "重複",
        "estimate_status": "対象外",
        "exclusion_detail": "y" * detail,
    }
    answer = admin.put(path, json={"state": state, "facts": facts})
    assert answer.status_code in (201, 500), answer.text
    return path


def test_an_answer_too_large_is_a_500_not_retriable_and_the_worker_lives_on(
    admin: httpx.Client,
) -> None:
    before = admin.get("/metrics").text
    path = imported(admin, "BIG-1", 200_000)  # stored; its answer (the entity) too large
    for answer in (admin.get(path), admin.get(path)):  # the same, every time
        problem = too_large(answer)
        assert "ask for less" in problem["detail"] and str(LIMIT) in problem["detail"]
    problem = too_large(admin.get(f"{path}/history"))  # its row 0 alone: said by the history
    assert "?after=0" in problem["hint"]
    path = imported(admin, "BIG-2", 60_000)
    for event in ({"type": "cancel"}, {"type": "claim"}):
        moved = admin.post(f"{path}/events", json={"event": event, "actor": DEALER, "at": AT})
        assert moved.status_code == 200, moved.text
    assert admin.get(path).status_code == 200  # one copy of the facts fits
    problem = too_large(admin.get(f"{path}/history"))  # three do not
    assert "?limit=" in problem["hint"]
    after = admin.get("/metrics").text
    assert worker_pids(after) == worker_pids(before) and len(worker_pids(after)) == 1
    assert "kimari_worker_restarts_total 0" in after
    assert 'kimari_http_errors_total{status="500",code="answer_too_large"} 5' in after
    assert 'code="worker_crashed"' not in after


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        (
            {"event": {"type": "claim"}, "actor": DEALER, "evnt_id": "x"},
            "unknown_field",
            "/evnt_id",
        ),
        (
            {"event": {"type": "claim"}, "actor": DEALER, "settings": []},
            "settings_invalid",
            "/settings",
        ),
        ({"event": {"type": "claim"}}, "missing_field", "/actor"),
        ({"evnt": {"type": "claim"}}, "request_invalid", None),
    ],
)
def test_a_lone_envelope_problem_of_a_flow_event_answers_its_own_code(
    admin: httpx.Client, body: dict[str, Any], code: str, pointer: str | None
) -> None:
    """As /v1/decisions does, and as docs/service.md says: the flow events answered
    request_invalid for each."""
    answer = admin.post("/v1/flows/claim-status/ENV-1/events", json=body)
    assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    if pointer is not None:
        assert [e["pointer"] for e in answer.json()["errors"]] == [pointer]


def test_a_lone_envelope_problem_of_an_import_answers_its_own_code(admin: httpx.Client) -> None:
    answer = admin.put("/v1/flows/claim-status/ENV-2", json={"facts": {}})
    assert (answer.status_code, answer.json()["code"]) == (422, "missing_field")
    answer = admin.put("/v1/flows/claim-status/ENV-2", json={"state": "requested", "fact": {}})
    assert (answer.status_code, answer.json()["code"]) == (422, "unknown_field")
    assert answer.json()["errors"][0]["hint"] == "did you mean 'facts'?"


def test_flow_bodies_that_start_with_a_byte_order_mark_are_read_past_it(
    admin: httpx.Client,
) -> None:
    body = (
        b'{"event": {"type": "change_status", "status": "\xe5\x95\x86\xe8\xab\x87\xe4\xb8\xad"}, '
    )
    body += b'"actor": {"id": "dealer-1", "roles": ["\xe8\xb2\xa9\xe5\xa3\xb2\xe5\xba\x97"]}}'
    answer = admin.post("/v1/flows/claim-status/BOM-1/events", content=BOM + body, headers=JSON)
    assert answer.status_code == 200, answer.text
    answer = admin.put(
        "/v1/flows/claim-status/BOM-2", content=BOM + b'{"state": "requested"}', headers=JSON
    )
    assert answer.status_code == 201, answer.text
    answer = admin.post(
        "/v1/flows/claim-status/BOM-1/events", content=BOM + b'{"event": }', headers=JSON
    )
    assert (answer.status_code, answer.json()["code"]) == (400, "json_invalid")
    assert "a value was expected here (line 1 column 11)" in answer.json()["detail"]


def test_an_import_is_the_first_row_of_the_history(admin: httpx.Client) -> None:
    path = "/v1/flows/claim-status/IMP-1"
    facts = {"claims": 1, "claimed_by": "dealer-9"}
    assert admin.put(path, json={"state": "requested", "facts": facts}).status_code == 201
    event = {"event": {"type": "cancel"}, "actor": DEALER, "at": AT}
    assert admin.post(f"{path}/events", json=event).status_code == 200
    history = admin.get(f"{path}/history").json()
    first, move = history["moves"]
    assert (first["kind"], first["version"], first["state"]) == (
        "import",
        0,
        {"before": "", "after": "requested"},
    )
    assert first["facts"] == facts and "principal" in first
    assert (move["kind"], move["version"], move["state"]["before"]) == ("move", 1, "requested")
    assert history["next_after"] is None
    assert admin.get(path).json()["entity"]["version"] == 1
