"""Flow state on both backends: exact values, compare-and-set moves, refusals apart.

The engine-level tests (tests/flow/) run on SQLite; these hold the store's own promises
on both backends, including what several replicas (each its own backend: connections,
locks) writing one entity at once must leave: versions 1..n, no move lost or doubled.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.flow.engine import FlowEngine
from engine.project.project import Project
from engine.store.backend import Backend, statements
from engine.store.flows import COMPONENT, MIGRATIONS, EntityState, FlowStore
from engine.store.sqlite import SqliteBackend
from tests import ROOT
from tests.strategies import act

CHILD = ROOT / "tests" / "flow" / "flow_child.py"


@dataclass(frozen=True)
class Actor:
    id: str = "tester"
    roles: tuple[str, ...] = ("担当者",)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "roles": list(self.roles)}


@dataclass(frozen=True)
class Move:
    """What the store keeps of a decided event (engine.flow.decide.Move has these fields)."""

    decision_id: str
    revision: str = "r1"
    at: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    event: Mapping[str, Any] = field(default_factory=lambda: {"type": "go"})
    event_type: str = "go"
    actor: Actor = field(default_factory=Actor)
    transition_id: str | None = "t-go"
    changes: Mapping[str, Any] = field(default_factory=dict)
    actions: Sequence[Mapping[str, Any]] = ()
    message: Mapping[str, str] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    refusal: Mapping[str, Any] | None = None


def step(before: EntityState, state: str) -> EntityState:
    at = f"2024-01-01T00:00:{before.version:02d}Z"
    return EntityState(
        state, {"n": before.version + 1}, before.version + 1, before.created_at or at, at, "go", at
    )


def test_stored_facts_come_back_with_their_exact_decimals(backend: Backend) -> None:
    store = FlowStore(backend)
    facts = {"rate": Decimal("0.1000000000000000055511151231257827"), "fee": 80000}
    assert store.seed("p", "E-1", EntityState("open", facts), revision="r1")
    loaded = store.load("p", "E-1")
    assert loaded is not None
    assert loaded.facts == facts
    assert isinstance(loaded.facts["rate"], Decimal) and isinstance(loaded.facts["fee"], int)


def test_seeding_an_entity_that_exists_changes_nothing(backend: Backend) -> None:
    store = FlowStore(backend)
    assert store.seed("p", "E-1", EntityState("open", {"a": 1}), revision="r1")
    assert not store.seed("p", "E-1", EntityState("closed", {"a": 2}), revision="r2")
    loaded = store.load("p", "E-1")
    assert loaded is not None and (loaded.state, loaded.facts) == ("open", {"a": 1})


def test_a_move_is_stored_with_its_history_row_and_a_stale_one_is_refused(
    backend: Backend,
) -> None:
    store = FlowStore(backend)
    start = EntityState("new", {})
    first = step(start, "open")
    assert store.commit_move("p", "E", start, first, Move("d1"), event_id="ev-1")
    assert not store.commit_move("p", "E", start, step(start, "other"), Move("d2"))  # stale
    second = step(first, "done")
    assert store.commit_move("p", "E", first, second, Move("d3"))
    loaded = store.load("p", "E")
    assert loaded is not None and (loaded.state, loaded.version) == ("done", 2)
    rows = store.history("p", "E")
    assert [(r.version, r.from_state, r.to_state, r.decision_id) for r in rows] == [
        (1, "new", "open", "d1"),
        (2, "open", "done", "d3"),
    ]
    found = store.find_event("p", "E", "ev-1")
    assert found is not None and found.version == 1
    assert store.find_event("p", "E", "ev-2") is None
    assert store.entity_ids("p") == ["E"]


def test_a_refusal_is_kept_apart_and_changes_neither_entity_nor_history(
    backend: Backend,
) -> None:
    store = FlowStore(backend)
    start = EntityState("new", {})
    first = step(start, "open")
    store.commit_move("p", "E", start, first, Move("d1"))
    refusal = Move("d2", transition_id=None, refusal={"code": "not_allowed", "state": "open"})
    assert store.log_refusal("p", "E", first, refusal)
    assert not store.log_refusal("p", "E", start, refusal)  # decided on a stale version
    assert store.load("p", "E") == first
    assert len(store.history("p", "E")) == 1
    refusals = store.refusals("p", "E")
    assert [(r["version"], r["code"], r["refusal"]["state"]) for r in refusals] == [
        (1, "not_allowed", "open")
    ]


def test_a_move_and_a_refusal_are_found_by_their_decision_id(backend: Backend) -> None:
    store = FlowStore(backend)
    start = EntityState("new", {})
    first = step(start, "open")
    store.commit_move("p", "E", start, first, Move("d1"))
    store.log_refusal("p", "E", first, Move("d2", transition_id=None, refusal={"code": "no"}))
    assert store.import_entity("p", "I", EntityState("open", {}), "r1", principal="ops")
    moved = store.find_decision("d1")
    assert moved is not None and (moved.policy_id, moved.entity_id) == ("p", "E")
    assert moved.move is not None and moved.move["state"] == {"before": "new", "after": "open"}
    assert moved.refusal is None
    refused = store.find_decision("d2")
    assert refused is not None and refused.move is None
    assert refused.refusal is not None and refused.refusal["code"] == "no"
    assert store.find_decision("d3") is None
    assert store.find_decision("") is None  # an import decided nothing


def test_a_move_and_a_refusal_are_found_by_the_decision_their_event_consulted(
    backend: Backend,
) -> None:
    store = FlowStore(backend)
    start = EntityState("new", {})
    first = step(start, "open")
    asked = {"type": "go", "decision": {"decision_id": "c1", "policy": {"id": "holds"}}}
    store.commit_move("p", "E", start, first, Move("d1", event=asked))
    again = {"type": "go", "decision": {"decision_id": "c2", "policy": {"id": "holds"}}}
    refused = Move("d2", event=again, transition_id=None, refusal={"code": "no"})
    store.log_refusal("p", "E", first, refused)
    moved = store.find_decision("c1")
    assert moved is not None and moved.consulted and moved.move is not None
    assert moved.move["decision_id"] == "d1" and moved.consulted_decision == asked["decision"]
    by_own = store.find_decision("d1")
    assert by_own is not None and not by_own.consulted
    found = store.find_decision("c2")
    assert found is not None and found.consulted and found.refusal is not None
    assert found.consulted_decision == again["decision"]
    assert store.find_decision("holds") is None


def _stored_before_migration_5(backend: Backend, events: dict[str, Any]) -> None:
    """A store as the release before migration 5 left it: a move and a refusal per event
    (decision ids h-KEY and r-KEY), written as that release wrote them."""
    backend.migrate(COMPONENT, MIGRATIONS[:4])
    with backend.write() as session:
        for n, (key, event) in enumerate(events.items(), start=1):
            text = json.dumps(event)
            session.execute(
                "INSERT INTO flow_history (policy_id, entity_id, version, event_type, event, "
                "at, transition, from_state, to_state, recorded, facts, actions, settings, "
                "revision, decision_id, stored_at) VALUES (?, ?, ?, 'go', ?, "
                "'2024-09-20T10:00:00+09:00', 'go', 'a', 'b', '{}', '{}', '[]', '{}', 'r1', "
                "?, '2024-09-20T01:00:00Z')",
                ("p", "E", n, text, f"h-{key}"),
            )
            session.execute(
                "INSERT INTO flow_refusals (policy_id, entity_id, version, event_type, event, "
                "at, state, code, refusal, settings, revision, decision_id, stored_at) VALUES "
                "(?, ?, ?, 'go', ?, '2024-09-20T10:00:00+09:00', 'b', 'no', '{}', '{}', 'r1', "
                "?, '2024-09-20T01:00:00Z')",
                ("p", "E", n, text, f"r-{key}"),
            )


def test_the_moves_and_refusals_stored_before_migration_5_are_found_by_what_they_consulted(
    backend: Backend,
) -> None:
    """Migration 5 fills `consulted_id` from the stored events, as a new row gets it: a text
    id only. PostgreSQL's JSON functions refuse a text with an escaped NUL anywhere in it:
    there such a row keeps its own id only, and the upgrade does not fail on it."""
    asked = {"decision_id": "c1", "policy": {"id": "holds"}, "outcome": {"hold": False}}
    _stored_before_migration_5(
        backend,
        {
            "asked": {"type": "go", "decision": asked},
            "number": {"type": "go", "decision": {"decision_id": 7}},
            "nothing": {"type": "go", "note": "no decision"},
            "not-an-object": {"type": "go", "decision": "c4"},
            "nul": {"type": "go", "note": "a\x00b", "decision": {"decision_id": "c5"}},
        },
    )
    store = FlowStore(backend)
    found = store.find_decision("c1")  # the move's and the refusal's: the move first
    assert found is not None and found.consulted and found.move is not None
    assert found.consulted_decision == asked
    moved, refused = store.find_decision("h-asked"), store.find_decision("r-asked")
    assert moved is not None and moved.move is not None and not moved.consulted
    assert refused is not None and refused.refusal is not None
    assert store.find_decision("7") is None and store.find_decision("c4") is None
    nul = store.find_decision("c5")
    if backend.kind == "postgresql":
        assert nul is None and store.find_decision("h-nul") is not None
    else:
        assert nul is not None and nul.consulted
    with backend.read() as session:
        filled = session.execute(
            "SELECT decision_id, consulted_id FROM flow_history UNION ALL "
            "SELECT decision_id, consulted_id FROM flow_refusals"
        ).fetchall()
    nul_id = None if backend.kind == "postgresql" else "c5"
    assert dict(filled) == {
        **{f"{side}-asked": "c1" for side in "hr"},
        **{f"{side}-nul": nul_id for side in "hr"},
        **{
            f"{side}-{key}": None for side in "hr" for key in ("number", "nothing", "not-an-object")
        },
    }


def test_replicas_moving_one_entity_at_once_lose_and_double_no_move(
    backends: Callable[[], Backend],
) -> None:
    """Each thread is a replica (its own backend) that reads, decides and commits with
    retry, as FlowEngine does: every commit lands on a distinct version."""
    stores = [FlowStore(backends()) for _ in range(3)]
    per_replica = 15
    barrier = threading.Barrier(len(stores))
    retries = [0] * len(stores)

    def run(i: int) -> None:
        store = stores[i]
        barrier.wait()
        for n in range(per_replica):
            while True:
                before = store.load("p", "hot") or EntityState("new", {})
                after = step(before, f"s{i}")
                if store.commit_move("p", "hot", before, after, Move(f"d{i}-{n}")):
                    break
                retries[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    total = per_replica * len(stores)
    rows = stores[0].history("p", "hot")
    assert [r.version for r in rows] == list(range(1, total + 1))
    assert len({r.decision_id for r in rows}) == total  # each move stored once
    loaded = stores[0].load("p", "hot")
    assert loaded is not None and loaded.version == total


def test_two_processes_appending_to_one_case_lose_no_contact_attempt(location: str) -> None:
    """CX2 across processes, on either backend: the flow engine's retry on a lost race."""
    FlowStore(location).close()  # the schema once, before the children race
    count = 15
    children = [
        subprocess.Popen(
            [sys.executable, str(CHILD), "append", location, "K-9", str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "done"
    store = FlowStore(location)
    try:
        entity = store.load("case-cancellation", "K-9")
        assert entity is not None and entity.version == 2 * count
        assert len(entity.facts["contact_attempts"]) == 2 * count
        rows = store.history("case-cancellation", "K-9")
        assert [r.version for r in rows] == list(range(1, 2 * count + 1))
    finally:
        store.close()


def test_a_refused_event_through_the_engine_changes_nothing_stored(
    backend: Backend, project: Project
) -> None:
    engine = FlowEngine(project, FlowStore(backend))
    at = "2024-09-10T10:00:00+09:00"
    exclude = {"type": "exclude", "exclusion_reason": "重複"}  # EX-2: before the claim
    assert act(engine, "claim-status", "C-1", exclude, at=at).allowed
    assert act(engine, "claim-status", "C-1", {"type": "claim"}, at=at).allowed
    before = (engine.store.load("claim-status", "C-1"), engine.history("claim-status", "C-1"))
    assert not act(engine, "claim-status", "C-1", {"type": "approve"}, at=at).allowed
    assert (engine.store.load("claim-status", "C-1"), engine.history("claim-status", "C-1")) == (
        before
    )
    assert len(engine.refusals("claim-status", "C-1")) == 1


def test_an_entity_held_by_one_replica_is_waited_for_by_another_on_postgresql(
    backends: Callable[[], Backend],
) -> None:
    first, second = FlowStore(backends()), FlowStore(backends())
    entered = threading.Event()

    def other_replica() -> None:
        with second.hold("p", "E"):
            entered.set()

    with first.hold("p", "E"), second.hold("p", "other-entity"):  # other entities: no wait
        waiter = threading.Thread(target=other_replica)
        waiter.start()
        waited = not entered.wait(0.3)
    waiter.join(10)
    assert entered.is_set()
    # PostgreSQL holds the entity per connection; SQLite's hold belongs to the process (a
    # record lock): its threads are kept apart by FlowEngine's entity lock instead
    assert waited == (first.backend.kind == "postgresql")


HOLDER = """
import sys, time
from pathlib import Path
from engine.store.flows import FlowStore
store = FlowStore(sys.argv[1])
with store.hold("p", "E"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    Path(sys.argv[3]).write_text("releasing")  # before the hold ends: seen by any next holder
"""


def test_an_entity_held_by_one_process_is_waited_for_by_another_on_sqlite(
    tmp_path: Path,
) -> None:
    """Without it a process short of CPU lost every compare-and-set round on an entity to
    one that kept committing, and gave up (flow_contention), nothing being wrong."""
    db, mark = tmp_path / "shared.sqlite3", tmp_path / "mark"
    FlowStore(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), "1.5", str(mark)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    store = FlowStore(db)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with store.hold("p", "other-entity"):  # another entity: no wait
            assert not mark.exists()
        with store.hold("p", "E"):  # this one: only once the other process let it go
            assert mark.exists()
    finally:
        store.close()
        holder.communicate(timeout=10)
    assert holder.returncode == 0


def test_replicas_applying_events_to_one_entity_lose_and_double_none(
    backends: Callable[[], Backend], project: Project
) -> None:
    """Three replicas (threads, each its own backend and engine; the python backend, since
    durable_rules may not be called from two threads) append to one case at once."""
    retries = [0]

    class Counting(FlowStore):
        def commit_move(self, *args: Any, **kwargs: Any) -> bool:
            done = super().commit_move(*args, **kwargs)
            retries[0] += not done
            return done

    engines = [FlowEngine(project, Counting(backends()), backend="python") for _ in range(3)]
    barrier = threading.Barrier(len(engines))
    event = {"type": "record_contact_attempt", "reached": False}

    def run(i: int) -> None:
        barrier.wait()
        for n in range(8):
            at = f"2024-01-01T{i:02d}:{n:02d}:00+09:00"
            assert act(engines[i], "case-cancellation", "K-1", event, at=at, event_id=f"{i}-{n}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = engines[0].history("case-cancellation", "K-1")
    assert [r.version for r in rows] == list(range(1, 25))
    assert sorted(r.event_id for r in rows) == sorted(
        f"{i}-{n}" for i in range(3) for n in range(8)
    )
    if engines[0].store.backend.kind == "postgresql":
        assert retries[0] == 0  # each held the entity while deciding: no decision wasted


def test_a_file_written_before_actors_gains_the_actor_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    """Migration 2 of the flows component adds `actor` to the history and the refusals:
    an old SQLite file is upgraded in place, its rows kept, their actor read as None."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    for statement in statements(MIGRATIONS[0].sqlite):
        conn.execute(statement)
    conn.execute("INSERT INTO schema_versions VALUES ('flows', 1)")
    conn.execute(
        "INSERT INTO flow_history (policy_id, entity_id, version, event_type, event, at, "
        "transition, from_state, to_state, recorded, facts, actions, settings, revision, "
        "decision_id, stored_at) VALUES ('p', 'E-1', 1, 'claim', '{}', "
        "'2024-09-20T10:00:00+09:00', 'claim', 'a', 'b', '{}', '{}', '[]', '{}', 'r1', "
        "'d1', '2024-09-20T10:00:00Z')"
    )
    conn.commit()
    conn.close()
    backend = SqliteBackend(path)
    store = FlowStore(backend)
    try:
        (row,) = store.history("p", "E-1")
        assert row.actor is None and row.transition == "claim"
        assert row.to_dict()["actor"] is None
        pragma = backend.connection().execute("PRAGMA table_info(flow_refusals)")
        assert "actor" in {r[1] for r in pragma}
    finally:
        store.close()
        backend.close()


def test_the_actor_of_a_move_and_of_a_refusal_is_kept(backend: Backend) -> None:
    store = FlowStore(backend)
    start = EntityState("new", {})
    store.commit_move("p", "E", start, step(start, "open"), Move("d1", actor=Actor("佐藤")))
    refusal = Move("d2", transition_id=None, refusal={"code": "no"}, actor=Actor("鈴木", ()))
    store.log_refusal("p", "E", step(start, "open"), refusal)
    assert store.history("p", "E")[0].actor == {"id": "佐藤", "roles": ["担当者"]}
    assert store.refusals("p", "E")[0]["actor"] == {"id": "鈴木", "roles": []}
