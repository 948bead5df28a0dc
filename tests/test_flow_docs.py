"""The example flow in docs/flows.md compiles and its step cases pass (RULES EX-6 shape)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from engine.api import run_tests
from engine.project import load_project
from tests.strategies import ROOT

DOC = ROOT / "docs" / "flows.md"
BLOCK = re.compile(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)```", re.S)


def blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))


def test_the_example_flow_compiles_and_its_step_cases_pass(tmp_path: Path) -> None:
    found = blocks()
    assert set(found) == {"flow-facts", "flow", "flow-tests"}
    shutil.copy(ROOT / "policies" / "rulebook.tsv", tmp_path / "rulebook.tsv")
    (tmp_path / "claims.facts.schema.json").write_text(json.dumps(json.loads(found["flow-facts"])))
    (tmp_path / "claims.yaml").write_text(found["flow"], encoding="utf-8")
    (tmp_path / "claims.tests.yaml").write_text(found["flow-tests"], encoding="utf-8")
    project = load_project(tmp_path)
    assert project.policies["claims"].kind == "flow"
    assert not project.warnings
    report = run_tests([tmp_path])
    assert report.ok, [f for r in report.results for f in r.failures] + [
        str(d) for d in report.problems
    ]
    assert len(report.results) == 3
    assert report.uncovered_rules == {}
