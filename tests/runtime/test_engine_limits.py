"""What durable_rules cannot compare or compute as the reference evaluator does is refused
alike on both backends, never decided otherwise:

- values a message carries only as present (lists, records) or of no declared type are
  refused in a rule condition at compile time (`not_durable_compilable`);
- a constant with more significant digits than a double holds is refused there too;
- integer arithmetic leaving 64 bits (durable_rules' integers wrap), and two numbers that are
  both beyond what a double holds exactly, refuse the decision (`value_out_of_range`, 422);
- ordering or arithmetic on a value of no declared type is a compile-time type_mismatch
  (the reference evaluator raised a Python TypeError at decision time).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.compile.model import CompiledPolicy
from engine.compile.stages import compile_document
from engine.core.errors import EvaluationError, PolicyError
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml

AT = "2024-06-01T10:00:00+09:00"
SCHEMA = {
    "type": "object",
    "properties": {
        "o": {
            "type": "object",
            "properties": {
                "i": {"type": "integer"},
                "j": {"type": "integer"},
                "n": {"type": "number"},
                "m": {"type": "number"},
                "u": {},
                "xs": {"type": "array", "items": {"type": "integer"}},
                "b": {"type": "boolean"},
                "s": {"type": "string"},
            },
        }
    },
}


def policy_text(rules: str, derived: str = "") -> str:
    head = "kimari: 1\nid: limits\ntitle: {ja: 限界}\nfacts: limits.facts.schema.json\n"
    return head + (f"derived:\n{derived}" if derived else "") + "rules:\n" + rules


def rule(when: str, rule_id: str = "r") -> str:
    return f"  - id: {rule_id}\n    refs: [EX-1]\n    when: '{when}'\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "limits.facts.schema.json").write_text(json.dumps(SCHEMA))
    return tmp_path


def compiled(folder: Path, text: str) -> CompiledPolicy:
    return compile_document(parse_yaml(text, str(folder / "limits.yaml")))


def refused_at_compile(folder: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as caught:
        compiled(folder, text)
    return [(d.code, d.message) for d in caught.value.diagnostics]


@pytest.fixture
def decided(folder: Path) -> Iterator[Any]:
    opened: list[CompiledPolicy] = []

    def run(text: str, facts: dict[str, Any], backend: str) -> Any:
        policy = compiled(folder, text)
        opened.append(policy)
        return decide(policy, facts, at=AT, backend=backend, explain=backend == "durable")

    yield run
    for policy in opened:
        policy.close()


@pytest.mark.parametrize(
    "when",
    [
        "o.xs == o.xs",  # a list is carried as `true`
        "o.u == 1",  # of no declared type: true and [1] both reached durable as 1
        "o.u in [1, 2]",
        "o.u",
    ],
)
def test_a_value_a_message_cannot_carry_is_refused_in_a_condition(folder: Path, when: str) -> None:
    [(code, message)] = refused_at_compile(folder, policy_text(rule(when)))
    assert code == "not_durable_compilable" and "cannot be compared by the rule engine" in message


def test_null_tests_of_lists_and_records_stay_allowed(folder: Path) -> None:
    compiled(folder, policy_text(rule("o.xs != null") + rule("o.u == null", "r2"))).close()


@pytest.mark.parametrize(
    ("when", "refused"),
    [
        ("o.n < 0.1000000000000000001", True),  # 19 significant digits
        ("o.n < 69.999999999999999", True),  # 17
        ("o.n < 69.99999999999999", True),  # 16: not every 16-digit decimal is a double
        ("o.n < 0.123456789012345", False),  # 15
        ("o.n > 9007199254740993", True),  # an integer past 2^53, against numbers
        ("o.i > 9007199254740993", False),  # against integers: exact
    ],
)
def test_a_constant_a_double_cannot_hold_is_refused_against_numbers(
    folder: Path, when: str, refused: bool
) -> None:
    text = policy_text(rule(when))
    if refused:
        [(code, message)] = refused_at_compile(folder, text)
        assert code == "not_durable_compilable" and "more significant digits" in message
    else:
        compiled(folder, text).close()


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("when", "facts", "refused"),
    [
        ("o.j < o.i + 1", {"i": 2**63 - 1, "j": 2}, "o.i + 1"),  # wraps in durable_rules
        ("o.j < o.i + 1", {"i": 2**63 - 2, "j": 2}, None),  # the last sum that fits
        ("o.j < o.i * 2", {"i": 2**62, "j": 2}, "o.i * 2"),
        ("o.j > -o.i", {"i": -(2**63), "j": 2}, "-o.i"),
        (
            "o.n < o.m",
            {"n": Decimal("0.1000000000000000001"), "m": Decimal("0.1000000000000000002")},
            "o.n < o.m",
        ),
        (
            "o.n < o.m",
            {"n": Decimal("0.1000000000000000001"), "m": Decimal("0.2")},
            None,
        ),  # one is short
        ("o.i > o.n", {"i": 9007199254740993, "n": Decimal("9007199254740992.5")}, "o.i > o.n"),
        ("o.i > o.n", {"i": 9007199254740993, "n": Decimal("1.5")}, None),
    ],
)
def test_what_the_engine_would_compute_otherwise_is_refused_on_both_backends(
    decided: Any, backend: str, when: str, facts: dict[str, Any], refused: str | None
) -> None:
    text = policy_text(rule(when))
    if refused is None:
        assert decided(text, {"o": facts}, backend).fired == ["r"]
        return
    with pytest.raises(EvaluationError) as caught:
        decided(text, {"o": facts}, backend)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.rule_id) == ("value_out_of_range", "r")
    assert f"rule 'r': `{refused}` " in problem.message


@pytest.mark.parametrize(
    ("derived", "when"),
    [
        ("  v: {value: 'if(o.b, 1, \"x\")'}\n", "derived.v > 0"),
        ("  v: {value: 'o.u + 1'}\n", "derived.v != null"),
        ("", "o.u >= 2"),
    ],
)
def test_ordering_or_arithmetic_on_a_value_of_no_declared_type_is_a_compile_error(
    folder: Path, derived: str, when: str
) -> None:
    found = refused_at_compile(folder, policy_text(rule(when), derived))
    assert found[0][0] == "type_mismatch"
    assert "needs a value of a known type" in found[0][1]


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_an_outcome_computed_outside_its_enum_is_refused_and_one_inside_it_answered(
    decided: Any, backend: str
) -> None:
    """The published shape of the outcome promises the enum: an expression's value is held
    to it as the policy's constants are when it compiles."""
    text = (
        "kimari: 1\nid: limits\ntitle: {ja: 限界}\nfacts: limits.facts.schema.json\n"
        "outcome:\n  tier: {type: string, enum: [full, half]}\n"
        "  tags: {type: string, enum: [half, none], merge: collect}\n"
        "rules:\n  - id: r\n    refs: [EX-1]\n    when: o.s != null\n"
        '    then: {tier: "= o.s", tags: "= o.s"}\n'
    )
    assert decided(text, {"o": {"s": "half"}}, backend).outcome["tier"] == "half"
    with pytest.raises(EvaluationError) as caught:
        decided(text, {"o": {"s": "none"}}, backend)
    [problem] = caught.value.diagnostics
    assert problem.code == "outcome_invalid"
    assert problem.message == (
        'computing the outcome: outcome.tier: "none" is not one of "full", "half"'
    )


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_rules_comparing_the_same_two_fields_refuse_with_the_first_of_them(
    decided: Any, backend: str
) -> None:
    # the compiler keeps one pair check for both rules (the check is symmetric): the
    # refusal must still name the rule that comes first in the file
    text = policy_text(rule("o.n < o.m", "first") + rule("o.m <= o.n", "second"))
    inexact = {"n": Decimal("0.1000000000000000001"), "m": Decimal("0.1000000000000000002")}
    with pytest.raises(EvaluationError) as caught:
        decided(text, {"o": inexact}, backend)
    [problem] = caught.value.diagnostics
    assert problem.rule_id == "first" and "`o.n < o.m`" in problem.message
    one_short = {"n": Decimal("0.1000000000000000001"), "m": Decimal("0.2")}
    assert decided(text, {"o": one_short}, backend).fired == ["first"]
