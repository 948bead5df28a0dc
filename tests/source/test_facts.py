"""Facts schemas: every supported keyword on both sides of its boundary, the
pointers and messages people see, normalisation, the static type, and a
property test with `jsonschema` as the oracle of what is valid."""

from __future__ import annotations

import calendar
import contextlib
import copy
import datetime as dt
import functools
import json
import re
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.errors import Diagnostic, InputError, PolicyError
from engine.lang import types as lt
from engine.source import facts as facts_module
from engine.source.facts import FactsValidator, compile_facts_schema

JST = dt.timezone(dt.timedelta(hours=9))


def compiled(schema: dict[str, Any]) -> FactsValidator:
    return compile_facts_schema(schema, source="test.facts.schema.json")


def errors_of(schema: dict[str, Any], instance: Any) -> list[Diagnostic]:
    with pytest.raises(InputError) as caught:
        compiled(schema).validate(instance)
    return caught.value.diagnostics


def problems(schema: dict[str, Any], instance: Any) -> list[tuple[str, str | None]]:
    return [(d.code, d.pointer) for d in errors_of(schema, instance)]


def schema_problems(schema: Any) -> list[tuple[str, str | None]]:
    with pytest.raises(PolicyError) as caught:
        compiled(schema)
    return [(d.code, d.pointer) for d in caught.value.diagnostics]


def field(sub: dict[str, Any] | bool) -> dict[str, Any]:
    """An object with one required field `x`, so that pointers read `/x`."""
    return {"type": "object", "properties": {"x": sub}, "required": ["x"]}


# --- one keyword at a time, both sides of each boundary ---------------------------------

BOUNDARIES = [
    # (keyword under test, schema of /x, accepted value, refused value, code)
    ("type string", {"type": "string"}, "a", 1, "type_mismatch"),
    ("type integer", {"type": "integer"}, 3, "3", "type_mismatch"),
    ("type number", {"type": "number"}, 3.5, "3.5", "type_mismatch"),
    ("type boolean", {"type": "boolean"}, False, 0, "type_mismatch"),
    ("type null", {"type": "null"}, None, "", "type_mismatch"),
    ("type array", {"type": "array"}, [], {}, "type_mismatch"),
    ("type object", {"type": "object"}, {}, [], "type_mismatch"),
    ("type list", {"type": ["string", "null"]}, None, 0, "type_mismatch"),
    ("enum", {"enum": ["card", "bank"]}, "bank", "cash", "enum"),
    ("const", {"const": "np"}, "np", "NP", "const"),
    ("minimum equal", {"minimum": 10}, 10, 9, "minimum"),
    ("minimum just below", {"minimum": 0.5}, 0.5, 0.49999, "minimum"),
    ("maximum equal", {"maximum": 10}, 10, 11, "maximum"),
    ("maximum just above", {"maximum": 0.1}, 0.1, 0.10001, "maximum"),
    ("exclusiveMinimum", {"exclusiveMinimum": 0}, 0.01, 0, "minimum"),
    ("exclusiveMaximum", {"exclusiveMaximum": 70}, 69.99, 70, "maximum"),
    ("multipleOf", {"multipleOf": 5}, 15, 16, "multiple_of"),
    ("multipleOf fraction", {"type": "number", "multipleOf": 5}, 10.0, 10.5, "multiple_of"),
    ("minLength exact", {"minLength": 3}, "abc", "ab", "min_length"),
    ("maxLength exact", {"maxLength": 3}, "決まり", "決まりだ", "max_length"),
    ("pattern searches", {"pattern": "[0-9]{3}"}, "No.123-A", "No.12", "pattern"),
    ("format date", {"format": "date"}, "2024-02-29", "2023-02-29", "format"),
    ("format date-time", {"format": "date-time"}, "2024-03-21T10:00:00Z", "2024-03-21", "format"),
    ("items", {"items": {"type": "integer"}}, [1, 2], [1, "2"], "type_mismatch"),
    ("minItems exact", {"minItems": 2}, [1, 2], [1], "min_items"),
    ("maxItems exact", {"maxItems": 2}, [1, 2], [1, 2, 3], "max_items"),
    ("uniqueItems", {"uniqueItems": True}, [1, True, "1"], [1, 2, 1.0], "unique_items"),
]


@pytest.mark.parametrize(
    ("sub", "good", "bad", "code"), [b[1:] for b in BOUNDARIES], ids=[b[0] for b in BOUNDARIES]
)
def test_each_keyword_accepts_its_boundary_and_refuses_just_past_it(
    sub: dict[str, Any], good: Any, bad: Any, code: str
) -> None:
    compiled(field(sub)).validate({"x": good})
    (found, *_) = errors_of(field(sub), {"x": bad})
    assert found.code == code and found.message
    assert found.pointer == ("/x/1" if "items" in sub else "/x")


def test_keywords_of_another_type_do_not_apply_as_in_json_schema() -> None:
    loose = compiled(field({"minLength": 5, "minimum": 5, "minItems": 5}))
    for value in ("abcde", 7, [1, 2, 3, 4, 5], True, None, {"a": 1}):
        loose.validate({"x": value})


