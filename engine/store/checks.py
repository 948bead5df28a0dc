"""The store's memory of clean checks (engine/source/memo.py), shared by its processes.

    checked(key)   one row per content key of a schema audit or document validation
                   that found nothing wrong

A worker reads every key before it compiles what it serves, and writes the keys it learnt
after each compile: a restarted worker, another worker of the same store or a replica
then skips the jsonschema checks of texts any of them checked before (~60% of loading
the shipped policies). A key names its checker (memo.checker()): after an upgrade the old
keys are simply never asked for again. A key is the hash of the very text checked, so
only a hand-written row could make a check be skipped for a text it would refuse: the
table is trusted as the published policies in the same store are.
"""

from __future__ import annotations

from engine.source import memo
from engine.store.backend import Component, both

COMPONENT = "checks"
MIGRATIONS = [both("CREATE TABLE checked (key TEXT PRIMARY KEY)")]
MAX_KEYS = 100_000  # read at start: a bound on what a worker loads


class Checks(Component):
    name = COMPONENT
    steps = MIGRATIONS

    def load(self) -> int:
        """Tell this process every key the store holds; how many."""
        with self.backend.read() as session:
            rows = session.execute("SELECT key FROM checked LIMIT ?", (MAX_KEYS,)).fetchall()
        memo.absorb(row[0] for row in rows)
        return len(rows)

    def save(self) -> int:
        """Store the keys this process learnt since the last save; how many."""
        fresh = memo.take_fresh()
        if not fresh:
            return 0
        with self.backend.write() as session:
            session.executemany(
                "INSERT INTO checked (key) VALUES (?) ON CONFLICT (key) DO NOTHING",
                [(key,) for key in fresh],
            )
        return len(fresh)
