"""Every diagnostic of the bad-policy fixtures, and every facts error, reads in Japanese.

The English lines are checked by test_bad_policies.py (each fixture's `# expect:` lines);
here the same diagnostics are rendered in Japanese: each message and hint must be a
translated message (not the English text, with no English template left in it), while the
place, the code and the values stay exactly what the English line shows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import Diagnostic, InputError, PolicyError
from engine.core.i18n import Msg, translate
from engine.project.project import load_rulebook
from engine.source.facts import compile_facts_schema
from engine.source.yaml import read_yaml_file
from tests import FIXTURES

BAD = FIXTURES / "bad"
CASES = sorted(BAD.glob("*.yaml"))
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")  # kana or kanji


def diagnostics_of(path: Path) -> list[Diagnostic]:
    try:
        compile_document(
            read_yaml_file(path, display=path.name), rulebook=load_rulebook(BAD / "rulebook.tsv")
        )
    except PolicyError as exc:
        return exc.diagnostics
    return []


def assert_translated(text: str | None) -> None:
    if text is None:
        return
    assert isinstance(text, Msg), f"not a translatable message: {text!r}"
    japanese = translate(text, "ja")
    assert japanese != text, f"left in English: {text!r}"
    assert JAPANESE.search(japanese), japanese
    assert text.template not in japanese or not text.template, japanese


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_every_diagnostic_of_a_bad_policy_reads_in_japanese(path: Path) -> None:
    found = diagnostics_of(path)
    assert found
    for diagnostic in found:
        assert_translated(diagnostic.message)
        assert_translated(diagnostic.hint)
        english, japanese = diagnostic.render("en"), diagnostic.render("ja")
        where = f"{diagnostic.location}: " if diagnostic.location else ""
        level = "" if diagnostic.is_error else "warning: "
        assert english.startswith(f"{where}{level}{diagnostic.code}: ")
        assert japanese.startswith(f"{where}{level}{diagnostic.code}: ")  # place and code kept


def test_the_bad_policies_cover_dozens_of_kinds_of_diagnostic() -> None:
    found = [d for path in CASES for d in diagnostics_of(path)]
    assert len({d.code for d in found}) >= 30
    templates = {d.message.template for d in found if isinstance(d.message, Msg)}
    assert len(templates) >= 40, sorted(templates)


@pytest.mark.parametrize(
    ("fixture", "line"),
    [
        (
            "unknown-fact-field",
            "unknown-fact-field.yaml:9:17: unknown_fact_field: ファクト項目 'order.paymnt' "
            "はありません ('order.payment' のことですか?)",
        ),
        (
            "tab-indentation",
            "tab-indentation.yaml:8:1: yaml_syntax: インデントにタブ文字は使えません。"
            "スペースでインデントしてください",
        ),
        (
            "too-many-rules",
            "too-many-rules.yaml:7:3: too_many_rules: ルールが 151 個あります。ルールエンジンで"
            "扱えるのは 1 ポリシーあたり 150 個までです (ポリシーを分けてください)",
        ),
        (
            "wrong-argument-count",
            "wrong-argument-count.yaml:7:19: wrong_argument_count: add_months() の引数は 2 個"
            "ですが、1 個あります (使い方: add_months(date | date-time, integer) -> same kind)",
        ),
        (
            "duplicate-key",
            "duplicate-key.yaml:7:1: duplicate_key: キー 'hit_policy' が重複しています"
            "（最初は 6 行目）。YAML では最後のものだけが黙って使われてしまいます",
        ),
    ],
)
def test_a_bad_policy_reads_exactly_so_in_japanese(fixture: str, line: str) -> None:
    assert diagnostics_of(BAD / f"{fixture}.yaml")[0].render("ja") == line


# -- facts -----------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[A-Z]"},
        "count": {"type": "integer", "minimum": 1, "maximum": 9, "multipleOf": 2},
        "low": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 5},
        "rate": {"type": "number"},
        "kind": {"enum": ["a", "b"]},
        "fixed": {"const": "x"},
        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": True},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "date-time"},
        "free": {},
    },
}
BAD_FACTS: list[dict[str, Any]] = [
    {"id": 7},  # type
    {},  # required
    {"id": "A", "surplus": 1},  # minLength, unknown field
    {"id": "ABCDE"},  # maxLength
    {"id": "ab"},  # pattern
    {"id": "AB", "count": 0},  # minimum
    {"id": "AB", "count": 10},  # maximum
    {"id": "AB", "count": 3},  # multipleOf
    {"id": "AB", "low": 0},  # exclusiveMinimum
    {"id": "AB", "low": 5},  # exclusiveMaximum
    {"id": "AB", "count": 2**64},  # out of range
    {"id": "AB", "count": 2.5},  # integer, got number
    {"id": "AB", "rate": float("inf")},  # not finite
    {"id": "AB", "kind": "c"},  # enum
    {"id": "AB", "fixed": "y"},  # const
    {"id": "AB", "tags": []},  # minItems
    {"id": "AB", "tags": [1, 2, 3]},  # maxItems
    {"id": "AB", "tags": [1, 1]},  # uniqueItems
    {"id": "AB", "day": "2024-02-30"},  # date
    {"id": "AB", "at": "2024-09-21T10:00:00"},  # date-time without offset
    {"id": "AB", "at": "9999-12-31T23:59:59-14:00"},  # date-time out of range
    {"id": "AB", "at": "2016-12-31T23:59:60Z"},  # leap second
    {"id": "AB", "free": {1: 2}},  # key not a string
    {"id": "AB", "free": {"x": object()}},  # not a JSON value
]


@pytest.mark.parametrize("facts", BAD_FACTS, ids=[str(i) for i in range(len(BAD_FACTS))])
def test_every_facts_error_reads_in_japanese_at_the_same_pointer(facts: dict[str, Any]) -> None:
    validator = compile_facts_schema(SCHEMA, source="test")
    with pytest.raises(InputError) as caught:
        validator.validate(facts)
    for diagnostic in caught.value.diagnostics:
        assert_translated(diagnostic.message)
        assert_translated(diagnostic.hint)
        assert diagnostic.to_dict("ja")["pointer"] == diagnostic.to_dict("en")["pointer"]


def test_a_facts_error_reads_exactly_so_in_japanese() -> None:
    validator = compile_facts_schema(SCHEMA, source="test")
    with pytest.raises(InputError) as caught:
        validator.validate({"id": "AB", "count": 10, "kind": "c"}, pointer="/facts")
    assert [d.render("ja") for d in caught.value.diagnostics] == [
        "/facts/count: maximum: 9 以下にしてください（10 になっています）",
        '/facts/kind: enum: "a", "b" のいずれかにしてください（"c" になっています）',
    ]
