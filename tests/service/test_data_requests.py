"""PUT /v1/data/{name}: each problem of the body is named at its own pointer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped, running

ENTRY = {"name": "山田 太郎", "postal_code": "160-0022", "phone": "03-3350-1234"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("data")
    with running(tmp, policies=copy_shipped(tmp)) as srv:
        yield srv


def _put(server: Server, body: Any) -> tuple[int, dict[str, Any]]:
    with server.client(ADMIN_TOKEN) as client:
        answer = client.put("/v1/data/blacklist", json=body)
    return answer.status_code, answer.json()


@pytest.mark.parametrize(
    ("body", "code", "pointer"),
    [
        ({"entries": [], "extra": 1}, "unknown_field", "/extra"),
        ({"entrys": []}, "unknown_field", "/entrys"),
        ({}, "missing_field", "/entries"),
        ({"entries": {"id": "BL-1"}}, "data_invalid", "/entries"),
        ([], "request_invalid", ""),
        ({"entries": [], "allow_empty": "yes"}, "request_invalid", "/allow_empty"),
    ],
)
def test_an_envelope_problem_is_named_at_its_own_key(
    server: Server, body: Any, code: str, pointer: str
) -> None:
    status, problem = _put(server, body)
    assert (status, problem["code"]) == (422, "request_invalid")
    assert (problem["errors"][0]["code"], problem["errors"][0]["pointer"]) == (code, pointer)


def test_two_entries_with_one_id_are_refused_and_distinct_ones_replace_the_set(
    server: Server,
) -> None:
    twice = [{"id": "BL-1", **ENTRY}, {"id": "BL-1", **ENTRY}]
    status, problem = _put(server, {"entries": twice})
    assert (status, problem["code"]) == (422, "data_invalid")
    assert problem["errors"][0]["code"] == "data_duplicate_key"
    assert problem["errors"][0]["pointer"] == "/entries/1/id"
    status, done = _put(server, {"entries": [{"id": "BL-1", **ENTRY}, {"id": "BL-2", **ENTRY}]})
    assert (status, done["count"]) == (200, 2)


def test_an_empty_replacement_empties_the_set_only_when_it_says_so(server: Server) -> None:
    """`{"entries": []}` (a job that exported nothing) emptied the blacklist without a word:
    every order it should hold went through."""
    status, done = _put(server, {"entries": [{"id": "BL-7", **ENTRY}]})
    assert status == 200
    kept = done["version"]
    for body in ({"entries": []}, {"entries": [], "allow_empty": False}):
        status, problem = _put(server, body)
        assert (status, problem["code"]) == (422, "data_empty"), problem
        [error] = problem["errors"]
        assert (error["code"], error["pointer"]) == ("data_empty", "/entries")
        assert '"allow_empty": true' in error["hint"] and "DELETE" in error["hint"]
    with server.client(ADMIN_TOKEN) as client:
        assert client.get("/v1/data/blacklist").json()["version"] == kept  # nothing stored
    status, done = _put(server, {"entries": [], "allow_empty": True})
    assert (status, done["count"]) == (200, 0)
    with server.client(ADMIN_TOKEN) as client:
        assert client.get("/v1/data/blacklist").json()["entries"] == []
    # a list with entries needs no flag, and may carry it
    status, done = _put(server, {"entries": [{"id": "BL-7", **ENTRY}], "allow_empty": True})
    assert (status, done["count"]) == (200, 1)
