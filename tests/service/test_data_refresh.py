"""A worker's snapshot of the data sets is never newer in its counter than in its versions:
a data set replaced by another worker between the two reads would otherwise have been
served stale until the next replacement (found by reading the code; the window is two
small reads, so it is forced here)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from engine.core.errors import StoreUnavailable
from engine.project.registry import PolicySet, Snapshot
from engine.service.data_builds import DataBuilds
from engine.service.worker import Worker


class _RacingStore:
    """A store whose data sets another worker replaces while this one reads them."""

    def __init__(self) -> None:
        self.generation = 4

    def current_data(self) -> dict[str, tuple[str, int]]:
        versions: dict[str, tuple[str, int]] = {}  # what this read saw: the old versions
        self.generation += 1  # ... and the replacement commits right after it
        return versions

    def fresh_data_generation(self) -> int:
        return self.generation

    def data_generation(self) -> int:
        return self.generation

    def data_version(self, name: str, version: str) -> Any:
        return None

    def version_entries(self, name: str, version: str) -> Any:
        return None


def test_a_replacement_between_the_two_reads_is_picked_up_at_the_next_group() -> None:
    store = _RacingStore()
    worker: Any = SimpleNamespace(generation=0, store=store)
    policy_set = PolicySet({}, {}, {}, (), None)  # type: ignore[arg-type]
    snapshot = Worker._snapshot(worker, policy_set, None)
    # the versions it holds are those of generation 4: it must not claim generation 5
    assert snapshot.data_generation == 4
    assert store.data_generation() > snapshot.data_generation  # _check_data refreshes


def test_the_data_thread_reads_the_counter_before_the_versions_too() -> None:
    store = _RacingStore()
    served = Snapshot(1, PolicySet({}, {}, {}, (), None), {}, {}, 3)  # type: ignore[arg-type]
    builds = DataBuilds(store, lambda: served, lambda: None, lambda job: None)  # type: ignore[arg-type]
    builds.prepare(wait=False)
    built = builds.take()
    assert built is not None and built[0].data_generation == 4
    assert store.data_generation() > built[0].data_generation  # the next group asks again


class _FlakyStore(_RacingStore):
    """A store that is unreachable for the first build, then serves generation 5."""

    def __init__(self) -> None:
        super().__init__()
        self.generation, self.down = 5, True

    def fresh_data_generation(self) -> int:
        if self.down:
            self.down = False
            raise StoreUnavailable([])
        return self.generation

    def current_data(self) -> dict[str, tuple[str, int]]:
        return {}


def test_a_build_that_met_the_store_unavailable_is_asked_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It was asked once per data generation: after a failed build the worker served the
    versions before until the next change, however long that took."""
    monkeypatch.setattr("engine.service.data_builds.RETRY_AFTER_S", 0.0)
    store = _FlakyStore()
    served = Snapshot(1, PolicySet({}, {}, {}, (), None), {}, {}, 3)  # type: ignore[arg-type]
    builds = DataBuilds(store, lambda: served, lambda: None, lambda job: None)  # type: ignore[arg-type]
    builds.start()
    try:
        builds.want(5)
        deadline = time.monotonic() + 10
        while builds.asked != -1:  # the failed build lets the next group ask again
            assert time.monotonic() < deadline
            time.sleep(0.01)
        builds.want(5)
        while (built := builds.take()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert built[0].data_generation == 5
    finally:
        builds.stop(5)
