"""A child process that applies flow events to a SQLite store, for the crash and
cross-process tests (tests/flow/test_crash.py, tests/flow/test_concurrency.py).

    python tests/flow/flow_child.py append DB ENTITY N    N contact attempts on one case
    python tests/flow/flow_child.py loop DB SEED          events on several entities, forever

`loop` prints "tx POLICY ENTITY VERSION" (flushed) inside each write transaction, after
the entity row and the history row are written and before COMMIT, and pauses there for a
moment: a parent that kills the process on reading that line kills it after both writes
of one move but before the end of the move - a store that committed either write on its
own would be caught torn.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.core.jsonvalue import JST, format_datetime  # noqa: E402
from engine.flow.engine import FlowEngine  # noqa: E402
from engine.flow.model import flow_of  # noqa: E402
from engine.project.project import load_project  # noqa: E402
from engine.store.flows import FlowStore  # noqa: E402
from engine.store.sqlite import SqliteBackend  # noqa: E402

PAUSE_IN_TRANSACTION = 0.05


def act(engine: FlowEngine, policy_id: str, entity: str, event: dict[str, Any], at: str) -> Any:
    """Apply an event as someone holding the role the flow names for it."""
    by = flow_of(engine.policy(policy_id)).events[event["type"]].by or ("anyone",)
    actor = {"id": f"child-{by[0]}", "roles": [by[0]]}
    return engine.apply(policy_id, entity, event, actor=actor, at=at)


CLAIM_EVENTS: dict[str, dict[str, Any]] = {
    # EX-2: an estimate is claimed only once made 対象外 with an eligible reason
    "exclude": {"type": "exclude", "exclusion_reason": "重複"},
    "claim": {"type": "claim", "detail": "詳細理由"},
    "cancel": {"type": "cancel"},
    "start_review": {"type": "start_review"},
    "reject": {"type": "reject", "reason": "重複なし"},
}
CASE_EVENTS: list[dict[str, Any]] = [
    {"type": "record_contact_attempt", "reached": False, "by": "佐藤"},
    {"type": "record_mail", "sender": "佐藤", "answered": False},
    {"type": "update_case", "assignee": "佐藤", "manager": "鈴木"},
    {"type": "set_forever_waiting"},  # always refused: abolished
]


class _PausingConnection:
    """Delegates to a sqlite3 connection; announces and pauses after the history write."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        cursor = self._conn.execute(sql, params)
        if sql.startswith("INSERT INTO flow_history"):
            print(f"tx {params[0]} {params[1]} {params[2]}", flush=True)
            time.sleep(PAUSE_IN_TRANSACTION)
        return cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class PausingBackend(SqliteBackend):
    def connection(self) -> Any:
        return _PausingConnection(super().connection())


def append(db: str, entity: str, count: int) -> None:
    store = FlowStore(db)
    engine = FlowEngine(load_project(ROOT / "policies"), store)
    event = {"type": "record_contact_attempt", "reached": False}
    for i in range(count):
        at = format_datetime(datetime(2024, 1, 1, tzinfo=JST) + timedelta(minutes=i))
        assert act(engine, "case-cancellation", entity, event, at=at).allowed
    store.close()
    print("done", flush=True)


def loop(db: str, seed: int) -> None:
    rng = random.Random(seed)
    store = FlowStore(PausingBackend(db))
    engine = FlowEngine(load_project(ROOT / "policies"), store)
    claims = flow_of(engine.policy("claim-status"))
    clock = datetime(2024, 1, 1, tzinfo=JST) + timedelta(days=seed)
    print("ready", flush=True)
    while True:
        clock += timedelta(minutes=1)
        at = format_datetime(clock)
        if rng.random() < 0.5:
            entity = f"C-{rng.randrange(3)}"
            state = engine.entity("claim-status", entity)["state"]["id"]
            allowed = [e for e in claims.allowed_events(state) if e in CLAIM_EVENTS]
            name = rng.choice(allowed if allowed and rng.random() < 0.8 else list(CLAIM_EVENTS))
            act(engine, "claim-status", entity, CLAIM_EVENTS[name], at=at)
        else:
            entity = f"K-{rng.randrange(3)}"
            act(engine, "case-cancellation", entity, rng.choice(CASE_EVENTS), at=at)


def main() -> None:
    mode, db = sys.argv[1], sys.argv[2]
    if mode == "append":
        append(db, sys.argv[3], int(sys.argv[4]))
    elif mode == "loop":
        loop(db, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
