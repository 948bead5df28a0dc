"""A process killed (SIGKILL) in the middle of an event leaves every entity before or after
the event, never between.

A child (tests/flow/flow_child.py loop) applies claim-status (EX-6) and case-cancellation
(CX-2 facts, CX-1 refusals) events in a loop to one SQLite file. It announces each write
transaction once the entity row and the history row are written, before COMMIT, and
pauses there; the parent kills it on such an announcement in some rounds (a store that
committed the entity and the history separately would be caught torn) and at an
arbitrary moment in others. After all rounds, for every entity: its versions are 1..n without a
gap, the entity row equals the last history row, and re-deciding its whole history from
the initial state with the policy reaches exactly the stored state and facts. Nothing
here depends on timing: where the kill lands only changes which moves exist.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.flow.engine import replay
from engine.store.flows import FlowStore
from tests import ROOT
from tests.strategies import shipped_project

CHILD = ROOT / "tests" / "flow" / "flow_child.py"
ROUNDS = 6
GUARD_S = 120  # a hang guard only: a healthy child prints within a second


def lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    for line in process.stdout:
        yield line.strip()


def kill_round(db: Path, seed: int, on_transaction: int | None) -> list[str]:
    """Run the child and SIGKILL it: on its `on_transaction`-th announced transaction, or
    (None) right after it printed some random number of lines."""
    process = subprocess.Popen(
        [sys.executable, str(CHILD), "loop", str(db), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    seen: list[str] = []
    target = on_transaction or random.Random(seed).randrange(3, 30)
    try:
        for line in lines(process):
            seen.append(line)
            counted = sum(s.startswith("tx ") for s in seen) if on_transaction else len(seen)
            if counted >= target:
                break
        else:
            raise AssertionError(f"child ended early: {process.stderr.read()}")  # type: ignore[union-attr]
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=GUARD_S)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    return seen


@pytest.mark.slow
def test_a_kill_in_the_middle_of_an_event_leaves_each_entity_before_or_after_it(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crash.sqlite3"
    killed_in_transaction = 0
    for round_ in range(ROUNDS):
        on_transaction = 1 + round_ if round_ % 2 == 0 else None
        seen = kill_round(db, seed=round_, on_transaction=on_transaction)
        if on_transaction:
            # The move announced when the kill came is either not stored or stored whole.
            _, policy_id, entity_id, version = seen[-1].split()
            store = FlowStore(db)
            try:
                entity = store.load(policy_id, entity_id)
                rows = store.history(policy_id, entity_id)
            finally:
                store.close()
            stored = entity.version if entity else 0
            assert stored in (int(version) - 1, int(version))
            assert len(rows) == stored
            killed_in_transaction += 1

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = conn.execute(
            "SELECT COUNT(*) FROM flow_history h LEFT JOIN flow_entities e "
            "ON e.policy_id = h.policy_id AND e.entity_id = h.entity_id WHERE e.entity_id IS NULL"
        ).fetchone()
    assert orphans == (0,), "a history row without its entity"

    store = FlowStore(db)
    project = shipped_project()
    checked = 0
    try:
        for policy_id in ("claim-status", "case-cancellation"):
            policy = project.policy(policy_id)
            for entity_id in store.entity_ids(policy_id):
                entity = store.load(policy_id, entity_id)
                rows = store.history(policy_id, entity_id)
                assert entity is not None
                assert [r.version for r in rows] == list(range(1, entity.version + 1))
                assert (entity.state, dict(entity.facts)) == (rows[-1].to_state, rows[-1].facts)
                snapshot, differences = replay(policy, rows)
                assert differences == [], (policy_id, entity_id, differences)
                assert snapshot == entity
                checked += 1
    finally:
        store.close()
    assert checked >= 2
    assert killed_in_transaction == ROUNDS // 2
