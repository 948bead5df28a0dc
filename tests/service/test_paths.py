"""A path whose %-escapes do not decode to UTF-8 names nothing.

uvicorn decodes a path's %-escapes with errors="replace", so `%ff`, `%fe` and `%80` all
became U+FFFD: three entity ids of a flow were one stored entity (the second got 409
`event_not_allowed` for the first's state). Such a path is now refused before routing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped, running

EVENT = {"event": {"type": "claim"}, "actor": {"id": "dealer-1", "roles": ["販売店"]}}
# EX-2: an estimate is claimed only once the dealer made it 対象外 with an eligible reason
EXCLUDE = {**EVENT, "event": {"type": "exclude", "exclusion_reason": "重複"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("paths")
    with running(tmp, policies=copy_shipped(tmp)) as srv:
        yield srv


@pytest.mark.parametrize("escape", ["%ff", "%fe", "%80", "a%e3%81", "%c3%28"])
def test_an_entity_id_that_is_not_utf_8_is_refused_and_stores_nothing(
    server: Server, escape: str
) -> None:
    with server.client(ADMIN_TOKEN) as client:
        moved = client.post(f"/v1/flows/claim-status/{escape}/events", json=EVENT)
        read = client.get(f"/v1/flows/claim-status/{escape}")
    for answer in (moved, read):
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "path_invalid"
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_utf_8_escapes_and_a_real_replacement_character_still_name_their_entities(
    server: Server,
) -> None:
    with server.client(ADMIN_TOKEN) as client:
        # 申請-1 written with %-escapes, and U+FFFD itself: two entities, each its own
        for path in ("%E7%94%B3%E8%AB%8B-1", "%EF%BF%BD"):
            excluded = client.post(f"/v1/flows/claim-status/{path}/events", json=EXCLUDE)
            assert excluded.status_code == 200, excluded.text
            moved = client.post(f"/v1/flows/claim-status/{path}/events", json=EVENT)
            assert moved.status_code == 200, moved.text
            again = client.get(f"/v1/flows/claim-status/{path}")
            assert again.status_code == 200 and again.json()["entity"]["version"] == 2
        assert client.get("/v1/flows/claim-status/申請-1").json()["entity"]["version"] == 2


def test_an_entity_read_or_imported_is_not_called_an_invalid_event(server: Server) -> None:
    with server.client(ADMIN_TOKEN) as client:
        read = client.get("/v1/flows/claim-status/%00").json()
        imported = client.put("/v1/flows/claim-status/IMP-1", json={"state": "nowhere"}).json()
        moved = client.post(
            "/v1/flows/claim-status/EV-1/events", json={**EVENT, "event_id": "x" * 1000}
        ).json()
    assert (read["code"], read["detail"]) == ("entity_id_invalid", "the request is invalid")
    assert imported["code"] != "event_invalid" and imported["detail"] == "the request is invalid"
    assert imported["errors"][0]["pointer"] == "/state"
    # an event's own id is named as such, under the event's problem
    assert (moved["code"], moved["errors"][0]["code"]) == ("event_invalid", "event_id_invalid")
    assert moved["errors"][0]["pointer"] == "/event_id"


def test_an_event_to_an_entity_id_that_cannot_be_one_is_named_as_such(server: Server) -> None:
    """Not event_invalid: the event is fine, the id is not."""
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post("/v1/flows/claim-status/%00/events", json=EVENT)
        slashed = client.post("/v1/flows/claim-status/A%2FB/events", json=EVENT)
    body = answer.json()
    assert (answer.status_code, body["code"]) == (422, "entity_id_invalid"), body
    assert body["errors"][0]["pointer"] == "/entity_id"
    # '/' splits the path before an id is read: no route (and the CLI refuses such an id)
    assert (slashed.status_code, slashed.json()["code"]) == (404, "not_found")


def test_an_event_id_used_before_for_another_event_is_a_409_conflict(server: Server) -> None:
    with server.client(ADMIN_TOKEN) as client:
        client.post("/v1/flows/claim-status/EV-9/events", json=EXCLUDE).raise_for_status()
        first = client.post(
            "/v1/flows/claim-status/EV-9/events", json={**EVENT, "event_id": "same"}
        )
        again = client.post(
            "/v1/flows/claim-status/EV-9/events", json={**EVENT, "event_id": "same"}
        )
        other = client.post(
            "/v1/flows/claim-status/EV-9/events",
            json={**EVENT, "event": {"type": "cancel"}, "event_id": "same"},
        )
    assert first.status_code == 200 and again.json()["replayed"] is True
    assert (other.status_code, other.json()["code"]) == (409, "event_id_conflict")
    assert other.json()["errors"][0]["pointer"] == "/event_id"
