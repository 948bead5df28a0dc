"""A data set's replacement is checked and indexed beside the decisions, not in their way.

A blacklist of 100,000 entries held up every decision of its worker for 3.6 s; one of
450,000 (52 MB) ran past `request_timeout` and the front killed the worker as hung, at every
retry of the client. The test fault `slow` makes a data request take 2 s on each worker, so
that what happens meanwhile can be seen without building a big data set."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, running

# timing-bound: `make test` runs it alone, after the files run two at a time
pytestmark = pytest.mark.serial

CUSTOMER = {"name": "佐藤 花子", "postal_code": "100-0001", "phone": "090-0000-1111"}
FACTS = {
    "facts": {
        "order": {
            "total": 15000,
            "sequence": 2,
            "payment": {"method": "card"},
            "customer": CUSTOMER,
        }
    }
}
ENTRIES = [{"id": "BL-1", "name": "山田 太郎"}, {"id": "BL-2", **CUSTOMER}]
SLOW = {"X-Kimari-Test-Fault": "slow"}  # 2 s on every worker (engine/service/worker.py)


def _decide(client: httpx.Client) -> tuple[float, str]:
    """How long a decision took, and the blacklist version it used."""
    started = time.monotonic()
    answer = client.post("/v1/decisions/blacklist-check", json=FACTS)
    assert answer.status_code == 200, answer.text
    return time.monotonic() - started, answer.json()["data"]["blacklist"]


def _in_background(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    result: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        result["answer"] = call()
        result["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _restarts(client: httpx.Client) -> int:
    found = re.search(r"^kimari_worker_restarts_total (\d+)$", client.get("/metrics").text, re.M)
    assert found is not None
    return int(found.group(1))


def _replace(server: Server, entries: list[Any]) -> httpx.Response:
    with server.client(ADMIN_TOKEN) as admin:
        return admin.put("/v1/data/blacklist", json={"entries": entries}, headers=SLOW)


def test_decisions_go_on_while_their_worker_builds_a_replacement(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1"}
    with running(tmp_path, workers=1, env=env) as server, server.client() as client:
        _, before = _decide(client)
        began = time.monotonic()
        thread, put = _in_background(lambda: _replace(server, ENTRIES))
        decided = []  # (started, seconds, version)
        while thread.is_alive():
            started = time.monotonic()
            decided.append((started, *_decide(client)))
        thread.join()
        ended = began + put["seconds"]
        assert put["answer"].status_code == 200, put["answer"].text
        assert put["seconds"] >= 2.0
        new = put["answer"].json()["version"]
        # the one worker answered meanwhile, every decision promptly (none waited for the
        # replacement), with the version it served
        assert max(seconds for _, seconds, _ in decided) < 1.0
        inside = [d for d in decided if began + 0.5 <= d[0] and d[0] + d[1] < ended]
        assert len(inside) >= 5
        assert {version for _, _, version in decided} <= {before, new}
        assert _decide(client)[1] == new  # once answered, the replacement is served
        assert _restarts(client) == 0


def test_a_replacement_slower_than_request_timeout_is_not_taken_for_a_hung_worker(
    tmp_path: Path,
) -> None:
    env = {"KIMARI_TEST_FAULTS": "1", "KIMARI_REQUEST_TIMEOUT": "1"}
    with running(tmp_path, workers=1, env=env) as server, server.client() as client:
        answer = _replace(server, ENTRIES)
        assert answer.status_code == 200, answer.text
        assert _decide(client)[1] == answer.json()["version"]
        assert _restarts(client) == 0


def test_a_replacement_past_data_timeout_costs_its_worker_and_says_so(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1", "KIMARI_DATA_TIMEOUT": "1"}
    with running(tmp_path, workers=1, env=env) as server, server.client() as client:
        answer = _replace(server, ENTRIES)
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "worker_timeout"
        server.wait_ready(1, timeout=60)
        assert _restarts(client) == 1
        _decide(client)


def test_a_change_is_answered_once_every_worker_serves_it(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1"}
    with running(tmp_path, workers=2, env=env) as server, server.client() as client:
        _, default = _decide(client)
        started = time.monotonic()
        answer = _replace(server, ENTRIES)
        assert answer.status_code == 200, answer.text
        # the worker that took it, then the others (each 2 s slow here), before the answer
        assert time.monotonic() - started >= 4.0
        new = answer.json()["version"]
        assert {_decide(client)[1] for _ in range(8)} == {new}
        with server.client(ADMIN_TOKEN) as admin:
            reset = admin.delete("/v1/data/blacklist", headers=SLOW)
        assert reset.status_code == 200, reset.text
        assert reset.json()["version"] == default and reset.json()["source"] == "file"
        assert {_decide(client)[1] for _ in range(8)} == {default}
        assert _restarts(client) == 0


def test_a_refused_replacement_waits_for_no_worker(tmp_path: Path) -> None:
    env = {"KIMARI_TEST_FAULTS": "1"}
    with running(tmp_path, workers=2, env=env) as server, server.client() as client:
        started = time.monotonic()
        answer = _replace(server, [{"id": "BL-1"}, {"id": "BL-1"}])
        assert answer.status_code == 422, answer.text
        assert time.monotonic() - started < 4.0  # its own 2 s, no worker asked after it
        assert _restarts(client) == 0


def test_if_match_makes_a_change_only_on_the_version_read(tmp_path: Path) -> None:
    """Two admins each read the blacklist, add an entry and put it back: the second put
    silently dropped the first one's entry. With If-Match the second is refused (412)."""
    with running(tmp_path, workers=2) as server, server.client(ADMIN_TOKEN) as admin:
        read = admin.get("/v1/data/blacklist")
        etag = read.headers["etag"]
        assert etag == f'"{read.json()["version"]}"'
        mine = admin.put(
            "/v1/data/blacklist", json={"entries": ENTRIES}, headers={"If-Match": etag}
        )
        assert mine.status_code == 200, mine.text
        assert mine.headers["etag"] == f'"{mine.json()["version"]}"'
        theirs = admin.put(
            "/v1/data/blacklist", json={"entries": ENTRIES[:1]}, headers={"If-Match": etag}
        )
        assert theirs.status_code == 412, theirs.text
        assert theirs.json()["code"] == "version_moved"
        assert theirs.json()["current"] == mine.json()["version"]
        assert admin.get("/v1/data/blacklist").json()["version"] == mine.json()["version"]
        # the version now current, among others, or any: made
        either = f'"{"0" * 16}", {mine.headers["etag"]}'
        again = admin.put(
            "/v1/data/blacklist", json={"entries": ENTRIES[:1]}, headers={"If-Match": either}
        )
        assert again.status_code == 200, again.text
        stale = admin.delete("/v1/data/blacklist", headers={"If-Match": mine.headers["etag"]})
        assert stale.status_code == 412 and stale.json()["current"] == again.json()["version"]
        reset = admin.delete("/v1/data/blacklist", headers={"If-Match": "*"})
        assert reset.status_code == 200 and reset.headers["etag"] == etag  # the file's again
        weak = admin.put(
            "/v1/data/blacklist", json={"entries": ENTRIES}, headers={"If-Match": f"W/{etag}"}
        )
        assert weak.status_code == 412  # compared strongly: a weak tag names no version
        bare = admin.put(
            "/v1/data/blacklist", json={"entries": ENTRIES}, headers={"If-Match": etag[1:-1]}
        )
        assert bare.status_code == 400 and bare.json()["code"] == "if_match_invalid"
        versions = admin.get("/v1/data/blacklist/versions").json()
        assert [c["action"] for c in versions["changes"]] == ["reset", "replaced", "replaced"]


