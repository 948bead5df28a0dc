"""A database that goes away is StoreUnavailable (a retriable 503), and the pool reconnects
by itself when it is back: no component has to be opened again."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.core.errors import RetryLater, StoreDamaged, StoreUnavailable
from engine.store.backend import open_backend
from engine.store.decisions import DecisionLog
from engine.store.flows import EntityState, FlowStore
from engine.store.sqlite import _store_errors
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

    with pytest.raises(StoreUnavailable) as caught:
        open_backend(f"postgresql://kimari@127.0.0.1:{free_port()}/none")
    (said,) = caught.value.diagnostics
    # libpq's "Connection refused\n\tIs the server running ...": one line, as people read it
    assert "Connection refused Is the server running" in str(said.message), said.message
    assert "\n" not in str(said.message) and "\t" not in str(said.message)


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
    with pytest.raises(raised), _store_errors("x.sqlite3"):
        raise sqlite3.OperationalError(message)


@pytest.mark.parametrize(
    ("error", "damaged"),
    [
        (sqlite3.DatabaseError("database disk image is malformed"), True),
        (sqlite3.DatabaseError("malformed database schema (?)"), True),
        (sqlite3.DatabaseError("file is not a database"), True),
        (sqlite3.IntegrityError("UNIQUE constraint failed: decisions.id"), False),
    ],
)
def test_only_sqlites_corrupt_and_not_a_database_errors_are_damage(
    error: sqlite3.DatabaseError, damaged: bool
) -> None:
    raised: type[BaseException] = StoreDamaged if damaged else type(error)
    with pytest.raises(raised), _store_errors("x.sqlite3"):
        raise error


def damage(path: str, offset: int, size: int = 400) -> None:
    """Write garbage over `size` bytes of the file at `offset`: the header stays good."""
    with Path(path).open("r+b") as file:
        file.seek(offset)
        file.write(b"\xde\xad\xbe\xef" * (size // 4))


def test_a_damaged_sqlite_store_is_reported_as_damaged_not_as_an_internal_error(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.sqlite3")
    backend = open_backend(path)
    log = DecisionLog(backend)
    log.commit([entry(f"d{i}") for i in range(200)])  # pages beyond the first
    backend.close()
    size = Path(path).stat().st_size
    assert size >= 4 * 16384
    for page in range(1, size // 16384):  # every page after the first, whole
        damage(path, page * 16384, 16384)
    backend = open_backend(path)
    try:
        with pytest.raises(StoreDamaged) as caught:
            DecisionLog(backend).query(limit=500)
        [problem] = caught.value.diagnostics
        assert problem.code == "store_damaged" and caught.value.http_status == 500
        assert f"the store {path} is damaged (SQLite: " in problem.message
        assert problem.message.endswith("restore it from a backup")
    finally:
        backend.close()


def test_a_store_whose_schema_page_is_damaged_cannot_be_opened_and_says_why(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.sqlite3")
    backend = open_backend(path)
    DecisionLog(backend).commit([entry("d")])
    backend.close()
    damage(path, 120)  # past the 100-byte header: the schema's records
    with pytest.raises(StoreDamaged):
        backend = open_backend(path)
        try:
            DecisionLog(backend).get("d")
        finally:
            backend.close()
