"""Bad policies are refused with every problem at its file:line:col.

Each fixture in tests/fixtures/bad/ is a broken policy whose expected
diagnostics are written at its end as `# expect:` lines, exactly as
`kimari validate` prints them (warnings included).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.compile import stages
from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.project.project import load_rulebook
from engine.source.yaml import MAX_FILE_BYTES, parse_yaml, read_yaml_file
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
        line[len(prefix) :]
        for line in path.read_bytes().decode("utf-8", errors="replace").splitlines()
        if line.startswith(prefix)
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


def compact_rules(count: int) -> str:
    head = (FIXTURES / "unknown-ref.yaml").read_text().split("rules:")[0]
    rules = "".join(
        f"  - {{id: r{i}, refs: [TS-4], when: order.total > {i}}}\n" for i in range(count)
    )
    return head.replace("id: unknown-ref", "id: huge") + "rules:\n" + rules


def test_a_policy_of_30000_rules_is_refused_by_its_size_before_it_is_parsed() -> None:
    text = compact_rules(30_000)
    assert len(text.encode()) > MAX_FILE_BYTES
    with pytest.raises(PolicyError) as caught:
        parse_yaml(text, "huge.yaml")
    [diagnostic] = caught.value.diagnostics
    assert diagnostic.code == "file_too_large"
    assert str(diagnostic.location) == "huge.yaml:1:1"


def test_too_many_rules_are_refused_before_the_schema_and_the_rules_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = parse_yaml(compact_rules(2_000), str(FIXTURES / "huge.yaml"))

    def never(*_: object) -> None:
        raise AssertionError("the schema stage ran")

    monkeypatch.setattr(stages, "validate_document", never)
    with pytest.raises(PolicyError) as caught:
        compile_document(document)
    assert [d.render() for d in caught.value.diagnostics] == [
        f"{FIXTURES / 'huge.yaml'}:7:3: too_many_rules: 2000 rules; the rule engine supports "
        "at most 150 per policy (split the policy)"
    ]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("a: " + "[" * 65 + "]" * 65 + "\n", "yaml_too_deep"),
        ("a: " + "[" * 64 + "]" * 64 + "\n", None),
        ("a: 9223372036854775807\nb: -9223372036854775808\n", None),
        ("a: 9223372036854775808\n", "number_out_of_range"),
        ("a: -9223372036854775809\n", "number_out_of_range"),
        ("a: 0." + "1" * 30 + "\n", None),
        ("a: 0." + "1" * 31 + "\n", "number_out_of_range"),
        ("a: 1.0e+299\n", None),
        ("a: 1.0e+300\n", "number_out_of_range"),
    ],
)
def test_limits_of_nesting_and_numbers_are_refused_at_their_place_and_not_before(
    text: str, code: str | None
) -> None:
    try:
        parse_yaml(text, "f.yaml")
    except PolicyError as exc:
        assert [(d.code, d.location.line) for d in exc.diagnostics] == [(code, 1)]
    else:
        assert code is None
