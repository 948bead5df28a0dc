"""The benchmark script keeps working (a smoke run; its figures are not checked here).

The floors it compares kimari with must decide exactly like kimari, or the
ratios mean nothing: bench/run.py asserts that before timing, and this test
runs that check on every change.
"""

from __future__ import annotations

from pathlib import Path

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
