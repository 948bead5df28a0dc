"""The lifecycle's requests run beside the decisions, not in their way.

An approval of order-holds re-runs the test cases of the flows that consult it: on the
deciding thread, every decision queued behind it waited the whole approval (227-342 ms,
docs/benchmarks.md). The test fault `slow` makes the approval take 2 s more, so that what
happens meanwhile can be seen; and an approval or a rollback still answers only once its
worker serves what it published."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import ROOT
from tests.service.server_process import Server, copy_shipped, finished_job

# timing-bound: `make test` runs it alone, after the files run two at a time
pytestmark = pytest.mark.serial

ALICE, BOB = "alice-secret-0123", "bob-secret-01234"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*,{BOB}:bob:decide+publish:*"
POLICY = "order-holds"  # two flows consult it: its approval runs their cases
ORDER = {"facts": json.loads((ROOT / "examples" / f"{POLICY}.json").read_text(encoding="utf-8"))}
SLOW = {"X-Kimari-Test-Fault": "slow"}  # 2 s more (engine/service/worker.py, _fault)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {"KIMARI_TOKENS": TOKENS, "KIMARI_TEST_FAULTS": "1", "KIMARI_RELOAD_INTERVAL": "60"}
    srv = Server(copy_shipped(tmp_path), tmp_path / "var" / "kimari.sqlite3", env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _submitted(client: httpx.Client) -> int:
    """A pending revision of the policy (a comment more), once its submission job is done."""
    source = (ROOT / "policies" / f"{POLICY}.yaml").read_text(encoding="utf-8") + "\n# again\n"
    job = finished_job(
        client, client.post(f"/v1/policies/{POLICY}/revisions", json={"source": source})
    )
    assert job["state"] == "done", job.get("error")
    return int(job["report"]["revision"]["number"])


def _decide(client: httpx.Client) -> tuple[float, str]:
    """How long a decision took, and the revision that decided it."""
    started = time.monotonic()
    answer = client.post(f"/v1/decisions/{POLICY}", json=ORDER)
    assert answer.status_code == 200, answer.text
    return time.monotonic() - started, answer.json()["policy"]["revision"]


def test_decisions_go_on_while_their_worker_approves_and_the_answer_follows_the_swap(
    server: Server,
) -> None:
    with server.client(ALICE) as alice:
        number = _submitted(alice)
        _, before = _decide(alice)
        result: dict[str, Any] = {}

        def approve() -> None:
            with server.client(BOB) as bob:
                url = f"/v1/policies/{POLICY}/revisions/{number}:approve"
                result["answer"] = bob.post(url, json={}, headers=SLOW)

        began = time.monotonic()
        thread = threading.Thread(target=approve)
        thread.start()
        decided = []  # (started, seconds, revision)
        while thread.is_alive():
            started = time.monotonic()
            decided.append((started, *_decide(alice)))
        thread.join()
        ended = time.monotonic()
        answer = result["answer"]
        assert answer.status_code == 200, answer.text
        assert ended - began >= 2.0
        # the one worker answered meanwhile, every decision promptly (none waited for the
        # approval), with the revision it served
        assert max(seconds for _, seconds, _ in decided) < 1.0
        inside = [d for d in decided if began + 0.5 <= d[0] and d[0] + d[1] < ended - 0.1]
        assert len(inside) >= 5
        after = answer.json()["revision"]["revision"]  # the record's content hash
        assert {revision for _, _, revision in decided} <= {before, after}
        # answered once served: the next decision is the new revision's
        assert _decide(alice)[1] == after != before

        # a rollback answers once served too
        back = alice.post(f"/v1/policies/{POLICY}/rollback", json={"to": number - 1})
        assert back.status_code == 200, back.text
        assert _decide(alice)[1] == before
