"""Open-loop HTTP load with Poisson arrivals: what a service's many independent callers do.

    python bench/open_loop.py --url http://127.0.0.1:8080/v1/decisions/order-holds \
        --body request.json --rate 4000 --seconds 8 [--connections 64] [--token T]

Requests arrive at exponentially distributed gaps (mean 1/rate), whatever the server does;
each goes out on an idle keep-alive connection of the pool (one request in flight per
connection), or waits for one. Latency is measured from the arrival, not from the send,
so a server that falls behind is charged for the wait (no coordinated omission); the
client's own timer steps (1 ms) are charged too.

Why not only h2load --rps: it paces each connection on its own timer, and the timers of
all its connections fire together, so the server sees a burst of one request per
connection every 1/rps seconds rather than a stream; at 64 connections the queue behind a
burst sets the p99 (docs/benchmarks.md). This client is plain asyncio Protocols on uvloop
with the request pre-encoded, a few µs of CPU per request, so that it can share the
server's 2 cores. Prints one JSON line: per_second, p50_ms, p99_ms, statuses, client_cpu_us.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit


class Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request when asked, reports each answer."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.arrived = 0.0  # the arrival of the request in flight
        self.busy = False  # a request is in flight

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, arrived: float) -> None:
        self.arrived = arrived
        self.busy = True
        assert self.transport is not None
        self.transport.write(self.pool.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[: head_end + 2]  # each header line ends with CRLF
        start = head.lower().find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start)]) if start >= 0 else 0
        end = head_end + 4 + length
        if len(self.buffer) < end:
            return
        status = int(head[9:12])
        self.buffer = self.buffer[end:]
        self.busy = False
        self.pool.answered(self, status, self.arrived)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.closed(self)


class Pool:
    def __init__(self, request: bytes, connect: Callable[[], Awaitable[Connection]]) -> None:
        self.request = request
        self.connect = connect
        self.opened: list[Connection] = []
        self.idle: list[Connection] = []
        self.waiting: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []
        self.statuses: collections.Counter[int] = collections.Counter()
        self.lost = 0  # connections closed with a request in flight: never answered
        self.replaced = 0  # idle ones the server closed (its keep-alive timeout), reopened
        self.closing = False
        self.clock = time.perf_counter
        self.tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        conn = await self.connect()
        self.opened.append(conn)
        self.ready(conn)

    def closed(self, conn: Connection) -> None:
        """The server may close a keep-alive connection that stayed idle (the pool reuses
        the most recent ones, so the others can idle for seconds): a new one takes its
        place. A connection closed under a request loses that request."""
        if self.closing:
            return
        if conn.busy:
            self.lost += 1
            return
        if conn in self.idle:
            self.idle.remove(conn)
        self.replaced += 1
        task = asyncio.get_running_loop().create_task(self.open())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def arrive(self, arrived: float) -> None:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None and not conn.transport.is_closing():
                conn.send(arrived)
                return
            # closing: its connection_lost() is still to come and opens another
        self.waiting.append(arrived)

    def answered(self, conn: Connection, status: int, arrived: float) -> None:
        self.latencies.append(self.clock() - arrived)
        self.statuses[status] += 1
        self.ready(conn)

    def ready(self, conn: Connection) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            self.idle.append(conn)


async def run(
    url: str, body: bytes, rate: float, seconds: float, connections: int, token: str | None
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    loop = asyncio.get_running_loop()

    async def connect() -> Connection:
        _, conn = await loop.create_connection(lambda: Connection(pool), host, port)
        return conn

    pool = Pool(("\r\n".join(head) + "\r\n\r\n").encode() + body, connect)
    for _ in range(connections):
        await pool.open()
    rng = random.Random(16)
    clock = pool.clock
    began = clock()
    ends = began + seconds
    arrival = began + rng.expovariate(rate)
    arrived = 0
    while arrival < ends:
        now = clock()
        while arrival <= now and arrival < ends:  # every arrival due (late ones keep their time)
            pool.arrive(arrival)
            arrived += 1
            arrival += rng.expovariate(rate)
        # the loop's timers have 1 ms steps (a shorter sleep would spin): an arrival may go
        # out up to ~1 ms late, and that wait counts in its latency (it errs against us)
        await asyncio.sleep(max(0.001, min(arrival, ends) - clock()))
    drain_until = clock() + 30
    while len(pool.latencies) < arrived and clock() < drain_until:
        await asyncio.sleep(0.01)
    pool.closing = True
    for conn in pool.opened:
        if conn.transport is not None:
            conn.transport.close()
    latencies = sorted(pool.latencies)
    if not latencies:
        raise SystemExit("no answers")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "client": "open_loop.py",
        "offered": arrived,
        "per_second": round(len(latencies) / seconds),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "unanswered": arrived - len(latencies),
        "reopened": pool.replaced,
        "statuses": {str(k): v for k, v in sorted(pool.statuses.items())},
        "client_cpu_us": round((usage.ru_utime + usage.ru_stime) / max(arrived, 1) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, type=Path)
    parser.add_argument("--rate", required=True, type=float, help="arrivals per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--token")
    args = parser.parse_args()
    body = args.body.read_bytes()
    runner = run(args.url, body, args.rate, args.seconds, args.connections, args.token)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        result = asyncio.run(runner)
    else:
        result = uvloop.run(runner)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
