"""Three replicas on one PostgreSQL database behind HAProxy, under faults.

The three start at the same moment on an empty database: each policy of the folder is
published once (bootstrap), by one of them. A stream of decisions and flow events goes
through the load balancer (the configuration of docs/deployment.md) from several clients,
each retrying 502/503 with the same idempotency key or event id, as that page tells
clients to. While it runs:

1. the first replica is restarted as in a rolling restart (SIGTERM, `shutdown_drain`,
   started again on its port): the stream sees nothing but 200s meanwhile;
2. meanwhile a policy change goes through the lifecycle over HTTP, through the balancer
   (so each step may land on another replica): an impact job of one draft, another draft
   submitted (a job: its tests, and an impact replay of the decisions logged in
   PostgreSQL, in processes of their own), a self-approval refused, bob's approval; every
   replica then serves the new publication;
3. the third replica is killed with -9, then PostgreSQL is restarted.

Afterwards: no answer was a 500 (a 503 is `retriable`), every acknowledged decision is in
the log, every entity's history has versions 1..n with each event once; with the killed
replica started again, a run of publications (rollbacks) made on one replica are each
served by all three within a second, and so is a data set put on one replica; an
idempotency key is honoured across replicas.

The figures are printed (pytest -s): how long the rolling restart took, and from each
publication's answer to the moment each replica answered a decision with it.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from engine.project.project import load_project
from engine.store.decisions import DecisionLog
from engine.store.flows import FlowStore
from engine.store.revisions import RevisionStore
from tests import ROOT, haproxy
from tests.lifecycle.conftest import cancellation
from tests.pg_server import PgServer
from tests.service.server_process import ADMIN_TOKEN, DECIDE_TOKEN, TOKENS, Server

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
T = TypeVar("T")
ALICE, BOB = "alice-secret-0123", "bob-secret-01234"  # two editors: decide + publish
REPLICA_TOKENS = f"{TOKENS},{ALICE}:alice:decide+publish,{BOB}:bob:decide+publish"
POLICY = "/v1/policies/cancellation-fees"
WORDING = ("キャンセル料は半額です", "キャンセル料は報酬の半額です")
NO_FEE_DAYS = "    default: 7\n    minimum: 0\n    refs: [FE-2]"
PUBLICATIONS = 6  # rollbacks measured after the stream
WITHIN_S = 1.0  # the promise: a publication reaches every replica within a second
DRAIN_S = 2.0  # above the time HAProxy takes to mark a replica down: fall 2 x inter 500ms


def start_replicas(
    policies: Path, store: str, count: int, env: dict[str, str] | None = None
) -> list[Server]:
    env = {"KIMARI_TOKENS": REPLICA_TOKENS, **(env or {})}
    servers = [Server(policies, store, workers=1, env=env) for _ in range(count)]
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
    for server in servers:
        server.bind_port = server.port  # started again, it takes the same port
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
        self.transport_errors: list[str] = []  # reset or refused connections, lost answers
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
            except httpx.TransportError as exc:
                with self.lock:
                    self.transport_errors.append(f"{time.monotonic():.2f} {exc!r}")
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


def test_three_replicas_keep_every_acknowledged_write_and_serve_every_publication(
    tmp_path: Path, shipped: Path
) -> None:
    pg = PgServer().start()  # its own: this test restarts it
    replicas: list[Server] = []
    propagation: list[list[float]] = []
    try:
        store = pg.create_database("kimari")
        # at the same moment, on an empty store
        replicas = start_replicas(shipped, store, 3, {"KIMARI_SHUTDOWN_DRAIN": str(DRAIN_S)})
        check_bootstrap(store, shipped)
        with haproxy.running(tmp_path, [s.port for s in replicas]) as url:
            stream = Stream(url)
            stream.start()
            try:
                wait_for(lambda: stream.acknowledged() >= 30, 30, "the stream did not start")
                # a lifecycle change published while the first replica restarts
                published = restart_gracefully(
                    stream, replicas[0], lambda: publish_a_change(url, shipped)
                )
                propagation.append(served_by_all(replicas, published))
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
        replicas[2].start()  # on its port again
        propagation += roll_back_and_forth(replicas, published["number"])
        report_propagation(propagation)
        check_publication(replicas)
        check_keys_across_replicas(replicas)
    finally:
        for server in replicas:
            server.stop()
        pg.destroy()


def check_bootstrap(store: str, policies: Path) -> None:
    """Each policy of the folder was published once, by one of the replicas that started
    together; none left a record behind."""
    expected = sorted(load_project(policies).policies)
    revisions = RevisionStore(store)
    try:
        assert sorted(revisions.published()) == expected
        for policy_id in expected:
            assert [p.kind for p in revisions.publications(policy_id)] == ["bootstrap"], policy_id
            assert [r.state for r in revisions.records(policy_id)] == ["published"], policy_id
    finally:
        revisions.close()


def call(client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response:
    """A request through the balancer, sent again on 502/503/504 or a lost connection (the
    lifecycle's writes are refused, not doubled, when a first try did land: 409)."""
    deadline = time.monotonic() + RETRY_FOR_S
    while True:
        try:
            answer = client.request(method, path, **kw)
            if answer.status_code not in (502, 503, 504):
                return answer
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{method} {path}: no answer"
        time.sleep(0.05)


def follow_job(client: httpx.Client, answer: httpx.Response) -> dict[str, Any]:
    """A 202 job followed to its end, each look at it maybe on another replica."""
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    deadline = time.monotonic() + 60
    while True:
        job = call(client, "GET", location).json()
        if job["state"] != "running":
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def publish_a_change(url: str, policies: Path) -> dict[str, Any]:
    """Through the balancer: twelve cancellation-fees decisions; the impact job of one
    draft; another draft (a wording change) submitted (a job: its tests and an impact replay
    over those decisions, in processes of their own on the PostgreSQL store); a
    self-approval refused; bob's approval. The publication."""
    text = (policies / "cancellation-fees.yaml").read_text(encoding="utf-8")
    assert WORDING[0] in text
    with (
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {DECIDE_TOKEN}"}) as svc,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ALICE}"}) as alice,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {BOB}"}) as bob,
    ):
        made = [
            call(svc, "POST", "/v1/decisions/cancellation-fees", json=cancellation(day))
            for day in range(1, 13)
        ]
        assert all(m.status_code == 200 for m in made), [m.text for m in made]
        # an impact job of a draft moving the no-fee threshold from 7 days to 5: it replays
        # the log from PostgreSQL in processes of its own; days 6 and 7 change
        moved = text.replace(NO_FEE_DAYS, NO_FEE_DAYS.replace("7", "5"))
        threshold = call(
            alice, "POST", f"{POLICY}/revisions", json={"source": moved, "state": "draft"}
        )
        assert threshold.status_code == 201, threshold.text
        impact = follow_job(
            alice,
            call(alice, "POST", f"{POLICY}/impact", json={"draft": threshold.json()["number"]}),
        )
        assert impact["state"] == "done", impact
        report = impact["report"]
        assert (report["replayed"], report["changed"], report["failed"]) == (12, 2, 0), report
        assert [c["decision_id"] for c in report["changes"]] == [
            m.json()["decision_id"] for m in made[5:7]
        ]
        drafted = call(
            alice,
            "POST",
            f"{POLICY}/revisions",
            json={"source": text.replace(*WORDING), "state": "draft", "message": "wording"},
        )
        assert drafted.status_code == 201, drafted.text
        number = drafted.json()["number"]
        job = follow_job(alice, call(alice, "POST", f"{POLICY}/revisions/{number}:submit"))
        assert job["state"] == "done", job
        record = job["report"]["revision"]
        assert (record["state"], record["author"], record["tests"]["failed"]) == (
            "pending",
            "alice",
            0,
        )
        assert (record["impact"]["replayed"], record["impact"]["changed"]) == (12, 0)
        refused = call(alice, "POST", f"{POLICY}/revisions/{number}:approve")
        assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
        approved = call(bob, "POST", f"{POLICY}/revisions/{number}:approve")
        assert approved.status_code == 200, approved.text
        publication = approved.json()["publication"]
        audit = call(bob, "GET", f"{POLICY}/audit").json()["entries"]
        actions = [(e["action"], e["number"]) for e in audit]
        assert actions[:2] == [("approve", number), ("submit", number)], actions
        assert ("draft", number) in actions and ("impact", None) in actions
    assert (publication["kind"], publication["number"]) == ("approval", number)
    return publication  # type: ignore[no-any-return]


