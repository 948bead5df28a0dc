"""What a flow event costs: decided alone, and applied with the SQLite store.

    .venv/bin/python -m bench.flows [--n 2000] [--threads 4]

- decide: one `decide_move` (validate, derive, durable_rules, facts to record), no store;
- apply: `FlowEngine.apply` on a file store (one BEGIN IMMEDIATE transaction per move,
  synchronous=FULL: each move is on disk when apply returns), one thread;
- apply, N threads on N entities: the same, concurrently (decisions are serialised by
  the durable adapter's lock and commits by SQLite; the figure shows what remains);
- refused: an event refused and logged apart from the history (explanation included);
- role refused: an event from a role the transition does not name (no guard evaluated);
- consulting: order-hold-status's check, which decides order-holds first (two decisions).

Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from engine import load
from engine.core.jsonvalue import JST, format_datetime
from engine.flow.decide import advance, decide_move, initial_entity
from engine.flow.engine import FlowEngine
from engine.flow.model import flow_of
from engine.store.flows import FlowStore

ROOT = Path(__file__).resolve().parent.parent
ATTEMPT = {"type": "record_contact_attempt", "reached": False, "by": "佐藤"}
# EX-2: a claim needs the estimate made 対象外 with an eligible reason first (once: a
# cancelled claim's estimate stays 対象外, so the cycle claims it again)
EXCLUDE = {"type": "exclude", "exclusion_reason": "重複"}
CLAIM_CYCLE = [{"type": "claim"}, {"type": "cancel"}]
DEALER = {"id": "dealer-1", "roles": ["販売店"]}
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}
STAFF = {"id": "staff-1", "roles": ["担当者"]}
SYSTEM = {"id": "system", "roles": ["システム"]}
CHECK = {
    "type": "check",
    "facts": {
        "order": {
            "id": "O-1",
            "total": 5980,
            "sequence": 1,
            "customer": {"id": "C-10021", "name": "山田 太郎"},
            "payment": {"method": "credit_card"},
            "shipping": {"cod_available": True},
        }
    },
}


def times(n: int) -> list[str]:
    start = datetime(2024, 1, 1, tzinfo=JST)
    return [format_datetime(start + timedelta(seconds=i)) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="events per measurement")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    project = load(ROOT / "policies")
    claims = project.policy("claim-status")
    ats = times(args.n)

    initial = initial_entity(flow_of(claims))
    excluded = decide_move(claims, initial, EXCLUDE, actor=DEALER, at=ats[0])
    assert excluded.allowed, excluded.refusal
    entity = advance(initial, excluded)
    assert decide_move(claims, entity, CLAIM_CYCLE[0], actor=DEALER, at=ats[0]).allowed
    for _ in range(200):
        decide_move(claims, entity, CLAIM_CYCLE[0], actor=DEALER, at=ats[0])
    started = time.perf_counter()
    for i in range(args.n):
        decide_move(claims, entity, CLAIM_CYCLE[0], actor=DEALER, at=ats[i])
    per = (time.perf_counter() - started) / args.n
    print(f"decide a move (claim-status, no store)      {per * 1e6:8.1f} µs")

    with tempfile.TemporaryDirectory() as folder:
        store = FlowStore(Path(folder) / "bench.sqlite3")
        engine = FlowEngine(project, store)
        engine.apply("claim-status", "EST-1", EXCLUDE, actor=DEALER, at=ats[0])
        started = time.perf_counter()
        for i in range(args.n):
            engine.apply("claim-status", "EST-1", CLAIM_CYCLE[i % 2], actor=DEALER, at=ats[i])
        elapsed = time.perf_counter() - started
        moved = store.load("claim-status", "EST-1")
        assert moved is not None and moved.version == args.n + 1, "a claim cycle was refused"
        print(
            f"apply with the store (claim-status, 1 thread) {args.n / elapsed:8.0f} events/s "
            f"({elapsed / args.n * 1e3:.2f} ms each)"
        )
        # Every event of this policy derives the SGキャンセル window over all attempts, in
        # O(attempts²): fine for the handful a case has, not for hundreds.
        grown = min(args.n, 30)
        started = time.perf_counter()
        for i in range(grown):
            engine.apply("case-cancellation", "K-1", ATTEMPT, actor=STAFF, at=ats[i])
        elapsed = time.perf_counter() - started
        print(
            f"apply, growing facts (case-cancellation)     {grown / elapsed:8.0f} events/s "
            f"(the case ends with {grown} contact attempts)"
        )
        per_thread = args.n // args.threads

        def worker(k: int) -> None:
            for i in range(per_thread):
                engine.apply("claim-status", f"T-{k}", CLAIM_CYCLE[i % 2], actor=DEALER, at=ats[i])

        for k in range(args.threads):
            engine.apply("claim-status", f"T-{k}", EXCLUDE, actor=DEALER, at=ats[0])
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        for k in range(args.threads):
            moved = store.load("claim-status", f"T-{k}")
            assert moved is not None and moved.version == per_thread + 1, "a move was refused"
        print(
            f"apply, {args.threads} threads on {args.threads} entities        "
            f"{per_thread * args.threads / elapsed:8.0f} events/s"
        )
        started = time.perf_counter()
        for i in range(args.n):
            engine.apply("claim-status", "EST-1", {"type": "approve"}, actor=OPERATOR, at=ats[i])
        elapsed = time.perf_counter() - started
        print(f"refused and logged (with the explanation)    {args.n / elapsed:8.0f} events/s")
        started = time.perf_counter()
        for i in range(args.n):
            engine.apply("claim-status", "EST-1", {"type": "cancel"}, actor=OPERATOR, at=ats[i])
        elapsed = time.perf_counter() - started
        print(f"refused for the role, logged               {args.n / elapsed:8.0f} events/s")
        held = initial_entity(flow_of(project.policy("order-hold-status")))
        holds = project.policy("order-hold-status")
        order_holds = project.policy("order-holds")
        consulted = {"order-holds": (order_holds, project.data_for(order_holds))}
        data = project.data_for(holds)
        for _ in range(100):
            decide_move(holds, held, CHECK, actor=SYSTEM, at=ats[0], consulted=consulted, data=data)
        started = time.perf_counter()
        for i in range(args.n):
            decide_move(holds, held, CHECK, actor=SYSTEM, at=ats[i], consulted=consulted, data=data)
        per = (time.perf_counter() - started) / args.n
        print(f"decide a check consulting order-holds       {per * 1e6:8.1f} µs (no store)")
        store.close()


if __name__ == "__main__":
    main()
