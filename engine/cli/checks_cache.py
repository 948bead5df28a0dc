"""The command line's memory of clean checks (engine/source/memo.py), in the user's cache.

A `kimari` command is a new process: without a store to remember them (the service's
workers use engine/store/checks.py), it checked every schema and policy document with
jsonschema again, ~100 ms of the ~330 ms a one-line `kimari batch` took. The keys of
clean checks are kept in one file, read when a command starts and added to when it ends:

    $KIMARI_CACHE_DIR/checks.txt            (KIMARI_CACHE_DIR set and empty: no file)
    $XDG_CACHE_HOME/kimari/checks.txt       (or ~/.cache/kimari/checks.txt)

A key is the SHA-256 of the very text checked and of the checker's version, so a
policy that changed is checked again, and only a hand-written line could make a check be
skipped for a text it would refuse (the file is the user's own, as the policies are). A
cache that cannot be read or written costs the time it would have saved, never a
command: every error here is ignored.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

FILE_NAME = "checks.txt"
MAX_KEYS = 50_000  # ~3.3 MB; past it the oldest half is dropped
_KEY = re.compile(r"[0-9a-f]{64}")


def cache_file(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the keys are kept; None when the cache is turned off or has no home."""
    chosen = environ.get("KIMARI_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) / FILE_NAME if chosen else None
    base = environ.get("XDG_CACHE_HOME", "")
    try:
        root = Path(base) if Path(base).is_absolute() else Path.home() / ".cache"
    except (RuntimeError, KeyError):  # no home directory to speak of
        return None
    return root / "kimari" / FILE_NAME


def read_keys(path: Path) -> list[str]:
    """The well-formed keys of the file, oldest first (a torn or foreign line is skipped)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    return [line for line in text.split("\n") if _KEY.fullmatch(line)]


def add_keys(path: Path, keys: list[str], held: int) -> None:
    """Append `keys` (one write: appends of other commands do not tear it); rewrite the file
    with its newest half once it holds more than MAX_KEYS."""
    if not keys:
        return
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        if held + len(keys) <= MAX_KEYS:
            with path.open("a", encoding="ascii") as out:
                out.write("".join(key + "\n" for key in keys))
            return
        kept = (read_keys(path) + keys)[-(MAX_KEYS // 2) :]
        with tempfile.NamedTemporaryFile(
            "w", encoding="ascii", dir=path.parent, prefix=".checks-", delete=False
        ) as out:
            out.write("".join(key + "\n" for key in kept))
        Path(out.name).replace(path)


@contextlib.contextmanager
def remembered_checks() -> Iterator[None]:
    """Tell this process the keys earlier commands learnt; keep the ones it learns."""
    path = cache_file()
    if path is None:
        yield
        return
    from engine.source import memo

    known = read_keys(path)
    memo.absorb(known)
    try:
        yield
    finally:
        add_keys(path, memo.take_fresh(), len(known))
