"""A rolling restart as a load balancer sees it: SIGTERM under load.

A real `kimari serve` (two workers) decides for four client threads. A balancer thread
polls /readyz every 50 ms, as a load balancer does, and the clients send only while it
routes to this replica. SIGTERM goes to the `kimari serve` process alone, as an
orchestrator sends it. Then:

- /readyz turns 503 while decisions are still answered (the drain), so the balancer stops
  routing before the port closes;
- no client sees a reset or any other transport error: every request it sent got a full
  answer;
- the process exits 0, every acknowledged decision is in the decision log, and the store
  was closed cleanly: no -wal and no -shm file is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import orjson

from engine.core.jsonvalue import loads_exact
from engine.service.config import load_config
from engine.service.http import App
from tests import ROOT
from tests.service.server_process import Server
from tests.service.test_routes import RecordingPool, request

CLIENTS = 4
DRAIN = 1.0
FACTS = loads_exact((ROOT / "examples" / "order-holds.json").read_bytes())


class Balancer:
    """Routes to the replica until its /readyz says otherwise (polled every 50 ms)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.routing = threading.Event()
        self.routing.set()
        self.unready_at: float | None = None
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while self.routing.is_set():
                with contextlib.suppress(httpx.HTTPError):  # probe errors are not requests
                    if client.get("/readyz").status_code == 503:
                        self.unready_at = time.monotonic()
                        self.routing.clear()
                time.sleep(0.05)


class Client(threading.Thread):
    def __init__(self, server: Server, balancer: Balancer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.balancer = balancer
        self.acknowledged: list[str] = []
        self.closing_answers = 0  # answered during the drain, with "connection: close"
        self.failures: list[str] = []

    def run(self) -> None:
        with self.server.client() as client:
            while self.balancer.routing.is_set():
                try:
                    answer = client.post(
                        "/v1/decisions/order-holds",
                        json={"facts": FACTS, "at": "2024-10-01T10:00:00+09:00"},
                    )
                except httpx.HTTPError as exc:  # a reset, a refused connection, a timeout
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    return
                if answer.status_code != 200:
                    self.failures.append(f"{answer.status_code}: {answer.text[:200]}")
                    return
                self.acknowledged.append(answer.json()["decision_id"])
                if answer.headers.get("connection") == "close":
                    self.closing_answers += 1


def test_sigterm_under_load_drains_answers_everything_logs_it_and_closes_the_store(
    tmp_path: Path,
) -> None:
    store = tmp_path / "var" / "kimari.sqlite3"
    env = {"KIMARI_SHUTDOWN_DRAIN": str(DRAIN), "KIMARI_SHUTDOWN_TIMEOUT": "10"}
    server = Server(ROOT / "policies", store, workers=2, env=env).start()
    try:
        balancer = Balancer(server.url)
        clients = [Client(server, balancer) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        time.sleep(0.5)  # under load
        assert server.proc is not None
        stopped_at = time.monotonic()
        os.kill(server.proc.pid, signal.SIGTERM)
        for client in clients:
            client.join(20)
        code = server.proc.wait(30)
    finally:
        server.stop()
    assert [f for c in clients for f in c.failures] == []
    assert code == 0, server.errors
    assert balancer.unready_at is not None and balancer.unready_at - stopped_at < DRAIN
    acknowledged = [d for c in clients for d in c.acknowledged]
    assert len(acknowledged) > 20
    assert sum(c.closing_answers for c in clients) > 0  # decisions went on during the drain
    # before anything opens the file again: a clean close left no WAL and no shared memory
    left = sorted(p.name for p in store.parent.iterdir())
    assert f"{store.name}-wal" not in left and f"{store.name}-shm" not in left, left
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
        logged = {row[0] for row in conn.execute("SELECT decision_id FROM decisions")}
    assert set(acknowledged) <= logged
    assert any("drained" in line for line in server.errors), server.errors


def test_a_draining_front_says_unready_and_closes_each_connection_it_answers() -> None:
    app = App(load_config(env={}), RecordingPool())  # type: ignore[arg-type]
    status, headers, _ = request(app, "GET", "/readyz", None)
    assert status == 200 and b"connection" not in headers
    app.draining = True
    status, headers, body = request(app, "GET", "/readyz", None)
    assert status == 503 and orjson.loads(body)["code"] == "shutting_down"
    status, headers, _ = request(app, "POST", "/v1/decisions/x", None, b"{}")
    assert status == 200 and headers[b"connection"] == b"close"  # still served
