"""Integers computed from the facts are refused past 64 bits wherever they would leave in a
decision: an outcome field (computed, set by a rule's expression, summed, collected) or a
reason's detail. A 422 `evaluation_error` (code `value_out_of_range`) naming the field,
the same with either backend; 64 bits exactly are kept (docs/reliability.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import api
from engine.compile.model import CompiledPolicy
from engine.compile.stages import compile_document
from engine.core.errors import EvaluationError
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml
from tests import ROOT

AT = "2024-06-01T10:00:00+09:00"
LOW, HIGH = -(2**63), 2**63 - 1
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["c"],
    "properties": {
        "c": {
            "type": "object",
            "additionalProperties": False,
            "required": ["a", "b"],
            "properties": {
                "a": {"type": "integer"},
                "b": {"type": "integer"},
                "on": {"type": "string"},
            },
        }
    },
}
POLICY = """\
kimari: 1
id: wide
title: {ja: 幅}
facts: wide.facts.schema.json
hit_policy: collect
outcome:
  total: {type: integer, value: "= if(c.on == null, c.a + c.b, 0)"}
  summed: {type: integer, merge: sum, default: 0}
  set: {type: integer, merge: last}
  listed: {type: list, merge: collect, default: []}
  fixed: {type: integer, default: 9223372036854775807}
rules:
  - id: r0
    refs: [TS-1]
    when: c.on == "sum"
    then: {summed: "= c.a"}
  - id: r1
    refs: [TS-1]
    when: c.on == "sum"
    then: {summed: "= c.b"}
  - id: r2
    refs: [TS-1]
    when: c.on == "set"
    then: {set: "= c.a - c.b"}
  - id: r3
    refs: [TS-1]
    when: c.on == "list"
    then: {listed: "= c.a * c.b"}
  - id: r4
    refs: [TS-1]
    when: c.on == "detail"
    reason:
      code: DETAIL
      message: {ja: 詳細}
      details: {amount: "= c.a * c.b"}
"""
BACKENDS = ["durable", "python"]


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CompiledPolicy]:
    folder = tmp_path_factory.mktemp("wide")
    (folder / "wide.facts.schema.json").write_text(json.dumps(SCHEMA))
    compiled = compile_document(parse_yaml(POLICY, str(folder / "wide.yaml")))
    try:
        yield compiled
    finally:
        compiled.close()


def _decide(policy: CompiledPolicy, backend: str, **c: Any) -> dict[str, Any]:
    return decide(policy, {"c": c}, at=AT, backend=backend).outcome


def _refused(policy: CompiledPolicy, backend: str, **c: Any) -> str:
    with pytest.raises(EvaluationError) as caught:
        decide(policy, {"c": c}, at=AT, backend=backend)
    (problem,) = caught.value.diagnostics
    assert problem.code == "value_out_of_range"
    assert caught.value.problem_name() == "evaluation_error"
    assert caught.value.http_status == 422
    return problem.message


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_computed_outcome_field_holds_64_bits_and_not_one_more(
    policy: CompiledPolicy, backend: str
) -> None:
    assert _decide(policy, backend, a=HIGH, b=0)["total"] == HIGH
    assert _decide(policy, backend, a=LOW, b=0)["total"] == LOW
    assert _decide(policy, backend, a=LOW, b=HIGH)["fixed"] == HIGH  # a constant: as written
    message = _refused(policy, backend, a=HIGH, b=1)
    assert message.startswith("computing the outcome: outcome.total: must be a 64-bit integer")
    assert message.endswith("; got an integer of 19 digits")
    assert "outcome.total" in _refused(policy, backend, a=LOW, b=-1)
    assert "outcome.total" in _refused(policy, backend, a=HIGH, b=HIGH)


@pytest.mark.parametrize("backend", BACKENDS)
def test_values_rules_set_sum_and_collect_are_checked_too(
    policy: CompiledPolicy, backend: str
) -> None:
    assert _decide(policy, backend, a=HIGH, b=0, on="sum")["summed"] == HIGH
    assert "outcome.summed:" in _refused(policy, backend, a=HIGH, b=1, on="sum")
    assert _decide(policy, backend, a=-1, b=HIGH, on="set")["set"] == LOW
    assert "outcome.set:" in _refused(policy, backend, a=-2, b=HIGH, on="set")
    assert _decide(policy, backend, a=-(2**31), b=2**32, on="list")["listed"] == [LOW]
    assert "outcome.listed:" in _refused(policy, backend, a=2**31, b=2**32, on="list")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_reason_detail_computed_past_64_bits_is_refused_naming_the_rule(
    policy: CompiledPolicy, backend: str
) -> None:
    c = {"a": -(2**31), "b": 2**32, "on": "detail"}
    decision = decide(policy, {"c": c}, at=AT, backend=backend)
    assert decision.reasons[0]["amount"] == LOW
    message = _refused(policy, backend, a=2**31, b=2**32, on="detail")
    assert message.startswith("rule 'r4': amount: must be a 64-bit integer")


def test_an_integer_past_str_s_digits_is_counted_not_printed(
    policy: CompiledPolicy,
) -> None:
    from engine.runtime.evaluate import _out_of_range

    message = _out_of_range(policy, "total", 10**20000).diagnostics[0].message
    assert message.endswith("; got an integer of 20001 digits")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_testers_uncollected_fee_is_refused_with_either_backend(backend: str) -> None:
    """cancellation-fees books -percent_of(reward * 5, share): the largest reward a fact holds,
    booked five times at 100%, leaves 64 bits; one fifth of it still fits."""
    project = api.load(ROOT / "policies")
    policy = project.policy("cancellation-fees")
    data = project.data_for(policy)

    def facts(reward: int) -> dict[str, Any]:
        uncollected = {"reward": reward, "documents_guided_on": "2024-01-31"}
        uncollected |= {"booked_on": "2024-04-29", "assignee_share": 100, "manager_share": 40}
        return {"uncollected": uncollected}

    fits = decide(policy, facts(2**63 // 5), at=AT, data=data, backend=backend)
    assert fits.outcome["assignee_negative"] == -5 * (2**63 // 5)
    with pytest.raises(EvaluationError) as caught:
        decide(policy, facts(2**63 // 5 + 1), at=AT, data=data, backend=backend)
    assert caught.value.diagnostics[0].code == "value_out_of_range"
    assert "outcome.assignee_negative" in caught.value.diagnostics[0].message
    with pytest.raises(EvaluationError) as caught:
        decide(policy, facts(HIGH), at=AT, data=data, backend=backend)
    assert "outcome.assignee_negative" in caught.value.diagnostics[0].message
    location = caught.value.diagnostics[0].location
    assert location is not None and Path(location.file).name == "cancellation-fees.yaml"
