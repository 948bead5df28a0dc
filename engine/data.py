"""Reference data sets (blacklists, estimates, customers) and their indexes.

A decision must not scan a data set: a blacklist of a million entries has
to cost about what one of a hundred costs. So every look-up a policy can
make is answered from an index built when the data set is loaded:

- `find(data.X, {a: .., b: ..})` — a hash index on the exact tuple of
  fields, one per tuple the shipped policies use (prepared at bind time).
- `similar(data.X, {name: .., phone: ..}, k)` — one hash index per field on
  the normalised value (the data set's `match` declaration says which
  normaliser); an entry matches when k of the probe's fields hit it.

A Dataset is immutable once built; replacing data builds a new one and
swaps it in, so a decision never sees half a data set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from engine.lang import text

NORMALISERS: dict[str, Callable[[str], str]] = {
    "exact": lambda value: value,
    "normalize": text.normalize_text,
    "normalize_name": text.normalize_name,
    "normalize_postal": text.normalize_postal,
    "normalize_phone": text.normalize_phone,
}

_Postings = int | list[int]


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def version_of(entries: Sequence[Any]) -> str:
    """Content hash of a data set: decisions record it, so they can be replayed."""
    raw = orjson.dumps([_canonical(e) for e in entries], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()[:16]


def _add(index: dict[Any, _Postings], key: Any, position: int) -> None:
    found = index.get(key)
    if found is None:
        index[key] = position
    elif isinstance(found, int):
        index[key] = [found, position]
    else:
        found.append(position)


def _positions(found: _Postings | None) -> Iterable[int]:
    if found is None:
        return ()
    return (found,) if isinstance(found, int) else found


class Dataset:
    """An immutable list of entries with the indexes policies look them up by."""

    def __init__(
        self,
        name: str,
        entries: Sequence[dict[str, Any]],
        *,
        match: Mapping[str, str] | None = None,
        version: str | None = None,
    ) -> None:
        self.name = name
        self.entries: tuple[dict[str, Any], ...] = tuple(entries)
        self.version = version or version_of(self.entries)
        self.match = dict(match or {})
        self._exact: dict[tuple[str, ...], dict[tuple[Any, ...], _Postings]] = {}
        self._similar: dict[str, dict[str, _Postings]] = {}
        for field in self.match:
            self._similar_index(field)

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}, {len(self.entries)} entries, version {self.version})"

    # -- exact look-up --------------------------------------------------------
    def prepare_find(self, fields: Sequence[str]) -> None:
        """Build the index for find() on this tuple of fields (idempotent)."""
        key = tuple(sorted(fields))
        if key in self._exact:
            return
        index: dict[tuple[Any, ...], _Postings] = {}
        for position, entry in enumerate(self.entries):
            values = tuple(entry.get(f) for f in key)
            if None not in values:
                _add(index, values, position)
        self._exact[key] = index

    def find(self, probe: Mapping[str, Any]) -> list[dict[str, Any]]:
        key = tuple(sorted(probe))
        values = tuple(probe[f] for f in key)
        if None in values:
            return []
        if key not in self._exact:
            self.prepare_find(key)
        return [self.entries[p] for p in _positions(self._exact[key].get(values))]

    # -- k-of-n look-up -------------------------------------------------------
    def _normaliser(self, field: str) -> Callable[[str], str]:
        return NORMALISERS[self.match.get(field, "exact")]

    def _similar_index(self, field: str) -> dict[str, _Postings]:
        index = self._similar.get(field)
        if index is not None:
            return index
        normalise = self._normaliser(field)
        index = {}
        for position, entry in enumerate(self.entries):
            value = entry.get(field)
            if isinstance(value, str):
                value = normalise(value)
            if value not in (None, ""):
                _add(index, value, position)
        self._similar[field] = index
        return index

    def similar(self, probe: Mapping[str, Any], at_least: int) -> dict[str, Any] | None:
        """The first entry (in data order) equal to the probe on at least `at_least` fields."""
        hits: dict[int, int] = {}
        for field, value in probe.items():
            if value is None:
                continue
            normalised = self._normaliser(field)(value) if isinstance(value, str) else value
            if normalised == "":
                continue
            for position in _positions(self._similar_index(field).get(normalised)):
                hits[position] = hits.get(position, 0) + 1
        matching = [p for p, count in hits.items() if count >= max(at_least, 1)]
        return self.entries[min(matching)] if matching else None