def served_by_all(replicas: list[Server], publication: dict[str, Any]) -> list[float]:
    """Seconds from now (the publication's answer) until each replica decides with it:
    each replica asked directly, in a thread of its own, every 10 ms."""
    began = time.monotonic()
    took: dict[int, float] = {}

    def watch(index: int, server: Server) -> None:
        with server.client() as client:
            while time.monotonic() - began < 10:
                answer = client.post("/v1/decisions/cancellation-fees", json=cancellation(3))
                policy = answer.json()["policy"] if answer.status_code == 200 else {}
                if policy.get("publication") == publication["publication"]:
                    assert policy["revision"] == publication["revision"]
                    took[index] = time.monotonic() - began
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=watch, args=(i, s)) for i, s in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(took) == list(range(len(replicas))), (
        f"publication {publication['publication']} served by replicas {sorted(took)} only"
    )
    return [took[i] for i in range(len(replicas))]


def roll_back_and_forth(replicas: list[Server], approved: int) -> list[list[float]]:
    """PUBLICATIONS rollbacks on the first replica, alternately to the bootstrap revision
    and to the approved one; the propagation of each."""
    times = []
    with replicas[0].client(BOB) as bob:
        for n in range(PUBLICATIONS):
            target = 1 if n % 2 == 0 else approved
            answer = bob.post(f"{POLICY}/rollback", json={"to": target, "message": f"#{n}"})
            assert answer.status_code == 200, answer.text
            publication = answer.json()
            assert (publication["kind"], publication["number"]) == ("rollback", target)
            times.append(served_by_all(replicas, publication))
    return times


