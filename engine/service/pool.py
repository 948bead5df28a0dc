"""The front's engine workers: start them, send them requests, replace them when they die.

Each slot holds one worker process (`engine/service/worker.py`) and a Unix socket pair to it. A
request goes to the ready worker with the fewest requests in flight. When a worker dies
(a durable_rules segfault, a test fault, the OOM killer) its socket reaches EOF: every
request it held is answered with a retriable 503 at once, and the slot starts a new
worker. A worker that does not answer within `request_timeout` is killed the same way,
so a client never hangs on a stuck engine (`data_timeout` for a data set's replacement,
which a worker builds beside its decisions: engine/service/data_builds.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from engine.core.i18n import Msg
from engine.service import ipc
from engine.service.config import Config
from engine.service.ipc import DATA_OPS, Event

log = logging.getLogger("kimari.pool")

Reply = tuple[int, dict[str, Any], bytes]
START_TIMEOUT = 120.0  # compiling every policy on a slow machine


class WorkerGone(Exception):
    """The worker holding the request died or was killed; the request was not answered."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class _Protocol(asyncio.Protocol):
    def __init__(self, slot: Slot) -> None:
        self.slot = slot
        self.reader = ipc.FrameReader()

    def data_received(self, data: bytes) -> None:
        slot = self.slot
        for frame_id, code, meta, body in self.reader.feed(data):
            if frame_id == ipc.EVENT_ID:
                slot.pool.on_worker_event(slot, code, meta or {})
                continue
            held = slot.inflight.pop(frame_id, None)
            if held is not None and not held[0].done():
                held[0].set_result((code, meta or {}, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.slot.lost(
            "worker_crashed", Msg("the engine worker died while deciding; send it again")
        )


class Slot:
    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.transport: asyncio.Transport | None = None
        # id -> (reply, when it is late: monotonic seconds)
        self.inflight: dict[int, tuple[asyncio.Future[Reply], float]] = {}
        self.ready = False
        self.pid: int | None = None
        self.started = asyncio.Event()

    def lost(self, code: str, detail: str) -> None:
        """Fail every request this worker held; the slot's runner restarts it."""
        if self.ready:
            self.ready = False
            self.pool.ready_changed()
        inflight, self.inflight = self.inflight, {}
        for future, _ in inflight.values():
            if not future.done():
                future.set_exception(WorkerGone(code, detail))
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def kill(self, code: str, detail: str) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
        self.lost(code, detail)


class WorkerPool:
    def __init__(
        self,
        config: Config,
        on_event: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.slots = [Slot(self, i) for i in range(config.workers)]
        self.ids = itertools.count(1)
        self.on_event = on_event
        self.restarts = 0
        self.turn = 0
        self.any_ready = asyncio.Event()
        self.stopping = False
        self.tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # start()'s: send() asks per request

    @property
    def ready_count(self) -> int:
        return sum(1 for s in self.slots if s.ready)

    def ready_changed(self) -> None:
        if self.ready_count:
            self.any_ready.set()
        else:
            self.any_ready.clear()

    def on_worker_event(self, slot: Slot, code: int, meta: dict[str, Any]) -> None:
        if code == Event.READY:
            slot.ready = True
            slot.pid = meta.get("pid")
            slot.started.set()
            self.ready_changed()
        elif self.on_event is not None:
            self.on_event(code, meta)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.tasks = [asyncio.create_task(self._run(slot)) for slot in self.slots]
        self.tasks.append(asyncio.create_task(self._watch()))

    async def _watch(self) -> None:
        """Kill a worker that holds a request past its time (one timer for all requests: a
        timeout handle per request would cost more than the IPC itself)."""
        limit = min(self.config.request_timeout, self.config.data_timeout)
        while True:
            await asyncio.sleep(min(0.25, limit / 4))
            now = time.monotonic()
            for slot in self.slots:
                late = min((due for _, due in slot.inflight.values()), default=now)
                if now > late:
                    log.error("worker %d did not answer in time; killing it", slot.index)
                    slot.kill(
                        "worker_timeout",
                        Msg("the engine worker did not answer in time; send it again"),
                    )

    async def stop(self) -> None:
        """EOF to every worker: each decides what it has read, commits its log, closes the
        store and exits; one that takes longer than shutdown_timeout is killed."""
        self.stopping = True
        for slot in self.slots:
            if slot.transport is not None:
                slot.transport.close()
        for slot in self.slots:
            process = slot.process
            if process is not None and process.returncode is None:
                try:
                    await asyncio.wait_for(process.wait(), self.config.shutdown_timeout)
                except TimeoutError:
                    log.error("worker %d did not stop in time; killing it", slot.index)
                    slot.kill("shutting_down", Msg("the service is stopping"))
        for task in self.tasks:
            task.cancel()

    async def _spawn(self, slot: Slot) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ, KIMARI_WORKER=orjson.dumps(self.config.to_worker()).decode())
        try:
            slot.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "engine.service.worker",
                str(child.fileno()),
                str(slot.index),
                pass_fds=(child.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            child.close()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_unix_connection(lambda: _Protocol(slot), sock=parent)
        slot.transport = transport  # type: ignore[assignment]

    async def _run(self, slot: Slot) -> None:
        """Keep a worker alive in this slot: start, wait for its end, start again."""
        failures = 0
        while not self.stopping:
            slot.started.clear()
            began = time.monotonic()
            try:
                await self._spawn(slot)
            except OSError as exc:
                log.error("cannot start worker %d: %s", slot.index, exc)
                await asyncio.sleep(1)
                continue
            assert slot.process is not None
            code = await slot.process.wait()
            slot.lost("worker_crashed", Msg("the engine worker died while deciding; send it again"))
            if self.stopping:
                return
            self.restarts += 1
            failures = failures + 1 if time.monotonic() - began < 5 else 0
            reason = f"signal {-code}" if code < 0 else f"exit code {code}"
            log.error(
                "worker %d (pid %s) died with %s; starting a new one", slot.index, slot.pid, reason
            )
            await asyncio.sleep(min(0.05 * 2**failures, 5.0))  # a crash loop must not spin

    def pick(self) -> Slot | None:
        """The ready worker with the fewest requests in flight; ties go round-robin."""
        slots = self.slots
        count = len(slots)
        self.turn = (self.turn + 1) % count
        best = None
        for i in range(count):
            slot = slots[(self.turn + i) % count]
            if (
                slot.ready
                and slot.transport is not None
                and (best is None or len(slot.inflight) < len(best.inflight))
            ):
                best = slot
        return best

    async def call(
        self, op: int, meta: Any = None, body: bytes = b"", *, slot: Slot | None = None
    ) -> Reply:
        """Send one request to a worker and wait for its reply; WorkerGone if it cannot be had."""
        if slot is None:
            slot = self.pick()
            if slot is None:
                try:
                    await asyncio.wait_for(self.any_ready.wait(), 5.0)
                except TimeoutError:
                    raise WorkerGone("no_worker", Msg("no engine worker is ready yet")) from None
                slot = self.pick()
                if slot is None:
                    raise WorkerGone("no_worker", Msg("no engine worker is ready yet"))
        return await self.send(slot, op, meta, body)

    def send(
        self, slot: Slot, op: int, meta: Any = None, body: bytes = b""
    ) -> asyncio.Future[Reply]:
        """Send one request to `slot`'s worker; the future is its reply (or WorkerGone)."""
        transport = slot.transport
        if transport is None:
            raise WorkerGone("worker_crashed", Msg("the engine worker is restarting"))
        frame_id = next(self.ids) & 0xFFFFFFFF or 1
        assert self.loop is not None  # a transport comes from start()
        # not asyncio.get_running_loop(): it asks the kernel for the process id every time
        future: asyncio.Future[Reply] = self.loop.create_future()
        config = self.config
        # a data set's replacement is built beside the decisions: it may take longer
        limit = config.data_timeout if op in DATA_OPS else config.request_timeout
        slot.inflight[frame_id] = (future, time.monotonic() + limit)
        transport.write(ipc.encode(frame_id, op, meta, body))
        return future

    async def call_all(self, op: int, meta: Any = None, body: bytes = b"") -> list[Reply]:
        """The same request to every ready worker (reload, stats)."""
        slots = [s for s in self.slots if s.ready and s.transport is not None]
        replies = await asyncio.gather(
            *(self.call(op, meta, body, slot=s) for s in slots), return_exceptions=True
        )
        return [r for r in replies if not isinstance(r, BaseException)]
