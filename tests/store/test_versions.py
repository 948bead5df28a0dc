"""Data-set versions, policy sources and generation counters on both backends; a data-set
replacement on one replica reaches the others (PostgreSQL: by NOTIFY, or the fallback poll)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from engine.compile.model import PolicySource
from engine.store.backend import Backend
from engine.store.versions import Expected, Store, VersionMoved


def test_a_put_data_set_is_current_and_bumps_the_generation(backend: Backend) -> None:
    store = Store(backend)
    assert store.fresh_data_generation() == 0 and store.current_data() == {}
    entries = [{"code": "A", "rate": Decimal("0.15")}]
    assert store.put_data("rates", "v1", entries) == 1
    assert store.put_data("rates", "v2", []) == 2
    assert {k: v[0] for k, v in store.current_data().items()} == {"rates": "v2"}
    stored = store.data_version("rates", "v1")
    assert stored is not None and stored.entries == entries and stored.source == "api"
    assert store.data_version("rates", "v9") is None
    assert store.reset_data("rates") == 3
    assert store.current_data() == {} and store.fresh_data_generation() == 3


def test_each_replacement_and_reset_of_a_data_set_records_who_and_when(
    backend: Backend,
) -> None:
    store = Store(backend)
    assert store.data_changes("rates") == []
    before = int(time.time() * 1000)
    store.put_data("rates", "v1", [], "alice")
    store.put_data("rates", "v2", [], "bob")
    store.reset_data("rates", "carol")
    store.put_data("other", "w1", [], "dave")  # another data set's change is not listed
    changes = store.data_changes("rates")
    assert [(c.action, c.version, c.principal) for c in changes] == [
        ("reset", None, "carol"),
        ("replaced", "v2", "bob"),
        ("replaced", "v1", "alice"),
    ]
    assert all(before <= c.at <= int(time.time() * 1000) for c in changes)
    assert [c.principal for c in store.data_changes("rates", limit=1)] == ["carol"]


def test_a_change_expecting_another_version_writes_nothing(backend: Backend) -> None:
    store = Store(backend)
    on_default = Expected(frozenset({"file-v"}), "file-v")  # no API version yet: the file's
    assert store.put_data("rates", "v1", [], "alice", on_default) == 1
    with pytest.raises(VersionMoved) as moved:
        store.put_data("rates", "v2", [], "bob", on_default)
    assert moved.value.current == "v1"
    with pytest.raises(VersionMoved):
        store.reset_data("rates", "bob", Expected(frozenset({"v0"}), "file-v"))
    assert store.fresh_data_generation() == 1
    assert [c.principal for c in store.data_changes("rates")] == ["alice"]
    assert store.data_versions("rates") == [store.data_versions("rates")[0]]
    assert store.reset_data("rates", "carol", Expected(frozenset({"v1"}), "file-v")) == 2
    assert store.put_data("rates", "v3", [], "dave", Expected(frozenset({"*"}), None)) == 3
    # v3 current in the store but no longer fitting its schema: the file default is served
    # (its ETag), and a change made on what is served is made
    on_served = Expected(frozenset({"file-v"}), "file-v", unfit="v3")
    assert store.put_data("rates", "v4", [], "erin", on_served) == 4
    with pytest.raises(VersionMoved):  # v4 fits: it is served, the default no longer is
        store.put_data("rates", "v5", [], "erin", on_served)


def test_a_file_version_is_remembered_once(backend: Backend) -> None:
    store = Store(backend)
    store.remember_data("territories", "f1", [{"x": 1}])
    store.remember_data("territories", "f1", [{"x": 2}])  # the first copy wins
    stored = store.data_version("territories", "f1")
    assert stored is not None and stored.entries == [{"x": 1}] and stored.source == "file"
    assert store.fresh_data_generation() == 0  # a file default changes nothing served


def test_a_policy_revision_keeps_its_source_and_schema_files(backend: Backend) -> None:
    store = Store(backend)
    source = PolicySource("id: p\n規則: はい\n", {"facts.schema.json": b'{"type": "object"}'})
    store.remember_revision("p", "abc123", "policies/p.yaml", source)
    store.remember_revision("p", "abc123", "elsewhere.yaml", PolicySource("other", {}))
    stored = store.stored_revision("abc123")
    assert stored is not None
    assert (stored.policy_id, stored.path, stored.source) == ("p", "policies/p.yaml", source)
    assert store.stored_revision("nope") is None


def test_a_data_set_put_on_one_replica_reaches_another_within_a_second(
    backends: Callable[[], Backend],
) -> None:
    here, there = Store(backends()), Store(backends())
    assert there.data_generation() == 0  # watching from now on
    generation = here.put_data("rates", "v1", [{"code": "A"}])
    deadline = time.monotonic() + 1.0
    while there.data_generation() < generation and time.monotonic() < deadline:
        time.sleep(0.01)
    assert there.data_generation() == generation
    assert {k: v[0] for k, v in there.current_data().items()} == {"rates": "v1"}


def test_a_replica_knows_the_generation_from_its_first_question(
    backends: Callable[[], Backend],
) -> None:
    Store(backends()).put_data("rates", "v1", [])
    assert Store(backends()).data_generation() == 1  # read, not 0 until told


def test_a_change_whose_notification_was_lost_is_found_by_the_periodic_check(
    backends: Callable[[], Backend],
) -> None:
    here, there = backends(), backends()
    Store(here)
    assert there.generation("data") == 0  # listening from now on
    with here.write() as session:  # a bump that sends no NOTIFY: as if it were lost
        session.execute("INSERT INTO generations (name, value) VALUES ('data', 7)")
    deadline = time.monotonic() + 5.0  # the check runs every second
    while there.generation("data") < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert there.generation("data") == 7


def test_every_counter_is_known_to_another_replica(backends: Callable[[], Backend]) -> None:
    here, there = backends(), backends()
    Store(here).put_data("rates", "v1", [])
    with here.write() as session:
        here.bump(session, "policies")
    deadline = time.monotonic() + 2.0
    while there.generations() != {"data": 1, "policies": 1} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert there.generations() == {"data": 1, "policies": 1}


def test_the_writers_of_one_data_set_take_turns(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replacement and a reset hold their data set until they commit (PostgreSQL: an
    advisory lock): its change log is in the order its current version changed. Without it,
    concurrent PUTs through two replicas left the newest change naming another version than
    the current one (23 rounds of 40); a row is numbered when inserted, not when committed."""
    store = Store(backend)
    held: list[tuple[str, ...]] = []
    write = backend.write

    def recording(*keys: str) -> Any:
        held.append(keys)
        return write(*keys)

    monkeypatch.setattr(backend, "write", recording)
    store.put_data("rates", "v1", [], "alice")
    store.reset_data("rates", "bob")
    store.put_data("other", "w1", [], "carol")
    assert held == [("data:rates",), ("data:rates",), ("data:other",)]