@pytest.mark.parametrize(
    ("sub", "value", "message"),
    [
        ({"minimum": 10}, 9, "must be >= 10, got 9"),
        ({"exclusiveMaximum": 0.5}, 0.5, "must be < 0.5, got 0.5"),
        ({"multipleOf": 5}, 7, "must be a multiple of 5, got 7"),
        ({"maxLength": 2}, "abc", "must be at most 2 characters, got 3"),
        ({"enum": ["card", "bank"]}, "cash", 'must be one of "card", "bank", got "cash"'),
        ({"pattern": "^O-"}, "X-1", '"X-1" does not match pattern `^O-`'),
        ({"minItems": 1}, [], "must have at least 1 item(s), got 0"),
        ({"format": "date"}, "2024-02-30", '"2024-02-30" is not a valid date (YYYY-MM-DD)'),
    ],
)
def test_messages_say_what_was_expected_and_what_came(sub: Any, value: Any, message: str) -> None:
    assert [d.message for d in errors_of(field(sub), {"x": value})] == [message]


def test_a_missing_required_field_points_at_the_member_itself() -> None:
    found = errors_of(field({"type": "string"}), {})
    assert [(d.code, d.pointer, d.message) for d in found] == [
        ("required", "/x", "missing required field 'x'")
    ]


def test_type_mismatch_message_names_both_types() -> None:
    (found,) = errors_of(field({"type": "integer"}), {"x": "3"})
    assert found.message == "expected integer, got string"
    (found,) = errors_of(field({"type": ["string", "null"]}), {"x": 3})
    assert found.message == "expected string or null, got integer"


def test_an_unknown_field_is_refused_with_a_did_you_mean_hint() -> None:
    schema = {
        "type": "object",
        "properties": {"payment": {"type": "string"}},
        "additionalProperties": False,
    }
    (found,) = errors_of(schema, {"paymnt": "card"})
    assert (found.code, found.pointer) == ("unknown_field", "/paymnt")
    assert (found.message, found.hint) == ("unknown field 'paymnt'", "did you mean 'payment'?")
    (far,) = errors_of(schema, {"zzz": 1})
    assert far.hint is None


def test_unknown_fields_are_kept_when_additional_properties_are_allowed() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert compiled(schema).validate({"a": 1, "extra": {"b": [1]}}) == {"a": 1, "extra": {"b": [1]}}


def test_enum_and_const_use_json_equality() -> None:
    schema = field({"enum": [1, "1", None]})
    compiled(schema).validate({"x": 1.0})
    assert problems(schema, {"x": True}) == [("enum", "/x")]
    assert problems(field({"const": False}), {"x": 0}) == [("const", "/x")]


def test_enum_is_not_reported_on_top_of_a_type_mismatch() -> None:
    assert problems(field({"type": "string", "enum": ["a"]}), {"x": 1}) == [("type_mismatch", "/x")]


def test_a_bool_is_never_an_integer_or_a_number() -> None:
    for kind in ("integer", "number"):
        assert problems(field({"type": kind}), {"x": True}) == [("type_mismatch", "/x")]
    assert problems(field({"type": "integer", "minimum": 0}), {"x": False})[0][0] == "type_mismatch"


def test_a_float_with_zero_fraction_is_an_integer_and_becomes_int() -> None:
    out = compiled(field({"type": "integer", "maximum": 3})).validate({"x": 3.0})
    assert out == {"x": 3} and type(out["x"]) is int
    assert problems(field({"type": "integer"}), {"x": 3.5}) == [("type_mismatch", "/x")]
    assert compiled(field({"type": "integer"})).validate({"x": Decimal("1E+3")}) == {"x": 1000}


def test_numbers_become_decimal_as_written_never_float() -> None:
    number = compiled(field({"type": "number", "minimum": 0.1}))
    assert number.validate({"x": 0.1}) == {"x": Decimal("0.1")}
    assert type(number.validate({"x": 2})["x"]) is int
    assert number.validate({"x": Decimal("0.10")}) == {"x": Decimal("0.10")}
    assert problems(field({"maximum": 0.3}), {"x": 0.1 + 0.2}) == [("maximum", "/x")]
    assert compiled(field({})).validate({"x": [1.5]}) == {"x": [Decimal("1.5")]}


def test_multiple_of_is_exact_for_huge_decimals() -> None:
    schema = field({"type": "number", "multipleOf": 3})
    compiled(schema).validate({"x": Decimal("3E+100")})
    assert problems(schema, {"x": Decimal("1E+100")}) == [("multiple_of", "/x")]


def test_a_multiple_of_that_is_not_whole_is_refused_at_compile_time() -> None:
    assert schema_problems(field({"multipleOf": 0.01})) == [
        ("unsupported_schema_keyword", "/properties/x/multipleOf")
    ]


