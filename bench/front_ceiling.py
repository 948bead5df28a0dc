"""What the front's hop costs: engine workers that accept HTTP themselves, against `kimari serve`.

    python bench/front_ceiling.py [--workers 2] [--rounds 4] [--seconds 8]

Issue 16's HTTP target is missed by ~11% and the front process is the step docs/benchmarks.md
names as the structural one: removing it (workers accepting connections themselves,
SO_REUSEPORT) is a rewrite of the service layer that must keep the crash contract. This
script measures what it would buy, and what keeping the contract costs, instead of
estimating them from CPU splits.

Each "direct" process here is a real engine Worker (engine/service/worker.py: the same
decide, group-commit and reply code, its committer and reloader threads) whose frames come
from an asyncio loop parsing HTTP with httptools in the same process, not from the front.
It serves POST /v1/decisions/{policy} only: no routing table, tokens, limits, metrics or
keep-alive timeouts. What a real implementation would add back costs CPU, so the figure is
a ceiling. With `--front`, each worker runs the service's own front code instead
(engine/service/http.py's App and protocol.py's relay, under uvicorn) on its loop, its
pool answered in process (LocalPool): what a front-less service keeping today's HTTP layer
would cost. With `--lean`, today's architecture instead (a front process relaying frames
to engine workers through the service's WorkerPool), its decision path as lean as the
direct workers' HTTP path: what a leaner relay in today's front would buy.
Without `--guard` a direct worker that dies resets its connections. With it, the
supervising process keeps the contract the front keeps today (Guard): it holds a copy of
every connection (passed to it with SCM_RIGHTS as the worker accepts it) and, in shared
memory, the count of requests in flight on each; when a worker dies, each of its
connections with a request in flight is answered a retriable 503, the others are closed.
(A dead worker is not replaced here.)

The driver starts the five servers on one store each, then alternates wrk runs (closed
loop, 64 keep-alive connections) between them and prints decisions/s and the servers' CPU
per request (all their processes, from /proc) for each round. The `serve` role is the
direct server (`--faults`: a `?fault=exit` query kills the worker mid-request, as the
service's test faults do):

    python bench/front_ceiling.py serve PORT WORKERS STORE POLICIES [--guard|--front|--lean]
        [--faults]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ and engine/ from the checkout
    sys.path.insert(0, str(ROOT))

import httptools  # noqa: E402
import orjson  # noqa: E402

from engine.service import ipc  # noqa: E402
from engine.service.config import Config  # noqa: E402
from engine.service.ipc import Op  # noqa: E402
from engine.service.worker import Worker  # noqa: E402

PREFIX = b"/v1/decisions/"
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 422: b"Unprocessable Content"}


def _http(status: int, meta: dict[str, Any], body: bytes, client: Connection) -> bytes:
    """A worker's reply as HTTP/1.1, in one piece."""
    head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Error"))]
    for name, value in meta.get("h") or [["content-type", "application/json"]]:
        head.append(f"{name}: {value}\r\n".encode())
    if not client.keep_alive:
        head.append(b"connection: close\r\n")
    head.append(b"content-length: %d\r\n\r\n" % len(body))
    return b"".join(head) + body


