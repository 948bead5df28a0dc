"""Where each JSON pointer of a JSON text sits in its file.

The facts and data schemas are JSON files, read with orjson, which keeps no positions; a
problem found in one (an unsupported keyword, a type misspelt) is known by its pointer.
This index turns the pointer back into `file:line:col` as editors need it, like
engine/source/yaml.py's PositionIndex does for YAML. It is built only when there is a
problem to place, from a text that orjson has already read as valid JSON.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from contextlib import suppress
from json.decoder import scanstring

from engine.core.errors import Location
from engine.source.yaml import join_pointer

_SPACE = re.compile(r"[ \t\n\r]*")
# A number, true, false or null: what is left once strings, objects and arrays are known.
_ATOM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")


class JsonPlaces:
    """Positions of the values (and of the keys that introduce them) of one JSON text."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self._text = text
        self._values: dict[str, int] = {}
        self._keys: dict[str, int] = {}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # not JSON after all: what was indexed before the fault still places
        with suppress(ValueError, IndexError, RecursionError):
            self._value(self._skip(0), "")

    def value(self, pointer: str) -> Location:
        """The value at `pointer`, or its nearest ancestor that exists."""
        return self._location(self._nearest(self._values, pointer))

    def key(self, pointer: str) -> Location:
        """The key that introduces `pointer` (the value's place for an array item)."""
        at = self._keys.get(pointer)
        return self._location(at) if at is not None else self.value(pointer)

    def _nearest(self, table: dict[str, int], pointer: str) -> int:
        while pointer not in table and pointer:
            pointer = pointer.rpartition("/")[0]
        return table.get(pointer, 0)

    def _location(self, offset: int) -> Location:
        line = bisect_right(self._line_starts, offset) - 1
        return Location(self.file, line + 1, offset - self._line_starts[line] + 1)

    def _skip(self, at: int) -> int:
        match = _SPACE.match(self._text, at)
        return match.end() if match else at

    def _value(self, at: int, pointer: str) -> int:
        """Index the value starting at `at`; return the offset just after it."""
        self._values[pointer] = at
        first = self._text[at]
        if first == "{":
            return self._object(at + 1, pointer)
        if first == "[":
            return self._array(at + 1, pointer)
        if first == '"':
            return scanstring(self._text, at + 1)[1]
        atom = _ATOM.match(self._text, at)
        if atom is None:
            raise ValueError(at)
        return atom.end()

    def _object(self, at: int, pointer: str) -> int:
        at = self._skip(at)
        if self._text[at] == "}":
            return at + 1
        while True:
            key_at = at
            name, at = scanstring(self._text, at + 1)
            member = join_pointer(pointer, name)
            self._keys[member] = key_at
            at = self._skip(self._skip(at) + 1)  # past the colon
            at = self._skip(self._value(at, member))
            if self._text[at] == "}":
                return at + 1
            at = self._skip(at + 1)  # past the comma

    def _array(self, at: int, pointer: str) -> int:
        at = self._skip(at)
        if self._text[at] == "]":
            return at + 1
        index = 0
        while True:
            at = self._skip(self._value(at, join_pointer(pointer, index)))
            if self._text[at] == "]":
                return at + 1
            at, index = self._skip(at + 1), index + 1
