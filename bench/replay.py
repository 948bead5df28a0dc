"""The replay benchmark: `kimari impact` over a large decision log of order-holds.

    .venv/bin/python bench/run.py --only replay            # 1,000,000 logged decisions
    .venv/bin/python bench/run.py --only replay --quick    # 20,000

A store is bootstrapped from a copy of the shipped policies; 2,000 distinct order-holds
requests (customers blacklisted, similar, matching a blacklist condition or not; NP credit
results; remote islands; subscriptions) are decided for real, and their log rows are
bulk-written again and again with new decision ids until the log holds the count. Then
`kimari impact order-holds` replays every row against a draft (the NP-NG setting's
default moved from 1 to 3) and against the published revision, each row with its own data
versions, in a child process whose peak RSS is read from the kernel.

Memory must stay flat: the peak RSS of the whole run (parent and its replay processes)
is reported beside the log's size.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
DISTINCT = 2_000
BATCH = 20_000
DRAFT_FROM = "    default: 1\n    refs: [HO-4]"
DRAFT_TO = "    default: 3\n    refs: [HO-4]"

PEOPLE = [
    ("C-10021", "山田 太郎", "160-0022", "03-3350-1234"),  # blacklisted (BL-001)
    ("C-90001", "佐藤 花子", "530-0001", "06-6345-6789"),  # similar to BL-002
    ("C-90002", "青木 誠", "150-0002", "03-1111-2222"),
    ("C-90003", "森 花子", "150-0003", "03-1111-3333"),
    ("C-90004", "伊藤 三郎", "980-0811", "022-111-2222"),  # a blacklist condition
    ("C-90005", "小林 健", "060-0005", "011-222-3333"),
]


def order_request(rng: random.Random, index: int) -> dict[str, Any]:
    person = rng.choice(PEOPLE)
    method = rng.choice(["credit_card", "credit_card", "np_deferred", "cod", "bank_transfer"])
    total = rng.choice([1980, 5980, 12800, 32000])
    order: dict[str, Any] = {
        "id": f"O-{index}",
        "total": total,
        "sequence": rng.choice([1, 1, 2, 5]),
        "customer": {
            "id": person[0],
            "name": person[1],
            "postal_code": person[2],
            "phone": person[3],
            "email": f"{person[0].lower()}@example.jp",
            "address": "東京都渋谷区渋谷2-1-1",
        },
        "payment": {"method": method},
        "shipping": {
            "cod_available": rng.random() < 0.9,
            "postal_code": rng.choice(["1500002", "1500002", "1000101"]),
        },
    }
    if method == "np_deferred":
        order["np"] = {
            "result": rng.choice(["ok", "ok", "ng", "pending"]),
            "registered_amount": total if rng.random() < 0.9 else total - 100,
        }
    if rng.random() < 0.2:
        order["subscription"] = {"id": f"S-{index}", "held": rng.random() < 0.1}
        order["generated_from_subscription"] = True
        order["payment"]["card_charge_failed"] = method == "credit_card" and rng.random() < 0.2
    if rng.random() < 0.05:
        order["cart"] = {"quantity_limit_exceeded": True}
    return {"facts": {"order": order}, "at": "2024-10-01T10:00:00+09:00"}


def build_log(folder: Path, store: Path, count: int) -> tuple[float, int]:
    """Bootstrap the store and write `count` logged decisions; (seconds, bytes)."""
    from engine.core.jsonvalue import dumps, format_datetime
    from engine.lifecycle.workflow import Lifecycle
    from engine.project.project import load_project
    from engine.runtime.decision import new_decision_id
    from engine.runtime.evaluate import decide
    from engine.store.decisions import DecisionLog, Entry

    started = time.perf_counter()
    with Lifecycle(store) as lifecycle:
        lifecycle.bootstrap(folder)
    project = load_project(folder)
    policy = project.policy("order-holds")
    rng = random.Random(12)
    templates = []
    for index in range(DISTINCT):
        request = order_request(rng, index)
        decision = decide(policy, request["facts"], at=request["at"], data=project.data_for(policy))
        templates.append((request, decision))
    log = DecisionLog(store)
    try:
        written = 0
        now = int(time.time() * 1000)
        while written < count:
            entries = []
            for _ in range(min(BATCH, count - written)):
                request, decision = templates[written % DISTINCT]
                decision.decision_id = new_decision_id()
                entries.append(
                    Entry(
                        decision.decision_id,
                        policy.id,
                        policy.revision,
                        format_datetime(decision.at),
                        now,
                        1,
                        None,
                        orjson.dumps(request).decode(),
                        dumps(decision.outcome).decode(),
                        orjson.dumps(decision.fired).decode(),
                        decision.to_json(),
                    )
                )
                written += 1
            log.commit(entries)
    finally:
        log.close()
    return time.perf_counter() - started, store.stat().st_size


def run_impact(folder: Path, store: Path, draft: Path) -> tuple[float, dict[str, Any], int]:
    """`kimari impact` in a child process: (seconds, report, peak RSS in bytes of the
    child and its replay processes, the largest of them)."""
    command = [
        sys.executable,
        "-m",
        "engine.cli",
        "impact",
        "order-holds",
        "--draft",
        str(draft),
        "--store",
        str(store),
        "--format",
        "json",
        "--no-progress",
        "--list",
        "5",
    ]
    # A small wrapper starts the command and reports its process tree's peak: a child of
    # this process keeps, in its high-water RSS, the copy of this (large) process it was
    # before its exec, and this process's RUSAGE_CHILDREN holds earlier sections' too.
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:]).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *command],
        cwd=folder.parent,
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr.decode())
    peak = int(done.stderr.decode().strip().splitlines()[-1]) * 1024
    return seconds, orjson.loads(done.stdout), peak


FULL = os.environ.get("KIMARI_BENCH_REPLAY_FULL") == "1"


def section_replay(report: Any, quick: bool) -> None:
    """100,000 rows in `make bench` (~30 s); the 1,000,000-row run of the issue's target
    (~4 min with writing its log) with KIMARI_BENCH_REPLAY_FULL=1."""
    counts = [20_000] if quick else [100_000, 1_000_000] if FULL else [100_000]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kimari-replay-") as tmp:
        base = Path(tmp)
        shutil.copytree(ROOT / "policies", base / "policies")
        shutil.copytree(ROOT / "schemas", base / "schemas")
        folder = base / "policies"
        draft = folder / "order-holds.yaml"
        published = draft.read_text(encoding="utf-8")
        assert DRAFT_FROM in published
        for count in counts:
            store = base / f"log-{count}.sqlite3"
            draft.write_text(published, encoding="utf-8")
            written, size = build_log(folder, store, count)
            draft.write_text(published.replace(DRAFT_FROM, DRAFT_TO), encoding="utf-8")
            seconds, result, peak = run_impact(folder, store, draft)
            rows.append(
                [
                    f"{count:,}",
                    f"{size / 1e9:.2f} GB",
                    round(written, 1),
                    round(seconds, 1),
                    f"{result['replayed'] / seconds:,.0f}",
                    f"{result['changed']:,}",
                    f"{result['not_reproduced']:,}",
                    f"{peak / 1e6:,.0f} MB",
                ]
            )
            store.unlink()
    report.table(
        "replay: kimari impact order-holds against a draft (NP-NG setting 1 -> 3), every core",
        [
            "logged decisions",
            "log size",
            "writing the log s",
            "impact s",
            "replayed/s",
            "changed",
            "not reproduced",
            "peak RSS (largest process)",
        ],
        rows,
    )


def section_publication(report: Any, quick: bool) -> None:
    """How long two workers may disagree after a publication: 2 workers, 4 client threads
    deciding without pause, a publication (a rollback, alternately to each of two
    revisions) every 2 s through the store, as `kimari rollback` does."""
    import socket
    import threading

    import httpx

    from engine.lifecycle.candidates import from_path
    from engine.lifecycle.workflow import Lifecycle

    rounds = 4 if quick else 12
    with tempfile.TemporaryDirectory(prefix="kimari-publication-") as tmp:
        base = Path(tmp)
        shutil.copytree(ROOT / "policies", base / "policies")
        shutil.copytree(ROOT / "schemas", base / "schemas")
        store = base / "var" / "kimari.sqlite3"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
                "--store",
                str(store),
                "--policies",
                str(base / "policies"),
            ],
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _ready(url)
            path = base / "policies" / "cancellation-fees.yaml"
            path.write_text(
                path.read_text(encoding="utf-8").replace("半額です", "報酬の半額です"),
                encoding="utf-8",
            )
            with Lifecycle(store) as lifecycle:
                lifecycle.submit(from_path(path), "bench", "second revision")
            seen: list[tuple[float, int]] = []
            stop = threading.Event()
            body = {
                "facts": {
                    "cancellation": {
                        "reward": 1000,
                        "stage": "documents_filed",
                        "contract_start": "2024-04-01",
                    }
                }
            }

            def decide() -> None:
                with httpx.Client(base_url=url, timeout=10) as client:
                    while not stop.is_set():
                        answer = client.post("/v1/decisions/cancellation-fees", json=body)
                        seen.append((time.monotonic(), answer.json()["policy"]["publication"]))

            threads = [threading.Thread(target=decide) for _ in range(4)]
            for thread in threads:
                thread.start()
            published: list[tuple[float, int]] = []
            time.sleep(2)
            with Lifecycle(store) as lifecycle:
                for index in range(rounds):
                    target = "1" if index % 2 == 0 else "2"
                    publication = lifecycle.rollback("cancellation-fees", target, "bench", "")
                    published.append((time.monotonic(), publication.id))
                    time.sleep(2)
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            server.terminate()
            server.wait(30)
    windows, settled = [], []
    for (at, new), following in zip(published, [*published[1:], (float("inf"), -1)], strict=True):
        answers = [(t, p) for t, p in seen if at <= t < following[0]]
        first_new = min((t for t, p in answers if p == new), default=None)
        last_old = max((t for t, p in answers if p != new), default=at)
        if first_new is not None:
            windows.append(max(0.0, last_old - first_new))
            settled.append(last_old - at)
    rows = [
        [
            len(windows),
            f"{statistics.median(windows) * 1000:,.0f}",
            f"{max(windows) * 1000:,.0f}",
            f"{statistics.median(settled) * 1000:,.0f}",
            f"{max(settled) * 1000:,.0f}",
            f"{len(seen):,}",
        ]
    ]
    report.table(
        "publication: 2 workers, reload_interval 0.5 s, a publication every 2 s under load",
        [
            "publications",
            "workers disagree, median ms",
            "max ms",
            "publication -> every answer new, median ms",
            "max ms",
            "decisions during the run",
        ],
        rows,
    )


def _ready(url: str) -> None:
    import httpx

    for _ in range(240):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).json().get("workers", 0) >= 2:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError("the service did not become ready")
