"""ー between two digits is a dash typed with the kana keyboard (緑町3丁目12ー5): a blacklisted
forwarding address typed so was missed (HB-3). Next to kana it lengthens them and stays."""

from __future__ import annotations

import pytest

from engine.lang.text import normalize_text


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("緑町3丁目12ー5", "緑町3丁目12-5"),
        ("緑町3丁目12ｰ5", "緑町3丁目12-5"),  # half-width
        ("緑町３丁目１２ーー５", "緑町3丁目12-5"),  # a run, full-width digits
        ("緑町３丁目１２－５", "緑町3丁目12-5"),
        ("ルーシー", "ルーシー"),  # a letter between kana
        ("コーポ5", "コーポ5"),
        ("5ーア", "5ーア"),  # a digit on one side only
        ("二ー五", "二ー五"),  # kanji numerals are letters here
    ],
)
def test_a_prolonged_sound_mark_is_a_dash_only_between_digits(typed: str, read: str) -> None:
    assert normalize_text(typed) == read
