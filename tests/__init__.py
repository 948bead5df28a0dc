"""kimari's test suite: folders mirror the packages of engine/ (see docs/architecture.md)."""

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

# what a worker answers to STATS, at its smallest (engine/service/worker.py Worker.stats)
WORKER_STATS: dict[str, Any] = {
    "slot": 0,
    "pid": 4242,
    "policies": {},
    "batch_buckets": [1],
    "batch_counts": [0, 0],
    "rows": 0,
    "commit_failures": 0,
    "commits_inline": 0,
    "commit_cpu_s": 0.0,
}


def blacklisted_order(order_id: str) -> dict[str, Any]:
    """An order of the blacklisted customer C-10021, as order-hold-status's `check` event
    carries it (the first case of policies/order-hold-status.tests.yaml): order-holds,
    consulted, holds it."""
    return {
        "id": order_id,
        "total": 5980,
        "sequence": 1,
        "planned_ship_date": "2024-10-03",
        "customer": {"id": "C-10021", "name": "山田 太郎"},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
