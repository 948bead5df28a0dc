"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest

from engine.project.project import Project
from tests.pg_server import PgServer
from tests.strategies import shipped_project

# Commands keep the keys of clean checks in the user's cache (engine/cli/checks_cache.py):
# the suite's, and those of the processes it starts, go to a folder of its own.
_CHECKS_CACHE = tempfile.mkdtemp(prefix="kimari-tests-cache-")
os.environ["KIMARI_CACHE_DIR"] = _CHECKS_CACHE


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_CHECKS_CACHE, ignore_errors=True)


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


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fails a test after 60 s instead of letting it wait forever (what it checks is that
    something no longer hangs): SIGALRM interrupts the main thread's waits, and forked
    children do not inherit the alarm."""

    def expired(*_args: object) -> None:  # no OSError, which the CLI would report as I/O
        pytest.fail("still waiting after 60 s: the wait this test checks hangs")

    before = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
