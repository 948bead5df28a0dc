"""`kimari serve --port P` with P taken: a usage error naming --port and the address, exit 2,
before anything is written (no store is created, nothing is bootstrapped); with P free,
it serves there, the store bootstrapped as before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import ROOT
from tests.service.server_process import Server, copy_project


@pytest.fixture
def taken() -> Iterator[int]:
    """A port on 127.0.0.1 another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        yield other.getsockname()[1]


def serve(
    policies: Path, store: Path, port: int, lang: str = "en"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")}
    env["KIMARI_LANG"] = lang
    command = ["serve", "--port", str(port), "--policies", str(policies), "--store", str(store)]
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_port_in_use_is_a_usage_error_before_the_store_is_touched(
    tmp_path: Path, taken: int
) -> None:
    store = tmp_path / "var" / "kimari.sqlite3"
    done = serve(copy_project(tmp_path), store, taken)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # never announced as listening
    assert f"--port {taken}: 127.0.0.1:{taken} is already in use" in done.stderr, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("port_unavailable: "), done.stderr
    assert not store.exists() and not store.parent.exists()  # no store, no bootstrap


def test_the_refusal_is_said_in_japanese(tmp_path: Path, taken: int) -> None:
    store = tmp_path / "kimari.sqlite3"
    done = serve(copy_project(tmp_path), store, taken, lang="ja")
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{taken} はすでに使われています" in done.stderr, done.stderr
    assert not store.exists()


def test_a_free_port_given_is_served_and_the_store_bootstrapped(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free again once closed (a listener never used it)
    store = tmp_path / "var" / "kimari.sqlite3"
    server = Server(copy_project(tmp_path), store, port=port)
    try:
        server.start()
        assert server.port == port
        with server.client() as client:
            assert client.get("/readyz").status_code == 200
        assert store.exists()
        assert any("bootstrap" in line for line in server.errors), server.errors
    finally:
        server.stop()
