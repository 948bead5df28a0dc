"""Three replicas on one PostgreSQL database behind HAProxy, under faults.

A stream of decisions and flow events goes through the load balancer (the configuration
of docs/deployment.md) from several clients, each retrying 502/503 with the same
idempotency key or event id, as that page tells clients to. Mid-stream one replica is
killed with -9 and PostgreSQL is restarted. Afterwards: no answer was a 500 (a 503 is
`retriable`), every acknowledged decision is in the log, every entity's history has
versions 1..n with each event once, and a data set put on one replica is served by all
three (the killed one started again).
"""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.store.decisions import DecisionLog
from engine.store.flows import FlowStore
from tests import ROOT, haproxy
from tests.pg_server import PgServer
from tests.service.server_process import ADMIN_TOKEN, DECIDE_TOKEN, Server

ORDER = {
    "order": {
        "id": "O-1001",
        "total": 5980,
        "sequence": 1,
        "customer": {
            "id": "C-10021",
            "name": "山田 太郎",
            "postal_code": "160-0022",
            "phone": "03-3350-1234",
        },
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
}
AT = "2024-10-01T10:00:00+09:00"
ENTITIES = ("K-1", "K-2")
CLIENTS = 4
RETRY_FOR_S = 20.0


def start_replicas(policies: Path, store: str, count: int) -> list[Server]:
    servers = [Server(policies, store, workers=1) for _ in range(count)]
    errors: list[BaseException] = []

    def start(server: Server) -> None:
        try:
            server.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return servers


class Stream:
    """Clients posting decisions and flow events through the balancer, each request
    retried (same key, same event id) on 502/503 and lost connections until answered."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.not_retriable: list[str] = []
        self.decisions: list[str] = []
        self.moves: dict[str, list[str]] = {e: [] for e in ENTITIES}
        self.unanswered = 0
        self.threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(RETRY_FOR_S + 10)

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.decisions) + sum(len(m) for m in self.moves.values())

    def _post(self, client: httpx.Client, path: str, body: dict[str, Any], **kw: Any) -> Any:
        deadline = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < deadline:
            try:
                answer = client.post(path, json=body, **kw)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            with self.lock:
                self.statuses[answer.status_code] += 1
            if answer.status_code == 503:
                problem = answer.json()
                with self.lock:
                    self.codes[problem["code"]] += 1
                    if problem.get("retriable") is not True:
                        self.not_retriable.append(answer.text)
            if answer.status_code in (502, 503, 504):
                time.sleep(0.05)
                continue
            return answer
        with self.lock:
            self.unanswered += 1
        return None

    def _client(self, index: int) -> None:
        headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                key = f"c{index}-{n}"
                if n % 2 == 0:
                    answer = self._post(
                        client,
                        "/v1/decisions/order-holds",
                        {"facts": ORDER, "at": AT},
                        headers={"Idempotency-Key": key},
                    )
                    if answer is not None and answer.status_code == 200:
                        assert answer.json()["decision_id"] == key
                        with self.lock:
                            self.decisions.append(key)
                    continue
                entity = ENTITIES[(index + n) % len(ENTITIES)]
                event = {
                    "event": {"type": "record_contact_attempt", "reached": False, "by": "佐藤"},
                    "actor": {"id": "sato", "roles": ["担当者"]},
                    "at": AT,
                    "event_id": key,
                }
                answer = self._post(client, f"/v1/flows/case-cancellation/{entity}/events", event)
                if answer is not None and answer.status_code == 200:
                    with self.lock:
                        self.moves[entity].append(key)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path / "policies"


def test_three_replicas_keep_every_acknowledged_write_through_kill_9_and_a_database_restart(
    tmp_path: Path, shipped: Path
) -> None:
    pg = PgServer().start()  # its own: this test restarts it
    replicas: list[Server] = []
    try:
        store = pg.create_database("kimari")
        replicas = start_replicas(shipped, store, 3)
        with haproxy.running(tmp_path, [s.port for s in replicas]) as url:
            stream = Stream(url)
            stream.start()
            try:
                wait_for(lambda: stream.acknowledged() >= 30, 30, "the stream did not start")
                replicas[2].kill()  # -9 to its supervisor, front and worker
                seen = stream.acknowledged()
                wait_for(lambda: stream.acknowledged() >= seen + 20, 20, "no answers after kill")
                pg.restart("fast", down_s=0.5)
                seen = stream.acknowledged()
                wait_for(lambda: stream.acknowledged() >= seen + 30, 30, "no answers after restart")
            finally:
                stream.finish()
        check_stream(stream)
        check_store(store, stream)
        replicas[2] = start_replicas(shipped, store, 1)[0]
        check_publication(replicas)
        check_keys_across_replicas(replicas)
    finally:
        for server in replicas:
            server.stop()
        pg.destroy()


def check_stream(stream: Stream) -> None:
    print(f"answers {dict(stream.statuses)}, 503 codes {dict(stream.codes)}, ", end="")
    print(f"{len(stream.decisions)} decisions, {sum(map(len, stream.moves.values()))} moves")
    assert stream.statuses[500] == 0, stream.statuses
    assert stream.codes["store_unavailable"] > 0, "the restart went unnoticed: no test of it"
    assert set(stream.statuses) <= {200, 502, 503, 504}, stream.statuses
    assert stream.not_retriable == []
    assert set(stream.codes) <= {"store_unavailable", "log_unavailable", "worker_crashed"}, (
        stream.codes
    )
    assert stream.unanswered == 0


def check_store(store: str, stream: Stream) -> None:
    log, flows = DecisionLog(store), FlowStore(store)
    try:
        assert [d for d in stream.decisions if log.get(d) is None] == []
        for entity, acknowledged in stream.moves.items():
            rows = flows.history("case-cancellation", entity)
            assert [r.version for r in rows] == list(range(1, len(rows) + 1)), entity
            events = [r.event_id for r in rows]
            assert len(events) == len(set(events)), f"{entity}: an event moved twice"
            assert set(acknowledged) <= set(events), f"{entity}: an acknowledged move is lost"
            loaded = flows.load("case-cancellation", entity)
            assert loaded is not None and loaded.version == len(rows)
    finally:
        log.close()
        flows.close()


def check_publication(replicas: list[Server]) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=replicas[0].url, headers=admin, timeout=10) as client:
        served = client.get("/v1/data/blacklist").json()
        answer = client.put("/v1/data/blacklist", json={"entries": served["entries"][:-1]})
        assert answer.status_code == 200, answer.text
        version = answer.json()["version"]
    assert version != served["version"]
    published = time.monotonic()
    for server in replicas:
        with server.client(ADMIN_TOKEN) as client:
            wait_for(
                lambda c=client: c.get("/v1/data/blacklist").json()["version"] == version,
                max(0.1, published + 1.0 - time.monotonic()),
                f"{server.url} does not serve the new blacklist within a second",
            )
            decided = client.post("/v1/decisions/order-holds", json={"facts": ORDER, "at": AT})
            assert decided.status_code == 200, decided.text
            assert decided.json()["data"]["blacklist"] == version
            assert decided.json()["policy"]["revision"]


def check_keys_across_replicas(replicas: list[Server]) -> None:
    """A retry on another replica gets the logged decision; the key reused for another
    request, on a third, is a conflict."""
    body = {"facts": ORDER, "at": AT}
    key = {"Idempotency-Key": "across-replicas-1"}
    with replicas[0].client() as first, replicas[1].client() as second:
        made = first.post("/v1/decisions/order-holds", json=body, headers=key)
        again = second.post("/v1/decisions/order-holds", json=body, headers=key)
    assert made.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == made.json()
    other = {**body, "at": "2024-10-02T10:00:00+09:00"}
    with replicas[2].client() as third:
        reused = third.post("/v1/decisions/order-holds", json=other, headers=key)
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_conflict"