def test_a_date_becomes_a_date() -> None:
    out = compiled(field({"type": "string", "format": "date"})).validate({"x": "2024-03-21"})
    assert out == {"x": dt.date(2024, 3, 21)}
    for bad in ("2024-3-21", "2024-03-21T00:00:00Z", "20240321", "２０２４-03-21", "2024-03-21\n"):
        assert problems(field({"format": "date"}), {"x": bad}) == [("format", "/x")], bad


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-21T10:15:00+09:00", dt.datetime(2024, 3, 21, 10, 15, tzinfo=JST)),
        ("2024-03-21 10:15:00Z", dt.datetime(2024, 3, 21, 10, 15, tzinfo=dt.UTC)),
        ("2024-03-21t01:15:00.5z", dt.datetime(2024, 3, 21, 1, 15, 0, 500000, tzinfo=dt.UTC)),
        ("2024-03-21T10:15:00.123456789+09:00", dt.datetime(2024, 3, 21, 10, 15, 0, 123456, JST)),
        ("2024-03-21T24:00:00+09:00", dt.datetime(2024, 3, 22, 0, 0, tzinfo=JST)),
        ("2024-12-31T24:00:00.000Z", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_a_date_time_becomes_an_aware_datetime(text: str, expected: dt.datetime) -> None:
    (out,) = compiled(field({"format": "date-time"})).validate({"x": text}).values()
    assert out == expected and out.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-21T24:00:01+09:00",
        "2024-03-21T24:00:00.001Z",
        "2024-03-21T10:15:60Z",
        "2024-03-21T10:15Z",
        "2024-03-21T10:15:00+24:00",
        "2024-03-21T10:15:00+0900",
        "9999-12-31T24:00:00Z",
    ],
)
def test_a_malformed_date_time_is_refused(text: str) -> None:
    assert problems(field({"format": "date-time"}), {"x": text}) == [("format", "/x")]


def test_a_date_time_without_offset_asks_for_one() -> None:
    (found,) = errors_of(field({"format": "date-time"}), {"x": "2024-03-21T10:00:00"})
    assert found.code == "format" and "UTC offset such as +09:00" in found.message


def test_other_formats_are_annotations() -> None:
    compiled(field({"format": "email"})).validate({"x": "not an email"})


def test_nested_errors_point_into_the_document() -> None:
    schema = {
        "type": "object",
        "properties": {
            "order": {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"price": {"minimum": 0}}},
                    }
                },
            }
        },
    }
    facts = {"order": {"items": [{"price": 1}, {"price": 0}, {"price": -1}]}}
    assert problems(schema, facts) == [("minimum", "/order/items/2/price")]


def test_pointers_escape_slash_and_tilde() -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": {"a/b~c": {}}}
    assert problems(schema, {"a/b~c": 1, "x/~y": 2}) == [("unknown_field", "/x~1~0y")]
    assert problems(field({"type": "object", "required": ["m/n"]}), {"x": {}}) == [
        ("required", "/x/m~1n")
    ]


def test_the_caller_pointer_prefixes_every_pointer() -> None:
    with pytest.raises(InputError) as caught:
        compiled(field({"type": "string"})).validate({"x": 1}, pointer="/facts")
    assert caught.value.diagnostics[0].pointer == "/facts/x"


def test_all_errors_are_reported_at_once() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "amount", "tags"],
        "properties": {
            "id": {"type": "string", "minLength": 3, "pattern": "^O-"},
            "amount": {"type": "integer"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        },
    }
    facts = {"id": "x", "tags": ["a", "c", "d"], "extra": 1}
    assert sorted(problems(schema, facts)) == [
        ("enum", "/tags/1"),
        ("enum", "/tags/2"),
        ("max_items", "/tags"),
        ("min_length", "/id"),
        ("pattern", "/id"),
        ("required", "/amount"),
        ("unknown_field", "/extra"),
    ]


def test_errors_are_capped_at_fifty() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    assert len(errors_of(schema, list(range(500)))) == 50


def test_the_input_is_not_mutated_and_the_output_shares_no_container() -> None:
    schema = {
        "type": "object",
        "properties": {"when": {"format": "date"}, "list": {"items": {}}},
    }
    facts = {"when": "2024-03-21", "list": [0.5, {"a": [1]}], "open": {"b": [2.5]}}
    before = copy.deepcopy(facts)
    out = compiled(schema).validate(facts)
    assert facts == before
    out["open"]["b"].append(3)
    assert facts == before
    assert out["list"] is not facts["list"]


def test_normalised_facts_validate_again_to_the_same_value() -> None:
    schema = {
        "type": "object",
        "properties": {
            "d": {"format": "date"},
            "t": {"format": "date-time"},
            "n": {"type": "number"},
        },
    }
    once = compiled(schema).validate({"d": "2024-03-21", "t": "2024-03-21T24:00:00Z", "n": 1.5})
    assert compiled(schema).validate(once) == once
    naive = dt.datetime(2024, 3, 21, 10)
    assert problems(field({"format": "date-time"}), {"x": naive}) == [("format", "/x")]


def test_keys_that_are_not_strings_are_refused() -> None:
    assert problems({"type": "object"}, {1: "a"}) == [("type_mismatch", "/1")]


def test_values_that_are_not_json_are_refused() -> None:
    assert problems({"type": "object"}, {"a": {1, 2}}) == [("type_mismatch", "/a")]
    assert problems(field({"type": "number"}), {"x": float("nan")}) == [("type_mismatch", "/x")]


def test_subclasses_of_json_types_are_accepted_as_plain_values() -> None:
    from collections import OrderedDict
    from enum import StrEnum

    class Pay(StrEnum):
        CARD = "card"

    schema = field({"type": "string", "enum": ["card"], "minLength": 1})
    out = compiled(schema).validate(OrderedDict(x=Pay.CARD))
    assert out == {"x": "card"} and type(out) is dict and type(out["x"]) is str


