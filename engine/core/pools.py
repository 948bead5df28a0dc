"""Process pools that Ctrl-C stops cleanly (kimari batch, kimari impact).

SIGINT reaches the whole process group: the workers ignore it (`ignore_sigint`, first thing
in their initializer), the parent alone gets the KeyboardInterrupt and stops them
(`stop_pool`), so no worker prints a traceback of its own or dies half-way through reading
a task, which would stop the others. `sigint_held` keeps Ctrl-C waiting while a pool starts.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

# how long an interrupted run waits for its pool to stop (then once more after killing it)
STOP_SECONDS = 5.0


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
    threads are left behind (daemons) rather than the command hanging."""
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
