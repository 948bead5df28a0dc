"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.project.project import Project
from tests.pg_server import PgServer
from tests.strategies import shipped_project


@pytest.fixture(scope="session")
def project() -> Project:
    """The shipped policies of policies/, compiled once (tests that need another project
    define their own `project`)."""
    return shipped_project()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole run, started on first use (never skipped: a
    missing PostgreSQL fails the tests that need it; `make test` installs it)."""
    server = PgServer().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database on the session's server."""
    return pg_server.create_database()