def report_propagation(times: list[list[float]]) -> None:
    """Print the figures of docs/deployment.md; each publication served everywhere within
    WITHIN_S."""
    slowest = [max(t) for t in times]
    others = sorted(x for t in times for x in t if x > 0.0)
    print(
        f"\npropagation of {len(times)} publications to 3 replicas (s): slowest replica "
        f"min {min(slowest):.3f} median {statistics.median(slowest):.3f} max "
        f"{max(slowest):.3f}; every replica: "
        + " ".join(f"[{', '.join(f'{x:.3f}' for x in t)}]" for t in times)
    )
    assert others, "no replica had to follow a publication made on another"
    assert max(slowest) <= WITHIN_S, slowest


def restart_gracefully(stream: Stream, server: Server, meanwhile: Callable[[], T]) -> T:
    """One step of the rolling restart of docs/deployment.md (every step is the same, one
    replica after another): SIGTERM; the replica turns unready for DRAIN_S while it still
    answers, and exits 0; it is started again on its port (while `meanwhile` runs: its
    result is returned). HAProxy routes around it, and back to it after: the stream sees
    nothing but 200s."""
    with stream.lock:
        statuses, transport_errors = Counter(stream.statuses), len(stream.transport_errors)
    began = time.monotonic()
    assert server.terminate() == 0
    stopped = time.monotonic()
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as exc:
            failed.append(exc)

    back = threading.Thread(target=start)
    back.start()
    result = meanwhile()
    back.join(60)
    if failed:
        raise failed[0]
    wait_for(lambda: decided(server) > 0, 15, "the balancer did not take it back")
    print(
        f"\nrolling restart of :{server.port}: stopped in {stopped - began:.2f} s (drain "
        f"{DRAIN_S:g} s), back in the balancer {time.monotonic() - stopped:.2f} s later"
    )
    with stream.lock:
        meantime = stream.statuses - statuses
        errors = stream.transport_errors[transport_errors:]
    assert set(meantime) == {200} and errors == [], (meantime, errors)
    return result


def decided(server: Server) -> float:
    """Decisions this replica answered since it started (its front's metrics)."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    text = httpx.get(f"{server.url}/metrics", headers=admin, timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kimari_decisions_total{")
    )


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
