"""Nearest-name suggestions for every 'unknown name' diagnostic."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from engine.core.i18n import Msg


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
    return Msg("did you mean '{name}'?", name=match) if match else None
