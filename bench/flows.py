"""What a flow event costs: decided alone, and applied with the SQLite store.

    .venv/bin/python -m bench.flows [--n 2000] [--threads 4]

- decide: one `decide_move` (validate, derive, durable_rules, facts to record), no store;
- apply: `FlowEngine.apply` on a file store (one BEGIN IMMEDIATE transaction per move,
  synchronous=FULL: each move is on disk when apply returns), one thread;
- apply, N threads on N entities: the same, concurrently (decisions are serialised by
  the durable adapter's lock and commits by SQLite; the figure shows what remains);
- refused: an event refused and logged apart from the history (explanation included).

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
from engine.flow.decide import decide_move, initial_entity
from engine.flow.engine import FlowEngine
from engine.flow.model import flow_of
from engine.store.flows import FlowStore

ROOT = Path(__file__).resolve().parent.parent
ATTEMPT = {"type": "record_contact_attempt", "reached": False, "by": "佐藤"}
CLAIM_CYCLE = [{"type": "claim"}, {"type": "cancel"}]


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

    entity = initial_entity(flow_of(claims))
    for _ in range(200):
        decide_move(claims, entity, CLAIM_CYCLE[0], at=ats[0])
    started = time.perf_counter()
    for i in range(args.n):
        decide_move(claims, entity, CLAIM_CYCLE[0], at=ats[i])
    per = (time.perf_counter() - started) / args.n
    print(f"decide a move (claim-status, no store)      {per * 1e6:8.1f} µs")

    with tempfile.TemporaryDirectory() as folder:
        store = FlowStore(Path(folder) / "bench.sqlite3")
        engine = FlowEngine(project, store)
        started = time.perf_counter()
        for i in range(args.n):
            engine.apply("claim-status", "EST-1", CLAIM_CYCLE[i % 2], at=ats[i])
        elapsed = time.perf_counter() - started
        print(
            f"apply with the store (claim-status, 1 thread) {args.n / elapsed:8.0f} events/s "
            f"({elapsed / args.n * 1e3:.2f} ms each)"
        )
        # Every event of this policy derives the SGキャンセル window over all attempts, in
        # O(attempts²): fine for the handful a case has, not for hundreds.
        grown = min(args.n, 30)
        started = time.perf_counter()
        for i in range(grown):
            engine.apply("case-cancellation", "K-1", ATTEMPT, at=ats[i])
        elapsed = time.perf_counter() - started
        print(
            f"apply, growing facts (case-cancellation)     {grown / elapsed:8.0f} events/s "
            f"(the case ends with {grown} contact attempts)"
        )
        per_thread = args.n // args.threads

        def worker(k: int) -> None:
            for i in range(per_thread):
                engine.apply("claim-status", f"T-{k}", CLAIM_CYCLE[i % 2], at=ats[i])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.threads)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        print(
            f"apply, {args.threads} threads on {args.threads} entities        "
            f"{per_thread * args.threads / elapsed:8.0f} events/s"
        )
        started = time.perf_counter()
        for i in range(args.n):
            engine.apply("claim-status", "EST-1", {"type": "approve"}, at=ats[i])
        elapsed = time.perf_counter() - started
        print(f"refused and logged (with the explanation)    {args.n / elapsed:8.0f} events/s")
        store.close()


if __name__ == "__main__":
    main()
