"""Ctrl-C during `kimari batch` and `kimari impact`: the command alone stops (its worker
processes ignore SIGINT), promptly, with its own message and no worker's traceback; a batch
keeps what it decided, whole lines, in FILE.partial. Each run is a real process in a
session of its own, and SIGINT goes to its whole process group, as a terminal sends it."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.core.pools import stop_pool
from tests import FIXTURES, ROOT

FIXTURE = FIXTURES / "project"
AT = "2024-09-01T10:00:00+09:00"
BOUND = 20.0  # seconds a stopped command may take to exit (it takes about one)

# timing-bound (prompt stops): `make test` runs it alone, after the files run two at a time
pytestmark = pytest.mark.serial


def start(*args: str, cwd: Path = ROOT, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        env=env,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, as a terminal's job
    )


class Run:
    """A started command whose output is read as it comes (a full pipe never stalls it)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.out = bytearray()
        self.err = bytearray()
        assert proc.stdout is not None and proc.stderr is not None
        self.pumps = [
            threading.Thread(target=self._pump, args=(proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, self.err), daemon=True),
        ]
        for pump in self.pumps:
            pump.start()

    @staticmethod
    def _pump(stream: object, sink: bytearray) -> None:
        read = stream.read1  # type: ignore[attr-defined]
        while chunk := read(65536):
            sink.extend(chunk)

    def wait_for(self, condition: Callable[[], bool], what: str, deadline: float = 30.0) -> None:
        """Until `condition` holds; fails if the command ends first or the deadline passes."""
        until = time.monotonic() + deadline
        while not condition():
            if self.proc.poll() is not None:
                pytest.fail(f"the command ended before {what}: {self.err.decode()}")
            if time.monotonic() > until:
                self.kill()
                pytest.fail(f"no {what} within {deadline} s: {self.err.decode()}")
            time.sleep(0.01)

    def interrupt(self) -> float:
        """SIGINT to the process group; the seconds until the command exited."""
        sent = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.finish(sent)

    def finish(self, since: float | None = None) -> float:
        since = time.monotonic() if since is None else since
        try:
            self.proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"still running {BOUND} s after SIGINT: {self.err.decode()}")
        took = time.monotonic() - since
        self.close()
        return took

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.close()

    def close(self) -> None:
        for pump in self.pumps:
            pump.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    @property
    def stderr(self) -> str:
        return self.err.decode("utf-8", "replace")


