"""The front's keep-alive rule (engine/service/protocol.py): a connection idle for
`keep_alive_timeout` seconds after an answer is closed; one in use, or idle for less since
its last answer, is not. The front keeps one coarse timer per connection instead of
uvicorn's timer per answer, so the rule is tested on both sides of its line, in one process
with a short timeout and through HTTP with the service's `keep_alive_timeout`."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import uvicorn
import uvloop
from uvicorn.server import ServerState

from engine.service.config import Config
from engine.service.http import App
from engine.service.protocol import protocol_for
from tests.service.server_process import DECIDE_TOKEN, Server, copy_project

IDLE = 0.6  # the in-process timeout_keep_alive (its margins, 0.24 s, outlast a busy loop)
REQUEST = (
    b"POST /v1/decisions/np-check HTTP/1.1\r\nHost: test\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
)


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Pool:
    """One ready worker; a request is answered when the test says so."""

    slot = object()
    restarts = 0
    ready_count = 1

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Any]] = []

    def pick(self) -> object:
        return self.slot

    def send(self, slot: object, op: int, meta: Any = None, body: bytes = b"") -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    def answer_all(self) -> None:
        for future in self.pending:
            future.set_result((200, {"p": "np-check", "o": "ok"}, b"{}"))
        self.pending.clear()


async def _connection() -> tuple[Any, Transport, Pool]:
    pool = Pool()
    app = App(Config(), pool=pool)  # type: ignore[arg-type]
    config = uvicorn.Config(
        app,
        http=protocol_for(app),
        lifespan="off",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=IDLE,  # type: ignore[arg-type]
    )
    config.load()
    protocol = config.http_protocol_class(  # type: ignore[misc]
        config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
    )
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport, pool


async def _answered(protocol: Any, transport: Transport, pool: Pool) -> None:
    protocol.data_received(REQUEST)
    await asyncio.sleep(0)
    pool.answer_all()
    await asyncio.sleep(0)  # the reply's callback
    assert transport.written and transport.written[-1].startswith(b"HTTP/1.1 200")


def _run(test: Any) -> None:
    uvloop.run(test())


async def _closed_once_idle(transport: Transport) -> None:
    """Open 0.6 x IDLE after the last answer, closed at 1.4 x IDLE."""
    await asyncio.sleep(IDLE * 0.6)
    assert not transport.closed
    await asyncio.sleep(IDLE * 0.8)
    assert transport.closed


def test_an_idle_connection_is_closed_after_the_timeout_and_not_before() -> None:
    async def test() -> None:
        protocol, transport, pool = await _connection()
        await _answered(protocol, transport, pool)
        await _closed_once_idle(transport)

    _run(test)


def test_each_answer_starts_the_idle_time_again() -> None:
    async def test() -> None:
        protocol, transport, pool = await _connection()
        await _answered(protocol, transport, pool)
        for _ in range(3):  # 3 x 0.6 x IDLE in all: past one timeout, never idle for one
            await asyncio.sleep(IDLE * 0.6)
            assert not transport.closed
            await _answered(protocol, transport, pool)
        await _closed_once_idle(transport)

    _run(test)


def test_a_connection_waiting_for_its_answer_is_not_idle() -> None:
    async def test() -> None:
        protocol, transport, pool = await _connection()
        await _answered(protocol, transport, pool)
        protocol.data_received(REQUEST)  # read before the timer fires: in use
        await asyncio.sleep(IDLE * 2.5)  # the worker takes its time (request_timeout's case)
        assert not transport.closed
        pool.answer_all()
        await asyncio.sleep(0)
        assert transport.written[-1].startswith(b"HTTP/1.1 200")
        await _closed_once_idle(transport)

    _run(test)


def test_a_new_connection_has_no_idle_timer_before_its_first_answer() -> None:
    async def test() -> None:  # as uvicorn's: the timer starts with an answer
        protocol, transport, _ = await _connection()
        await asyncio.sleep(IDLE * 1.5)
        assert not transport.closed and protocol.timeout_keep_alive_task is None

    _run(test)


def test_a_closed_connection_leaves_no_timer() -> None:
    async def test() -> None:
        protocol, transport, pool = await _connection()
        await _answered(protocol, transport, pool)
        assert protocol.timeout_keep_alive_task is not None
        protocol.connection_lost(None)
        assert protocol.timeout_keep_alive_task is None

    _run(test)


KEPT = 1.5  # the server's keep_alive_timeout (KIMARI_KEEP_ALIVE_TIMEOUT)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("keep-alive")
    env = {"KIMARI_KEEP_ALIVE_TIMEOUT": str(KEPT)}
    srv = Server(copy_project(tmp), tmp / "var" / "kimari.sqlite3", workers=1, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _post(sock: socket.socket) -> bytes:
    facts = {"order": {"total": 15000, "sequence": 2, "payment": {"method": "card"}}}
    body = orjson.dumps({"facts": facts, "at": "2024-09-21T23:59:59+09:00"})
    sock.sendall(
        b"POST /v1/decisions/np-check HTTP/1.1\r\nHost: test\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (DECIDE_TOKEN.encode(), len(body), body)
    )
    return sock.recv(65536)


def test_through_http_an_idle_connection_is_closed_after_the_configured_timeout(
    server: Server,
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        assert _post(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        time.sleep(KEPT * 0.7)  # idle for less than the timeout: still open, idle time anew
        assert _post(sock).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        assert sock.recv(1) == b""  # blocks until the front closes the connection
        idle = time.monotonic() - answered
        assert KEPT * 0.9 < idle < KEPT + 1.5, idle
        assert time.monotonic() - started > KEPT * 1.6  # not KEPT after the first answer