class DirectWorker(Worker):
    """A Worker whose frames come from HTTP parsed in its own loop, and whose replies go
    back to the connections they came from. Worker's own steps do the rest."""

    def serve_on(self, loop: asyncio.AbstractEventLoop, guard: WorkerGuard | None) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.guard = guard
        self.clients: dict[int, Connection | asyncio.Future[Any]] = {}
        self.frames: deque[tuple[int, int, Any, bytes]] = deque()
        self.next_id = 1
        self.scheduled = False

    def _flush(self) -> None:
        if self.out:
            frames = self.out[:]
            self.out.clear()
            self._answer(frames)

    def _reply(self, frames: list[bytes]) -> None:
        if threading.get_ident() == self.loop_thread:
            self._answer(frames)
        else:  # the committer thread: transports belong to the loop
            self.loop.call_soon_threadsafe(self._answer, frames)

    def _answer(self, frames: list[bytes]) -> None:
        # Worker.__init__ sends its first events (ready, reloads) before serve_on
        clients: dict[int, Any] = self.__dict__.get("clients", {})
        guard = self.__dict__.get("guard")
        for frame in frames:
            _, frame_id, status, meta_length = ipc.HEADER.unpack_from(frame)
            client = clients.pop(frame_id, None)  # 0: an event (ready, reload): no client
            start = ipc.HEADER.size
            if isinstance(client, asyncio.Future):  # --front: the service's own front code
                meta = orjson.loads(frame[start : start + meta_length]) if meta_length else {}
                client.set_result((status, meta, frame[start + meta_length :]))
                continue
            if client is None or not client.open:
                continue
            meta = orjson.loads(frame[start : start + meta_length]) if meta_length else {}
            client.transport.write(_http(status, meta, frame[start + meta_length :], client))
            if guard is not None:  # after the write: a death between the two costs a
                guard.answered(client.fd)  # 503 after a whole answer, never a lost one
            if not client.keep_alive:
                client.transport.close()

    def submit(
        self,
        client: Connection | asyncio.Future[Any],
        meta: dict[str, Any],
        body: bytes,
        op: int = Op.DECIDE,
    ) -> None:
        frame_id = self.next_id
        self.next_id += 1
        self.clients[frame_id] = client
        if self.guard is not None and isinstance(client, Connection):
            self.guard.asked(client.fd)
        self.frames.append((frame_id, op, meta, body))
        if not self.scheduled:  # one turn after the loop has read what arrived together
            self.scheduled = True
            self.loop.call_soon(self.turn)

    def turn(self) -> None:
        """What Worker.run does with the frames read together, over the requests parsed
        since the last turn."""
        self.scheduled = False
        self._take_reload()
        if self.frames:
            self.decide_group(self.frames)
        if self.frames and not self.scheduled:  # more than one group arrived together
            self.scheduled = True
            self.loop.call_soon(self.turn)


class Connection(asyncio.Protocol):
    def __init__(self, worker: DirectWorker) -> None:
        self.worker = worker
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.chunks: list[bytes] = []
        self.transport: Any = None
        self.open = True
        self.keep_alive = True

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.fd = transport.get_extra_info("socket").fileno()
        if self.worker.guard is not None:
            self.worker.guard.opened(self.fd)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False  # its answers still to come are dropped, and not counted
        if self.worker.guard is not None:
            self.worker.guard.closed(self.fd)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url  # a URL split across reads comes in pieces

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        body, self.chunks = b"".join(self.chunks), []
        self.keep_alive = self.parser.should_keep_alive()
        path, _, query = self.url.partition(b"?")
        meta = {"policy": path[len(PREFIX) :].decode() if path.startswith(PREFIX) else ""}
        if query.startswith(b"fault="):  # as X-Kimari-Test-Fault: only with test faults on
            meta["fault"] = query[6:].decode()
        self.worker.submit(self, meta, body)


class PoolStub:
    """What engine/service/http.py's App and its relay ask of a WorkerPool, for one worker
    that is always ready; `send` says where a request goes."""

    slot = object()
    restarts = 0
    ready_count = 1
    on_event: Any = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def pick(self) -> object:
        return self.slot

    def send(
        self, slot: object, op: int, meta: Any = None, body: bytes = b""
    ) -> asyncio.Future[Any]:
        raise NotImplementedError

    async def call(self, op: int, meta: Any = None, body: bytes = b"", **_: Any) -> Any:
        return await self.send(self.slot, op, meta, body)

    async def call_all(self, op: int, meta: Any = None, body: bytes = b"") -> list[Any]:
        return [await self.call(op, meta, body)]


