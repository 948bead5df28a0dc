"""A pool process that dies holding a task (kill -9, the OOM killer) fails the wait with
its reason instead of hanging it: multiprocessing.Pool replaces the process, not its task.
One that dies holding nothing loses nothing, and the others go on, however long they take;
one that leaves the pool stuck (see the last test) is reported once nothing got decided for
a while."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.core.pools import (
    STUCK_SECONDS,
    PoolWatch,
    WorkerStopped,
    hold_tasks,
    ignore_sigint,
    stop_pool,
    worker_number,
)

pytestmark = pytest.mark.usefixtures("no_hang")
FORK = multiprocessing.get_context("fork")


def _square(number: int) -> int:
    return number * number


def _killed_at(number: int) -> int:  # the task of 3 dies with its process
    if number == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.02)
    return number


def _exits(number: int) -> int:
    os._exit(7)


def _slow(number: int) -> int:
    time.sleep(1.5)
    return number


def _watched(processes: int, stall_seconds: float = 30.0) -> tuple[Any, PoolWatch]:
    watch = PoolWatch.start(FORK, processes, hold_tasks)
    watch.stall_seconds = stall_seconds
    return watch.pool, watch


@pytest.fixture
def watch() -> Iterator[PoolWatch]:
    pool, watch = _watched(2)
    try:
        yield watch
    finally:
        stop_pool(pool, STUCK_SECONDS)  # some tests leave its task queue stuck


def _gather(watch: PoolWatch, task: Any, numbers: list[int]) -> list[int]:
    return _gather_all(watch, [watch.submit(task, n) for n in numbers])


def test_a_process_killed_holding_a_task_is_reported_with_its_reason(watch: PoolWatch) -> None:
    results = [watch.submit(_killed_at, n) for n in range(4)]
    with pytest.raises(WorkerStopped) as caught:
        while True:
            watch.wait(results)
    assert caught.value.exitcode == -signal.SIGKILL
    assert caught.value.reason() == "killed by SIGKILL"
    assert not results[3].ready()


def _dies_unless_first(number: int) -> int:  # the first task takes a while, the second dies
    if number:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.5)
    return number


def test_a_lost_task_is_reported_only_once_the_tasks_before_it_are_done(
    watch: PoolWatch,
) -> None:
    """The loss was reported as soon as it was seen, and the caller (kimari batch, impact)
    could not write the tasks before it, which came a moment later: a run on a busy machine
    said "the lines before line 1 are decided" for a chunk that was being decided."""
    results = [watch.submit(_dies_unless_first, n) for n in range(2)]
    with pytest.raises(WorkerStopped) as caught:
        while True:
            watch.wait(results)
    assert results[0].ready() and watch.taken(results[0]) == 0
    assert not results[1].ready()
    assert caught.value.reason() == "killed by SIGKILL"


def test_an_exit_status_is_the_reason_when_a_process_exits(watch: PoolWatch) -> None:
    with pytest.raises(WorkerStopped) as caught:
        _gather(watch, _exits, [1])
    assert caught.value.reason() == "exit status 7"


def test_a_death_holding_nothing_loses_no_task_another_is_deciding_however_long() -> None:
    """Counting deaths against undecided tasks took the idle process's death for the loss
    of the slow task the other one was still deciding; then the stall rule did, once the
    task took longer than it (the two reviews' cases: the stall is 0.5 s here, the task
    1.5 s)."""
    pool, watch = _watched(2, stall_seconds=0.5)
    try:
        slow = watch.submit(_slow, 5)
        slot = watch.slot_of[id(slow)]
        while watch.holders[slot] == 0:  # the slow task has its process
            time.sleep(0.01)
        idle = next(p for p in pool._pool if worker_number(p) != watch.holders[slot])
        idle.kill()
        idle.join()
        while not slow.ready():
            watch.wait([slow])  # no WorkerStopped: the dead process held nothing
        assert watch.taken(slow) == 5
    finally:
        stop_pool(pool, STUCK_SECONDS)


def test_a_pool_whose_only_process_died_waiting_for_a_task_is_stuck_and_said_so() -> None:
    """An idle process waits for a task holding the pool's queue: killed then, the lock is
    never given back and the replacement never gets a task (multiprocessing.Pool)."""
    pool, watch = _watched(1, stall_seconds=0.5)
    try:
        assert _gather(watch, _square, [3]) == [9]
        idle = pool._pool[0]
        _reading_its_queue(idle.pid)  # back in the queue's read, holding its lock
        idle.kill()
        results = [watch.submit(_square, n) for n in range(2)]  # its two slots
        started = time.monotonic()
        with pytest.raises(WorkerStopped) as caught:
            while not all(result.ready() for result in results):
                watch.wait(results)
        assert caught.value.exitcode == -signal.SIGKILL
        assert 0.5 <= time.monotonic() - started < 30
    finally:
        stop_pool(pool, STUCK_SECONDS)


def _reading_its_queue(pid: int) -> None:
    """Until the process sleeps in a pipe's read (Linux's /proc/PID/wchan): a pool process
    reads its next task holding the queue's lock. Killed a moment earlier, between sending
    a result and taking the lock, it would leave the queue free."""
    wchan = Path(f"/proc/{pid}/wchan")
    deadline = time.monotonic() + 10
    while "pipe" not in wchan.read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "pipe" in wchan.read_text(), wchan.read_text()


def test_more_tasks_in_flight_than_slots_is_a_clear_error_and_keeps_the_slots(
    watch: PoolWatch,
) -> None:
    results = [watch.submit(_square, n) for n in range(len(watch.holders))]
    assert len(results) == 4  # two per process
    with pytest.raises(RuntimeError, match="more than 4 tasks in flight"):
        watch.submit(_square, 99)
    assert _gather_all(watch, results) == [n * n for n in range(4)]
    assert len(watch.free) == 4


# -- stop_pool ----------------------------------------------------------------------------
_WRITING = FORK.Event()  # made before the pools: their forked processes share it


def _large_result(size: int) -> bytes:
    _WRITING.set()
    return b"x" * size  # far more than a pipe holds: its write waits for a reader


def _ended_result_thread() -> Any:
    """A pool whose result thread has ended, as it does first thing in pool.terminate."""
    pool = FORK.Pool(1, ignore_sigint)
    pool._outqueue.put(None)
    pool._result_handler.join(10)
    assert not pool._result_handler.is_alive()
    return pool


def test_a_stop_does_not_wait_for_a_result_being_written_that_nobody_reads() -> None:
    """terminate puts its sentinel on the result queue under the lock a process holds while
    it writes a result; with the pool's result thread gone, a large result (a batch chunk's)
    was never read, and an interrupted `kimari batch` took its 5 s twice (CI, under load)."""
    _WRITING.clear()
    pool = _ended_result_thread()
    pool.apply_async(_large_result, (4_000_000,))
    pool._cache.clear()  # nobody waits for it (terminate refuses a wait without a reader)
    assert _WRITING.wait(10)
    time.sleep(0.2)  # into its write: it holds the queue's lock until all of it is read
    started = time.monotonic()
    stop_pool(pool, 5.0)
    assert time.monotonic() - started < 2.5
    # ended by terminate's own SIGTERM, not by the kill that comes after `seconds`
    assert [process.exitcode for process in pool._pool] == [-signal.SIGTERM]


def _hold_and_die(lock: Any) -> None:
    lock.acquire()
    os._exit(0)


def test_a_stop_held_by_a_dead_process_s_lock_gives_up_once_the_workers_have_ended() -> None:
    """A process killed holding the result queue's lock (terminate's SIGTERM mid-write)
    leaves the pool's threads waiting for good: the stop leaves them behind STUCK_SECONDS
    after the last worker ended, not `seconds` later."""
    pool = _ended_result_thread()
    holder = FORK.Process(target=_hold_and_die, args=(pool._outqueue._wlock,))
    holder.start()
    holder.join(10)
    started = time.monotonic()
    stop_pool(pool, 2.0)  # terminate waits on the lock, its workers idle: killed at 2 s
    assert time.monotonic() - started < 3.5
    assert [process.exitcode for process in pool._pool] == [-signal.SIGKILL]


def _gather_all(watch: PoolWatch, results: list[Any]) -> list[int]:
    done = []
    while results:
        if results[0].ready():
            done.append(watch.taken(results.pop(0)))
            continue
        watch.wait(results)
    return done
