"""A throwaway PostgreSQL server for tests, benchmarks and `make run-postgres`.

    server = PgServer().start()          # initdb in a temporary folder, a free port
    url = server.create_database("t1")   # postgresql://kimari@127.0.0.1:PORT/t1
    server.restart()                     # as an operator's restart: fast shutdown, start
    server.stop()

    python -m tests.pg_server var/postgres 5433   # keep one running (make run-postgres)

It runs the Debian `postgresql` package's binaries (the Makefile installs them when they
are absent). `initdb` and `postgres` refuse to run as root, so as root the server runs as
the package's `postgres` user (the data folder is made its own); as anyone else, as that
user. It listens on 127.0.0.1 only (no Unix socket), with `trust` authentication for
the superuser `kimari`: a server for this machine's tests, never for production.

`fsync=False` (the tests' default) makes it quicker on this shared machine; what a
COMMIT acknowledges still survives a crash of the server process (the WAL is in the
kernel's page cache), only not a power cut. Benchmarks start it with fsync on.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

SUPERUSER = "kimari"
RUN_AS = "postgres"  # the Debian package's user


class PgServerError(RuntimeError):
    pass


class PortTaken(PgServerError):
    """The port chosen for the server is another process's by the time it starts."""


def binary(name: str) -> str:
    """`initdb` or `postgres` of the newest PostgreSQL installed (Debian keeps them apart
    from PATH, under /usr/lib/postgresql/<version>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if found:
        return str(found[-1])
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise PgServerError(
        f"PostgreSQL's {name} is not installed: `make test` installs it "
        "(apt-get install -y postgresql)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    def __init__(
        self, data_dir: Path | None = None, port: int | None = None, *, fsync: bool = False
    ) -> None:
        self.own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="kimari-pg-"))
        self.port = port or free_port()
        self.own_port = port is None  # another may be taken if this one is gone by start
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None
        self._user = self._run_as()
        self._databases = 0

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None  # run as ourselves
        try:
            return pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PgServerError(
                f"running as root and there is no '{RUN_AS}' user to run PostgreSQL as: "
                "install the Debian postgresql package (make test does)"
            ) from None

    def _as_user(self) -> dict[str, int]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    # -- life ----------------------------------------------------------------------------
    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.data_dir, self._user.pw_uid, self._user.pw_gid)
        self.data_dir.chmod(0o700)
        done = subprocess.run(
            [
                binary("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            cwd="/",
            **self._as_user(),  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            raise PgServerError(f"initdb failed: {done.stderr or done.stdout}")

    def start(self, timeout: float = 30.0) -> PgServer:
        """Started and answering. `free_port` closes its socket before postgres binds the
        port: should another process (a test process beside this one) take it meanwhile,
        a first start on a port of our choosing tries another one."""
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PortTaken:
                if not self.own_port or attempt == 2 or self.proc is None:
                    raise
                self.proc.wait(timeout)
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> PgServer:
        self.init()
        log = (self.data_dir / "server.log").open("ab")  # the child's stderr
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on",
            "max_connections": "200",
            "shared_buffers": "64MB",
        }
        args = [binary("postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # a Ctrl-C of the tests reaches it through stop() only
            **self._as_user(),  # type: ignore[arg-type]
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                    answered = conn.execute("SHOW data_directory").fetchone()
                if answered and Path(answered[0]).resolve() != self.data_dir.resolve():
                    raise PortTaken(f"port {self.port} is another server's ({answered[0]})")
                return
            except psycopg.OperationalError as exc:
                if self.proc is not None and self.proc.poll() is not None:
                    if "could not bind" in self.log_tail():
                        raise PortTaken(f"port {self.port}: {self.log_tail()}") from exc
                    raise PgServerError(f"postgres exited: {self.log_tail()}") from exc
                if time.monotonic() > deadline:
                    raise PgServerError(f"postgres not ready: {exc} {self.log_tail()}") from exc
                time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = (self.data_dir / "server.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """Shut the server down: `fast` (SIGINT: sessions cut, clean checkpoint) or
        `immediate` (SIGQUIT: as a crash, recovery at the next start)."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # its backends, if any were left
            os.killpg(proc.pid, signal.SIGKILL)

    def restart(self, mode: str = "fast", down_s: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def destroy(self) -> None:
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------
    def url(self, database: str = "kimari") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL."""
        if name is None:
            self._databases += 1
            name = f"t{os.getpid()}_{self._databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def main(argv: list[str]) -> int:
    """`python -m tests.pg_server [DIR [PORT]] [-- COMMAND...]`: keep a server running in DIR
    (default var/postgres) until Ctrl-C, or while COMMAND runs with KIMARI_STORE set to its
    database `kimari` (make run-postgres)."""
    command: list[str] = []
    if "--" in argv:
        command = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    data_dir = Path(argv[1] if len(argv) > 1 else "var/postgres").resolve()
    port = int(argv[2]) if len(argv) > 2 else 5433
    server = PgServer(data_dir, port, fsync=True).start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'kimari'").fetchone():
                conn.execute("CREATE DATABASE kimari")
        print(f"PostgreSQL in {data_dir}: KIMARI_STORE={server.url()}", flush=True)
        if command:
            return _run_then_stop(command, server.url())
        signal.signal(signal.SIGTERM, lambda *_: server.stop())
        assert server.proc is not None
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _run_then_stop(command: list[str], url: str) -> int:
    """Run the command on the database; the server stops only after it has (a Ctrl-C
    reaches the command from the terminal; a SIGTERM to us is passed on to it)."""
    child = subprocess.Popen(command, env=dict(os.environ, KIMARI_STORE=url))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