def test_the_versions_and_changes_of_a_data_set_come_a_page_at_a_time(tmp_path: Path) -> None:
    """They stopped at 100 of each, with no way to see older ones."""
    with running(tmp_path, workers=1) as server, server.client(ADMIN_TOKEN) as admin:
        put = [
            admin.put(
                "/v1/data/blacklist",
                json={"entries": [*ENTRIES[:1], {"id": f"BL-X{i}", "name": f"山本 {i}"}]},
            )
            for i in range(5)
        ]
        assert all(answer.status_code == 200 for answer in put), [a.text for a in put]
        admin.delete("/v1/data/blacklist")
        made = [answer.json()["version"] for answer in reversed(put)]  # newest first
        url = "/v1/data/blacklist/versions"
        whole = admin.get(url).json()
        assert [v["version"] for v in whole["versions"]][:5] == made
        assert whole["next_before"] is None and whole["next_changes_before"] is None
        seen, before = [], None
        while True:
            page = admin.get(url, params={"limit": 2, **({"before": before} if before else {})})
            assert page.status_code == 200, page.text
            body = page.json()
            assert len(body["versions"]) <= 2
            seen += [v["version"] for v in body["versions"]]
            before = body["next_before"]
            if before is None:
                break
        assert seen == [v["version"] for v in whole["versions"]]  # each once, in order
        changes, after = [], None
        while True:
            params = {"limit": 4, **({"changes_before": after} if after else {})}
            body = admin.get(url, params=params).json()
            changes += [(c["number"], c["action"]) for c in body["changes"]]
            after = body["next_changes_before"]
            if after is None:
                break
        assert [a for _, a in changes] == ["reset"] + ["replaced"] * 5
        assert changes == sorted(changes, reverse=True)  # newest first, none twice
        unknown = admin.get(url, params={"before": "0" * 16})
        assert unknown.status_code == 422 and unknown.json()["parameter"] == "before"
        for bad in ({"limit": "0"}, {"limit": "501"}, {"changes_before": "x"}):
            answer = admin.get(url, params=bad)
            assert answer.status_code == 422, bad
            assert answer.json()["parameter"] == next(iter(bad))
