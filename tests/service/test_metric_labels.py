"""The decisions counter's outcome label writes its value as JSON does, as the log's
`outcome=` filter reads it: `fee_tier=null`, not Python's `fee_tier=None`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped, running

UNCOLLECTED = {  # only the uncollected question: no fee is proposed, fee_tier is null
    "uncollected": {
        "reward": 100000,
        "documents_guided_on": "2024-01-31",
        "booked_on": "2024-02-29",
        "assignee_share": 25,
        "manager_share": 40,
    }
}
CANCELLATION = {
    "cancellation": {
        "reward": 150000,
        "stage": "initial_only",
        "contract_start": "2024-04-01",
        "cancelled_on": "2024-04-03",
        "workload_percent": 30,
    }
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("labels")
    with running(tmp, policies=copy_shipped(tmp)) as srv:
        yield srv


def test_a_null_headline_is_labelled_null_and_the_log_filter_finds_it(server: Server) -> None:
    with server.client(ADMIN_TOKEN) as client:
        for facts in (UNCOLLECTED, CANCELLATION):
            answer = client.post("/v1/decisions/cancellation-fees", json={"facts": facts})
            assert answer.status_code == 200, answer.text
        metrics = client.get("/metrics").text
        found = client.get("/v1/decisions", params={"outcome": "fee_tier=null"}).json()
    policy = 'policy="cancellation-fees"'
    assert f'kimari_decisions_total{{{policy},outcome="fee_tier=null"}} 1' in metrics
    assert f'kimari_decisions_total{{{policy},outcome="fee_tier=none"}} 1' in metrics
    assert "None" not in metrics
    assert len(found["decisions"]) == 1


def _counted(client: object, label: str) -> int:
    metrics = client.get("/metrics").text  # type: ignore[attr-defined]
    wanted = f'kimari_decisions_total{{policy="cancellation-fees",outcome="{label}"}} '
    found = [line for line in metrics.splitlines() if line.startswith(wanted)]
    return int(float(found[0].removeprefix(wanted))) if found else 0


def test_only_the_decisions_logged_as_new_are_counted(server: Server) -> None:
    """A batch [new, conflict, replay] of one key makes one decision: the other two are found
    to be a conflict and a replay only when the log is written, and count as a replay of a
    single request does (not at all)."""
    items = [
        {"facts": CANCELLATION, "decision_id": "counted-1"},
        {"facts": UNCOLLECTED, "decision_id": "counted-1"},  # the key, another request: 409
        {"facts": CANCELLATION, "decision_id": "counted-1"},  # the same request: replayed
    ]
    with server.client(ADMIN_TOKEN) as client:
        before = _counted(client, "fee_tier=none")
        answer = client.post("/v1/decisions/cancellation-fees:batch", json={"items": items})
        assert [r["status"] for r in answer.json()["results"]] == [200, 409, 200]
        assert _counted(client, "fee_tier=none") == before + 1
        single = client.post(
            "/v1/decisions/cancellation-fees",
            json={"facts": CANCELLATION},
            headers={"Idempotency-Key": "counted-1"},
        )
        assert single.headers.get("idempotent-replayed") == "true"
        again = client.post("/v1/decisions/cancellation-fees:batch", json={"items": items[:1]})
        assert again.json()["results"][0]["status"] == 200
        assert _counted(client, "fee_tier=none") == before + 1  # replays: none counted
        fresh = client.post(
            "/v1/decisions/cancellation-fees:batch", json={"items": [{"facts": CANCELLATION}]}
        )
        assert fresh.status_code == 200
        assert _counted(client, "fee_tier=none") == before + 2  # a new one is
