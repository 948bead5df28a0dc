"""The README's first decisions are true: its CLI commands run, its curl bodies decide, and
the whole sequence works top to bottom as a newcomer types it: the CLI examples, then
`make run` on the same store, then every curl call."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import httpx
import pytest

from engine.cli.main import main
from engine.runtime.evaluate import decide
from tests import ROOT
from tests.service.server_process import Server
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
    for name in re.findall(r"examples/[\w.-]+\.jsonl?\b", README):
        assert (ROOT / name).is_file(), name
    assert Path(ROOT / "examples").is_dir()


CLI_BLOCK = re.compile(r"## A first decision with the CLI\n.*?```\n(.*?)```", re.S)
CALL = re.compile(r"^curl -s (?:-X (\w+) )?localhost:8080(\S+)", re.M)
BODY = re.compile(r"(?: -H '[^']*')? -d '([^']*)'")


def readme_cli_commands() -> list[list[str]]:
    block = CLI_BLOCK.search(README)
    assert block is not None
    lines = [line.split("  #")[0] for line in block.group(1).splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith(".venv/bin/kimari ")]


def readme_curl_calls() -> list[tuple[str, str, str]]:
    """(method, path, body) of every curl call of the README, in order (placeholders left out)."""
    calls = []
    for found in CALL.finditer(README):
        body = BODY.match(README, found.end())
        calls.append((found.group(1) or "GET", found.group(2), body.group(1) if body else ""))
    return [call for call in calls if "<" not in call[1]]


def test_the_readme_works_top_to_bottom_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("policies", "schemas", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    commands = readme_cli_commands()
    assert [c[0] for c in commands] == [
        "validate",
        "test",
        "decide",
        "decide",
        "decide",
        "flow",  # made 対象外 (EX-2)
        "flow",  # then claimed
        "history",
        "batch",
    ]
    for command in commands:
        assert main(command) == 0, (command, capsys.readouterr().err[-2000:])
    # `make run`: the shipped policies and var/kimari.sqlite3, no tokens
    server = Server(tmp_path / "policies", tmp_path / "var" / "kimari.sqlite3")
    server.extra_env = {"KIMARI_TOKENS": ""}
    calls = readme_curl_calls()
    assert len(calls) >= 10
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answers = [
                client.request(method, path, content=body.encode() or None).status_code
                for method, path, body in calls
            ]
    finally:
        server.stop()
    shown = [f"{m} {p}" for m, p, _ in calls]
    expected = [
        409 if '"start_review"' in body else 422 if '"total": "x"' in body else 200
        for _, _, body in calls
    ]
    assert list(zip(shown, answers, strict=True)) == list(zip(shown, expected, strict=True))