def test_absurd_nesting_is_an_input_error_not_a_crash() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    assert problems({}, deep) == [("too_deep", "")]


# --- the schema itself -------------------------------------------------------------------


def test_an_unsupported_keyword_is_refused_with_its_pointer() -> None:
    schema = field({"anyOf": [{"type": "string"}], "type": "string"})
    with pytest.raises(PolicyError) as caught:
        compiled(schema)
    (found,) = caught.value.diagnostics
    assert (found.code, found.pointer) == ("unsupported_schema_keyword", "/properties/x/anyOf")
    assert "anyOf" in found.message and "minLength" in found.message
    assert str(found.location) == "test.facts.schema.json:1:1"


def test_every_schema_problem_is_reported_at_once() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "strin"},
            "b": {"if": {}, "then": {}},
            "c": {"$ref": "other.json#/x"},
            "d": {"$ref": "#/$defs/missing"},
        },
        "additionalProperties": {"type": "string"},
    }
    assert sorted(schema_problems(schema)) == [
        ("invalid_schema", "/properties/a/type"),
        ("unsupported_ref", "/properties/c/$ref"),
        ("unsupported_ref", "/properties/d/$ref"),
        ("unsupported_schema_keyword", "/additionalProperties"),
        ("unsupported_schema_keyword", "/properties/b/if"),
        ("unsupported_schema_keyword", "/properties/b/then"),
    ]


def placed(text: str) -> list[tuple[str, str, str | None]]:
    """(file:line:col, code, hint) of each problem of a schema given with its JSON text."""
    with pytest.raises(PolicyError) as caught:
        compile_facts_schema(json.loads(text), source="s.json", text=text)
    return [(str(d.location), d.code, d.hint) for d in caught.value.diagnostics]


def test_problems_of_a_schema_read_from_its_text_are_placed_at_their_line() -> None:
    text = """{
  "type": "object",
  "properties": {
    "a": {"type": "integr", "minimum": "0"},
    "b": {"type": "string", "maxLenght": 3, "anyOf": []}
  }
}"""
    assert sorted(placed(text)) == [
        ("s.json:4:19", "invalid_schema", "did you mean 'integer'?"),
        ("s.json:4:40", "invalid_schema", None),
        ("s.json:5:29", "unsupported_schema_keyword", "did you mean 'maxLength'?"),  # its key
        ("s.json:5:45", "unsupported_schema_keyword", None),
    ]


def test_a_misspelt_type_is_named_with_the_types_and_a_keyword_hint_replaces_the_list() -> None:
    with pytest.raises(PolicyError) as caught:
        compiled(field({"type": ["string", "nul"], "maxLenght": 3}))
    by_code = {d.code: d for d in caught.value.diagnostics}
    assert by_code["invalid_schema"].message == (
        '"nul" is not a type; the types are array, boolean, integer, null, number, object, string'
    )
    assert by_code["invalid_schema"].hint == "did you mean 'null'?"
    assert by_code["unsupported_schema_keyword"].message == "keyword 'maxLenght' is not supported"


def test_a_value_the_metaschema_reaches_several_ways_is_reported_once() -> None:
    # 2020-12's metaschema checks additionalProperties in two of its parts; kimari's own
    # audit explains it better, so that one alone is reported
    assert schema_problems({"additionalProperties": "no"}) == [
        ("unsupported_schema_keyword", "/additionalProperties")
    ]
    assert schema_problems(field({"minimum": "0"})) == [("invalid_schema", "/properties/x/minimum")]


def test_without_its_text_a_schema_problem_is_placed_at_the_top_of_the_source() -> None:
    with pytest.raises(PolicyError) as caught:
        compiled(field({"type": "integr"}))
    assert [str(d.location) for d in caught.value.diagnostics] == ["test.facts.schema.json:1:1"]


def test_boolean_subschemas_true_is_anything_and_false_is_refused() -> None:
    assert compiled(field(True)).validate({"x": [{"y": 1}]}) == {"x": [{"y": 1}]}
    assert schema_problems({"properties": {"x": False}}) == [
        ("unsupported_schema_keyword", "/properties/x")
    ]


def test_annotations_and_x_extensions_are_allowed() -> None:
    compiled(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://kimari.example/order.json",
            "title": "注文",
            "description": "d",
            "$comment": "c",
            "x-kimari-label": {"ja": "注文"},
            "properties": {"a": {"examples": [1], "default": 1, "deprecated": True}},
        }
    )


def test_another_dialect_is_refused() -> None:
    assert schema_problems({"$schema": "http://json-schema.org/draft-07/schema#"}) == [
        ("unsupported_schema_keyword", "/$schema")
    ]


def test_a_ref_mixed_with_other_keywords_or_looping_on_itself_is_refused() -> None:
    defs = {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}, "S": {"type": "string"}}
    assert schema_problems({"$defs": defs}) == [
        ("unsupported_ref", "/$defs/A/$ref"),
        ("unsupported_ref", "/$defs/B/$ref"),
    ]
    mixed = {"$defs": {"S": {"type": "string"}}, "$ref": "#/$defs/S", "maxLength": 3}
    assert schema_problems(mixed) == [("unsupported_ref", "/$ref")]


