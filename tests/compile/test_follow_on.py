"""One mistake is reported as itself: it neither hides the policy's other mistakes nor
brings false ones after it (a value read only by a broken condition is not "unused")."""

from __future__ import annotations

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.project.project import load_rulebook
from engine.source.yaml import parse_yaml
from tests import FIXTURES

HEAD = """\
kimari: 1
id: follow-on
title: {ja: 後続の診断}
facts: schemas/order.facts.schema.json
"""


def codes(text: str) -> list[str]:
    document = parse_yaml(HEAD + text, str(FIXTURES / "bad" / "follow-on.yaml"))
    rulebook = load_rulebook(FIXTURES / "bad" / "rulebook.tsv")
    with pytest.raises(PolicyError) as caught:
        compile_document(document, rulebook=rulebook)
    return [d.code for d in caught.value.diagnostics]


def test_a_duplicate_rule_is_still_checked_whole() -> None:
    found = codes(
        """\
rules:
  - id: r1
    refs: [TS-4]
    when: order.total > 1
  - id: r1
    refs: [TS-99]
    when: order.totl > 3
"""
    )
    assert found == ["duplicate_rule_id", "unknown_ref", "unknown_fact_field"]


@pytest.mark.parametrize(
    "condition",
    [
        "derived.big ==== settings.limit > 1",  # not parsed at all
        "derived.big and settings.limit > 99999999999999999999999",  # a constant out of range
    ],
)
def test_a_value_read_only_by_a_condition_that_cannot_be_parsed_is_not_called_unused(
    condition: str,
) -> None:
    found = codes(
        f"""\
settings:
  limit: {{type: integer, default: 5}}
derived:
  big: {{value: order.total > 100000}}
rules:
  - id: r1
    refs: [TS-4]
    when: {condition}
"""
    )
    assert "unused_derived" not in found and "unused_setting" not in found
    assert found[0] in ("expr_syntax", "number_out_of_range", "invalid_constant")


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ("date(order.received_at, 1)", "date() takes 1 argument, got 2"),
        ("add_months(order.received_at)", "add_months() takes 2 arguments, got 1"),
        ("count()", "count() takes 1 to 2 arguments, got 0"),
    ],
)
def test_a_wrong_argument_count_says_how_many_in_plain_english(call: str, says: str) -> None:
    document = parse_yaml(
        HEAD + f"rules:\n  - id: r1\n    refs: [TS-4]\n    when: {call} != null\n",
        str(FIXTURES / "bad" / "follow-on.yaml"),
    )
    with pytest.raises(PolicyError) as caught:
        compile_document(document, rulebook=load_rulebook(FIXTURES / "bad" / "rulebook.tsv"))
    assert [d.message for d in caught.value.diagnostics] == [says]
