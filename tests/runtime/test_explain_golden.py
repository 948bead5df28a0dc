"""The explanations of every shipped YAML test case stay byte for byte what they were.

An explanation is built from a plan made once per revision (engine/runtime/explain.py);
making it cheaper must not change a character of it. Running every case of policies/
(decisions and flows, both backends) records each explanation the reference evaluator
builds, as JSON in its own key order (as it is served), and compares them with
tests/runtime/explain-golden.txt: one line per explanation, its policy and the SHA-256 of
its JSON (the texts themselves are 11 MB; `--write --full FILE` writes them out to diff
against a run of other code).

When a policy or its cases change on purpose, write the file again from the code:
    .venv/bin/python -m tests.runtime.test_explain_golden --write
and read the diff: only the explanations of what changed may move.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import engine.runtime.explain as explain_module
from engine.core.jsonvalue import dumps
from engine.testing.tester import run_tests
from tests import ROOT
from tests.strategies import shipped_project

GOLDEN = Path(__file__).with_name("explain-golden.txt")


def recorded_explanations() -> list[tuple[str, str]]:
    """(policy id, JSON) of each explanation built while all shipped cases run,
    in the order they ran."""
    lines: list[tuple[str, str]] = []
    original = explain_module.explain_decision

    def recording(policy: Any, env: Any, applied: Any) -> tuple[dict[str, Any], Any]:
        out = original(policy, env, applied)
        lines.append((policy.id, dumps(out[0]).decode()))  # key order kept: it is served
        return out

    explain_module.explain_decision = recording  # type: ignore[assignment]
    try:
        for backend in ("python", "durable"):
            project = shipped_project()
            run_tests([ROOT / "policies"], project, backend)
    finally:
        explain_module.explain_decision = original  # type: ignore[assignment]
    return lines


def digests(recorded: list[tuple[str, str]]) -> list[str]:
    return [f"{policy} {hashlib.sha256(body.encode()).hexdigest()}" for policy, body in recorded]


def test_every_shipped_explanation_is_byte_identical_to_the_golden_file() -> None:
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    actual = digests(recorded_explanations())
    again = "if the policies or cases changed on purpose, write it again (module docstring)"
    assert len(actual) == len(expected), (
        f"{len(actual)} explanations, {GOLDEN.name} has {len(expected)}: {again}"
    )
    for number, (got, want) in enumerate(zip(actual, expected, strict=True), start=1):
        assert got == want, f"{GOLDEN.name}:{number} differs: {again}"


def main(args: list[str]) -> None:
    if args[:1] != ["--write"] or len(args) not in (1, 3) or args[1:2] not in ([], ["--full"]):
        sys.exit("usage: python -m tests.runtime.test_explain_golden --write [--full FILE]")
    recorded = recorded_explanations()
    GOLDEN.write_text("\n".join(digests(recorded)) + "\n", encoding="utf-8")
    if len(args) == 3:
        full = "".join(json.dumps(body, ensure_ascii=False) + "\n" for _policy, body in recorded)
        Path(args[2]).write_text(full, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
