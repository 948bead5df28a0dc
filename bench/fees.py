"""What one cancellation-fee decision costs in-process (RULES FE), on the durable backend.

    .venv/bin/python -m bench.fees [--n 20000]

Prints µs per decision for the seed's examples (all three sections at once, and each
alone). Not a test: timings never decide pass or fail.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from engine import decide, load

ROOT = Path(__file__).resolve().parent.parent
AT = "2024-06-01T10:00:00+09:00"
CASES: dict[str, dict[str, Any]] = {
    "tier": {
        "cancellation": {
            "reward": 150000,
            "stage": "initial_only",
            "contract_start": "2024-04-01",
            "cancelled_on": "2024-04-08",
        }
    },
    "credit": {
        "credit": {
            "previous_reward": 150000,
            "previous_fee": 50000,
            "fee_paid_on": "2023-09-01",
            "same_customer": True,
            "same_kind": True,
            "new_reward": 130000,
        }
    },
    "negative": {
        "uncollected": {
            "reward": 100000,
            "documents_guided_on": "2024-01-31",
            "booked_on": "2024-03-31",
            "assignee_share": 25,
            "manager_share": 40,
        }
    },
}
CASES["all three"] = {k: v for case in list(CASES.values()) for k, v in case.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="decisions per case")
    args = parser.parse_args()
    policy = load(ROOT / "policies").policy("cancellation-fees")
    for name, facts in CASES.items():
        for _ in range(200):  # warm up: register the ruleset, fill caches
            decide(policy, facts, at=AT)
        started = time.perf_counter()
        for _ in range(args.n):
            decide(policy, facts, at=AT)
        elapsed = time.perf_counter() - started
        print(f"cancellation-fees {name:10} {elapsed / args.n * 1e6:8.1f} µs per decision")


if __name__ == "__main__":
    main()
