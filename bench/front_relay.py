"""The front's work per relayed decision, timed in one process: no sockets, no workers.

    python bench/front_relay.py [--requests 20000] [--profile]

Feeds the same order-holds request, over and over, to the front's protocol
(engine/service/protocol.py under uvicorn, with the App's steps: routing, tokens, meta,
language, metrics) and to bench/front_ceiling.py's lean relay (httptools callbacks only),
each with a pool that answers at once and a transport that only counts writes, and prints
the µs each spends per request beyond one turn of the event loop. Through HTTP the two
differ by less than the machine's spread can show; here a change to the relay path is
measured to a fraction of a µs (docs/benchmarks.md, "the front").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: bench/ and engine/ from the checkout
    sys.path.insert(0, str(ROOT))

from bench.front_ceiling import PoolStub  # noqa: E402

ANSWER = (200, {"p": "order-holds", "o": "held"}, b"x" * 1843)  # a logged decision's size


class CountingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class AnsweringPool(PoolStub):
    """A pool whose one worker answers every request at once with a decision's reply."""

    def send(
        self, slot: object, op: int, meta: Any = None, body: bytes = b""
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(ANSWER)
        return future


def request_bytes() -> bytes:
    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    body = json.dumps({"facts": facts, "at": "2024-10-01T10:00:00+09:00"}).encode()
    head = (
        b"POST /v1/decisions/order-holds HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def front_protocol(transport: asyncio.Transport) -> asyncio.Protocol:
    """The front's protocol class as `kimari serve` configures it, connected to `transport`."""
    import uvicorn
    from uvicorn.server import ServerState

    from engine.service.config import Config
    from engine.service.http import App
    from engine.service.protocol import protocol_for

    app = App(Config(), pool=AnsweringPool())  # type: ignore[arg-type]
    config = uvicorn.Config(
        app,
        http=protocol_for(app),
        lifespan="off",
        access_log=False,  # as `kimari serve` without --access-log (engine/service/http.py)
        log_level="warning",
        server_header=False,
    )
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[misc]
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    protocol.connection_made(transport)
    return protocol  # type: ignore[no-any-return]


def lean_protocol(transport: asyncio.Transport) -> asyncio.Protocol:
    from bench.front_ceiling import Connection, LeanFront

    connection = Connection(LeanFront(AnsweringPool()))  # type: ignore[arg-type]
    connection.transport, connection.fd = transport, 0
    return connection


async def per_request(
    make: Callable[[asyncio.Transport], asyncio.Protocol], count: int, rounds: int
) -> tuple[list[float], int]:
    """µs per request beyond a turn of the loop, per round; and the answers written."""
    transport = CountingTransport()
    protocol = make(transport)
    request = request_bytes()

    async def relayed(n: int) -> None:
        for _ in range(n):
            protocol.data_received(request)
            await asyncio.sleep(0)  # the reply's callback runs in the next turn

    async def turns(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    await relayed(count // 10)  # warm up
    figures = []
    for _ in range(rounds):
        started = time.perf_counter()
        await relayed(count)
        middle = time.perf_counter()
        await turns(count)
        figures.append(((middle - started) - (time.perf_counter() - middle)) / count * 1e6)
    return figures, transport.writes


def measure(count: int, rounds: int) -> dict[str, tuple[list[float], int]]:
    import uvloop

    async def both() -> dict[str, tuple[list[float], int]]:
        return {
            "front (uvicorn, App)": await per_request(front_protocol, count, rounds),
            "lean relay": await per_request(lean_protocol, count, rounds),
        }

    return uvloop.run(both())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the front's path")
    args = parser.parse_args(argv)
    for name, (figures, _) in measure(args.requests, args.rounds).items():
        print(f"{name:22s} µs a request: " + " ".join(f"{f:.2f}" for f in figures))
    if args.profile:
        import cProfile
        import pstats

        import uvloop

        profiler = cProfile.Profile()
        profiler.enable()
        uvloop.run(per_request(front_protocol, args.requests, 1))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