TREE = {
    "$defs": {
        "node": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": False,
            "properties": {
                "value": {"type": "integer", "minimum": 0},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
        }
    },
    "$ref": "#/$defs/node",
}


def test_a_recursive_ref_validates_to_any_depth() -> None:
    tree = {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]}
    assert compiled(TREE).validate(tree) == tree
    bad = {"value": 1, "children": [{"value": 2, "children": [{"value": -3}]}]}
    assert problems(TREE, bad) == [("minimum", "/children/0/children/0/value")]


def test_a_ref_with_an_escaped_name_resolves() -> None:
    schema = {"$defs": {"a/b": {"type": "integer"}}, "items": {"$ref": "#/$defs/a~1b"}}
    assert problems(schema, [1, "2"]) == [("type_mismatch", "/1")]


# --- the static type ---------------------------------------------------------------------

ORDER: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "ordered_at", "amount", "payment", "customer", "lines"],
    "properties": {
        "id": {"type": "string", "pattern": "^O-[0-9]+$", "maxLength": 12},
        "ordered_at": {"type": "string", "format": "date-time"},
        "ship_on": {"type": ["string", "null"], "format": "date"},
        "amount": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
        "rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "boxes": {"type": "integer", "multipleOf": 5},
        "payment": {"enum": ["np_postpay", "card", "bank"], "type": "string"},
        "channel": {"const": "web"},
        "gift": {"type": "boolean"},
        "customer": {"$ref": "#/$defs/customer"},
        "lines": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "required": ["sku", "qty"],
                "properties": {
                    "sku": {"type": "string", "minLength": 2},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": ["number", "null"], "minimum": 0},
                },
            },
        },
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
    "$defs": {
        "customer": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "new": {"type": "boolean"},
                "since": {"type": "string", "format": "date"},
            },
        }
    },
}

VALID_ORDER: dict[str, Any] = {
    "id": "O-100",
    "ordered_at": "2024-03-21T10:15:00+09:00",
    "ship_on": "2024-03-22",
    "amount": 54000,
    "rate": 0.5,
    "boxes": 10,
    "payment": "np_postpay",
    "channel": "web",
    "gift": False,
    "customer": {"id": "C-1", "new": True, "since": "2020-01-31"},
    "lines": [{"sku": "KX", "qty": 2, "price": 1200.5}, {"sku": "KY", "qty": 1, "price": None}],
    "tags": ["a", "b"],
}


def test_the_static_type_follows_the_schema() -> None:
    t = compiled(ORDER).type
    assert t.kind == "record" and not t.nullable and t.fields is not None
    f = t.fields
    assert f["ordered_at"] == lt.DATETIME
    assert f["ship_on"] == lt.DATE.with_nullable()
    assert f["amount"] == lt.INTEGER and f["rate"] == lt.NUMBER.with_nullable()
    assert f["payment"] == lt.Type("string", enum=("np_postpay", "card", "bank"))
    assert f["channel"] == lt.ANY and f["gift"] == lt.BOOLEAN.with_nullable()
    assert f["customer"] == lt.record(
        {"id": lt.STRING, "new": lt.BOOLEAN.with_nullable(), "since": lt.DATE.with_nullable()}
    )
    line = f["lines"].item
    assert f["lines"].kind == "list" and line is not None and line.fields is not None
    assert line.fields["price"] == lt.NUMBER.with_nullable()
    assert f["tags"] == lt.Type("list", nullable=True, item=lt.STRING)


def test_the_static_type_cuts_recursion_and_keeps_open_records_open() -> None:
    t = compiled(TREE).type
    assert t.fields is not None and t.fields["children"].item == lt.ANY
    assert compiled({"type": "object"}).type == lt.record(None)
    assert compiled({"type": ["integer", "number", "null"]}).type == lt.NUMBER.with_nullable()
    assert compiled({"type": ["string", "integer"]}).type == lt.ANY


def test_the_schema_property_is_the_original() -> None:
    assert compiled(ORDER).schema is ORDER


def test_a_valid_order_is_normalised() -> None:
    out = compiled(ORDER).validate(VALID_ORDER)
    assert out["ordered_at"] == dt.datetime(2024, 3, 21, 10, 15, tzinfo=JST)
    assert out["ship_on"] == dt.date(2024, 3, 22)
    assert out["rate"] == Decimal("0.5") and out["lines"][0]["price"] == Decimal("1200.5")
    assert out["customer"]["since"] == dt.date(2020, 1, 31)


# --- jsonschema as the oracle -------------------------------------------------------------

# kimari's formats, written independently of engine.source.facts. One deviation from
# RFC 3339 on purpose: hour 24 (`24:00:00`, any zero fraction) is accepted as the
# end of the day, as ISO 8601 allows, because the rulebooks say "the 21st, 24:00".
# Leap seconds (:60) and year 0000 are refused: Python's datetime cannot hold them.
KIMARI_FORMATS = jsonschema.FormatChecker(formats=())
_DT = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|([+-])(\d\d):(\d\d))?", re.ASCII
)


def _real_date(y: int, m: int, d: int) -> bool:
    return y >= 1 and 1 <= m <= 12 and 1 <= d <= calendar.monthrange(y, m)[1]


@KIMARI_FORMATS.checks("date")
def is_kimari_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", value, re.ASCII)
    return bool(m) and _real_date(*map(int, m.groups()))


