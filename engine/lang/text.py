"""Text normalisation for matching Japanese names, postal codes and phone numbers.

Customers type the same data in many shapes: full-width digits (０３), every
kind of dash (‐ ‑ – — ― − － ｰ ー), ideographic spaces, a 〒 mark, +81 for the
country code. Matching compares normalised values, so one function per kind
of field decides what is noise.
"""

from __future__ import annotations

import re
import unicodedata

# Dashes that people (and input methods) put between digit groups. The
# prolonged sound mark ー is one of them inside phone numbers and postal codes,
# but it is a letter in names, so only the digit normalisers remove it.
DASHES = (
    "\u002d\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u02d7\u2796"
    "\ufe58\ufe63\uff0d\u2500\u2501"
)
# Letters in words (ルーシー, ジョン・スミス) but separators between digits.
DIGIT_SEPARATORS = DASHES + "\u30fc\uff70\u30fb"
_DASH_RUN = re.compile("[" + re.escape(DASHES) + "]+")
# ー between digits is a dash typed with the kana keyboard (緑町3丁目12ー5), as in phone
# numbers; next to kana it lengthens them (ルーシー) and stays
_DIGIT_DASH = re.compile("(?<=[0-9])ー+(?=[0-9])")
_SPACES = re.compile(r"\s+")
# str.translate deletes in C; these run for every probe of every look-up.
_DIGIT_NOISE = str.maketrans("", "", DIGIT_SEPARATORS + "().〒")


def nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def normalize_text(text: str) -> str:
    """NFKC, one ASCII hyphen for any dash run, one space for any whitespace run, trimmed.

    The prolonged sound mark ー is a letter here (ルーシー), not a dash, except between two
    digits (12ー5, 12ｰ5: an address typed with the kana keyboard).
    """
    folded = _DASH_RUN.sub("-", _DIGIT_DASH.sub("-", nfkc(text)))
    # Removing characters can leave combining marks next to new bases: compose again.
    return nfkc(_SPACES.sub(" ", folded).strip())


def normalize_name(text: str) -> str:
    """A person's name for comparison: NFKC, no spaces of any width, case-folded Latin.

    `山田　太郎`, `山田 太郎` and `山田太郎` are one name; `ｶﾀｶﾅ` becomes `カタカナ`.
    """
    return nfkc("".join(nfkc(text).split()).casefold())


def letters(text: str) -> str:
    """The letters and digits of a text, NFKC: punctuation, symbols, spaces and controls
    dropped (`「。」` -> ``, `・特記事項：なし。` -> `特記事項なし`). Whether a free text says
    anything at all: a detail of only `。` or `-` is no detail."""
    # marks (M) belong to the letter before them: NFKC leaves some uncomposed, and a mark
    # brought next to a new letter by what was dropped is composed with it again
    kept: list[str] = []
    for char in nfkc(text):
        if unicodedata.category(char)[0] not in "LNM":
            continue
        # ー lengthens the kana before it (ルーシー); alone or in a row ("ーー") it is a
        # dash typed with the kana keyboard, and says nothing
        if char == _LONG_VOWEL and (not kept or kept[-1] == _LONG_VOWEL):
            continue
        kept.append(char)
    return nfkc("".join(kept))


_LONG_VOWEL = "ー"


def _digits_only(text: str) -> str:
    if text.isascii():  # the common case: NFKC is the identity, translate() is slow
        return "".join(
            text.replace("-", "").replace("(", "").replace(")", "").replace(".", "").split()
        )
    return nfkc("".join(nfkc(text).translate(_DIGIT_NOISE).split()))


def normalize_postal(text: str) -> str:
    """A Japanese postal code as 7 digits: `〒１２３－４５６７` -> `1234567`."""
    return _digits_only(text)


def normalize_phone(text: str) -> str:
    """A phone number as digits only, domestic form: `+81 (90) 1234-5678` -> `09012345678`."""
    digits = _digits_only(text)
    if digits.startswith("+81"):
        digits = "0" + digits[3:].lstrip("0")
    return digits.lstrip("+")  # "++" must not leave a "+" that a second pass removes
