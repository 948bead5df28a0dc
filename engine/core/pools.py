"""Process pools that Ctrl-C stops cleanly and a dead worker does not hang (kimari batch,
kimari impact).

SIGINT reaches the whole process group: the workers ignore it (`ignore_sigint`, first thing
in their initializer), the parent alone gets the KeyboardInterrupt and stops them
(`stop_pool`), so no worker prints a traceback of its own or dies half-way through reading
a task, which would stop the others. `sigint_held` keeps Ctrl-C waiting while a pool starts.

A worker killed mid-task (kill -9, the kernel's OOM killer) is replaced by
multiprocessing.Pool, but not its task: the task's result never comes. `PoolWatch` submits
the tasks, knows which process holds each (`run_held`), and raises WorkerStopped when one
that held a task has ended, instead of waiting forever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from engine.core.i18n import Msg

# how long an interrupted run waits for its pool to stop (then once more after killing it)
STOP_SECONDS = 5.0
# after a worker died holding nothing: how long nothing may get decided before the pool is
# taken as stuck on its task queue (a chunk takes ~0.03 s; one of 256 large requests a few s)
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
    the lock may be a dead process's, never given back: `seconds` short then.

    terminate signals the workers wherever they are, one may hold the result queue's lock
    as it goes (mid-write): the pool's threads then wait for good. So this stops waiting
    STUCK_SECONDS after every worker has ended, rather than `seconds` twice."""
    stopper = threading.Thread(target=pool.terminate, name="pool-stop", daemon=True)
    stopper.start()
    drainer = threading.Thread(
        target=_drain_results, args=(pool, stopper), name="pool-drain", daemon=True
    )
    drainer.start()
    if not _stopped_in_time(pool, stopper, seconds):
        alive = [process for process in _processes(pool) if process.exitcode is None]
        for process in alive:
            process.kill()
        if alive:
            _stopped_in_time(pool, stopper, seconds)
    if not stopper.is_alive():
        pool.join()


def _processes(pool: Any) -> list[Any]:
    return list(getattr(pool, "_pool", ()))


def _stopped_in_time(pool: Any, stopper: threading.Thread, seconds: float) -> bool:
    """Whether `stopper` ended within `seconds`; False sooner once every process of the pool
    has ended and it is still at it STUCK_SECONDS later (waiting on a dead process's lock,
    which nothing gives back)."""
    deadline = time.monotonic() + seconds
    all_ended_at: float | None = None
    while stopper.is_alive():
        now = time.monotonic()
        if now >= deadline:
            return False
        if all(process.exitcode is not None for process in _processes(pool)):
            all_ended_at = now if all_ended_at is None else all_ended_at
            if now - all_ended_at >= STUCK_SECONDS:
                return False
        stopper.join(min(0.02, deadline - now))
    return True


def _drain_results(pool: Any, stopper: threading.Thread) -> None:
    """Reads away the results nobody reads any more while `stopper` terminates the pool.
    A worker writes its result to the result pipe holding the queue's write lock, and
    terminate puts its own sentinel there under that lock: once the pool's result thread
    has ended, a result larger than the pipe's buffer (a batch chunk's are) is never read,
    its worker never lets go of the lock, and terminate waits for good (CPython's
    Pool.terminate, seen under load: one interrupted batch in ~40). Only once that thread
    has ended: two readers of one pipe would cut each other's messages."""
    handler = getattr(pool, "_result_handler", None)
    reader = getattr(getattr(pool, "_outqueue", None), "_reader", None)
    if handler is None or reader is None:
        return
    with contextlib.suppress(OSError, EOFError, ValueError):
        while stopper.is_alive():
            if handler.is_alive():
                handler.join(0.01)
            elif reader.poll(0.01):
                reader.recv_bytes()  # a worker that dies mid-write leaves this thread here


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


_holders: Any = None  # in a pool process: the slots it claims its tasks in
_me = 0  # in a pool process: its number in the pool


def worker_number(process: Any) -> int:
    """A pool process's number: the N of its name (ForkPoolWorker-N), which no other
    process of the pool has, where a process id may come back after it ended."""
    tail = str(process.name).rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else -abs(process.pid or 0) - 1


def hold_tasks(holders: Any) -> None:
    """A pool process's initializer step: the shared slots it claims its tasks in."""
    global _holders, _me
    _holders, _me = holders, worker_number(multiprocessing.current_process())


