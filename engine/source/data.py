"""Reference data sets (blacklists, estimates, customers) and their indexes.

A decision must not scan a data set: a blacklist of a million entries has
to cost about what one of a hundred costs. So every look-up a policy can
make is answered from an index built when the data set is loaded:

- `find(data.X, {a: .., b: ..})` — a hash index on the exact tuple of
  fields, one per tuple the shipped policies use (prepared at bind time).
- `similar(data.X, {name: .., phone: ..}, k)` and `similar_all(...)` — one
  hash index per field on the normalised value (the data set's `match`
  declaration says which normaliser); an entry matches when k of the probe's
  fields hit it.
- `match_condition(data.X, {name: .., phone: ..})` — entries that are
  conditions (`match: exact | prefix | suffix | contains` plus one or more
  field values, all of which must hold). Per field, exact values sit in one
  hash table and the other operators in one hash table per pattern length,
  so a probe value of n characters costs at most n look-ups per distinct
  pattern length (its prefix, its suffix, its n windows), whatever the
  number of entries.

An entry found by `similar`, `similar_all` or `match_condition` comes back with a
report of how it matched, under `matched`: `{fields: [...], count: n, of: m}` — the
probe's fields that agreed (in probe order), how many, and how many the probe gave.
"2 of 3" is then reviewable: which entry, which fields, how many (RULES HB-2).

A Dataset is immutable once built; replacing data builds a new one and
swaps it in, so a decision never sees half a data set.
"""

from __future__ import annotations

import functools
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

# One order's name, postal code and phone are normalised for every look-up a policy
# makes (blacklist, conditions, customers, ...): probes go through a small cache of
# these pure functions. Building an index does not, so it cannot flood the cache.
_PROBE_NORMALISERS: dict[str, Callable[[str], str]] = {
    name: functools.lru_cache(maxsize=4096)(fn) for name, fn in NORMALISERS.items()
}

_Postings = int | list[int]
# Up to this many postings over a probe's fields, k-of-n matching reads them all and counts;
# past it, only the shortest lists (see Dataset._matching). Measured on bench section 2's
# data (Faker's ~2,550 names: lists of up to 62 names at 100,000 entries), A/B in one
# process, 3 alternated rounds: at 64 a 100,000-entry probe read every list, 7.9-8.4 µs,
# more than at 1,000,000 entries; at 8, 4.9-5.5 µs (1,000,000: 5.1-6.6 -> 4.7-4.8; 100
# and 10,000 entries, whose probes have fewer postings, unchanged).
_SHORT_POSTINGS = 8

# Entries of a condition data set (HB-3's ブラックリスト条件) say how their values
# compare in this field; the fields compared are those of the `match` declaration.
CONDITION_OPERATOR_FIELD = "match"
CONDITION_OPERATORS = ("exact", "prefix", "suffix", "contains")
# The key under which a found entry reports how it matched (reserved in entry schemas
# of the data sets these look-ups read).
MATCH_REPORT = "matched"
_ConditionIndex = tuple[
    dict[str, dict[str, dict[int, dict[str, _Postings]]]], dict[int, list[tuple[str, str, str]]]
]


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


def _postings_size(found: _Postings | None) -> int:
    if found is None:
        return 0
    return 1 if isinstance(found, int) else len(found)


def _total_postings(present: list[tuple[str, Any, _Postings | None]]) -> int:
    """_postings_size summed over a probe's fields, without a call per field (every
    similarity look-up asks)."""
    total = 0
    for _, _, found in present:
        if found is not None:
            total += 1 if type(found) is int else len(found)
    return total


def _positions(found: _Postings | None) -> Iterable[int]:
    if found is None:
        return ()
    return (found,) if isinstance(found, int) else found


def _parts(value: str, operator: str, length: int) -> Iterable[str]:
    """The pieces of a probe value that a pattern of this length could equal."""
    if operator == "exact":
        return (value,)
    if length > len(value):
        return ()
    if operator == "prefix":
        return (value[:length],)
    if operator == "suffix":
        return (value[-length:],)
    return [value[i : i + length] for i in range(len(value) - length + 1)]


