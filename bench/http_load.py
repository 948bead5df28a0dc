"""A small HTTP/1.1 load generator: keep-alive connections, one request in flight each.

Run it as its own process against a running `kimari serve` so that the server is
measured from outside, the way services call it:

    python bench/http_load.py --url http://127.0.0.1:8080/v1/decisions/np-check \
        --body facts.json --connections 32 --seconds 10 [--rate 2000] [--token T]

It prints requests/s, latency percentiles (ms) and the status codes seen. With
--rate it paces requests (open loop) so latency can be read at a chosen load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    stats: Stats,
    tokens: asyncio.Queue | None,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            if tokens is not None:
                scheduled = await tokens.get()
                if scheduled is None:
                    return
            else:
                scheduled = time.perf_counter()
            writer.write(request)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                stats.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            stats.latencies.append(time.perf_counter() - scheduled)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _pace(tokens: asyncio.Queue, rate: float, deadline: float, connections: int) -> None:
    interval = 1.0 / rate
    next_at = time.perf_counter()
    while next_at < deadline:
        now = time.perf_counter()
        if now < next_at:
            await asyncio.sleep(next_at - now)
        tokens.put_nowait(
            next_at
        )  # latency counts from the scheduled time (no coordinated omission)
        next_at += interval
    for _ in range(connections):
        tokens.put_nowait(None)


async def run(args: argparse.Namespace) -> dict:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body = Path(args.body).read_bytes() if args.body else b""
    headers = [
        f"{args.method} {url.path or '/'}{'?' + url.query if url.query else ''} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if args.token:
        headers.append(f"Authorization: Bearer {args.token}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    stats = Stats()
    warm_deadline = time.perf_counter() + args.warmup
    if args.warmup:
        await asyncio.gather(
            *(_connection(host, port, request, warm_deadline, Stats(), None) for _ in range(4))
        )
    started = time.perf_counter()
    deadline = started + args.seconds
    tokens: asyncio.Queue | None = asyncio.Queue() if args.rate else None
    tasks = [
        _connection(host, port, request, deadline, stats, tokens) for _ in range(args.connections)
    ]
    if tokens is not None:
        tasks.append(_pace(tokens, args.rate, deadline, args.connections))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    lat = sorted(stats.latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "requests": len(lat),
        "per_second": round(len(lat) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
        "statuses": stats.statuses,
        "connection_errors": stats.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", help="file with the request body")
    parser.add_argument("--token")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rate", type=float, help="requests/s to offer (open loop)")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