class LocalPool(PoolStub):
    """The pool answered by the worker in this process: with it the service's own front code
    (routing, tokens, limits, metrics, protocol.py's relay) runs in each direct worker, and
    the figure is no longer a ceiling."""

    def __init__(self, worker: DirectWorker) -> None:
        self.worker = worker

    def send(
        self, slot: object, op: int, meta: Any = None, body: bytes = b""
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.worker.loop.create_future()
        self.worker.submit(future, meta or {}, body, op)
        return future


def _serve_front(worker: DirectWorker, config: Config, listener: socket.socket) -> None:
    """The service's App and protocol on this process's loop, relaying to `worker`."""
    import uvicorn

    from engine.service.http import App
    from engine.service.protocol import protocol_for

    app = App(config, pool=LocalPool(worker))  # type: ignore[arg-type]
    uv_config = uvicorn.Config(
        app, http=protocol_for(app), lifespan="on", log_level="warning", server_header=False
    )
    server = uvicorn.Server(uv_config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    worker.loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
    worker.loop.run_until_complete(server.serve(sockets=[listener]))


class LeanFront:
    """`--lean`: today's architecture (a front process, engine workers behind it over the
    service's WorkerPool and frames) with the front's decision path as lean as the direct
    workers' (the Connection protocol above instead of uvicorn and the App): what a leaner
    relay in the front would buy, the crash contract kept by the pool as today."""

    guard = None

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def submit(self, client: Connection, meta: dict[str, Any], body: bytes) -> None:
        from engine.service.pool import WorkerGone

        try:
            reply = self.pool.send(self.pool.pick(), Op.DECIDE, meta, body)
        except WorkerGone as exc:
            self._gone(client, exc)
            return
        reply.add_done_callback(lambda done: self._write(client, done))

    def _write(self, client: Connection, done: asyncio.Future[Any]) -> None:
        from engine.service.pool import WorkerGone

        if not client.open:
            return
        try:
            status, meta, body = done.result()
        except WorkerGone as exc:  # the worker died or was killed: the service's 503
            self._gone(client, exc)
            return
        client.transport.write(_http(status, meta, body, client))
        if not client.keep_alive:
            client.transport.close()

    @staticmethod
    def _gone(client: Connection, exc: Any) -> None:
        from engine.service.problems import unavailable

        status, headers, body = unavailable(exc.detail, exc.code)
        meta = {"h": [[name.decode(), value.decode()] for name, value in headers]}
        client.transport.write(_http(status, meta, body, client))
        if not client.keep_alive:
            client.transport.close()


def serve_lean(port: int, workers: int, store: str, policies: Path, faults: bool) -> None:
    import uvloop

    from engine.service.pool import WorkerPool
    from engine.service.supervisor import _bootstrap

    config = Config(policies=policies, store=store, workers=workers, test_faults=faults)
    if faults:
        os.environ["KIMARI_TEST_FAULTS"] = "1"  # the workers inherit it
    _bootstrap(config)

    async def main() -> None:
        pool = WorkerPool(config)
        await pool.start()
        while pool.ready_count < workers:
            await asyncio.sleep(0.05)
        front = LeanFront(pool)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: Connection(front),  # type: ignore[arg-type]
            "127.0.0.1",
            port,
        )
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()
        await pool.stop()

    uvloop.run(main())


SLOTS = 1 << 16  # file descriptor numbers per worker in the shared table of requests in flight


class WorkerGuard:
    """A worker's side of the crash contract: each connection it accepts is passed to the
    supervisor (SCM_RIGHTS), which keeps a copy; each request it reads and answers moves a
    count of requests in flight on that connection, in memory shared with the supervisor."""

    def __init__(self, channel: socket.socket, counts: memoryview) -> None:
        self.channel = channel
        self.counts = counts

    def opened(self, fd: int) -> None:
        socket.send_fds(self.channel, [b"o%d" % fd], [fd])

    def closed(self, fd: int) -> None:
        self.counts[fd] = 0
        self.channel.send(b"c%d" % fd)

    def asked(self, fd: int) -> None:
        self.counts[fd] += 1

    def answered(self, fd: int) -> None:
        self.counts[fd] -= 1


class Guard:
    """The supervisor's side: the copies of every worker's connections, and what to do with
    them when that worker dies: a retriable 503 on each connection with a request in flight
    (the client neither hangs nor sees a reset), a plain close on the others."""

    def __init__(self, workers: int) -> None:
        self.table = mmap.mmap(-1, workers * SLOTS * 4)  # anonymous and shared across fork
        self.counts = memoryview(self.table).cast("I")
        self.channels: dict[int, socket.socket] = {}
        self.held: dict[int, dict[int, socket.socket]] = {}

    def for_worker(self, slot: int) -> WorkerGuard:
        """Before the fork: the worker's end of its channel (the supervisor keeps the other)."""
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.channels[slot], self.held[slot] = mine, {}
        return WorkerGuard(theirs, self.counts[slot * SLOTS : (slot + 1) * SLOTS])

    def read(self, slot: int) -> bool:
        """Take one message of `slot`'s channel; False once the worker is gone."""
        data, fds, _, _ = socket.recv_fds(self.channels[slot], 64, 1)
        if not data:
            return False
        fd = int(data[1:])
        if data[:1] == b"o":
            self.held[slot][fd] = socket.socket(fileno=fds[0])
        else:
            copy = self.held[slot].pop(fd, None)
            if copy is not None:
                copy.close()
        return True

    def lost(self, slot: int) -> int:
        """`slot`'s worker died: take what it said before it died, then answer what it held;
        how many requests were answered 503."""
        self.channels[slot].setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while self.read(slot):
                pass
        self.channels.pop(slot).close()
        answered = 0
        for fd, copy in self.held.pop(slot).items():
            if self.counts[slot * SLOTS + fd] > 0:
                answered += 1
                with contextlib.suppress(OSError):
                    copy.sendall(CRASHED)
            _close_after_answer(copy)
            self.counts[slot * SLOTS + fd] = 0
        return answered


def _crashed() -> bytes:
    from engine.core.i18n import Msg
    from engine.service.problems import unavailable

    _, headers, body = unavailable(
        Msg("the engine worker died while deciding; send it again"), "worker_crashed"
    )
    head = [b"HTTP/1.1 503 Service Unavailable\r\n", b"connection: close\r\n"]
    head += [b"%s: %s\r\n" % (name, value) for name, value in headers]
    return b"".join(head) + b"content-length: %d\r\n\r\n" % len(body) + body


CRASHED = _crashed()


def _close_after_answer(copy: socket.socket) -> None:
    """Close without a reset: what the dead worker left unread would make close() send RST,
    which can destroy the answer before the client reads it."""
    with contextlib.suppress(OSError):
        copy.shutdown(socket.SHUT_WR)
        copy.setblocking(False)
        while copy.recv(65536):
            pass
    copy.close()


def _worker_process(
    listener: socket.socket, slot: int, config: Config, guard: WorkerGuard | None, front: bool
) -> None:
    import uvloop

    sys.setswitchinterval(0.0005)  # as engine/service/worker.py main(): for the committer
    unused, _ = socket.socketpair()
    worker = DirectWorker(unused, slot, config.to_worker())
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker.serve_on(loop, guard)
    threading.Thread(target=worker._reloader, daemon=True).start()
    worker.committer = threading.Thread(target=worker._committer, daemon=True)
    worker.committer.start()
    if front:
        _serve_front(worker, config, listener)
        worker.close(10.0)
        return
    loop.run_until_complete(loop.create_server(lambda: Connection(worker), sock=listener))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    worker.close(10.0)


def serve(
    port: int,
    workers: int,
    store: str,
    policies: Path,
    guarded: bool = False,
    faults: bool = False,
    front: bool = False,
) -> None:
    """The direct server: publish the folder into an empty store (as `kimari serve` does),
    then fork the workers, each accepting on its own SO_REUSEPORT socket; with `guarded`,
    this process keeps the crash contract for them (Guard)."""
    from engine.service.supervisor import _bootstrap

    config = Config(policies=policies, store=store, test_faults=faults)
    if faults:
        os.environ["KIMARI_TEST_FAULTS"] = "1"
    _bootstrap(config)
    guard = Guard(workers) if guarded else None
    children: dict[int, int] = {}
    for slot in range(workers):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1024)
        mine = guard.for_worker(slot) if guard is not None else None
        pid = os.fork()
        if pid == 0:
            if guard is not None:
                for other in guard.channels.values():
                    other.close()
            _worker_process(listener, slot, config, mine, front)
            os._exit(0)
        listener.close()
        if mine is not None:
            mine.channel.close()
        children[pid] = slot

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    _supervise(children, guard, lambda: stopping)


