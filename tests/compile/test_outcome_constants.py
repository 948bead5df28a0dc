"""A date or date-time written as an outcome constant is read as the facts' are, and a
collected field's items have the type the field declares (tests/fixtures/bad/
outcome-constant-types.yaml has the refusals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.runtime.evaluate import decide
from engine.source.yaml import parse_yaml
from tests import FIXTURES

POLICY = """\
kimari: 1
id: constants
title: {ja: 定数}
facts: schemas/order.facts.schema.json
outcome:
  due: {type: date}
  checked_at: {type: datetime}
  notes: {type: string, merge: collect}
rules:
  - id: r1
    refs: [TS-4]
    when: order.total > 3
    then: {due: "2024-02-29", checked_at: "2024-01-01T10:00:00Z", notes: "a text"}
"""
FACTS = {
    "order": {"total": 5, "payment": {"method": "card"}, "received_at": "2024-06-01T09:00:00Z"}
}


@pytest.mark.parametrize("backend", ["python", "durable"])
def test_a_valid_date_and_date_time_constant_are_answered_in_their_json_form(
    backend: str,
) -> None:
    policy = compile_document(parse_yaml(POLICY, str(FIXTURES / "bad" / "constants.yaml")))
    try:
        answer = decide(policy, FACTS, at="2024-06-01T10:00:00+09:00", backend=backend)
        body = answer.to_dict()["outcome"]
    finally:
        policy.close()
    assert body["due"] == "2024-02-29"
    assert body["checked_at"] == "2024-01-01T19:00:00+09:00"  # an instant, in Japan time
    assert body["notes"] == ["a text"]


def test_a_facts_schema_that_is_not_json_is_reported_where_the_parser_stopped(
    tmp_path: Path,
) -> None:
    (tmp_path / "schemas").mkdir()
    broken = '{\n  "type": "object",\n  "properties": {"a": {"type": "integer"},}\n}\n'
    (tmp_path / "schemas" / "order.facts.schema.json").write_text(broken, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        compile_document(parse_yaml(POLICY, str(tmp_path / "constants.yaml")))
    found = [d for d in caught.value.diagnostics if d.code == "schema_file_invalid"]
    assert found[0].location is not None
    assert (found[0].location.line, found[0].location.col) == (3, 42)  # the trailing ','
    assert found[0].message == "not valid JSON: trailing comma is not allowed"
