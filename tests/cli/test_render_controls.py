"""A text report shows a text in the order it has: bidirectional controls (the "Trojan
Source" characters) are escaped like the other controls, and Japanese text is not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli.render import EXCERPT, diagnostic_text, printable
from engine.core.errors import Diagnostic, Location


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"])
def test_a_bidirectional_control_is_escaped_in_a_report_and_a_diagnostic(char: str) -> None:
    text = f"reject{char}evorppa"
    escaped = f"reject\\u{ord(char):04x}evorppa"
    assert printable(text) == escaped
    assert escaped in diagnostic_text(Diagnostic("unknown_field", f"no field {text}"))


def test_japanese_and_ordinary_punctuation_stay_as_they_are() -> None:
    text = "キャンセル料は半額です（経企決裁）— «ok» ‘x’ ①"
    assert printable(text) == text


def _report(line: str, col: int, tmp_path: Path) -> list[str]:
    path = tmp_path / f"data-{len(line)}-{col}.json"  # the report caches lines per path
    path.write_text(f"first\n{line}\nlast\n", encoding="utf-8")
    problem = Diagnostic("data_invalid", "wrong", Location(str(path), 2, col))
    return diagnostic_text(problem).split("\n")


def test_a_long_source_line_is_shown_around_the_column_with_the_caret_under_it(
    tmp_path: Path,
) -> None:
    """A data file of one 1.2 MB line was echoed whole under its error."""
    line = "".join(f"{i:05d}," for i in range(20_000))
    col = 60_001  # the first character of "10000,"
    _, shown, caret = _report(line, col, tmp_path)
    assert shown.startswith("    …") and shown.endswith("…")
    assert len(shown) <= 4 + 2 + EXCERPT
    assert shown[len(caret) - 1 : len(caret) + 5] == "10000,"  # the caret's own column


def test_a_short_line_is_shown_whole_and_a_line_end_column_gets_its_caret(
    tmp_path: Path,
) -> None:
    _, shown, caret = _report("id: 12", 7, tmp_path)
    assert (shown, caret) == ("    id: 12", "          ^")
    _, shown, caret = _report("x" * EXCERPT, EXCERPT, tmp_path)
    assert shown == "    " + "x" * EXCERPT and caret == " " * (4 + EXCERPT - 1) + "^"


def test_a_control_in_the_source_line_is_escaped_and_the_caret_still_points(
    tmp_path: Path,
) -> None:
    _, shown, caret = _report("a\u202eb: c", 4, tmp_path)
    assert shown == "    a\\u202eb: c"
    assert shown[len(caret) - 1] == ":"
