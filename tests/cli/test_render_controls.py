"""A text report shows a text in the order it has: bidirectional controls (the "Trojan
Source" characters) are escaped like the other controls, and Japanese text is not touched."""

from __future__ import annotations

import pytest

from engine.cli.render import diagnostic_text, printable
from engine.core.errors import Diagnostic


@pytest.mark.parametrize("char", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"])
def test_a_bidirectional_control_is_escaped_in_a_report_and_a_diagnostic(char: str) -> None:
    text = f"reject{char}evorppa"
    escaped = f"reject\\u{ord(char):04x}evorppa"
    assert printable(text) == escaped
    assert escaped in diagnostic_text(Diagnostic("unknown_field", f"no field {text}"))


def test_japanese_and_ordinary_punctuation_stay_as_they_are() -> None:
    text = "キャンセル料は半額です（経企決裁）— «ok» ‘x’ ①"
    assert printable(text) == text
