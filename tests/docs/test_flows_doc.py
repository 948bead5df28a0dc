"""The example flow in docs/flows.md compiles and its step cases pass (RULES EX-6 shape)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from engine.api import run_tests
from engine.project.project import load_project
from tests import ROOT

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
    assert len(report.results) == 4
    assert report.uncovered_rules == {}


def test_the_step_runner_reports_each_wrong_expectation_with_its_step(tmp_path: Path) -> None:
    found = blocks()
    shutil.copy(ROOT / "policies" / "rulebook.tsv", tmp_path / "rulebook.tsv")
    (tmp_path / "claims.facts.schema.json").write_text(found["flow-facts"])
    (tmp_path / "claims.yaml").write_text(found["flow"], encoding="utf-8")
    (tmp_path / "claims.tests.yaml").write_text(
        """\
kimari: 1
policy: claims
cases:
  - name: wrong on purpose
    refs: [EX-6]
    at: "2024-09-20T10:00:00+09:00"
    actor: {id: op-1, roles: [dealer, operator]}
    steps:
      - event: {type: claim}
        expect: {state: approved, facts: {claims: 2}}
      - event: {type: approve}
      - event: {type: review}
        expect: {refused: true}
      - event: {type: claim, bogus: 1}
""",
        encoding="utf-8",
    )
    report = run_tests([tmp_path])
    (result,) = report.results
    assert not result.passed
    assert result.failures == [
        "step 1 (claim): state: expected approved, got requested",
        "step 1 (claim): facts.claims: expected 2, got 1",
        "step 2 (approve): refused: 現在の状態「依頼中」では「承認」はできません"
        "（この状態でできる操作: 「確認開始」）。",
        "step 3 (review): expected a refusal, but it moved by review to under_review",
        result.failures[4],
    ]
    assert result.failures[4].startswith("step 4 (claim): unexpected error:")