def run_held(func: Callable[..., Any], slot: int, args: tuple[Any, ...]) -> Any:
    """A task as the pool runs it: its process claims the slot first, so that the parent
    knows which tasks a process that ended was holding."""
    if _holders is not None:
        _holders[slot] = _me
    return func(*args)


class PoolWatch:
    """Submits a pool's tasks and waits for their results, watching its processes: every
    one it has had (a replacement too), of which none ends before the pool is stopped
    unless it died. Each task in flight has a slot in `holders` (a shared array the pool's
    processes got through `hold_tasks`) holding the number of the process that runs it
    (0: not started yet)."""

    def __init__(self, pool: Any, holders: Any, stall_seconds: float = STALL_SECONDS) -> None:
        self.pool = pool
        self.holders = holders
        self.stall_seconds = stall_seconds
        self.free = list(range(len(holders)))
        self.slot_of: dict[int, int] = {}
        self.seen: dict[int, Any] = {}  # id(process) -> every process the pool has had
        self.progress = time.monotonic()  # the last sign that the pool works
        self.deaths = 0
        self.ended()

    @classmethod
    def start(
        cls,
        context: Any,
        processes: int,
        initializer: Callable[..., None],
        initargs: tuple[Any, ...] = (),
    ) -> PoolWatch:
        """A pool of `processes` with two tasks in flight per process, watched: the
        initializer gets the shared slots first, to hand them to `hold_tasks`."""
        holders = context.Array("q", 2 * processes, lock=False)
        return cls(context.Pool(processes, initializer, (holders, *initargs)), holders)

    def submit(self, func: Callable[..., Any], *args: Any) -> Any:
        """`pool.apply_async(func, args)`, with a slot; `taken` gives the slot back. At most
        as many tasks in flight as `holders` has slots (the callers keep 2 per process)."""
        if not self.free:
            raise RuntimeError(f"more than {len(self.holders)} tasks in flight")
        if not self.slot_of:  # nothing was in flight: the time before this is no stall
            self.progress = time.monotonic()
        slot = self.free.pop()
        self.holders[slot] = 0
        try:
            result = self.pool.apply_async(run_held, (func, slot, args))
        except BaseException:
            self.free.append(slot)
            raise
        self.slot_of[id(result)] = slot
        return result

    def taken(self, result: Any) -> Any:
        """The result of a decided task (`result.get()`); its slot is free again."""
        self.free.append(self.slot_of.pop(id(result)))
        self.progress = time.monotonic()
        return result.get()

    def ended(self) -> tuple[dict[int, int], set[int]]:
        """(number -> exit code of the pool's processes that have ended, the numbers of
        those still running): see `worker_number`."""
        for process in list(getattr(self.pool, "_pool", ())):
            self.seen.setdefault(id(process), process)
        ended, alive = {}, set()
        for process in self.seen.values():
            code = process.exitcode
            if code is None:
                alive.add(worker_number(process))
            else:
                ended[worker_number(process)] = code
        return ended, alive

    def wait(self, results: Sequence[Any], seconds: float = 0.05) -> None:
        """Waits up to `seconds` for the first of `results` (tasks in flight, oldest first).
        WorkerStopped once a task's process has ended holding it: its result never comes.
        A process that died waiting for a task may have held the pool's task queue, and
        then no process gets one again: after a death, when no task has been claimed by a
        live process for `stall_seconds` (nothing running, nothing taken), WorkerStopped
        too. A process that died holding nothing loses nothing: the others go on, however
        long their tasks take."""
        results[0].wait(seconds)
        ended, alive = self.ended()
        if not ended:
            return
        now = time.monotonic()
        if len(ended) > self.deaths:
            self.deaths, self.progress = len(ended), now
        for i, result in enumerate(results):
            if result.ready():
                continue
            holder = self.holders[self.slot_of[id(result)]]
            if holder in alive:  # being decided: the pool works
                self.progress = now
            elif holder in ended and all(r.ready() for r in results[:i]):
                # only once the tasks before the lost one are done: the caller writes them
                # (a run on a busy machine stopped with none of them, though they came)
                raise WorkerStopped(ended[holder])
        if now - self.progress > self.stall_seconds and not all(r.ready() for r in results):
            raise WorkerStopped(list(ended.values())[-1])
