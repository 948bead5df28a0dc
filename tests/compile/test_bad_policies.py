"""Bad policies are refused with every problem at its file:line:col.

Each fixture in tests/fixtures/bad/ is a broken policy whose expected
diagnostics are written at its end as `# expect:` lines, exactly as
`kimari validate` prints them (warnings included).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.project.project import load_rulebook
from engine.source.yaml import parse_yaml, read_yaml_file
from tests import FIXTURES

FIXTURES = FIXTURES / "bad"
CASES = sorted(FIXTURES.glob("*.yaml"))


def diagnostics_of(path: Path) -> list[str]:
    rulebook = load_rulebook(FIXTURES / "rulebook.tsv")
    try:
        compile_document(read_yaml_file(path, display=path.name), rulebook=rulebook)
    except PolicyError as exc:
        return [d.render() for d in exc.diagnostics]
    return []


def test_there_are_at_least_twenty_distinct_bad_policy_fixtures() -> None:
    codes = {line.split(": ")[1] for case in CASES for line in expected(case)}
    assert len(CASES) >= 20
    assert len(codes) >= 20, sorted(codes)


def expected(path: Path) -> list[str]:
    prefix = "# expect: "
    return [
        line[len(prefix) :] for line in path.read_text().splitlines() if line.startswith(prefix)
    ]


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_policy_is_refused_with_exactly_the_expected_diagnostics(path: Path) -> None:
    wanted = expected(path)
    assert wanted, f"{path.name} has no '# expect:' lines"
    assert diagnostics_of(path) == wanted


def test_more_rules_than_the_engine_supports_are_refused_at_validation(tmp_path: Path) -> None:
    head = (FIXTURES / "unknown-ref.yaml").read_text().split("rules:")[0]
    rules = "".join(
        f"  - id: r{i}\n    refs: [TS-4]\n    when: order.total > {i}\n" for i in range(151)
    )
    text = head.replace("id: unknown-ref", "id: huge") + "rules:\n" + rules
    document = parse_yaml(text, str(FIXTURES / "huge.yaml"))
    with pytest.raises(PolicyError) as caught:
        compile_document(document)
    assert [d.code for d in caught.value.diagnostics] == ["too_many_rules"]
    assert "151 rules; the rule engine supports at most 150" in caught.value.diagnostics[0].message
