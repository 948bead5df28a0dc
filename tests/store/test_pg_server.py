"""The throwaway PostgreSQL server of the tests (tests/pg_server.py) starts on a port of its
own choosing: `free_port` lets go of the port before postgres binds it, so another process
(a test process beside this one) may take it meanwhile."""

from __future__ import annotations

import psycopg
import pytest

from tests.pg_server import PgServer, PortTaken


def test_a_start_on_a_port_another_server_took_moves_to_another_port(
    pg_server: PgServer,
) -> None:
    """Connecting would have reached the other server, as if it were this one."""
    server = PgServer()
    server.port = pg_server.port  # as if the session's server had taken it meanwhile
    try:
        server.start()
        assert server.port != pg_server.port
        with psycopg.connect(server.url("postgres")) as conn:
            (directory,) = conn.execute("SHOW data_directory").fetchone() or ("",)
        assert directory == str(server.data_dir.resolve())
    finally:
        server.destroy()


def test_a_port_given_by_the_caller_is_kept_and_its_clash_said(pg_server: PgServer) -> None:
    server = PgServer(port=pg_server.port)
    try:
        with pytest.raises(PortTaken, match=f"port {pg_server.port}"):
            server.start()
    finally:
        server.destroy()
