"""`kimari test` reports which rulebook IDs nothing implements: rules and computed outcomes.

The IDs are made up (ZZ-n) so that this file does not count as a test of real rules
for the shared rules-coverage tool, which searches tests/ for IDs as text.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.api import run_tests

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {"held": {"type": "boolean", "description": "Whether the order is held"}},
}
POLICY = """\
kimari: 1
id: effects
title: {ja: 効果}
facts: effects.facts.schema.json
outcome:
  held: {type: boolean, default: false, merge: any}
  effects:
    type: list
    refs: [ZZ-2]
    value: "= if(outcome.held, ['not_shipped'], [])"
rules:
  - id: held
    refs: [ZZ-1]
    when: held == true
    then: {held: true}
"""
TESTS = """\
kimari: 1
policy: effects
cases:
  - name: a held order is not shipped
    refs: [ZZ-2]
    facts: {held: true}
    expect: {outcome: {effects: [not_shipped]}}
"""


def test_refs_of_a_computed_outcome_field_count_as_implemented(tmp_path: Path) -> None:
    (tmp_path / "rulebook.tsv").write_text("ZZ-1\tKinds\nZZ-2\tEffects\nZZ-3\tRelease\n")
    (tmp_path / "effects.facts.schema.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "effects.yaml").write_text(POLICY)
    (tmp_path / "effects.tests.yaml").write_text(TESTS)
    report = run_tests([tmp_path])
    assert report.ok, [r.failures for r in report.results]
    assert report.ids_without_rule == ["ZZ-3"]
    assert report.ids_without_test == ["ZZ-3"]
