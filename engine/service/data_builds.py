"""A worker's data set replacements, built on a thread of their own.

A replacement (`PUT /v1/data/{name}`), a reset (`DELETE`) and a change made through another
worker or replica are validated against the entry schema and indexed here, not on the
deciding thread: a blacklist of 450,000 entries takes seconds to check and index, and the
deciding thread held up every decision of its worker for that long (past `request_timeout`
the front took the worker for hung and killed it, at every retry of the client). The
deciding thread swaps the built snapshot in between two groups, as it does a reload, and
decides with the versions before it until then.

Replacing answers once this worker serves the new versions; the front then asks every other
worker the same (`Op.DATA_SYNC`) before it answers the client, so that a decision sent after
the answer uses them whichever worker takes it (another replica follows on its own, within
its build). Every decision names the versions it used.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.core.errors import StoreUnavailable
from engine.project.registry import Snapshot, apply_data
from engine.store.versions import Store

log = logging.getLogger("kimari.worker")
DATA_THREAD = "kimari-data"  # its name in /proc, top -H and py-spy
RETRY_AFTER_S = 0.5  # a build that met the store unavailable is tried again after this
Job = tuple[int, int, dict[str, Any], bytes]  # frame id, operation, meta, body
Built = tuple[Snapshot, Mapping[str, tuple[str, int]]]  # the snapshot, the versions read


class DataBuilds:
    def __init__(
        self,
        store: Store,
        served: Callable[[], Snapshot],
        wake: Callable[[], None],
        answer: Callable[[Job], None],
    ) -> None:
        self.store = store
        self.served = served  # the snapshot the deciding thread serves now
        self.wake = wake  # the deciding thread looks at `take` soon after
        self.answer = answer  # runs a job's request on this thread and sends its reply
        self.jobs: deque[Job] = deque()
        self.wanted = False  # the store's data generation moved: build without a request
        self.asked = -1  # the generation `want` was last called for (one build per change)
        self.stopping = False
        self.ready = threading.Condition()  # jobs or a build wanted
        self.swapped = threading.Condition()  # the deciding thread swapped a snapshot in
        self.built: Built | None = None  # for the deciding thread
        self.taking = -1  # the generation the deciding thread took and is swapping in
        self.handoff = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=DATA_THREAD, daemon=True)

    def start(self) -> None:
        self.thread.start()

    # -- the deciding thread -----------------------------------------------------------
    def submit(self, job: Job) -> None:
        with self.ready:
            self.jobs.append(job)
            self.ready.notify()

    def want(self, generation: int) -> None:
        """The store's data sets moved to `generation`: build them (once per generation)."""
        if generation == self.asked:
            return
        self.asked = generation
        with self.ready:
            self.wanted = True
            self.ready.notify()

    def ask_again(self) -> None:
        """A build failed: the next change of generation counts, and so does the same one."""
        self.asked = -1

    def take(self) -> Built | None:
        """What was built, for the deciding thread to swap in; `taken` when it is done."""
        with self.handoff:
            built, self.built = self.built, None
            if built is not None:
                self.taking = built[0].data_generation
        return built

    def taken(self) -> None:
        """The deciding thread swapped what it took in, or dropped it."""
        with self.handoff:
            self.taking = -1
        self.served_changed()

    def rebuild(self, snapshot: Snapshot, current: Mapping[str, tuple[str, int]]) -> Snapshot:
        """`snapshot`'s data for the policy set served now (a reload swapped a new set in
        while it was built): its data sets are reused wherever the entry schema is the same."""
        served = self.served()
        return apply_data(
            served.policy_set,
            current,
            self.store.version_entries,
            snapshot,
            served.generation,
            snapshot.data_generation,
        )

    def served_changed(self) -> None:
        with self.swapped:
            self.swapped.notify_all()

    def stop(self, timeout: float) -> None:
        """Answer the jobs taken, then end (the deciding thread no longer swaps: a job waits
        for no swap then)."""
        with self.ready:
            self.stopping = True
            self.ready.notify_all()
        self.served_changed()
        if self.thread.is_alive():
            self.thread.join(timeout)

    # -- this thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.jobs and not self.wanted:
                    if self.stopping:
                        return
                    self.ready.wait()
                if self.stopping:  # the front answered them 503 when it closed: not made
                    self.jobs.clear()
                    return
                job = self.jobs.popleft() if self.jobs else None
                if job is None:  # a refused change builds nothing: a wanted build stays wanted
                    self.wanted = False
            try:
                if job is None:
                    self.prepare(wait=False)
                else:
                    self.answer(job)
            except Exception as exc:  # the store unreachable, say: the next group asks again
                if isinstance(exc, StoreUnavailable):
                    log.warning("data sets not rebuilt: %s", exc)
                    time.sleep(RETRY_AFTER_S)  # one try per interval, not per group
                else:
                    log.exception("data sets not rebuilt")
                self.ask_again()

    def prepare(self, wait: bool = True) -> None:
        """Build the data sets the store has now, hand them to the deciding thread and, with
        `wait`, return once it serves them."""
        if wait and threading.current_thread() is not self.thread:  # the deciding thread
            raise RuntimeError("a data set change waits on the data thread")  # waits forever
        # the counter before the versions (a change committed between the two reads makes the
        # next group build once more; the other way, versions older than it were taken
        # for current until the next change)
        generation = self.store.fresh_data_generation()
        self._build(generation)
        while wait and not self._wait_served(generation):
            self._build(generation)  # the deciding thread dropped what it was handed

    def _build(self, generation: int) -> None:
        """Build the data sets of `generation` and hand them over, unless served or handed."""
        served = self.served()
        if generation <= served.data_generation or generation <= self._handed():
            return
        current = self.store.current_data()
        snapshot = apply_data(
            served.policy_set,
            current,
            self.store.version_entries,
            served,
            served.generation,
            generation,
        )
        gc.freeze()  # a collection of the heap would walk every entry, on every thread
        with self.handoff:
            if self.built is None or self.built[0].data_generation < generation:
                self.built = (snapshot, current)
        self.wake()

    def _handed(self) -> int:
        """The generation built and not yet swapped in (-1: none)."""
        with self.handoff:
            built = self.built[0].data_generation if self.built is not None else -1
            return max(built, self.taking)

    def _wait_served(self, generation: int) -> bool:
        """Until `generation` is served (True), or the stop; False when nothing is handed
        over any more and it is not served (the deciding thread could not swap it in)."""
        with self.swapped:
            while self.served().data_generation < generation and not self.stopping:
                if self._handed() < generation:
                    return False
                self.swapped.wait(0.25)
        return True


def numbered(snapshot: Snapshot, generation: int) -> Snapshot:
    return replace(snapshot, generation=generation)
