"""Computed outcome fields read each other as computed, whatever order the file declares
them in: each is computed after the fields its `value` reads (a cycle is a compile error,
tests/fixtures/bad/outcome-cycle.yaml). Before, they were computed in file order, and a
field that read one declared below it read null: moving a block of YAML changed decisions
while `kimari validate` said nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.compile.model import CompiledPolicy
from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml

AT = "2024-06-01T10:00:00+09:00"
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["c"],
    "properties": {
        "c": {
            "type": "object",
            "required": ["reward", "fee"],
            "properties": {"reward": {"type": "integer"}, "fee": {"type": "integer"}},
        }
    },
}
FIELDS = {
    "billed": '{type: integer, value: "= c.reward - outcome.credit"}',
    "credit": '{type: integer, value: "= if(outcome.capped, 0, c.fee)"}',
    "capped": '{type: boolean, value: "= c.fee * 10 >= c.reward * 7"}',
    "label": "{type: string, default: fees}",
}


def _policy(folder: Path, order: list[str]) -> CompiledPolicy:
    outcome = "".join(f"  {name}: {FIELDS[name]}\n" for name in order)
    text = (
        "kimari: 1\nid: order\ntitle: {ja: 順序}\nfacts: order.facts.schema.json\n"
        f"outcome:\n{outcome}"
        "rules:\n  - id: r1\n    refs: [TS-1]\n    when: c.fee > 0\n"
    )
    (folder / "order.facts.schema.json").write_text(json.dumps(SCHEMA))
    return compile_document(parse_yaml(text, str(folder / "order.yaml")))


ORDERS = [
    ["billed", "credit", "capped", "label"],  # each reads one declared below it
    ["capped", "credit", "billed", "label"],  # each reads one declared above it
    ["label", "credit", "billed", "capped"],
]


@pytest.fixture(params=ORDERS, ids=lambda order: ",".join(order))
def policy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CompiledPolicy]:
    compiled = _policy(tmp_path, request.param)
    try:
        yield compiled
    finally:
        compiled.close()


@pytest.mark.parametrize("backend", ["durable", "python"])
@pytest.mark.parametrize(
    ("fee", "expected"),
    [
        (10_000, {"capped": False, "credit": 10_000, "billed": 90_000}),
        (69_999, {"capped": False, "credit": 69_999, "billed": 30_001}),  # 69.999%: credited
        (70_000, {"capped": True, "credit": 0, "billed": 100_000}),  # 70%: not
    ],
)
def test_computed_fields_read_each_other_whatever_their_order_in_the_file(
    policy: CompiledPolicy, backend: str, fee: int, expected: dict[str, object]
) -> None:
    outcome = decide(policy, {"c": {"reward": 100_000, "fee": fee}}, at=AT, backend=backend).outcome
    assert {k: outcome[k] for k in expected} == expected
    assert list(outcome) == list(policy.outcome)  # the answer keeps the declared order


def _compiled(folder: Path, fields: str) -> CompiledPolicy:
    text = (
        "kimari: 1\nid: order\ntitle: {ja: 順序}\nfacts: order.facts.schema.json\n"
        f"outcome:\n{fields}rules:\n  - id: r1\n    refs: [TS-1]\n    when: c.fee > 0\n"
    )
    (folder / "order.facts.schema.json").write_text(json.dumps(SCHEMA))
    return compile_document(parse_yaml(text, str(folder / "order.yaml")))


def test_a_field_that_reads_the_whole_outcome_is_refused_not_computed_first(
    tmp_path: Path,
) -> None:
    """`map([outcome], o -> o.b)` reads every field: it cannot come after them all (it is one
    of them), and computed first it read b as null, silently."""
    fields = (
        '  a: {type: integer, value: "= first(map([outcome], o -> o.b))"}\n'
        '  b: {type: integer, value: "= c.fee"}\n'
    )
    with pytest.raises(PolicyError) as caught:
        _compiled(tmp_path, fields)
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.location.line) == ("outcome_cycle", 6)  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["durable", "python"])
def test_a_lambda_parameter_named_outcome_is_the_lambdas_not_the_outcome(
    tmp_path: Path, backend: str
) -> None:
    fields = '  n: {type: integer, value: "= sum(map([{n: 2}, {n: 3}], outcome -> outcome.n))"}\n'
    policy = _compiled(tmp_path, fields)
    try:
        decided = decide(policy, {"c": {"reward": 1, "fee": 1}}, at=AT, backend=backend)
    finally:
        policy.close()
    assert decided.outcome == {"n": 5}
