"""How PostgreSQL stores the decision log's long texts."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest

from engine.store.decisions import DecisionLog
from engine.store.postgres import _configure
from tests.store.test_decision_log import entry


def test_a_logged_decisions_long_texts_are_compressed_with_lz4(pg_url: str) -> None:
    log = DecisionLog(pg_url)
    try:
        long = '{"reasons": "' + "ブラックリスト客の注文" * 200 + '"}'
        log.commit([dataclasses.replace(entry("d1"), response=long.encode(), request=long)])
        with log.backend.read() as session:
            row = session.execute(
                "SELECT pg_column_compression(response), pg_column_compression(request), "
                "response FROM decisions WHERE decision_id = ?",
                ("d1",),
            ).fetchone()
        assert row == ("lz4", "lz4", long)
    finally:
        log.close()


class Refusing:
    """A connection to a server without lz4 (or before PostgreSQL 14)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def execute(self, sql: str, *args: Any) -> None:
        self.ran.append(sql)
        if "toast_compression" in sql:
            raise psycopg.errors.InvalidParameterValue("invalid value for parameter")


def test_a_server_without_lz4_keeps_its_own_compression_and_serves(
    caplog: pytest.LogCaptureFixture,
) -> None:
    conn = Refusing()
    with caplog.at_level("INFO", logger="kimari.store"):
        _configure(conn)  # type: ignore[arg-type]
    assert conn.ran[0] == "SET synchronous_commit = on"
    assert "keeps pglz" in caplog.text
