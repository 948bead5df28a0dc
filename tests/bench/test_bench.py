"""The benchmark script keeps working (a smoke run; its figures are not checked here).

The floors it compares kimari with must decide exactly like kimari, or the
ratios mean nothing: bench/run.py asserts that before timing, and this test
runs that check on every change.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import run
from bench.report import Report
from tests import WORKER_STATS


def test_the_shape_benchmarks_run_and_their_floors_agree_with_kimari(tmp_path: Path) -> None:
    report = Report(run.machine())
    report.start("shapes")
    run.section_shapes(report, quick=True)
    assert any("order-shape" in line for line in report.blocks["shapes"])


def test_the_rule_count_benchmark_reports_the_limit(tmp_path: Path) -> None:
    report = Report(run.machine())
    report.start("rules")
    run.section_rules(report, quick=True)
    text = "\n".join(report.blocks["rules"])
    assert "refused: too_many_rules: 151 rules; the rule engine supports at most 150" in text


def test_bytes_per_entry_are_shown_only_where_the_rss_can_measure_them() -> None:
    assert run._per_entry((-667_600, 1_871_900), 100) == ["-", "-"]
    assert run._per_entry((-1, 5), run.RSS_ENTRIES - 1) == ["-", "-"]
    assert run._per_entry((2_953_000, 1_282_000), run.RSS_ENTRIES) == [295.3, 128.2]


def test_calls_timed_in_turns_each_take_their_count_in_every_round() -> None:
    seen: list[str] = []
    calls = {
        "a": (lambda item: seen.append(f"a{item}"), [1, 2], 10),
        "b": (lambda item: seen.append(f"b{item}"), [7], 5),
    }
    figures = run.timed_in_turns(calls, rounds=5, warmup=2, before=lambda: seen.append("|"))
    warm, timed = seen[: seen.index("|")], seen[seen.index("|") + 1 :]
    assert warm == ["a1", "a2", "b7", "b7"]
    assert timed == ["a1", "a2", "b7"] * 5  # a's 10 and b's 5 calls, in five turns each
    assert set(figures) == {"a", "b"}
    assert all(0 < f["median"] <= f["p99"] for f in figures.values())


def test_the_policies_section_times_zen_in_turns_with_order_holds() -> None:
    report = Report(run.machine())
    report.start("policies")
    run.section_policies(report, quick=True)
    text = "\n".join(report.blocks["policies"])
    assert "zen-engine on the order shape, timed in turns with order-holds" in text
    assert "order-holds, python / zen-engine's own evaluation of the order shape" in text
    for policy in ("order-holds", "exemption-claims", "cancellation-fees"):
        assert f"{policy}: durable / python" in text


def test_the_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\nAnalysis.\n\n<!-- bench:load:begin -->\nold\n"
        "<!-- bench:load:end -->\n\nMore analysis.\n"
    )
    report = Report(run.machine())
    report.start("load")
    report.table("t", ["a"], [[1]])
    report.write(doc, ["load"])
    text = doc.read_text()
    assert "old" not in text and "| 1 |" in text
    assert "Analysis." in text and "More analysis." in text


# timing-bound: `make test` runs it alone, after the files run two at a time
@pytest.mark.serial
def test_the_cpu_split_counts_every_thread_of_the_workers_below_the_front() -> None:
    """A worker is a child of the front, itself a child of the supervisor: a thread of
    a grandchild counts as the workers' CPU (Linux /proc)."""
    import time

    spinner = (
        "import threading, time\n"
        "def spin():\n"
        "    end = time.process_time() + 0.3\n"
        "    while time.process_time() < end: pass\n"
        "threading.Thread(target=spin).start()\n"  # it ends: its CPU stays the process's
        "time.sleep(30)\n"
    )
    front = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spinner!r}])"
    child = subprocess.Popen(
        [sys.executable, "-c", front], cwd=Path(run.ROOT), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 15
        split = run._process_cpu(os.getpid())
        while split["worker"] < 0.2 and time.monotonic() < deadline:
            time.sleep(0.1)
            split = run._process_cpu(os.getpid())
        assert split["worker"] >= 0.2
        assert split["front"] < 0.2  # the front only waits
    finally:
        os.killpg(child.pid, 15)
        child.wait(10)


def test_the_log_share_comes_from_the_workers_metric() -> None:
    """A worker may commit on its deciding thread: the log's CPU is what the workers count."""
    from engine.service.metrics import Metrics

    def stats(slot: int, seconds: float) -> dict[str, Any]:
        return {**WORKER_STATS, "slot": slot, "pid": 100 + slot, "commit_cpu_s": seconds}

    text = Metrics().render([stats(0, 0.25), stats(1, 0.5)], 2).decode()
    assert run.commit_cpu(text) == 0.75
    with pytest.raises(RuntimeError, match="no kimari_log_commit_cpu_seconds_total"):
        run.commit_cpu(text.replace("kimari_log_commit_cpu_seconds_total", "other"))


def test_paced_figures_come_from_every_request_h2load_logged() -> None:
    from bench.run import h2load_figures

    log = "".join(f"1700000000{i:06d}\t200\t{(i + 1) * 1000}\n" for i in range(100))
    figures = h2load_figures(log, seconds=2)
    assert figures == {"client": "h2load", "per_second": 50, "p50_ms": 51.0, "p99_ms": 100.0}
    with pytest.raises(RuntimeError, match="1 responses not 2xx of 101"):
        h2load_figures(log + "1700000001000000\t503\t900\n", seconds=2)


async def _slow_server(delay: float, keep_alive: float | None = None) -> asyncio.Server:
    """Answers every request on a connection, in order, `delay` seconds after it came;
    closes a connection idle for `keep_alive` seconds (as uvicorn does after 5 s)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), keep_alive)
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                await asyncio.sleep(delay)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def _open_loop(
    delay: float, rate: float, connections: int, keep_alive: float | None = None
) -> dict[str, object]:
    from bench.open_loop import run as open_loop

    async def main() -> dict[str, object]:
        server = await _slow_server(delay, keep_alive)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/decisions/x"
        try:
            return await open_loop(url, b'{"facts": {}}', rate, 1.0, connections, "t")
        finally:
            server.close()
            await asyncio.sleep(0.05)  # the handlers see their connections close

    return asyncio.run(main())


# timing-bound: `make test` runs it alone, after the files run two at a time
@pytest.mark.serial
def test_the_open_loop_client_answers_every_arrival_at_the_offered_rate() -> None:
    figures = _open_loop(delay=0.002, rate=200, connections=8)
    assert figures["unanswered"] == 0
    assert figures["statuses"] == {"200": figures["offered"]}
    assert 140 <= int(figures["offered"]) <= 260  # Poisson arrivals around 200 in 1 s
    assert 2.0 <= float(figures["p50_ms"]) < 50


# timing-bound: `make test` runs it alone, after the files run two at a time
@pytest.mark.serial
def test_the_open_loop_client_charges_a_slow_server_for_the_queue_behind_it() -> None:
    # one connection, 10 ms per answer, an arrival every ~5 ms: arrivals queue in the
    # client, and their wait is latency (a client timing from the send would see ~10 ms)
    figures = _open_loop(delay=0.010, rate=200, connections=1)
    assert figures["unanswered"] == 0
    assert float(figures["p99_ms"]) > 100


# timing-bound: `make test` runs it alone, after the files run two at a time
@pytest.mark.serial
def test_the_open_loop_client_replaces_the_connections_the_server_closes_while_idle() -> None:
    # 8 connections for ~1 request in flight: the least recent ones idle past the server's
    # keep-alive and are closed; a request must never be written to one of them
    figures = _open_loop(delay=0.002, rate=200, connections=8, keep_alive=0.1)
    assert int(figures["reopened"]) > 0
    assert figures["unanswered"] == 0
    assert figures["statuses"] == {"200": figures["offered"]}


ORDER = json.loads((run.ROOT / "examples" / "order-holds.json").read_text())
AT = "2024-10-01T10:00:00+09:00"


def _front_ceiling(store: Path, *flags: str, stdout: int | None = None) -> tuple[Any, str]:
    """bench/front_ceiling.py's server of one worker on `store`, once it has decided a first
    order-holds request; and its order-holds URL."""
    from bench.front_ceiling import _answered
    from tests.pg_server import free_port

    port = free_port()
    command = ["bench/front_ceiling.py", "serve", str(port), "1", str(store), "policies"]
    server = subprocess.Popen(
        [sys.executable, *command, *flags],
        cwd=run.ROOT,
        start_new_session=True,
        stdout=stdout,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1/decisions/order-holds"
    if not _answered(url, json.dumps({"facts": ORDER, "at": AT}).encode(), 60):
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
        raise AssertionError(f"bench/front_ceiling.py serve {' '.join(flags)} did not answer")
    return server, url


@pytest.mark.parametrize(
    "flags", [[], ["--front"], ["--lean"]], ids=["httptools", "front-code", "lean-front"]
)
def test_the_direct_server_of_the_front_ceiling_decides_and_logs_like_the_service(
    tmp_path: Path, flags: list[str]
) -> None:
    # bench/front_ceiling.py measures what removing the front would buy: its figure means
    # something only if its workers do the service's whole work (decide, log, answer),
    # with its own minimal HTTP path, with the service's front code (--front), or behind a
    # lean front process as today's workers are (--lean)
    import httpx

    from bench.front_ceiling import _tree_cpu
    from engine.api import load_project
    from engine.runtime.evaluate import decide
    from engine.store.decisions import DecisionLog

    store = tmp_path / "direct.sqlite3"
    server, url = _front_ceiling(store, *flags)
    try:
        with httpx.Client(timeout=10) as client:
            answers = [client.post(url, json={"facts": ORDER, "at": AT}) for _ in range(3)]
            bad = client.post(url, content=b'{"facts": {"order": ')
        assert _tree_cpu(server.pid) > 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(30) == 0
    project = load_project(run.ROOT / "policies")
    policy = project.policy("order-holds")
    expected = decide(policy, ORDER, at=AT, data=project.data_for(policy))
    assert [a.status_code for a in answers] == [200, 200, 200]
    want = json.loads(expected.to_json())
    for answer in answers:
        got = answer.json()
        assert (got["outcome"], got["reasons"], got["fired"]) == (
            want["outcome"],
            want["reasons"],
            want["fired"],
        )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    log = DecisionLog(str(store))
    try:
        for answer in answers:  # the readiness probe's decision is logged too
            assert log.get(answer.json()["decision_id"]) is not None
    finally:
        log.close()


def test_the_guarded_direct_server_answers_a_dead_workers_request_with_a_retriable_503(
    tmp_path: Path,
) -> None:
    # the crash contract without the front (bench/front_ceiling.py Guard): the supervisor
    # holds a copy of each connection and knows which have a request in flight
    import httpx

    store = tmp_path / "g.sqlite3"
    server, url = _front_ceiling(store, "--guard", "--faults", stdout=subprocess.PIPE)
    request = {"facts": ORDER, "at": AT}
    try:
        with httpx.Client(timeout=10) as idle, httpx.Client(timeout=10) as client:
            assert idle.post(url, json=request).status_code == 200  # then left idle
            crashed = client.post(f"{url}?fault=exit", json=request)
        said, _ = server.communicate(timeout=30)  # its one worker is gone: the supervisor ends
        assert server.returncode == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.communicate(timeout=30)
    assert crashed.status_code == 503
    assert crashed.headers["retry-after"] == "1"
    assert crashed.json()["code"] == "worker_crashed"
    assert crashed.json()["retriable"] is True
    assert "1 answered 503" in said  # the idle connection was closed, not answered


def test_the_lean_front_answers_a_dead_workers_request_with_the_pools_503(tmp_path: Path) -> None:
    # bench/front_ceiling.py --lean keeps today's architecture: the pool notices the worker's
    # death and the lean relay answers with the service's retriable 503; a new worker follows
    import httpx

    from bench.front_ceiling import _answered

    server, url = _front_ceiling(tmp_path / "l.sqlite3", "--lean", "--faults")
    request = {"facts": ORDER, "at": AT}
    try:
        with httpx.Client(timeout=10) as client:
            crashed = client.post(f"{url}?fault=exit", json=request)
        assert _answered(url, json.dumps(request).encode(), 60)  # the pool started a new one
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        assert server.wait(30) == 0
    assert crashed.status_code == 503
    assert crashed.headers["retry-after"] == "1"
    assert crashed.headers["content-type"] == "application/problem+json"
    assert crashed.json()["code"] == "worker_crashed"


# timing-bound: `make test` runs it alone, after the files run two at a time (a figure is
# a difference of two timings: the other process's turn on the core can make it negative)
@pytest.mark.serial
def test_the_relay_timing_answers_every_request_on_both_paths() -> None:
    # bench/front_relay.py times the front's path and the lean one per request: each must
    # really relay and answer (one write per request), or its µs would time nothing
    from bench.front_relay import measure

    figures = measure(200, 2)
    assert set(figures) == {"front (uvicorn, App)", "lean relay"}
    for per_round, writes in figures.values():
        assert writes == 200 // 10 + 2 * 200
        assert len(per_round) == 2
        assert all(us > 0 for us in per_round)


def test_a_timed_reload_serves_the_edited_policy() -> None:
    (took,) = run.reload_times("cancellation-fees", 1)
    assert took > 0


def test_a_reload_that_does_not_compile_is_not_timed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The copy once lacked the schemas the policies name: every reload timed a refusal."""
    (tmp_path / "policies").symlink_to(run.ROOT / "policies")
    (tmp_path / "schemas").mkdir()
    monkeypatch.setattr(run, "ROOT", tmp_path)
    with pytest.raises(RuntimeError, match="did not compile"):
        run.reload_times("cancellation-fees", 1)


def test_a_batch_with_a_refused_line_is_not_timed() -> None:
    from engine.cli.batch import BatchSummary

    assert run.decided_all(BatchSummary(total=2, decided=2)).decided == 2
    with pytest.raises(RuntimeError, match="did not decide every line"):
        run.decided_all(BatchSummary(total=2, decided=1, failed=1))


def test_an_unknown_section_is_refused_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        run.main(["--only", "policies,decision"])
    assert stop.value.code == 2
    err = capsys.readouterr()
    assert "no section decision" in err.err
    assert "== policies" not in err.out