def _holds(operator: str, value: str | None, pattern: str) -> bool:
    if value is None:
        return False
    if operator == "exact":
        return value == pattern
    if operator == "prefix":
        return value.startswith(pattern)
    if operator == "suffix":
        return value.endswith(pattern)
    return pattern in value


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
        self._conditions: _ConditionIndex | None = None
        self._find_plans: dict[tuple[str, ...], tuple[tuple[str, ...], dict[Any, _Postings]]] = {}
        self._lookups: dict[str, tuple[dict[str, _Postings], Callable[[str], str]]] = {}
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
        # A probe is a record literal of the policy: its fields come in the same order at
        # every call, so the sorted key and its index are looked up once per order.
        order = tuple(probe)
        plan = self._find_plans.get(order)
        if plan is None:
            key = tuple(sorted(order))
            self.prepare_find(key)
            plan = self._find_plans[order] = (key, self._exact[key])
        key, index = plan
        values = tuple([probe[f] for f in key])
        if None in values:
            return []
        found = index.get(values)
        if found is None:
            return []
        entries = self.entries
        return [entries[found]] if type(found) is int else [entries[p] for p in found]

    # -- k-of-n look-up -------------------------------------------------------
    def _normaliser(self, field: str) -> Callable[[str], str]:
        return NORMALISERS[self.match.get(field, "exact")]

    def _probe_normaliser(self, field: str) -> Callable[[str], str]:
        return _PROBE_NORMALISERS[self.match.get(field, "exact")]

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

    def _lookup(self, field: str) -> tuple[dict[str, _Postings], Callable[[str], str]]:
        """A field's index and its probe normaliser, found once per field."""
        found = self._lookups.get(field)
        if found is None:
            found = self._lookups[field] = (
                self._similar_index(field),
                self._probe_normaliser(field),
            )
        return found

    def _present(self, probe: Mapping[str, Any]) -> list[tuple[str, Any, _Postings | None]]:
        """(field, normalised value, its postings) of each field the probe gives."""
        present = []
        lookups = self._lookups
        for field, value in probe.items():
            if value is None:
                continue
            found = lookups.get(field) or self._lookup(field)
            if isinstance(value, str):
                value = found[1](value)
                if value == "":
                    continue
            present.append((field, value, found[0].get(value)))
        return present

    def _matching(
        self, probe: Mapping[str, Any], at_least: int
    ) -> tuple[dict[int, list[str]], int]:
        """{position: the probe's fields it agrees on, in probe order} of the entries equal
        to the probe on at least `at_least` of its fields, and how many fields it gave.

        An entry agrees on a field exactly when it is in that field's posting list for the
        probe's value (the index holds the same normalised values). With short lists (the
        common case) every list is read and the agreements counted. With a long one (a
        common name in a million entries), an entry that matches k of n fields appears in
        k of the n lists, so in one of the n - k + 1 shortest: only those are read, and
        each candidate is checked on the other fields, so the cost stays flat as the data
        set grows.
        """
        needed = max(at_least, 1)
        present = self._present(probe)
        given = len(present)
        if given < needed:
            return {}, given
        hits: dict[int, list[str]] = {}
        if _total_postings(present) <= _SHORT_POSTINGS:
            for field, _, found in present:
                if found is None:
                    continue
                for position in (found,) if type(found) is int else found:
                    agreed = hits.get(position)
                    if agreed is None:
                        hits[position] = [field]
                    else:
                        agreed.append(field)
            if needed > 1:
                hits = {p: fields for p, fields in hits.items() if len(fields) >= needed}
            return hits, given
        lists = sorted((found for _, _, found in present), key=_postings_size)
        candidates: set[int] = set()
        for found in lists[: given - needed + 1]:
            candidates.update(_positions(found))
        for position in candidates:
            agreed = self._agreeing(position, present)
            if len(agreed) >= needed:
                hits[position] = agreed
        return hits, given

    def _agreeing(self, position: int, present: list[tuple[str, Any, Any]]) -> list[str]:
        """The probe's fields on which an entry agrees (normalised), in probe order."""
        entry = self.entries[position]
        fields = []
        for field, value, _ in present:
            raw = entry.get(field)
            # The cached normaliser: the same candidates (a popular name's entries) come back.
            normalised = self._lookup(field)[1](raw) if isinstance(raw, str) else raw
            if normalised == value:
                fields.append(field)
        return fields

    def _reported(self, position: int, fields: list[str], given: int) -> dict[str, Any]:
        """The entry with its match report (a new dict: the data set stays as it is)."""
        report = {"fields": fields, "count": len(fields), "of": given}
        return {**self.entries[position], MATCH_REPORT: report}

    def similar(self, probe: Mapping[str, Any], at_least: int) -> dict[str, Any] | None:
        """The first entry (in data order) equal to the probe on at least `at_least` fields,
        with its match report."""
        hits, given = self._matching(probe, at_least)
        if not hits:
            return None
        first = min(hits)
        return self._reported(first, hits[first], given)

    def similar_all(self, probe: Mapping[str, Any], at_least: int) -> list[dict[str, Any]]:
        """Every entry (in data order) equal to the probe on at least `at_least` fields,
        each with its match report.

        For look-ups that must skip some matches, such as the orderer's own
        record in a customer index (HO-10): `first(similar_all(...), c -> ...)`.
        """
        hits, given = self._matching(probe, at_least)
        return [self._reported(p, hits[p], given) for p in sorted(hits)]

    # -- condition entries ----------------------------------------------------
    def _conditions_of(self, entry: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        """(field, operator, normalised pattern) of each condition an entry sets."""
        operator = entry.get(CONDITION_OPERATOR_FIELD, "exact")
        out = []
        for field in self.match:
            value = entry.get(field)
            if isinstance(value, str):
                pattern = self._normaliser(field)(value)
                # An empty pattern would match every order: such a condition is ignored.
                if pattern:
                    out.append((field, operator, pattern))
        return out

    def _condition_index(self) -> _ConditionIndex:
        """field -> operator -> pattern length -> pattern -> entry positions (built once).

        Each entry is indexed under its first condition; the others are
        checked when it is a candidate. Exact patterns are filed under length 0.
        """
        built = self._conditions
        if built is not None:
            return built
        index: dict[str, dict[str, dict[int, dict[str, _Postings]]]] = {}
        specs: dict[int, list[tuple[str, str, str]]] = {}
        for position, entry in enumerate(self.entries):
            conditions = self._conditions_of(entry)
            if not conditions or conditions[0][1] not in CONDITION_OPERATORS:
                continue
            specs[position] = conditions
            field, operator, pattern = conditions[0]
            by_length = index.setdefault(field, {}).setdefault(operator, {})
            length = 0 if operator == "exact" else len(pattern)
            _add(by_length.setdefault(length, {}), pattern, position)
        self._conditions = built = (index, specs)
        return built

    def match_condition(self, probe: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first condition entry (in data order) that every field of it matches, with
        its match report (the fields the entry sets, all of which held)."""
        index, specs = self._conditions or self._condition_index()
        values = {}
        candidates: set[int] = set()
        lookups = self._lookups
        for field, value in probe.items():
            if not isinstance(value, str):
                continue
            normalised = (lookups.get(field) or self._lookup(field))[1](value)
            if not normalised:
                continue
            values[field] = normalised
            by_operator = index.get(field)
            if by_operator is not None:
                _condition_candidates(by_operator, normalised, candidates)
        for position in sorted(candidates):
            if all(
                _holds(operator, values.get(field), pattern)
                for field, operator, pattern in specs[position]
            ):
                fields = [field for field, _, _ in specs[position]]
                return self._reported(position, fields, len(values))
        return None


def _condition_candidates(
    by_operator: dict[str, dict[int, dict[str, _Postings]]], value: str, candidates: set[int]
) -> None:
    """Add the entries whose first condition on this field holds for `value`.

    A pattern of length L holds for a value of n characters when one of its n - L + 1
    windows (one for a prefix or a suffix) equals it: with fewer patterns than windows
    the patterns are tested instead (`in`, `startswith`, `endswith`), which finds the
    same entries; either way the cost is the smaller of the two.
    """
    for operator, by_length in by_operator.items():
        for length, patterns in by_length.items():
            if operator == "exact":
                found = patterns.get(value)
                if found is not None:
                    candidates.update(_positions(found))
                continue
            if length > len(value):
                continue
            windows = 1 if operator != "contains" else len(value) - length + 1
            if len(patterns) < windows:
                for pattern, found in patterns.items():
                    if _holds(operator, value, pattern):
                        candidates.update(_positions(found))
                continue
            for part in _parts(value, operator, length):
                found = patterns.get(part)
                if found is not None:
                    candidates.update(_positions(found))
