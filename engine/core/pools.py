"""Process pools that Ctrl-C stops cleanly and a dead worker does not hang (kimari batch,
kimari impact).

SIGINT reaches the whole process group: the workers ignore it (`ignore_sigint`, first thing
in their initializer), the parent alone gets the KeyboardInterrupt and stops them
(`stop_pool`), so no worker prints a traceback of its own or dies half-way through reading
a task, which would stop the others. `sigint_held` keeps Ctrl-C waiting while a pool starts.

A worker killed mid-task (kill -9, the kernel's OOM killer) is replaced by
multiprocessing.Pool, but not its task: the task's result never comes. `PoolWatch` watches
the pool's processes while it waits and raises WorkerStopped instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from engine.core.i18n import Msg

# how long an interrupted run waits for its pool to stop (then once more after killing it)
STOP_SECONDS = 5.0
# after a worker died: how long nothing may get decided before the pool is taken as stuck
# (a chunk takes ~0.03 s; a slow one of 256 large requests a few seconds)
STALL_SECONDS = 30.0
# to stop a pool after WorkerStopped: it may wait for a dead process's lock (stop_pool)
STUCK_SECONDS = 0.2


def ignore_sigint() -> None:
    """A worker's first step: Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Ctrl-C waits while the pool starts: its workers inherit the block (they ignore SIGINT
    from their first instruction until `ignore_sigint` discards it), and this thread gets the
    KeyboardInterrupt when the pool is there to be stopped."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def stop_pool(pool: Any, seconds: float = STOP_SECONDS) -> None:
    """`pool.terminate()` and its join, bounded: should a worker hold the task queue (the
    pool's own terminate waits for its lock), the workers are killed; past that, the pool's
    threads are left behind (daemons) rather than the command hanging. After WorkerStopped
    the lock may be a dead process's, never given back: `seconds` short then."""
    stopper = threading.Thread(target=pool.terminate, name="pool-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        for process in list(getattr(pool, "_pool", ())):
            if process.exitcode is None:
                process.kill()
        stopper.join(seconds)
    if not stopper.is_alive():
        pool.join()


class WorkerStopped(Exception):
    """A pool process ended holding a task: that task's result will never come."""

    def __init__(self, exitcode: int) -> None:
        super().__init__(exitcode)
        self.exitcode = exitcode
        self.first_line = 0  # for a caller that knows where the lost work began

    def reason(self) -> Msg:
        if self.exitcode < 0:
            try:
                name = signal.Signals(-self.exitcode).name
            except ValueError:
                name = str(-self.exitcode)
            return Msg("killed by {signal}", signal=name)
        return Msg("exit status {status}", status=self.exitcode)


class PoolWatch:
    """Waits for a pool's results, watching its processes: every one it has had (a
    replacement too), of which none ends before the pool is stopped unless it died."""

    def __init__(self, pool: Any, stall_seconds: float = STALL_SECONDS) -> None:
        self.pool = pool
        self.stall_seconds = stall_seconds
        self.seen: dict[int, Any] = {}
        self.accounted = 0  # ended processes whose tasks were all decided by the others
        self.ended()

    def ended(self) -> list[int]:
        """The exit codes of the pool's processes that have ended, in the order seen."""
        for process in list(getattr(self.pool, "_pool", ())):
            self.seen.setdefault(process.pid, process)
        codes = (process.exitcode for process in self.seen.values())
        return [code for code in codes if code is not None]

    def wait(self, results: Sequence[Any], seconds: float = 0.05) -> None:
        """Waits up to `seconds` for the first of `results` (the tasks in flight, oldest
        first). Once a process has ended, waits for the others to decide what they can:
        each ended process held at most one task, so when no more are left undecided than
        processes ended, those are lost (WorkerStopped); when none is, it goes on. One that
        died waiting for a task may have held the pool's task queue, and then no other
        process gets one again: nothing decided for `stall_seconds` is WorkerStopped too."""
        results[0].wait(seconds)
        ended = self.ended()
        left, since = len(results) + 1, time.monotonic()
        while len(ended) > self.accounted:
            undecided = [result for result in results if not result.ready()]
            if not undecided:  # it ended between two tasks: nothing lost
                self.accounted = len(ended)
                return
            if len(undecided) < left:
                left, since = len(undecided), time.monotonic()
            lost = len(undecided) <= len(ended) - self.accounted
            if lost or time.monotonic() - since > self.stall_seconds:
                raise WorkerStopped(ended[-1])
            undecided[0].wait(seconds)
            ended = self.ended()
