"""Clean checks remembered by content (engine/source/memo.py): a remembered answer never
hides a problem, and inputs that differ only in type never share a key."""

from __future__ import annotations

import copy
import datetime
import importlib.metadata
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

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


def test_an_ordered_key_tells_the_order_of_an_objects_keys_apart() -> None:
    first = memo.key("k", {"a": 1, "b": {"c": 1, "d": 2}}, ordered=True)
    assert first == memo.key("k", {"a": 1, "b": {"c": 1, "d": 2}}, ordered=True)
    assert first != memo.key("k", {"b": {"c": 1, "d": 2}, "a": 1}, ordered=True)
    assert first != memo.key("k", {"a": 1, "b": {"d": 2, "c": 1}}, ordered=True)
    assert memo.key("k", {"a": math.nan}, ordered=True) is None


@pytest.mark.parametrize(
    "value", [{1: "x"}, {"a": math.nan}, {"a": [math.inf]}, {"a": object()}, 2**70]
)
def test_a_value_without_one_canonical_text_has_no_key_and_is_checked_every_time(
    value: Any,
) -> None:
    assert memo.key("k", value) is None
    memo.remember(None)
    assert not memo.known(None)


def test_the_checker_names_the_installed_jsonschema_release() -> None:
    assert memo.installed_version("jsonschema") == importlib.metadata.version("jsonschema")
    assert memo.checker().endswith(f"/jsonschema-{importlib.metadata.version('jsonschema')}")


def test_a_package_without_a_dist_info_beside_it_asks_importlib_metadata() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        memo.installed_version("json")  # the standard library's: no release of its own


@pytest.fixture
def own_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(schema, "SCHEMA_DIR", tmp_path)
    schema.project_schema.cache_clear()
    yield tmp_path
    schema.project_schema.cache_clear()


def test_a_project_schema_is_checked_against_json_schema_once_per_content(
    own_schemas: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (own_schemas / "x.schema.json").write_text('{"type": "object", "required": ["a"]}')
    checked: list[Any] = []
    real = Draft202012Validator.check_schema
    monkeypatch.setattr(
        Draft202012Validator, "check_schema", lambda s: (checked.append(s), real(s))
    )
    first = schema.project_schema("x.schema.json")
    schema.project_schema.cache_clear()  # a new process, the memo told what the last one saw
    second = schema.project_schema("x.schema.json")
    assert len(checked) == 1
    assert first.schema == second.schema
    found = validate_document(parse_yaml("b: 1\n", "d.yaml"), second)
    assert [d.code for d in found] == ["missing_key"], found


def test_a_project_schema_that_is_not_json_schema_is_refused_every_time(
    own_schemas: Path,
) -> None:
    (own_schemas / "bad.schema.json").write_text('{"type": 12}')
    for _ in range(2):
        schema.project_schema.cache_clear()
        with pytest.raises(SchemaError):
            schema.project_schema("bad.schema.json")
    assert memo.take_fresh() == []