@KIMARI_FORMATS.checks("date-time")
def is_kimari_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    m = _DT.fullmatch(value)
    if not m or not m[8] or not _real_date(int(m[1]), int(m[2]), int(m[3])):
        return False
    h, mi, s = int(m[4]), int(m[5]), int(m[6])
    if m[9] and (int(m[10]) > 23 or int(m[11]) > 59):
        return False
    if h == 24:
        zero = mi == s == 0 and not (m[7] or ".").strip(".0")
        return zero and (m[1], m[2], m[3]) != ("9999", "12", "31")
    return h <= 23 and mi <= 59 and s <= 59


# Integers stay within 64 bits: past them kimari refuses what JSON Schema allows, on
# purpose (test_integers_past_64_bits_are_refused_with_their_pointer).
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
# Floats stay below 2**53: past it jsonschema's float arithmetic (multipleOf,
# comparison with ints) and kimari's Decimal-as-written legitimately differ.
FLOATS = st.floats(min_value=-(2.0**53), max_value=2.0**53, allow_nan=False)
JSON = st.recursive(
    SCALARS | FLOATS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
# Values just inside and outside the boundaries of the schemas below.
EDGE_VALUES: list[Any] = [0, -1, 1, 2, 5, 10, 0.0, 1.0, 0.5, 0.999, 15, 1200.5, True, False, None]
EDGE_VALUES += [1_000_000, 1_000_001, "", "K", "KX", "O-1", "O-", "O-12345678901", "web", "card"]
EDGE_VALUES += ["cash", "np_postpay", "2024-02-29", "2023-02-29", "2024-3-1", "2024-03-21T10:00:00"]
EDGE_VALUES += ["2024-03-21T24:00:00+09:00", "2024-03-21T24:00:01Z", "2024-03-21 10:00:00.5z"]
EDGE_VALUES += ["2024-03-21T10:00:00+24:00", [], {}, ["a", "a"], [1, 1.0], {"value": 0}]
# Dates and times mostly valid, with every way to be just wrong.
DATES = st.builds(
    "{:04d}-{:02d}-{:02d}".format,
    st.sampled_from([2024, 2024, 2023, 2023, 1, 9999, 9999, 0]),
    st.sampled_from([*range(1, 13), 0, 13]),
    st.sampled_from([*range(1, 32), 0, 32]),
)
DATE_TIMES = st.builds(
    "{}{}{:02d}:{:02d}:{:02d}{}{}".format,
    DATES,
    st.sampled_from(["T", "T", "T", "t", " ", "_"]),
    st.sampled_from([*range(24), 24, 24, 25]),
    st.sampled_from([0, 0, 0, 15, 59, 59, 60]),
    st.sampled_from([0, 0, 0, 30, 59, 59, 60]),
    st.sampled_from(["", "", ".0", ".000", ".5", ".001", ".1234567"]),
    st.sampled_from(["Z", "+09:00", "-00:00", "+23:59", "z", "-12:30", "", "+24:00", "+0900"]),
)
EDGES = st.sampled_from(EDGE_VALUES) | DATES | DATE_TIMES


@st.composite
def mutated(draw: st.DrawFn, example: Any) -> Any:
    """A valid example with up to two members replaced, removed or added."""
    value = copy.deepcopy(example)
    for _ in range(draw(st.integers(0, 2))):
        spots = list(_containers(value))
        if not spots:
            return copy.deepcopy(draw(EDGES | JSON))
        parent, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["replace", "edge", "remove", "add"]))
        if action == "remove" and isinstance(parent, dict):
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = copy.deepcopy(draw(EDGES))
        else:  # EDGES holds shared lists and dicts: never mutate them in place
            parent[key] = copy.deepcopy(draw(EDGES if action != "replace" else JSON))
    return value


def _containers(value: Any) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += [(value, k), *_containers(v)]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += [(value, i), *_containers(v)]
    return out


LOOSE = {
    # Keywords without `type` apply only to values of their kind.
    "minLength": 2,
    "maxLength": 4,
    "pattern": "^K",
    "minimum": 1,
    "multipleOf": 2,
    "minItems": 1,
    "uniqueItems": True,
    "items": {"type": ["number", "boolean", "null", "string"], "format": "date"},
    "required": ["a"],
    "properties": {"a": {"type": ["integer", "null"], "exclusiveMaximum": 5}},
}
ORACLE_CASES = {
    "order": (ORDER, VALID_ORDER),
    "tree": (TREE, {"value": 0, "children": [{"value": 1, "children": []}, {"value": 2}]}),
    "loose": (LOOSE, {"a": 4, "b": ["x"]}),
    "times": (
        {"type": "array", "items": {"type": "string", "format": "date-time"}},
        ["2024-03-21T24:00:00+09:00", "2024-03-21T10:15:00.25Z"],
    ),
    "anything": ({}, {"x": [1, 2.5, None]}),
}


