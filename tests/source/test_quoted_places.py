"""A place inside a quoted scalar (an unknown field in a message, an expression's error) is
found in the source however the text before it was written: escapes (`\\u3042`, `\\t`, `\\N`,
`\\x41`), a doubled quote, lines folded into a space, blank lines kept as line breaks, and
an escaped line break all stand for fewer or more characters in the value than in the file."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.compile.stages import compile_document
from engine.core.errors import PolicyError
from engine.source.yaml import parse_yaml, split_lines
from tests import FIXTURES

ESCAPES = [
    "\\t", "\\n", '\\"', "\\\\", "\\/", "\\0", "\\a", "\\b", "\\e", "\\ ", "\\\t",
    "\\N", "\\_", "\\L", "\\P", "\\x41", "\\u3042", "\\U0001F600",
]  # fmt: skip
BREAKS = ["\n    ", "\n\n    ", "  \n    ", "\\\n    ", "\\\n\n    "]
LITERALS = list("aあ漢\tA ,:#'")  # with characters that escapes stand for
DOUBLE = st.lists(st.sampled_from(ESCAPES + BREAKS + LITERALS), max_size=12)
SINGLE = st.lists(st.sampled_from(["''", '"', "\\", *BREAKS[:3], *LITERALS[:-1]]), max_size=12)


def place_of_brace(
    before: list[str], after: list[str], quote: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where the '{' of `m: <quote><before>{x}<after><quote>` is read, and where it is
    written (the text after it holds characters that escapes before it stand for)."""
    text = f"m: {quote}{''.join(before)}{{x}}{''.join(after)}{quote}\nn: 1\n"
    document = parse_yaml(text, "p.yaml")
    value = document.data["m"]
    found = document.positions.within("/m", value.index("{"), value)
    ahead = text[: text.index("{")]
    written = (ahead.count("\n") + 1, len(ahead) - ahead.rfind("\n"))
    return (found.line, found.col), written


@given(DOUBLE, DOUBLE)
def test_a_place_after_any_escapes_and_folds_in_double_quotes_is_found(
    before: list[str], after: list[str]
) -> None:
    found, written = place_of_brace(before, after, '"')
    assert found == written


@given(SINGLE, SINGLE)
def test_a_place_after_doubled_quotes_and_folds_in_single_quotes_is_found(
    before: list[str], after: list[str]
) -> None:
    found, written = place_of_brace(before, after, "'")
    assert found == written


def test_the_end_of_a_quoted_value_is_its_closing_quote() -> None:
    text = 'm: "a\\u3042b"\n'
    document = parse_yaml(text, "p.yaml")
    end = document.positions.within("/m", 3, document.data["m"])
    assert (end.line, end.col) == (1, 13)
    assert split_lines(text)[0][end.col - 1] == '"'


def test_an_escape_whose_character_appears_later_does_not_pull_the_place_ahead() -> None:
    # 'あ' written as \u3042, and again plainly later in the same text: the walk that searched
    # the source for each character jumped to the later one, then to the next line
    lines = [
        "kimari: 1",
        "id: escapes",
        "title: {ja: エスケープ}",
        "facts: schemas/order.facts.schema.json",
        "rules:",
        "  - id: r1",
        "    refs: [TS-4]",
        "    when: order.total > 3",
        "    reason:",
        "      code: X",
        "      message:",
        '        ja: "外の\\u3042顧客であった（{order.totl}）"',
        '        en: "The ({order.total}) is outside."',
    ]
    with pytest.raises(PolicyError) as caught:
        compile_document(
            parse_yaml("\n".join(lines) + "\n", str(FIXTURES / "bad" / "escapes.yaml"))
        )
    [found] = [d for d in caught.value.diagnostics if d.is_error]
    assert found.code == "unknown_fact_field" and found.location is not None
    assert (found.location.line, found.location.col) == (12, 36)  # at "totl"