def _supervise(children: dict[int, int], guard: Guard | None, stopping: Any) -> None:
    """Wait for the workers; with a guard, keep its copies current and answer for the dead."""
    while children:
        if guard is not None and guard.channels:
            ready, _, _ = select.select(list(guard.channels.values()), [], [], 0.05)
            for channel in ready:
                slot = next(s for s, c in guard.channels.items() if c is channel)
                guard.read(slot)
        else:
            time.sleep(0.05)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            slot = children.pop(pid)
            if guard is not None and slot in guard.channels:
                answered = guard.lost(slot)
                if not stopping():
                    print(f"worker {slot} died ({status}): {answered} answered 503", flush=True)


def _tree_cpu(root: int) -> float:
    """CPU seconds so far of a process and all its descendants (utime + stime)."""
    from bench.run import _children

    tick, total, todo = os.sysconf("SC_CLK_TCK"), 0.0, [root]
    while todo:
        pid = todo.pop()
        todo += _children(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _answered(url: str, body: bytes, seconds: float) -> bool:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.post(url, content=body, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


FRONT = "direct, front's code"
LEAN = "lean front, workers"


def compare(workers: int, rounds: int, seconds: float) -> list[dict[str, Any]]:
    from bench import run

    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    request = {"facts": facts, "at": "2024-10-01T10:00:00+09:00"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps(request, ensure_ascii=False))
        ports = {
            "kimari serve": 18500,
            "direct": 18501,
            "direct, guarded": 18502,
            FRONT: 18503,
            LEAN: 18504,
        }
        servers = {"kimari serve": run._serve(workers, Path(tmp) / "serve.sqlite3", 18500)}
        modes = [("direct", []), ("direct, guarded", ["--guard"]), (FRONT, ["--front"])]
        for name, flags in [*modes, (LEAN, ["--lean"])]:
            port = ports[name]
            command = [__file__, "serve", str(port), str(workers), f"{tmp}/{port}.sqlite3"]
            servers[name] = subprocess.Popen(
                [sys.executable, *command, "policies", *flags],
                cwd=ROOT,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            )
        try:
            for name, port in ports.items():
                url = f"http://127.0.0.1:{port}/v1/decisions/order-holds"
                if not _answered(url, body.read_bytes(), 60):
                    raise RuntimeError(f"{name} did not answer")
                run._load(url, body, 2.0, 16)  # warm up
            for index in range(rounds):
                for name, port in ports.items():
                    url = f"http://127.0.0.1:{port}/v1/decisions/order-holds"
                    before = _tree_cpu(servers[name].pid)
                    figures = run._wrk(url, body, seconds, 64) or run._load(url, body, seconds, 64)
                    cpu = _tree_cpu(servers[name].pid) - before
                    per_request = cpu / (figures["per_second"] * seconds) * 1e6
                    rows.append({"round": index, "server": name, **figures, "cpu_us": per_request})
                    print(
                        f"round {index}  {name:20s} {figures['per_second']:7.0f}/s  "
                        f"server CPU {per_request:5.1f} µs a request  p99 {figures['p99_ms']} ms",
                        flush=True,
                    )
        finally:
            for server in servers.values():
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(30)
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        port, workers, store, policies = argv[1:5]
        flags = set(argv[5:])
        if "--lean" in flags:
            serve_lean(int(port), int(workers), store, Path(policies), "--faults" in flags)
            return 0
        guarded, faults, front = ("--guard" in flags, "--faults" in flags, "--front" in flags)
        serve(int(port), int(workers), store, Path(policies), guarded, faults, front)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    rows = compare(args.workers, args.rounds, args.seconds)
    served = [r for r in rows if r["server"] == "kimari serve"]
    for name in ("direct", "direct, guarded", FRONT, LEAN):
        mine = [r for r in rows if r["server"] == name]
        ratios = [m["per_second"] / s["per_second"] for m, s in zip(mine, served, strict=True)]
        print(f"{name} / kimari serve, per round: " + ", ".join(f"{r:.2f}" for r in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
