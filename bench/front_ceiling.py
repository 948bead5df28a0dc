"""What the front's hop costs: engine workers that accept HTTP themselves, against `kimari serve`.

    python bench/front_ceiling.py [--workers 2] [--rounds 4] [--seconds 8]

Issue 16's HTTP target is missed by ~11% and the front process is the step docs/benchmarks.md
names as the structural one: removing it (workers accepting connections themselves,
SO_REUSEPORT) changes the crash contract, so it is a decision for the team. This script
measures what that decision would buy, instead of estimating it from CPU splits.

Each "direct" process here is a real engine Worker (engine/service/worker.py: the same
decide, group-commit and reply code, its committer and reloader threads) whose frames come
from an asyncio loop parsing HTTP with httptools in the same process, not from the front.
It serves POST /v1/decisions/{policy} only: no routing table, tokens, limits, metrics,
keep-alive timeouts, and no crash contract (a worker that dies resets its connections).
What a real implementation would add back costs CPU, so the figure is a ceiling.

The driver starts both servers on one store each, then alternates wrk runs (closed loop,
64 connections) between them and prints decisions/s and the servers' CPU per request (all
their processes, from /proc) for each round. The `serve` role is the direct server:

    python bench/front_ceiling.py serve PORT WORKERS STORE POLICIES
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


class DirectWorker(Worker):
    """A Worker whose frames come from HTTP parsed in its own loop, and whose replies go
    back to the connections they came from. Worker's own steps do the rest."""

    def serve_on(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.clients: dict[int, asyncio.Transport] = {}
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
        clients: dict[int, asyncio.Transport] = self.__dict__.get("clients", {})
        for frame in frames:
            _, frame_id, status, meta_length = ipc.HEADER.unpack_from(frame)
            transport = clients.pop(frame_id, None)  # 0: an event (ready, reload): no client
            if transport is None or transport.is_closing():
                continue
            start = ipc.HEADER.size
            meta = orjson.loads(frame[start : start + meta_length]) if meta_length else {}
            body = frame[start + meta_length :]
            head = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b"Error"))]
            for name, value in meta.get("h") or [["content-type", "application/json"]]:
                head.append(f"{name}: {value}\r\n".encode())
            head.append(b"content-length: %d\r\n\r\n" % len(body))
            transport.write(b"".join(head) + body)

    def submit(self, transport: asyncio.Transport, policy: str, body: bytes) -> None:
        frame_id = self.next_id
        self.next_id += 1
        self.clients[frame_id] = transport
        self.frames.append((frame_id, Op.DECIDE, {"policy": policy}, body))
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

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        body, self.chunks = b"".join(self.chunks), []
        policy = self.url[len(PREFIX) :].decode() if self.url.startswith(PREFIX) else ""
        self.worker.submit(self.transport, policy, body)


def _worker_process(listener: socket.socket, slot: int, config: dict[str, Any]) -> None:
    import uvloop

    sys.setswitchinterval(0.0005)  # as engine/service/worker.py main(): for the committer
    unused, _ = socket.socketpair()
    worker = DirectWorker(unused, slot, config)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker.serve_on(loop)
    threading.Thread(target=worker._reloader, daemon=True).start()
    worker.committer = threading.Thread(target=worker._committer, daemon=True)
    worker.committer.start()
    loop.run_until_complete(loop.create_server(lambda: Connection(worker), sock=listener))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    worker.close(10.0)


def serve(port: int, workers: int, store: str, policies: Path) -> None:
    """The direct server: publish the folder into an empty store (as `kimari serve` does),
    then fork the workers, each accepting on its own SO_REUSEPORT socket."""
    from engine.service.supervisor import _bootstrap

    config = Config(policies=policies, store=store)
    _bootstrap(config)
    children = []
    for slot in range(workers):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(1024)
        pid = os.fork()
        if pid == 0:
            _worker_process(listener, slot, config.to_worker())
            os._exit(0)
        listener.close()
        children.append(pid)

    def stop(*_: object) -> None:
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for pid in children:
        os.waitpid(pid, 0)


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


def compare(workers: int, rounds: int, seconds: float) -> list[dict[str, Any]]:
    from bench import run

    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    request = {"facts": facts, "at": "2024-10-01T10:00:00+09:00"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps(request, ensure_ascii=False))
        direct = [__file__, "serve", "18501", str(workers), f"{tmp}/direct.sqlite3", "policies"]
        servers = {
            "kimari serve": run._serve(workers, Path(tmp) / "serve.sqlite3", 18500),
            "direct": subprocess.Popen(
                [sys.executable, *direct],
                cwd=ROOT,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
            ),
        }
        ports = {"kimari serve": 18500, "direct": 18501}
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
                        f"round {index}  {name:12s} {figures['per_second']:7.0f}/s  "
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
        serve(int(port), int(workers), store, Path(policies))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    rows = compare(args.workers, args.rounds, args.seconds)
    ratios = [
        direct["per_second"] / served["per_second"]
        for direct, served in zip(rows[1::2], rows[0::2], strict=True)
    ]
    print("direct / kimari serve, per round: " + ", ".join(f"{r:.2f}" for r in ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