@pytest.mark.parametrize("case", sorted(ORACLE_CASES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_kimari_accepts_exactly_what_jsonschema_accepts(case: str, data: st.DataObject) -> None:
    example = ORACLE_CASES[case][1]
    instance = data.draw(st.one_of(JSON, EDGES, mutated(example), mutated(example)))
    ours, oracle = _both(case)
    expected = list(oracle.iter_errors(instance))
    try:
        ours.validate(instance)
    except InputError as e:
        assert expected, f"kimari refused a valid value: {e}"
        # Each pointer kimari reports is where jsonschema also found a problem
        # (required/unknown fields point one level deeper, at the member).
        seen = {"".join(f"/{_esc(p)}" for p in err.absolute_path) for err in expected}
        for d in e.diagnostics:
            assert d.pointer in seen or d.pointer.rsplit("/", 1)[0] in seen, d
    else:
        assert not expected, f"kimari accepted an invalid value: {expected[0].message}"


@functools.cache
def _both(case: str) -> tuple[FactsValidator, jsonschema.Draft202012Validator]:
    schema = ORACLE_CASES[case][0]
    return compiled(schema), jsonschema.Draft202012Validator(schema, format_checker=KIMARI_FORMATS)


def _esc(token: object) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def test_an_untyped_enum_of_texts_types_as_text_with_its_values() -> None:
    schema = {"type": "object", "required": ["m"], "properties": {"m": {"enum": ["np", "cod"]}}}
    field = compile_facts_schema(schema, source="s.json").type.field("m")
    assert field is not None and (field.kind, field.enum) == ("string", ("np", "cod"))


# --- the fast object path decides exactly as the general checks ----------------------------

FAST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "n", "ok", "pay", "inner"],
    "properties": {
        "id": {"type": "string"},
        "n": {"type": "integer"},
        "ok": {"type": "boolean"},
        "pay": {"type": "string", "enum": ["np", "card"]},
        "note": {"type": "string", "enum": ["a", "b"]},
        "count": {"type": "integer"},
        # declared before `inner` but sent after it: the two paths meet errors in
        # different orders, and must still cut at fifty in the same place
        "lines": {"type": "array", "items": {"type": "integer"}},
        "inner": {
            "type": "object",
            "required": ["x"],
            "properties": {"x": {"type": "integer", "minimum": 0}},
        },
    },
}
FAST_VALID = {"id": "A1", "n": 3, "ok": True, "pay": "np", "inner": {"x": 1}}


class _Text(str):
    """A text subclass (a str Enum, say): the general path makes it a plain str."""


# (members set or replaced, members removed, members put first)
FAST_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...], dict[str, Any]]] = {
    "valid, no optional field": ({}, (), {}),
    "valid, optional fields": ({"note": "a", "count": 2, "lines": [1]}, (), {}),
    "wrong type": ({"n": "3"}, (), {}),
    "bool where integer": ({"n": True}, (), {}),
    "integer where boolean": ({"ok": 1}, (), {}),
    "whole float where integer": ({"n": 3.0}, (), {}),
    "enum miss": ({"pay": "cash"}, (), {}),
    "list where enum text": ({"pay": ["np"]}, (), {}),
    "text subclass": ({"id": _Text("A1")}, (), {}),
    "optional wrong type": ({"count": "2"}, (), {}),
    "optional bool where integer": ({"count": False}, (), {}),
    "optional enum miss": ({"note": "c"}, (), {}),
    "unknown field": ({"nope": 1}, (), {}),
    "missing required field": ({}, ("n",), {}),
    "missing required field, unknown in its place": ({"nope": 1}, ("n",), {}),
    "missing required nested field": ({"lines": [1]}, ("inner",), {}),
    "nested error": ({"inner": {"x": -1}}, (), {}),
    "nested wrong type": ({"inner": []}, (), {}),
    "over fifty errors after an unknown field": ({"lines": ["x"] * 60}, (), {"nope": 1}),
    "over fifty errors, a required field missing": ({"lines": ["x"] * 60}, ("n",), {}),
    "a nested error, then over fifty": ({"inner": {"x": -1}, "lines": ["x"] * 60}, (), {}),
}


def _fast_case(name: str) -> dict[str, Any]:
    changed, removed, first = FAST_CASES[name]
    value = {**first, **copy.deepcopy(FAST_VALID), **changed}
    for key in removed:
        del value[key]
    return value


def _verdict(validator: FactsValidator, value: Any) -> Any:
    """Everything a caller sees: the value with the exact type of each part, or the errors."""
    try:
        out = validator.validate(value, pointer="/facts")
    except InputError as e:
        return [(d.code, d.message, d.pointer, d.hint) for d in e.diagnostics]
    return _typed(out)


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value), value)


@pytest.mark.parametrize("case", list(FAST_CASES))
def test_the_fast_object_path_gives_the_general_result(case: str) -> None:
    value = _fast_case(case)
    fast = compile_facts_schema(FAST, source="f.json")
    general = compile_facts_schema(FAST, source="f.json", fast_paths=False)
    assert _verdict(fast, value) == _verdict(general, value)
    assert value == _fast_case(case)  # neither path changes its input


@pytest.mark.parametrize("case", list(FAST_CASES))
def test_the_fast_object_path_falls_back_for_anything_unusual(case: str) -> None:
    """Only plain valid objects are decided without the general check."""
    compiler = facts_module._Compiler({})
    props = {name: compiler.node(sub) for name, sub in FAST["properties"].items()}
    general = facts_module._Compiler({}, fast_paths=False).node(FAST)
    calls: list[Any] = []

    def spy(v: Any, path: Any, errs: Any) -> Any:
        calls.append(v)
        return general(v, path, errs)

    check = facts_module._fast_object(FAST, props, frozenset(FAST["required"]), spy)
    value = _fast_case(case)
    with contextlib.suppress(facts_module._FullError):
        check(value, None, [])
    assert bool(calls) == (not case.startswith("valid")), calls


