"""The README's first decisions are true: its CLI commands run, its curl bodies decide."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.runtime.evaluate import decide
from tests import ROOT
from tests.strategies import shipped_project

README = (ROOT / "README.md").read_text()
CURL = re.compile(
    r"curl -s -X POST localhost:8080/v1/decisions/([a-z-]+) "
    r"-H 'Content-Type: application/json' -d '\n(.*?)'\n```\n\n```json\n(.*?)```",
    re.S,
)
DECIDE = re.compile(r"^\.venv/bin/kimari (decide .*?)(?:\s+#.*)?$", re.M)


def test_the_readme_shows_the_two_commands_and_a_curl_decision_per_decision_policy() -> None:
    assert "make run" in README and "make test" in README
    shown = {pid for pid, _, _ in CURL.findall(README)}
    decision_policies = {p for p, c in shipped_project().policies.items() if c.kind == "decision"}
    assert shown == decision_policies
    for flow in (p for p, c in shipped_project().policies.items() if c.kind == "flow"):
        assert flow in README


@pytest.mark.parametrize(
    "pid,body,answer", CURL.findall(README), ids=[m[0] for m in CURL.findall(README)]
)
def test_each_curl_example_decides_as_the_readme_says(pid: str, body: str, answer: str) -> None:
    request = json.loads(body)
    project = shipped_project()
    policy = project.policy(pid)
    decision = decide(policy, request["facts"], at=request["at"], data=project.data_for(policy))
    fired = json.loads(re.search(r'"fired": (\[.*?\])', answer).group(1))  # type: ignore[union-attr]
    assert decision.fired == fired


@pytest.mark.parametrize("command", DECIDE.findall(README))
def test_each_cli_decide_example_runs(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(command)) == 0, capsys.readouterr().err
    assert "decision" in capsys.readouterr().out


def test_the_example_files_exist() -> None:
    for name in re.findall(r"examples/[\w.-]+\.json", README):
        assert (ROOT / name).is_file(), name
    assert Path(ROOT / "examples").is_dir()
