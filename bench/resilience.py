"""Resilience measured: kill -9 under load, hostile requests, injected worker crashes.

    .venv/bin/python bench/resilience.py            # about two minutes; prints a markdown table

Each part starts a real `kimari serve` (the shipped policies, two workers, a fresh store
under a temporary folder) and drives it from client threads, as tests/service does:

1. decisions under kill -9: clients post decisions; the whole service (front and workers)
   is killed with SIGKILL mid-stream, restarted on the same store, five times; every
   decision that was answered 200 must be in the log.
2. flow moves under kill -9: clients move entities of claim-status back and forth (claim,
   cancel, once each estimate is made 対象外 with its reason: EX-2), each move sent by the
   dealer with its own event id; the service is killed three times; each
   entity's history must hold every acknowledged move, and no move twice.
3. hostile requests: while clients decide, one client sends the requests that used to
   kill a worker (dates at the edge of years 1 and 9999, settings that are lists or texts,
   integers past 64 bits), five a second; no worker may die and no ordinary decision fail.
4. injected crashes: with test faults on, a request now and then makes its worker exit
   or segfault, as a durable_rules crash would; each is answered 503 worker_crashed, the
   slot restarts, and the ordinary decisions around it are counted.

Nothing here is a pass/fail test (tests/service holds the bounded ones); the counts are
recorded in docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.service.server_process import ADMIN_TOKEN, DECIDE_TOKEN, Server  # noqa: E402

AT = "2024-10-01T10:00:00+09:00"
ORDER = {
    "order": {
        "id": "O-1",
        "total": 5980,
        "sequence": 1,
        "customer": {"id": "C-1", "name": "青木 誠", "postal_code": "150-0002"},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
}
DEALER = {"id": "dealer-1", "roles": ["販売店"]}  # who claims and cancels (EX-6)
# who sends a lead (FU-1): without an actor every event would be refused before the worker
SENDER = {"id": "op-1", "roles": ["オートックワン"]}
HOSTILE: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/v1/flows/lead-follow-up/X{n}/events",
        {"event": {"type": "send"}, "actor": SENDER, "at": "9999-12-31T23:59:59-14:00"},
    ),
    (
        "POST",
        "/v1/flows/lead-follow-up/Y{n}/events",
        {"event": {"type": "send"}, "actor": SENDER, "at": "0001-01-01T00:00:00+14:00"},
    ),
    (
        "POST",
        "/v1/flows/lead-follow-up/Z{n}/events",
        {"event": {"type": "send", "sent_at": "9999-12-31T23:59:59+09:00"}, "actor": SENDER},
    ),
    (
        "PUT",
        "/v1/flows/lead-follow-up/IMP-{n}",
        {"state": "new", "facts": {"sent_at": "9999-12-31T23:59:59+09:00"}},
    ),
    ("POST", "/v1/decisions/order-holds", {"facts": ORDER, "settings": [None, None]}),
    (
        "POST",
        "/v1/flows/claim-status/S{n}/events",
        {"event": {"type": "claim"}, "actor": DEALER, "settings": "x"},
    ),
    (
        "POST",
        "/v1/decisions/cancellation-fees",
        {"facts": {"cancellation": {"reward": 1e300, "stage": "initial_only"}}},
    ),
]


def project(tmp: Path) -> Path:
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp / folder, dirs_exist_ok=True)
    return tmp / "policies"


def server(tmp: Path, **env: str) -> Server:
    return Server(project(tmp), tmp / "var" / "kimari.sqlite3", workers=2, env=env)


def restarts(srv: Server) -> int:
    with srv.client() as client:
        text = client.get("/metrics").text
    found = re.search(r"^kimari_worker_restarts_total (\d+)$", text, re.M)
    return int(found.group(1)) if found else -1


def decide_until(url: str, stop: threading.Event, ok: list[str], failed: Counter[int]) -> None:
    headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        while not stop.is_set():
            try:
                answer = client.post("/v1/decisions/order-holds", json={"facts": ORDER, "at": AT})
            except httpx.HTTPError:
                return  # the service was killed
            if answer.status_code == 200:
                ok.append(answer.json()["decision_id"])
            else:
                failed[answer.status_code] += 1


def threads(count: int, target: Callable[..., None], *args: Any) -> list[threading.Thread]:
    started = [threading.Thread(target=target, args=args, daemon=True) for _ in range(count)]
    for thread in started:
        thread.start()
    return started


def decisions_under_kill_9(tmp: Path, rounds: int = 5) -> dict[str, Any]:
    acknowledged: list[str] = []
    for _ in range(rounds):
        srv = server(tmp).start()
        stop = threading.Event()
        clients = threads(6, decide_until, srv.url, stop, acknowledged, Counter())
        time.sleep(4)
        srv.kill()
        stop.set()
        for client in clients:
            client.join(10)
    srv = server(tmp).start()  # recovery on the same store
    srv.stop()
    with sqlite3.connect(tmp / "var" / "kimari.sqlite3") as db:
        logged = {row[0] for row in db.execute("SELECT decision_id FROM decisions")}
    missing = [d for d in acknowledged if d not in logged]
    return {"kills": rounds, "acknowledged": len(acknowledged), "missing": len(missing)}


def move_until(url: str, stop: threading.Event, entity: str, moves: list[str]) -> None:
    """exclude (once: EX-2, a claim needs the estimate 対象外 with its reason), then claim,
    cancel, claim, ... on one entity; each acknowledged event id is kept."""
    headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
    path = f"/v1/flows/claim-status/{entity}"

    def where(client: httpx.Client) -> tuple[str, bool]:
        view = client.get(path).json()
        return view["state"]["id"], view["facts"].get("estimate_status") == "対象外"

    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        state, excluded = where(client)
        while not stop.is_set():
            event: dict[str, Any] = {"type": "claim" if state == "not_claimed" else "cancel"}
            if state == "not_claimed" and not excluded:
                event = {"type": "exclude", "exclusion_reason": "重複"}
            event_id = f"{entity}-{len(moves)}-{time.monotonic_ns()}"
            body = {"event": event, "actor": DEALER, "at": AT, "event_id": event_id}
            try:
                answer = client.post(f"{path}/events", json=body)
            except httpx.HTTPError:
                return
            if answer.status_code == 200:
                moves.append(event_id)
                state = answer.json()["state"]["after"]["id"]
                excluded = excluded or event["type"] == "exclude"
            elif answer.status_code == 409:  # refused: read where it stands
                state, excluded = where(client)


def flows_under_kill_9(tmp: Path, rounds: int = 3) -> dict[str, Any]:
    entities = [f"K9-{i}" for i in range(8)]
    moves: dict[str, list[str]] = {e: [] for e in entities}
    for _ in range(rounds):
        srv = server(tmp).start()
        stop = threading.Event()
        clients = [threads(1, move_until, srv.url, stop, e, moves[e])[0] for e in entities]
        time.sleep(4)
        srv.kill()
        stop.set()
        for client in clients:
            client.join(10)
    srv = server(tmp).start()
    lost = doubled = stored = 0
    try:
        with srv.client() as client:
            for entity in entities:
                history = client.get(f"/v1/flows/claim-status/{entity}/history").json()["moves"]
                ids = [m.get("event_id") for m in history]
                stored += len(ids)
                lost += len(set(moves[entity]) - set(ids))
                doubled += len(ids) - len(set(ids))
    finally:
        srv.stop()
    acknowledged = sum(len(m) for m in moves.values())
    return {
        "kills": rounds,
        "acknowledged": acknowledged,
        "stored": stored,
        "lost": lost,
        "doubled": doubled,
    }


def hostile(tmp: Path, seconds: float = 10.0) -> dict[str, Any]:
    srv = server(tmp).start()
    stop = threading.Event()
    ok: list[str] = []
    failed: Counter[int] = Counter()
    answers: Counter[int] = Counter()
    try:
        clients = threads(6, decide_until, srv.url, stop, ok, failed)
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=srv.url, headers=headers, timeout=10) as client:
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                method, path, body = HOSTILE[n % len(HOSTILE)]
                answer = client.request(method, path.format(n=n), json=body)
                answers[answer.status_code] += 1
                n += 1
                time.sleep(0.2)
        stop.set()
        for client_thread in clients:
            client_thread.join(10)
        died = restarts(srv)
    finally:
        srv.stop()
    return {
        "seconds": seconds,
        "hostile": sum(answers.values()),
        "hostile answers": dict(sorted(answers.items())),
        "ordinary": len(ok) + sum(failed.values()),
        "ordinary failed": sum(failed.values()),
        "workers restarted": died,
    }


def injected(tmp: Path, crashes: int = 10) -> dict[str, Any]:
    srv = server(tmp, KIMARI_TEST_FAULTS="1").start()
    stop = threading.Event()
    ok: list[str] = []
    failed: Counter[int] = Counter()
    answers: Counter[str] = Counter()
    try:
        clients = threads(6, decide_until, srv.url, stop, ok, failed)
        headers = {"Authorization": f"Bearer {DECIDE_TOKEN}"}
        with httpx.Client(base_url=srv.url, headers=headers, timeout=10) as client:
            for n in range(crashes):
                fault = ("exit", "segv")[n % 2]
                answer = client.post(
                    "/v1/decisions/order-holds",
                    json={"facts": ORDER, "at": AT},
                    headers={"X-Kimari-Test-Fault": fault},
                )
                answers[f"{answer.status_code} {answer.json().get('code')}"] += 1
                srv.wait_ready(2, 60)
                time.sleep(0.5)
        stop.set()
        for client_thread in clients:
            client_thread.join(10)
        died = restarts(srv)
    finally:
        srv.stop()
    return {
        "crashes injected": crashes,
        "their answers": dict(answers),
        "ordinary": len(ok) + sum(failed.values()),
        "ordinary failed": dict(failed),
        "workers restarted": died,
    }


def main() -> None:
    parts = {
        "decisions under kill -9": decisions_under_kill_9,
        "flow moves under kill -9": flows_under_kill_9,
        "hostile requests under load": hostile,
        "injected worker crashes under load": injected,
    }
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("| part | result |")
    print("|---|---|")
    for name, run in parts.items():
        with tempfile.TemporaryDirectory() as tmp:
            result = run(Path(tmp))
        shown = ", ".join(f"{k}: {v}" for k, v in result.items())
        print(f"| {name} | {shown} |", flush=True)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