INTEGER_FIELDS = {
    "type": "object",
    "properties": {
        "plain": {"type": "integer"},
        "limited": {"type": "integer", "minimum": -(2**70)},
        "nullable": {"type": ["integer", "null"]},
        "number": {"type": "number"},
    },
    "required": ["plain"],
}


@pytest.mark.parametrize("field", ["plain", "limited", "nullable", "number"])
@pytest.mark.parametrize(
    "value",
    [2**63, -(2**63) - 1, 10**30, 1e300, -1e19, 10**5000],
    ids=["2**63", "-2**63-1", "10**30", "1e300", "-1e19", "10**5000"],
)
def test_integers_past_64_bits_are_refused_with_their_pointer(field: str, value: Any) -> None:
    validator = compile_facts_schema(INTEGER_FIELDS, source="t.json")
    if field == "number" and isinstance(value, float):
        return  # a number may be as large as a double; the rule engine takes it as one
    with pytest.raises(InputError) as caught:
        validator.validate({"plain": 1, field: value} if field != "plain" else {"plain": value})
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.pointer) == ("out_of_range", f"/{field}")
    assert "64-bit integer" in diagnostic.message


@pytest.mark.parametrize(
    ("facts", "pointer"),
    [
        ({"anything": 2**63}, "/anything"),
        ({"anything": [1, [-(2**63) - 1]]}, "/anything/1/0"),
        ({"anything": {"deep": {"er": 10**30}}}, "/anything/deep/er"),
        ({"items": [0, 2**64]}, "/items/1"),
    ],
)
def test_integers_past_64_bits_are_refused_at_any_depth_of_a_value_no_schema_types(
    facts: dict[str, Any], pointer: str
) -> None:
    """As a typed field's: the rule engine holds no more, and a flow would store what it
    could then never send to it (an entity's facts are checked by this validator)."""
    untyped = {"type": "object", "properties": {"anything": {}, "items": {"type": "array"}}}
    with pytest.raises(InputError) as caught:
        compile_facts_schema(untyped, source="t.json").validate(facts)
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.pointer) == ("out_of_range", pointer)
    ok = {"anything": [2**63 - 1, {"x": -(2**63)}, True], "items": [0]}
    assert compile_facts_schema(untyped, source="t.json").validate(ok) == ok


@pytest.mark.parametrize("value", [2**63 - 1, -(2**63), 0, -0.0, 9.0e18])
def test_integers_within_64_bits_are_accepted_as_they_are(value: Any) -> None:
    validator = compile_facts_schema(INTEGER_FIELDS, source="t.json")
    for field in ("plain", "limited", "nullable"):
        facts = validator.validate({"plain": 1, field: value})
        assert facts[field] == value and type(facts[field]) is int


# --- compiled once per text ------------------------------------------------------------

CACHED = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 2}},
    "required": ["a"],
}


def test_a_schema_compiled_before_is_the_same_validator() -> None:
    first = compile_facts_schema(CACHED, source="one.json")
    assert compile_facts_schema(copy.deepcopy(CACHED), source="two.json") is first
    assert compile_facts_schema(CACHED, source="one.json", fast_paths=False) is not first


def test_a_schema_written_in_another_order_is_compiled_for_its_own_order() -> None:
    first = compile_facts_schema(CACHED, source="one.json")
    turned = {"type": "object", "properties": {"b": CACHED["properties"]["b"]}}
    turned["properties"]["a"] = CACHED["properties"]["a"]
    turned["required"] = ["a"]
    other = compile_facts_schema(turned, source="two.json")
    assert other is not first
    assert list(first.type.fields or {}) == ["a", "b"]  # the fields the checker lists
    assert list(other.type.fields or {}) == ["b", "a"]


def test_a_schema_without_one_json_text_is_compiled_anew_each_time() -> None:
    schema = {"type": "object", "properties": {"a": {"const": float("nan")}}}
    assert compile_facts_schema(schema, source="s") is not compile_facts_schema(schema, source="s")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.date(2024, 1, 1), "2024-01-01"),
        (Decimal("1.5"), "1.5"),
        (type("Text", (str,), {})("x"), "x"),
    ],
)
def test_a_value_of_another_type_than_its_text_gets_a_validator_of_its_own(
    value: Any, text: str
) -> None:
    def schema(const: Any) -> dict[str, Any]:
        return {"type": "object", "properties": {"a": {"const": const}}}

    typed = compile_facts_schema(schema(value), source="s")
    assert compile_facts_schema(schema(value), source="s") is typed
    assert compile_facts_schema(schema(text), source="s") is not typed


def test_the_compiled_schemas_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(facts_module, "COMPILED_MAX", 2)
    monkeypatch.setattr(facts_module, "_COMPILED", {})
    for n in range(5):
        compile_facts_schema({"type": "object", "title": str(n)}, source="s")
        assert len(facts_module._COMPILED) <= 2
