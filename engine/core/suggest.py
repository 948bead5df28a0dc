"""Nearest-name suggestions for every 'unknown name' diagnostic."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like `name`, if one is close enough to be a likely typo."""
    pool = sorted(set(candidates))
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A hint such as "did you mean 'payment'?", or None."""
    match = closest(name, candidates)
    return f"did you mean '{match}'?" if match else None
