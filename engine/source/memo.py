"""What was checked once and found clean, remembered by content hash.

Loading a project spent ~60% of its time in jsonschema: every facts schema audited against
JSON Schema 2020-12 and the supported subset, every policy document validated against
policy.schema.json, again at every reload, worker start and `kimari batch`, although the
texts rarely change. A check of the same input by the same checks gives the same answer,
so a clean answer is remembered under the SHA-256 of the canonical JSON of what was
checked, with the checker's identity (`checker()`: `CHECKS_VERSION` and the jsonschema
version; the schema it checked against) in the key. Only clean answers are kept: a
problem is found again, with its positions, every time.

The keys live in the process (`known`, `remember`); a store keeps them across processes
(engine/store/checks.py: the service's workers read them at start and add what they
learnt), so a restarted worker skips what any process of the store checked before; the
command line keeps them in a file of the user's cache (engine/cli/checks_cache.py), so
`kimari batch`, `validate` and `test` skip what an earlier command checked.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import threading
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

# Bump when a check changes what it accepts: every remembered answer is then forgotten.
CHECKS_VERSION = "kimari-checks-1"

# Not OPT_NON_STR_KEYS: {1: x} and {"1": x} would share a text (a non-string key makes the
# value keyless instead, so it is checked every time).
_ORDERED = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
_OPTIONS = orjson.OPT_SORT_KEYS | _ORDERED
# The key of a value JSON has no type for: a NUL no hand-written document holds by accident.
_TAG = "\x00kimari:"
_known: set[str] = set()
_fresh: list[str] = []  # learnt here and not yet taken by a store
_guard = threading.Lock()


def _tagged(value: Any) -> Any:
    """Values JSON has no type for keep their type in the text: a YAML date and the text
    '2024-01-01' are different inputs and must not share a key."""
    if isinstance(value, datetime | date | time | Decimal | str | int | float):
        return {_TAG + type(value).__name__: str(value)}
    raise TypeError(type(value).__name__)


def _finite(value: Any) -> bool:
    """No NaN or infinity inside (orjson writes both as null, the text of None)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(item) for item in value)
    return True


@functools.cache
def checker() -> str:
    """Who checks: kimari's checks and the jsonschema release (read once, on the first key)."""
    return f"{CHECKS_VERSION}/jsonschema-{installed_version('jsonschema')}"


def installed_version(package: str) -> str:
    """The installed release of `package`, from the name of its .dist-info folder beside it
    without importing it; importlib.metadata where the layout differs. Importing
    importlib.metadata (and email, which it reads) took ~15 ms of a `kimari batch` whose
    checks were all remembered."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.origin:
        found = list(Path(spec.origin).parent.parent.glob(f"{package}-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len(package) + 1 : -len(".dist-info")]
    from importlib.metadata import version

    return version(package)


def key(kind: str, value: Any, *, ordered: bool = False) -> str | None:
    """The key of checking `value` by the checks named `kind`; None if it has no canonical
    JSON (then it is simply checked every time). `ordered`: the order of an object's keys
    counts (two texts that differ only in it get two keys)."""
    try:
        text = orjson.dumps(value, default=_tagged, option=_ORDERED if ordered else _OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    if b"null" in text and not _finite(value):  # rare: walked only when a null was written
        return None
    digest = hashlib.sha256(f"{checker()}\0{kind}\0".encode())
    digest.update(text)
    return digest.hexdigest()


def known(found: str | None) -> bool:
    return found is not None and found in _known


def remember(found: str | None) -> None:
    if found is None or found in _known:
        return
    with _guard:
        _known.add(found)
        _fresh.append(found)


def absorb(keys: Iterable[str]) -> None:
    """Keys another process learnt (read from a store)."""
    with _guard:
        _known.update(keys)


def take_fresh() -> list[str]:
    """The keys learnt in this process since the last call, for a store to keep."""
    with _guard:
        taken = list(_fresh)
        _fresh.clear()
    return taken


def forget() -> None:
    """Forget everything (tests; a store that was reset)."""
    with _guard:
        _known.clear()
        _fresh.clear()
