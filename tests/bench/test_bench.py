"""The benchmark script keeps working (a smoke run; its figures are not checked here).

The floors it compares kimari with must decide exactly like kimari, or the
ratios mean nothing: bench/run.py asserts that before timing, and this test
runs that check on every change.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run
from bench.report import Report


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


def test_the_cpu_split_reads_the_commit_thread_by_its_name() -> None:
    """The HTTP section splits a worker's CPU by the committer's OS thread name (Linux)."""
    import os
    import subprocess
    import sys
    import time

    spinner = (
        "import threading, time\n"
        "from engine.service.worker import COMMIT_THREAD, _name_os_thread\n"
        "def spin():\n"
        "    _name_os_thread(COMMIT_THREAD)\n"
        "    end = time.process_time() + 0.3\n"
        "    while time.process_time() < end: pass\n"
        "    time.sleep(30)\n"  # alive until killed: its CPU stays in /proc
        "threading.Thread(target=spin, daemon=True).start()\n"
        "time.sleep(30)\n"
    )
    front = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {spinner!r}])"
    child = subprocess.Popen(
        [sys.executable, "-c", front], cwd=Path(run.ROOT), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 15
        split = run._server_cpu(os.getpid())
        while split["log"] < 0.2 and time.monotonic() < deadline:
            time.sleep(0.1)
            split = run._server_cpu(os.getpid())
        assert split["log"] >= 0.2  # the named thread of a grandchild, a "worker"
        assert set(split) == {"front", "worker", "log"}
    finally:
        os.killpg(child.pid, 15)
        child.wait(10)


def test_paced_figures_come_from_every_request_h2load_logged() -> None:
    from bench.run import h2load_figures

    log = "".join(f"1700000000{i:06d}\t200\t{(i + 1) * 1000}\n" for i in range(100))
    figures = h2load_figures(log, seconds=2)
    assert figures == {"client": "h2load", "per_second": 50, "p50_ms": 51.0, "p99_ms": 100.0}
    with pytest.raises(RuntimeError, match="1 responses not 2xx of 101"):
        h2load_figures(log + "1700000001000000\t503\t900\n", seconds=2)
