"""A JSON Schema `pattern` as a Python regex that matches what ECMA-262 matches.

JSON Schema patterns are ECMA-262 regexes; Python's `re` reads the same text with other
meanings in four places that let wrong data through a schema: `$` also matches before a
final newline ("1000101\\n" passed `^[0-9]{7}$`), `\\d` and `\\w` also match other
scripts' digits and letters ("１２３４５６７" passed `^\\d{7}$`), and `.` matches \\r and the
Unicode line separators. The pattern is rewritten where those differ and compiled ASCII
(`\\d`, `\\w`, `\\b` as ECMA's); `\\s` keeps ECMA's Unicode spaces (U+3000 included).
"""

from __future__ import annotations

import functools
import re

# ECMA-262's WhiteSpace and LineTerminator, which its \s matches
_SPACES = "\\t\\n\\v\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_OUTSIDE = {
    "$": r"\Z",  # the end of the text, never before a final newline
    ".": "[^\\n\\r\\u2028\\u2029]",
}
_ESCAPED_OUTSIDE = {"s": f"[{_SPACES}]", "S": f"[^{_SPACES}]"}


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled to match as ECMA-262 does; re.error if Python cannot read it."""
    return re.compile(translate(pattern), re.ASCII | re.DOTALL)


def translate(pattern: str) -> str:
    out: list[str] = []
    class_start = -1  # where the character class being read opened, or -1
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            following = pattern[i + 1]
            if following == "s" and class_start >= 0:
                out.append(_SPACES)
            elif class_start < 0 and following in _ESCAPED_OUTSIDE:
                out.append(_ESCAPED_OUTSIDE[following])
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if class_start >= 0:
            if char == "]" and not _first_in_class(pattern, class_start, i):
                class_start = -1
            out.append(char)
        elif char == "[":
            class_start = i
            out.append(char)
        else:
            out.append(_OUTSIDE.get(char, char))
        i += 1
    return "".join(out)


def _first_in_class(pattern: str, start: int, at: int) -> bool:
    """A `]` first in a class (`[]a]`, `[^]a]`) is a literal in Python's reading, which
    the metaschema's check of the pattern also uses."""
    return at == start + 1 or (at == start + 2 and pattern[start + 1] == "^")
