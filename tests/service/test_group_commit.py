"""Group commit through HTTP: a worker writes the decisions it has decided in one
transaction and answers them only after it (engine/service/worker.py); `commit_wait_ms`
holds a group open so that later decisions join it; `commit_inline_below_ms` says which
thread commits."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.server_process import Server, copy_project

AT = "2024-09-21T23:59:59+09:00"
ORDER = {"order": {"total": 15000, "sequence": 1, "payment": {"method": "card"}}}
WAIT_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("group")
    env = {"KIMARI_COMMIT_WAIT_MS": str(int(WAIT_S * 1000))}
    srv = Server(copy_project(tmp), tmp / "var" / "kimari.sqlite3", workers=1, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found is not None, name
    return float(found.group(1))


def _decide(server: Server, answers: list[tuple[float, httpx.Response]]) -> None:
    with server.client() as client:
        answer = client.post("/v1/decisions/np-check", json={"facts": ORDER, "at": AT})
        answers.append((time.monotonic(), answer))


def test_a_decision_that_arrives_during_the_commit_wait_joins_the_group(server: Server) -> None:
    answers: list[tuple[float, httpx.Response]] = []
    started = time.monotonic()
    first = threading.Thread(target=_decide, args=(server, answers))
    first.start()
    time.sleep(WAIT_S / 4)  # the first is decided and waits for company
    second = threading.Thread(target=_decide, args=(server, answers))
    second.start()
    first.join(30)
    second.join(30)
    assert [a.status_code for _, a in answers] == [200, 200]
    # both answered after the wait, by one commit
    assert all(when - started >= WAIT_S for when, _ in answers)
    assert abs(answers[0][0] - answers[1][0]) < WAIT_S / 2
    with server.client() as client:
        text = client.get("/metrics").text
    assert _metric(text, "kimari_log_commit_rows_count") == 1
    assert _metric(text, "kimari_log_commit_rows_sum") == 2
    with server.client() as client:
        for _, answer in answers:  # and both are in the log
            logged = client.get(f"/v1/decisions/{answer.json()['decision_id']}")
            assert logged.status_code == 200, logged.text


def _decide_in_turn(server: Server, count: int) -> str:
    """`count` decisions one after the other; the text of /metrics after them."""
    with server.client() as client:
        for _ in range(count):
            answer = client.post("/v1/decisions/np-check", json={"facts": ORDER, "at": AT})
            assert answer.status_code == 200, answer.text
        return client.get("/metrics").text


@pytest.mark.parametrize(
    ("below_ms", "inline_at_least", "inline_at_most"),
    [
        ("0", 0, 0),  # never on the deciding thread: the committer commits every group
        ("0.001", 1, 3),  # every commit is slow: the first, then a probe per 64 groups
        ("60000", 40, 40),  # every commit is quick: all on the deciding thread
    ],
)
def test_where_a_group_is_committed_follows_how_long_commits_take(
    tmp_path: Path, below_ms: str, inline_at_least: int, inline_at_most: int
) -> None:
    env = {"KIMARI_COMMIT_INLINE_BELOW_MS": below_ms}
    srv = Server(copy_project(tmp_path), tmp_path / "var" / "kimari.sqlite3", env=env)
    try:
        count = 40 if below_ms != "0.001" else 140
        text = _decide_in_turn(srv.start(), count)
    finally:
        srv.stop()
    assert _metric(text, "kimari_log_commit_rows_sum") == count  # every one logged
    assert inline_at_least <= _metric(text, "kimari_log_inline_commits_total") <= inline_at_most
    assert _metric(text, "kimari_log_commit_cpu_seconds_total") > 0