def requests(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            facts = {
                "order": {"total": 1000 + n * 37, "sequence": 1, "payment": {"method": "card"}}
            }
            line = {"facts": facts, "at": AT, "decision_id": f"d-{n:06d}"}
            out.write(json.dumps(line) + "\n")
    return path


def batch_args(source: Path, *more: str) -> tuple[str, ...]:
    policies = ("--policies", str(FIXTURE))
    return ("batch", "routing", str(source), *policies, "--workers", "2", "--no-progress", *more)


def assert_quiet(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr, stderr
    assert "PoolWorker" not in stderr, stderr
    assert "internal error" not in stderr, stderr


def decided_ids(data: bytes) -> list[str]:
    """The decision ids of whole lines; fails on a line cut short."""
    assert data.endswith(b"\n") or not data, data[-200:]
    return [json.loads(line)["decision_id"] for line in data.splitlines()]


# -- kimari batch -------------------------------------------------------------------------
def test_an_interrupted_batch_keeps_whole_lines_in_the_partial_file(tmp_path: Path) -> None:
    source = requests(tmp_path / "requests.jsonl", 60_000)
    output = tmp_path / "decisions.jsonl"
    partial = Path(f"{output}.partial")
    run = Run(start(*batch_args(source, "-o", str(output))))

    def started() -> bool:
        return partial.exists() and partial.stat().st_size > 0

    run.wait_for(started, "decisions in the .partial file")
    took = run.interrupt()
    assert run.proc.returncode == 2, run.stderr
    assert took < BOUND
    assert_quiet(run.stderr)
    assert "stopped before the end" in run.stderr and str(partial) in run.stderr
    assert run.stderr.rstrip().endswith("aborted"), run.stderr
    assert not output.exists()
    ids = decided_ids(partial.read_bytes())
    # what was decided, in input order, from the first line on (and not all of it)
    assert 0 < len(ids) < 60_000
    assert ids == [f"d-{n:06d}" for n in range(len(ids))]


def test_an_interrupted_batch_to_standard_output_stops_between_lines(tmp_path: Path) -> None:
    source = requests(tmp_path / "requests.jsonl", 60_000)
    run = Run(start(*batch_args(source)))
    run.wait_for(lambda: b"\n" in run.out, "a first decision on standard output")
    took = run.interrupt()
    assert run.proc.returncode == 2 and took < BOUND, run.stderr
    assert_quiet(run.stderr)
    assert run.stderr.strip() == "aborted", run.stderr
    ids = decided_ids(bytes(run.out))
    assert ids == [f"d-{n:06d}" for n in range(len(ids))]


def test_an_interrupted_batch_reading_a_silent_pipe_stops_promptly(tmp_path: Path) -> None:
    """Its input still open (no end in sight): the pool stops all the same, at once."""
    lines = requests(tmp_path / "requests.jsonl", 3000).read_bytes()
    proc = start(*batch_args(Path("-")), stdin=subprocess.PIPE)
    run = Run(proc)
    assert proc.stdin is not None
    try:
        proc.stdin.write(lines)  # 11 chunks and a part: the rest never comes
        proc.stdin.flush()
        run.wait_for(lambda: run.out.count(b"\n") >= 2048, "the first chunks decided")
        took = run.interrupt()
    finally:
        proc.stdin.close()
    assert proc.returncode == 2 and took < 10, (took, run.stderr)
    assert_quiet(run.stderr)
    ids = decided_ids(bytes(run.out))
    assert ids == [f"d-{n:06d}" for n in range(len(ids))]


def test_an_uninterrupted_batch_writes_every_line_and_no_partial_file(tmp_path: Path) -> None:
    source = requests(tmp_path / "requests.jsonl", 3000)
    output = tmp_path / "decisions.jsonl"
    run = Run(start(*batch_args(source, "-o", str(output))))
    took = run.finish()
    assert run.proc.returncode == 0 and took < BOUND, run.stderr
    assert_quiet(run.stderr)
    assert "3,000 decided, 0 failed" in run.stderr
    assert not Path(f"{output}.partial").exists()
    assert decided_ids(output.read_bytes()) == [f"d-{n:06d}" for n in range(3000)]


def test_a_pool_that_cannot_stop_is_left_behind_within_the_bound() -> None:
    """The pool's own terminate waits for its task queue's lock, forever should a worker
    hold it: the stop is bounded (the workers are killed, then the pool's threads left)."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    lock = pool._inqueue._rlock  # type: ignore[attr-defined]  # held, as by a stuck worker
    lock.acquire()
    workers = list(pool._pool)  # type: ignore[attr-defined]
    try:
        began = time.monotonic()
        stop_pool(pool, seconds=0.5)
        assert time.monotonic() - began < 5
        for worker in workers:
            worker.join(5)
            assert worker.exitcode is not None  # killed
    finally:
        lock.release()  # the terminate left behind can now end
    for thread in threading.enumerate():
        if thread.name == "pool-stop":
            thread.join(10)


# -- kimari impact ------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped policies, bootstrapped into var/kimari.sqlite3 beside them."""
    from engine.lifecycle.workflow import Lifecycle, Rules

    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    with Lifecycle(tmp_path / "var" / "kimari.sqlite3", Rules(workers=1), files=True) as lc:
        lc.bootstrap(tmp_path / "policies")
    return tmp_path


def cancellations(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            facts = {
                "cancellation": {
                    "reward": 1000 * (n % 90),
                    "stage": "application_in_progress",
                    "contract_start": "2024-03-01",
                }
            }
            out.write(json.dumps({"facts": facts, "at": "2024-06-01T10:00:00+09:00"}) + "\n")
    return path


def impact_args(project: Path, source: Path, *more: str) -> tuple[str, ...]:
    return (
        "impact",
        "cancellation-fees",
        "--policies",
        str(project / "policies"),
        "--store",
        str(project / "var" / "kimari.sqlite3"),
        "--from",
        str(source),
        "--workers",
        "2",
        *more,
    )


def test_an_interrupted_impact_stops_without_a_worker_traceback(project: Path) -> None:
    # more lines than one process replays alone (impact.CHUNK_SEQS), in chunks of 2048
    source = cancellations(project / "rows.jsonl", 60_000)
    run = Run(start(*impact_args(project, source, "--progress"), cwd=project))
    # the progress line comes once the first chunk is replayed by the pool
    run.wait_for(lambda: b"/60,000" in run.err, "a first chunk replayed")
    took = run.interrupt()
    assert run.proc.returncode == 2 and took < BOUND, run.stderr
    assert_quiet(run.stderr)
    assert run.stderr.rstrip().endswith("aborted"), run.stderr
    assert run.out == b""


def test_an_uninterrupted_impact_across_processes_reports(project: Path) -> None:
    source = cancellations(project / "rows.jsonl", 6000)
    run = Run(
        start(*impact_args(project, source, "--no-progress", "--format", "json"), cwd=project)
    )
    took = run.finish()
    assert run.proc.returncode == 0 and took < BOUND, run.stderr
    assert_quiet(run.stderr)
    assert json.loads(run.out)["replayed"] == 6000


def test_what_is_decided_is_written_while_the_input_waits(tmp_path: Path) -> None:
    """A pipe that gives 300 lines and then nothing for a while: the first chunk's decisions
    are written before the input ends (they were held back until the next chunk came)."""
    lines = requests(tmp_path / "requests.jsonl", 300).read_bytes()
    proc = start(*batch_args(Path("-")), stdin=subprocess.PIPE)
    run = Run(proc)
    assert proc.stdin is not None
    proc.stdin.write(lines)
    proc.stdin.flush()
    run.wait_for(lambda: run.out.count(b"\n") >= 256, "the first chunk written, input open")
    assert proc.poll() is None  # the input is still open: the run goes on
    proc.stdin.close()
    proc.wait(60)
    run.close()
    assert proc.returncode == 0, run.stderr
    assert decided_ids(bytes(run.out)) == [f"d-{n:06d}" for n in range(300)]
