"""HAProxy in front of kimari replicas, with the configuration docs/deployment.md gives.

The replica test and the replica benchmark both run the documented configuration (read
from that page, its ports replaced), so the page cannot drift from what is tested.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tests import ROOT
from tests.pg_server import free_port

DEPLOYMENT = ROOT / "docs" / "deployment.md"


def binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None
    )
    if found is None:
        raise RuntimeError("haproxy is not installed: `make test` installs it")
    return found


def config(front: int, replicas: Sequence[int]) -> str:
    """The HAProxy configuration of docs/deployment.md, on these ports (up to 9 replicas)."""
    text = DEPLOYMENT.read_text(encoding="utf-8")
    block = re.search(r"```haproxy\n(.*?)```", text, re.S)
    assert block is not None, "docs/deployment.md lost its HAProxy configuration"
    out = block.group(1).replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{front}")
    lines = [line for line in out.splitlines() if not line.strip().startswith("server r")]
    servers = [
        f"    server r{n} 127.0.0.1:{port} check" for n, port in enumerate(replicas, start=1)
    ]
    documented = [line for line in out.splitlines() if line.strip().startswith("server r")]
    assert documented and all(line.endswith(" check") for line in documented)
    return "\n".join(lines + servers) + "\n"


@contextlib.contextmanager
def running(folder: Path, replicas: Sequence[int]) -> Iterator[str]:
    """HAProxy on a free port in front of the replicas' ports; its URL."""
    port = free_port()
    path = folder / "haproxy.cfg"
    path.write_text(config(port, replicas), encoding="utf-8")
    log_path = folder / "haproxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [binary(), "-db", "-f", str(path)], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not answer: {log_path.read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
