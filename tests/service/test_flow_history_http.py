"""A flow history over HTTP, a page at a time (`?limit=`, `?after=`, `next_after`), and an
import recorded with its principal, in the history and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests import blacklisted_order
from tests.service.server_process import ADMIN_TOKEN, Server, copy_project, copy_shipped

AT = "2024-09-20T10:00:00+09:00"
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("flow-history")
    srv = Server(copy_shipped(tmp), tmp / "var" / "kimari.sqlite3", workers=2)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as c:
        yield c


def moves(admin: httpx.Client, path: str, count: int) -> None:
    for n in range(count):
        event = {"type": "change_status", "status": f"商談中{n}"}
        answer = admin.post(f"{path}/events", json={"event": event, "actor": DEALER, "at": AT})
        assert answer.status_code == 200, answer.text


def test_a_history_is_paged_and_its_pages_join_up(admin: httpx.Client) -> None:
    path = "/v1/flows/claim-status/PAGE-1"
    assert admin.put(path, json={"state": "not_claimed"}).status_code == 201
    moves(admin, path, 5)
    whole = admin.get(f"{path}/history").json()  # fits the default page: as before
    assert [m["version"] for m in whole["moves"]] == [0, 1, 2, 3, 4, 5]
    assert whole["next_after"] is None
    versions, query = [], {"limit": "2"}
    while True:
        page = admin.get(f"{path}/history", params=query).json()
        versions += [m["version"] for m in page["moves"]]
        if page["next_after"] is None:
            break
        query = {"limit": "2", "after": str(page["next_after"])}
    assert versions == [0, 1, 2, 3, 4, 5]
    only_moves = admin.get(f"{path}/history", params={"after": "0"}).json()["moves"]
    assert [m["kind"] for m in only_moves] == ["move"] * 5


@pytest.mark.parametrize(
    ("query", "parameter"),
    [({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"after": "x"}, "after")],
)
def test_a_bad_limit_or_after_is_a_422_naming_it(
    admin: httpx.Client, query: dict[str, str], parameter: str
) -> None:
    answer = admin.get("/v1/flows/claim-status/PAGE-2/history", params=query)
    assert answer.status_code == 422 and answer.json()["parameter"] == parameter


def test_the_history_documents_its_paging(admin: httpx.Client) -> None:
    document = admin.get("/openapi.json").json()
    operation = document["paths"]["/v1/flows/claim-status/{entity_id}/history"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"] if p["in"] == "query"}
    assert parameters["limit"]["maximum"] == 500 and parameters["after"]["minimum"] == 0
    history = document["components"]["schemas"]["ClaimStatusHistory"]["properties"]
    assert "next_after" in history and "kind" in history["moves"]["items"]["properties"]


def test_an_import_names_its_principal_in_the_history_and_the_audit_trail(
    admin: httpx.Client,
) -> None:
    principal = admin.get("/v1/whoami").json()["principal"]
    path = "/v1/flows/claim-status/IMP-2"
    facts = {"claims": 1}
    assert admin.put(path, json={"state": "requested", "facts": facts}).status_code == 201
    moves_ = admin.get(f"{path}/history").json()["moves"]
    assert moves_[0]["kind"] == "import" and moves_[0]["principal"] == principal
    audit = admin.get("/v1/audit", params={"policy": "claim-status"}).json()["entries"]
    found = [e for e in audit if e["detail"].get("entity") == "IMP-2"]
    assert [(e["action"], e["principal"], e["detail"]["state"]) for e in found] == [
        ("import_entity", principal, "requested")
    ]


def test_a_decision_sent_with_a_byte_order_mark_is_logged_readable(tmp_path: Path) -> None:
    """parse_body reads past the mark; the log keeps the request as it was read, without
    it, or GET /v1/decisions/{id} and every replay of the row would fail to read it."""
    srv = Server(copy_project(tmp_path), tmp_path / "var" / "kimari.sqlite3")
    order = {"total": 15000, "sequence": 2, "payment": {"method": "card"}}
    body = BOM + orjson.dumps({"facts": {"order": order}})
    try:
        srv.start()
        with srv.client(ADMIN_TOKEN) as client:
            headers = {"content-type": "application/json"}
            answer = client.post("/v1/decisions/np-check", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            logged = client.get(f"/v1/decisions/{answer.json()['decision_id']}")
            assert logged.status_code == 200, logged.text
            assert logged.json()["request"]["facts"]["order"] == order
    finally:
        srv.stop()


def test_a_flows_decision_id_opens_its_move_or_its_refusal(admin: httpx.Client) -> None:
    """An event's answer gives a `decision_id` that GET /v1/decisions/{id} said was in no
    log: a flow's decisions are its entities' history, and they are found there now."""
    path = "/v1/flows/claim-status/DECIDED-1"
    assert admin.put(path, json={"state": "not_claimed"}).status_code == 201
    event = {"type": "change_status", "status": "商談中"}
    moved = admin.post(f"{path}/events", json={"event": event, "actor": DEALER, "at": AT})
    assert moved.status_code == 200, moved.text
    move = moved.json()
    found = admin.get(f"/v1/decisions/{move['decision_id']}")
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["kind"], body["entity"], body["allowed"]) == ("flow", "DECIDED-1", True)
    assert body["policy"] == move["policy"] and body["at"] == move["at"]
    assert (body["move"]["decision_id"], body["move"]["version"]) == (move["decision_id"], 1)
    assert body["refusal"] is None
    history = admin.get(body["history"]).json()
    assert history["moves"][-1]["decision_id"] == move["decision_id"]

    claim = {"event": {"type": "claim"}, "actor": DEALER, "at": AT}
    refused = admin.post(f"{path}/events", json=claim)
    assert refused.status_code == 409, refused.text
    refusal_id = refused.json()["result"]["decision_id"]
    body = admin.get(f"/v1/decisions/{refusal_id}").json()
    assert (body["allowed"], body["move"]) == (False, None)
    assert body["refusal"]["decision_id"] == refusal_id
    assert body["refusal"]["code"] == refused.json()["code"]
    assert body["history"] == f"{path}/history?refusals=true"
    listed = admin.get(body["history"]).json()["refusals"]
    assert [r["decision_id"] for r in listed] == [refusal_id]

    unknown = admin.get("/v1/decisions/" + "0" * 32)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "unknown_decision")


def test_the_decision_a_flows_event_consulted_opens_the_move_that_carries_it(
    admin: httpx.Client,
) -> None:
    """order-hold-status asks order-holds at each check: the answer carries that decision
    with its own id, which GET /v1/decisions/{id} did not find (it is kept in the move)."""
    order = blacklisted_order("O-2001")
    body = {
        "event": {"type": "check", "facts": {"order": order}},
        "actor": {"id": "system", "roles": ["システム"]},
        "at": "2024-10-01T10:00:00+09:00",
    }
    answer = admin.post("/v1/flows/order-hold-status/O-2001/events", json=body)
    assert answer.status_code == 200, answer.text
    move = answer.json()
    consulted = move["event"]["decision"]
    assert consulted["policy"]["id"] == "order-holds"
    assert consulted["decision_id"] != move["decision_id"]
    found = admin.get(f"/v1/decisions/{consulted['decision_id']}")
    assert found.status_code == 200, found.text
    body = found.json()
    assert (body["kind"], body["entity"], body["allowed"]) == ("flow", "O-2001", True)
    assert body["decision_id"] == consulted["decision_id"]
    assert body["consulted"] == consulted and body["move"]["version"] == 1
    assert body["move"]["decision_id"] == move["decision_id"]
    # by the move's own id: the move, no `consulted`
    assert admin.get(f"/v1/decisions/{move['decision_id']}").json()["consulted"] is None
