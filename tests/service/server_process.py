"""Start `kimari serve` as a real process for API tests, and always clean it up.

The server runs in its own session (process group), on a free port it picks itself
(port 0; the port is read from its first output line), with a copy of the fixture
project under tmp_path so that tests may edit policies and data freely.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from tests import FIXTURES, ROOT

FIXTURE = FIXTURES / "service"

DECIDE_TOKEN = "decide-token-0123"
ADMIN_TOKEN = "admin-token-4567"
ONLY_ADMIN_TOKEN = "only-admin-token-89"
DEALER_TOKEN = "dealer-portal-token-2468"  # a dealer portal: may act only as 販売店
NO_ROLES_TOKEN = "no-roles-token-1357"  # decides, but may not send flow events
TOKENS = (
    f"{DECIDE_TOKEN}:decide:*,{ADMIN_TOKEN}:decide+admin+publish:*,{ONLY_ADMIN_TOKEN}:admin,"
    f"{DEALER_TOKEN}:decide:販売店,{NO_ROLES_TOKEN}:decide"
)


def copy_project(tmp_path: Path) -> Path:
    """tests/fixtures/service (policies/ and schemas/) copied under tmp_path; the policies path."""
    project = tmp_path / "project"
    shutil.copytree(FIXTURE, project)
    return project / "policies"


def copy_shipped(tmp_path: Path) -> Path:
    """The shipped project (policies/, schemas/, examples/) copied under tmp_path; the
    policies path."""
    project = tmp_path / "shipped"
    for folder in ("policies", "schemas", "examples"):
        shutil.copytree(ROOT / folder, project / folder)
    return project / "policies"


class Server:
    def __init__(
        self,
        policies: Path,
        store: Path | str,
        *,
        workers: int = 1,
        env: Mapping[str, str] | None = None,
        watch: bool = False,
        port: int = 0,
    ) -> None:
        self.policies = policies
        self.bind_port = port  # 0: a free one, picked at each start
        self.store = store
        self.workers = workers
        self.watch = watch
        self.extra_env = dict(env or {})
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.pumps: list[threading.Thread] = []
        self.url = ""

    def start(self, timeout: float = 60.0) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")}
        env.update({"KIMARI_TOKENS": TOKENS, **self.extra_env})
        self.lines, self.errors = [], []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--port",
                str(self.bind_port),
                "--policies",
                str(self.policies),
                "--store",
                str(self.store),
                "--workers",
                str(self.workers),
                *(["--watch"] if self.watch else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self.pumps = []
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            pump = threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            pump.start()
            self.pumps.append(pump)
        deadline = time.monotonic() + timeout
        while not self.url:
            for line in self.lines:
                if "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].split()[0]
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.lines} {self.errors}")
            time.sleep(0.05)
        self.wait_ready(self.workers, deadline - time.monotonic())
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def wait_ready(self, workers: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200 and answer.json()["workers"] >= workers:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready: {self.errors}")

    def front_pid(self) -> int | None:
        """The pid of the HTTP front: the supervisor's child running engine.service.http
        (read from /proc, since /healthz does not tell)."""
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces
            if parent == self.proc.pid and b"engine.service.http" in command:
                return int(entry.name)
        return None

    def client(self, token: str | None = DECIDE_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def kill(self) -> None:
        """SIGKILL the whole process group: the front and every worker, with no warning."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self._close()

    def _close(self) -> None:
        """Wait for the output pumps (the pipes reach EOF once every process is gone)."""
        assert self.proc is not None
        for pump in self.pumps:
            pump.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM to `kimari serve` alone, as an orchestrator sends it (it stops its front
        and workers itself: the drain, then the last commits); its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close()
        return code

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # workers left behind, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._close()


def _pump(stream: object, sink: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.append(line.rstrip("\n"))


def finished_job(client: httpx.Client, answer: httpx.Response, seconds: float = 90.0) -> Any:
    """A 202 answer's job (a submission, an impact), followed until it no longer runs."""
    assert answer.status_code == 202, answer.text
    job = answer.json()
    deadline = time.monotonic() + seconds
    while job["state"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    return job


@contextlib.contextmanager
def running(
    tmp_path: Path,
    *,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    policies: Path | None = None,
    watch: bool = False,
) -> Iterator[Server]:
    """A service over a copy of the fixture project. `watch`: it serves the files as saved
    (kimari serve --watch); else the store's published revisions (bootstrapped from them)."""
    server = Server(
        policies or copy_project(tmp_path),
        tmp_path / "var" / "kimari.sqlite3",
        workers=workers,
        env=env,
        watch=watch,
    )
    try:
        yield server.start()
    finally:
        server.stop()
