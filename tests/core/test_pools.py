"""A pool process that dies holding a task (kill -9, the OOM killer) fails the wait with
its reason instead of hanging it: multiprocessing.Pool replaces the process, not its task.
One that dies with nothing in flight loses nothing, and the wait goes on; one that leaves
the pool stuck (see the last test) is reported once nothing got decided for a while."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.core.pools import STUCK_SECONDS, PoolWatch, WorkerStopped, stop_pool

pytestmark = pytest.mark.usefixtures("no_hang")


def _square(number: int) -> int:
    return number * number


def _killed_at(number: int) -> int:  # the task of 3 dies with its process
    if number == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.02)
    return number


def _exits(number: int) -> int:
    os._exit(7)


@pytest.fixture
def pool() -> Iterator[Any]:
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        yield pool
    finally:
        stop_pool(pool, STUCK_SECONDS)  # some tests leave its task queue stuck


def _gather(pool: Any, task: Any, numbers: list[int]) -> list[int]:
    watch = PoolWatch(pool)
    results = [pool.apply_async(task, (n,)) for n in numbers]
    done = []
    while results:
        if results[0].ready():
            done.append(results.pop(0).get())
            continue
        watch.wait(results)
    return done


def test_a_process_killed_holding_a_task_is_reported_once_the_others_are_decided(
    pool: Any,
) -> None:
    results = [pool.apply_async(_killed_at, (n,)) for n in range(8)]
    watch = PoolWatch(pool)
    with pytest.raises(WorkerStopped) as caught:
        while True:
            watch.wait(results)
    assert caught.value.exitcode == -signal.SIGKILL
    assert caught.value.reason() == "killed by SIGKILL"
    # every task but the lost one was decided by the others before the wait gave up
    assert [r.ready() for r in results] == [n != 3 for n in range(8)]


def test_an_exit_status_is_the_reason_when_a_process_exits(pool: Any) -> None:
    with pytest.raises(WorkerStopped) as caught:
        _gather(pool, _exits, [1])
    assert caught.value.reason() == "exit status 7"


def test_a_process_that_ends_once_everything_is_decided_loses_nothing(pool: Any) -> None:
    watch = PoolWatch(pool)
    results = [pool.apply_async(_square, (n,)) for n in range(4)]
    for result in results:
        result.wait()
    pool._pool[0].kill()
    pool._pool[0].join()
    watch.wait(results)  # nothing was in flight in it: no WorkerStopped
    assert watch.accounted == 1
    watch.wait(results)  # and that death is not counted again


def test_a_pool_whose_only_process_died_waiting_for_a_task_is_stuck_and_said_so() -> None:
    """An idle process waits for a task holding the pool's queue: killed then, the lock is
    never given back and the replacement never gets a task (multiprocessing.Pool)."""
    lone = multiprocessing.get_context("fork").Pool(1)
    try:
        assert lone.apply(_square, (3,)) == 9
        lone._pool[0].kill()
        watch = PoolWatch(lone, stall_seconds=0.5)
        results = [lone.apply_async(_square, (n,)) for n in range(3)]
        started = time.monotonic()
        with pytest.raises(WorkerStopped) as caught:
            while True:
                watch.wait(results)
        assert caught.value.exitcode == -signal.SIGKILL
        assert 0.5 <= time.monotonic() - started < 30
    finally:
        stop_pool(lone, STUCK_SECONDS)
