"""The examples in docs/policy-language.md are true.

- every `<!-- example: policy -->` block compiles;
- every line `expression => value` of an `<!-- example: expressions -->`
  block evaluates to that value;
- the `<!-- example: tests -->` block passes against the example policies;
- the function table lists exactly the library's functions.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from engine.api import run_tests
from engine.core.jsonvalue import to_json_value
from engine.lang.functions import FUNCTIONS
from engine.project.project import load_project, load_rulebook
from engine.runtime.evaluate import decide
from tests import ROOT

DOC = ROOT / "docs" / "policy-language.md"
EXAMPLES = ROOT / "docs" / "examples"
BLOCK = re.compile(r"<!-- example: (\w+) -->\n```\w*\n(.*?)```", re.S)
FACTS = {"order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}}}


def blocks(kind: str) -> list[str]:
    return [body for found, body in BLOCK.findall(DOC.read_text()) if found == kind]


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    shutil.copytree(EXAMPLES, folder, dirs_exist_ok=True)
    shutil.copy(ROOT / "policies" / "rulebook.tsv", folder / "rulebook.tsv")
    for body in blocks("policy"):
        policy_id = yaml.safe_load(body)["id"]
        (folder / f"{policy_id}.yaml").write_text(body)
    for body in blocks("tests"):
        policy_id = yaml.safe_load(body)["policy"]
        (folder / f"{policy_id}.tests.yaml").write_text(body)
    return folder


def test_the_documentation_has_examples_of_every_kind() -> None:
    assert len(blocks("policy")) >= 3
    assert len(blocks("expressions")) >= 3
    assert len(blocks("tests")) == 1


def test_every_example_policy_compiles(project_dir: Path) -> None:
    project = load_project(project_dir)
    assert len(project.policies) == len(blocks("policy"))


def expression_lines() -> list[tuple[str, str]]:
    pairs = []
    for body in blocks("expressions"):
        for line in body.splitlines():
            expression, _, value = line.partition("=>")
            pairs.append((expression.strip(), value.strip()))
    return pairs


def test_every_example_expression_gives_the_documented_value(project_dir: Path) -> None:
    pairs = expression_lines()
    derived = "".join(
        f"  e{i}:\n    value: {json.dumps(e, ensure_ascii=False)}\n"
        for i, (e, _) in enumerate(pairs)
    )
    (project_dir / "expressions.yaml").write_text(
        "kimari: 1\nid: expressions\ntitle: {ja: 式}\nfacts: order.facts.schema.json\n"
        f"derived:\n{derived}rules:\n  - id: r\n    refs: [{any_ref()}]\n    when: true\n"
    )
    try:
        policy = load_project(project_dir).policy("expressions")
    finally:
        (project_dir / "expressions.yaml").unlink()
    decision = decide(policy, FACTS, at="2024-09-01T00:00:00+09:00", backend="python")
    assert decision.derived is None
    explained = decide(policy, FACTS, at="2024-09-01T00:00:00+09:00", explain=True)
    values = {d["name"]: d["value"] for d in explained.explanation["derived"]}  # type: ignore[index]
    for i, (expression, wanted) in enumerate(pairs):
        shown = json.dumps(to_json_value(values[f"e{i}"]), ensure_ascii=False).strip('"')
        assert shown == wanted, expression


def any_ref() -> str:
    """A real rulebook ID, looked up so that this file cites none (it tests no rule)."""
    return next(iter(load_rulebook(ROOT / "policies" / "rulebook.tsv")))


def test_the_example_test_cases_pass(project_dir: Path) -> None:
    report = run_tests([project_dir])
    assert not report.problems, report.problems
    assert report.results and all(r.passed for r in report.results), [
        r.failures for r in report.results
    ]


def test_the_function_table_lists_exactly_the_library() -> None:
    text = DOC.read_text()
    table = text.split("functions-table: begin")[1].split("functions-table: end")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{f.signature.replace('|', chr(92) + '|')}` | {f.doc} |" for f in FUNCTIONS.values()
    ]
    assert rows == expected
