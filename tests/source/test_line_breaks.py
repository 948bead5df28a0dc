"""Places are counted as editors count lines: CRLF, LF or a lone CR end a line; YAML's other
line breaks (NEL, U+2028, U+2029) are refused, since editors do not end a line there and
every place after one would be off."""

from __future__ import annotations

import pytest

from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.source.yaml import parse_yaml
from tests import FIXTURES

LINES = [
    "kimari: 1",
    "id: breaks",
    "title: {ja: 改行}",
    "facts: schemas/order.facts.schema.json",
    "rules:",
    "  - id: r1",
    "    refs: [TS-4]",
    "    label: {ja: 改行のテスト}",
    "    when: order.totl > 3",
]
WHERE = str(FIXTURES / "bad" / "breaks.yaml")


def _first_error(text: str) -> tuple[str, int, int]:
    with pytest.raises(PolicyError) as caught:
        compile_document(parse_yaml(text, WHERE))
    found = caught.value.diagnostics[0]
    assert found.location is not None
    return found.code, found.location.line, found.location.col


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_an_expression_error_is_placed_alike_whatever_the_line_endings(newline: str) -> None:
    text = newline.join(LINES) + newline
    assert _first_error(text) == ("unknown_fact_field", 9, 17)  # at "totl"


@pytest.mark.parametrize("separator", ["\x85", "\u2028", "\u2029"])
def test_a_line_separator_that_editors_do_not_break_at_is_refused_at_its_place(
    separator: str,
) -> None:
    lines = list(LINES)
    lines[7] = "    label: {ja: 改行の" + separator + "テスト}"
    code, line, col = _first_error("\n".join(lines) + "\n")
    assert (code, line, col) == ("yaml_syntax", 8, 20)
