"""A database that goes away is StoreUnavailable (a retriable 503), and the pool reconnects
by itself when it is back: no component has to be opened again."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest

from engine.core.errors import RetryLater, StoreUnavailable
from engine.store.backend import open_backend
from engine.store.decisions import DecisionLog
from engine.store.flows import EntityState, FlowStore
from engine.store.sqlite import _unavailable_on_busy
from engine.store.versions import Store
from tests.pg_server import PgServer
from tests.store.test_decision_log import entry


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of this test's own: it is stopped and started under the store."""
    server = PgServer().start()
    try:
        yield server
    finally:
        server.destroy()


def eventually(action: object, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()  # type: ignore[operator]
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_stopped_database_is_unavailable_and_a_restarted_one_serves_again(
    own_server: PgServer,
) -> None:
    url = own_server.create_database("k")

    backend = open_backend(url)
    log, flows, store = DecisionLog(backend), FlowStore(backend), Store(backend)
    try:
        log.commit([entry("before")])
        own_server.stop("immediate")  # as a crash: connections cut without goodbye
        for action in (
            lambda: log.commit([entry("during")]),
            lambda: log.get("before"),
            lambda: flows.load("p", "E"),
            lambda: flows.seed("p", "E", EntityState("open", {}), "r1"),
            lambda: store.put_data("rates", "v1", []),
        ):
            with pytest.raises(StoreUnavailable) as caught:
                action()
            assert caught.value.code == "store_unavailable"
            assert caught.value.http_status == 503 and isinstance(caught.value, RetryLater)
        own_server.start()
        eventually(lambda: log.commit([entry("after")]))
        assert log.get("before") is not None and log.get("after") is not None
        assert log.get("during") is None  # never acknowledged, never written
        assert flows.seed("p", "E", EntityState("open", {}), "r1")
        assert store.put_data("rates", "v1", []) == 1
    finally:
        backend.close()


def test_a_database_that_cannot_be_reached_at_start_is_unavailable() -> None:
    from tests.pg_server import free_port

    with pytest.raises(StoreUnavailable):
        open_backend(f"postgresql://kimari@127.0.0.1:{free_port()}/none")


@pytest.mark.parametrize(
    ("message", "unavailable"),
    [
        ("database is locked", True),
        ("disk I/O error", True),
        ("unable to open database file", True),
        ("no such table: decisions", False),
        ('near "SELEC": syntax error', False),
    ],
)
def test_only_sqlites_busy_and_io_errors_are_unavailable(message: str, unavailable: bool) -> None:
    raised: type[BaseException] = StoreUnavailable if unavailable else sqlite3.OperationalError
    with pytest.raises(raised), _unavailable_on_busy():
        raise sqlite3.OperationalError(message)
