"""A JSON Schema `pattern` matches what ECMA-262 matches, not what Python's `re` would:
the places where the two read the same text differently, on both sides."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.errors import InputError, PolicyError
from engine.source.ecma_regex import compile_pattern
from engine.source.facts import compile_facts_schema


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[0-9]{7}$", "1000101", True),
        ("^[0-9]{7}$", "1000101\n", False),  # Python's $ matches before a final newline
        ("x$|y", "x\n", False),
        ("^\\d{7}$", "1234567", True),
        ("^\\d{7}$", "１２３４５６７", False),  # ECMA's \d is [0-9]
        ("^[\\d-]+$", "１-２", False),
        ("^\\w+$", "abc_9", True),
        ("^\\w+$", "日本", False),  # ECMA's \w is [A-Za-z0-9_]
        ("^a.b$", "a-b", True),
        ("^a.b$", "a\rb", False),  # ECMA's . stops at every line terminator
        ("^a.b$", "a\u2028b", False),
        ("^\\s$", "\u3000", True),  # ECMA's \s has Unicode's spaces
        ("^[\\s]$", "\u3000", True),
        ("^\\S$", "\u3000", False),
        ("^[$]$", "$", True),  # a $ in a class is a dollar
        ("^\\$$", "$", True),
        ("^[]a]$", "]", True),
        ("^[^]a]$", "b", True),
        ("^[^]a]$", "]", False),
        ("[.]", "x", False),
    ],
)
def test_a_pattern_matches_as_ecma_262_reads_it(pattern: str, text: str, matches: bool) -> None:
    assert (compile_pattern(pattern).search(text) is not None) is matches


ASCII_LINE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8)
PIECES = st.sampled_from(["a", "b", "[ab]", "[^a]", "\\d", "\\w", ".", "x*", "(a|b)", "[0-9]+"])


@given(st.lists(PIECES, max_size=5).map("".join), st.booleans(), st.booleans(), ASCII_LINE)
def test_where_the_two_readings_agree_the_pattern_is_unchanged(
    body: str, start: bool, end: bool, text: str
) -> None:
    """On one line of ASCII text the dialects differ in nothing used here."""
    pattern = ("^" if start else "") + body + ("$" if end else "")
    assert (compile_pattern(pattern).search(text) is None) is (re.search(pattern, text) is None)


def test_a_facts_schema_refuses_what_its_pattern_refuses_in_ecma_262() -> None:
    schema = {"type": "object", "properties": {"postal_code": {"pattern": "^\\d{7}$"}}}
    validator = compile_facts_schema(schema, source="t.json")
    assert validator.validate({"postal_code": "1000101"}) == {"postal_code": "1000101"}
    for bad in ("1000101\n", "１０００１０１"):
        with pytest.raises(InputError) as caught:
            validator.validate({"postal_code": bad})
        [problem] = caught.value.diagnostics
        assert (problem.code, problem.pointer) == ("pattern", "/postal_code")
        assert problem.message.endswith("does not match pattern `^\\d{7}$`")  # as written


def test_a_pattern_python_cannot_read_is_a_schema_problem_not_a_crash() -> None:
    with pytest.raises(PolicyError) as caught:
        compile_facts_schema({"properties": {"x": {"pattern": "(a"}}}, source="t.json")
    assert [d.pointer for d in caught.value.diagnostics] == ["/properties/x/pattern"]
