"""The store suite runs every test on both backends: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.store.backend import Backend, open_backend

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store lives: a file, or a new database of the session's server."""
    if request.param == "sqlite":
        return str(tmp_path / "kimari.sqlite3")
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def backends(location: str) -> Iterator[Callable[[], Backend]]:
    """Open backends on `location`, each as another process (a replica) would: its own
    connections and locks. Closed at the end of the test."""
    opened: list[Backend] = []

    def open_one() -> Backend:
        backend = open_backend(location)
        opened.append(backend)
        return backend

    yield open_one
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(backends: Callable[[], Backend]) -> Backend:
    return backends()
