"""A worker's snapshot of the data sets is never newer in its counter than in its versions:
a data set replaced by another worker between the two reads would otherwise have been
served stale until the next replacement (found by reading the code; the window is two
small reads, so it is forced here)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

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
