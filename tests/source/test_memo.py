"""Clean checks remembered by content (engine/source/memo.py): a remembered answer never
hides a problem, and inputs that differ only in type never share a key."""

from __future__ import annotations

import copy
import datetime
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from engine.core.errors import PolicyError
from engine.source import memo, schema
from engine.source.facts import compile_facts_schema
from engine.source.schema import project_schema, validate_document
from engine.source.yaml import parse_yaml

POLICY = """\
kimari: 1
id: routing
title: {ja: 振り分け}
facts: order.facts.schema.json
outcome:
  queue: {type: string, default: normal}
rules:
  - id: cod
    refs: [TS-1]
    when: order.payment.method == "cod"
    then: {queue: cod}
"""

FACTS = {
    "type": "object",
    "properties": {"order": {"type": "object", "properties": {"total": {"type": "integer"}}}},
}


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    memo.forget()
    yield
    memo.forget()


def test_a_clean_document_is_remembered_and_not_validated_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validator = project_schema("policy.schema.json")
    assert validate_document(parse_yaml(POLICY, "a.yaml"), validator) == []
    monkeypatch.setattr(schema, "_violations", lambda *_: pytest.fail("validated again"))
    assert validate_document(parse_yaml(POLICY, "b.yaml"), validator) == []


def test_an_invalid_document_after_a_clean_one_of_the_same_schema_is_still_reported() -> None:
    validator = project_schema("policy.schema.json")
    assert validate_document(parse_yaml(POLICY, "good.yaml"), validator) == []
    broken = POLICY.replace("    then: {queue: cod}", "    then: {queue: cod}\n    colour: red")
    found = validate_document(parse_yaml(broken, "bad.yaml"), validator)
    assert found, "the unknown key was hidden by the remembered clean check"
    assert any(str(d.location).startswith("bad.yaml:12:") for d in found), found
    # and again: a problem is never remembered
    assert validate_document(parse_yaml(broken, "bad.yaml"), validator) == found


def test_a_bad_facts_schema_after_a_clean_one_is_still_refused() -> None:
    compile_facts_schema(FACTS, source="good.facts.schema.json")
    bad = copy.deepcopy(FACTS)
    bad["properties"]["order"]["anyOf"] = [{"type": "object"}]
    for _ in range(2):
        with pytest.raises(PolicyError) as caught:
            compile_facts_schema(bad, source="bad.facts.schema.json")
        (found,) = caught.value.diagnostics
        assert found.pointer == "/properties/order/anyOf"
        assert str(found.location) == "bad.facts.schema.json:1:1"


def test_only_clean_answers_are_kept_for_a_store() -> None:
    validator = project_schema("policy.schema.json")
    validate_document(parse_yaml(POLICY.replace("kimari: 1", "kimari: 2"), "x.yaml"), validator)
    assert memo.take_fresh() == []
    validate_document(parse_yaml(POLICY, "x.yaml"), validator)
    assert len(memo.take_fresh()) == 1
    assert memo.take_fresh() == []  # taken once


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("2024-01-01", datetime.date(2024, 1, 1)),
        ("1.5", Decimal("1.5")),
        ({"$Decimal": "1.5"}, Decimal("1.5")),
        (1, 1.0),
        (1, True),
        (None, "null"),
        ([1, 2], [2, 1]),
    ],
)
def test_values_that_differ_only_in_type_or_order_have_different_keys(one: Any, other: Any) -> None:
    assert memo.key("k", {"v": one}) != memo.key("k", {"v": other})


def test_the_same_value_has_the_same_key_whatever_the_order_of_its_keys() -> None:
    assert memo.key("k", {"a": 1, "b": 2}) == memo.key("k", {"b": 2, "a": 1})
    assert memo.key("k", {"a": 1}) != memo.key("other checks", {"a": 1})


@pytest.mark.parametrize(
    "value", [{1: "x"}, {"a": math.nan}, {"a": [math.inf]}, {"a": object()}, 2**70]
)
def test_a_value_without_one_canonical_text_has_no_key_and_is_checked_every_time(
    value: Any,
) -> None:
    assert memo.key("k", value) is None
    memo.remember(None)
    assert not memo.known(None)
