"""kimari benchmarks: what a decision costs, how it scales, how close it is to the floors.

    .venv/bin/python bench/run.py                 # every section, prints tables
    .venv/bin/python bench/run.py --quick         # small counts (smoke test)
    .venv/bin/python bench/run.py --only shapes,matching
    .venv/bin/python bench/run.py --write         # also rewrite the figures in docs/benchmarks.md
    KIMARI_BENCH_REPLAY_FULL=1 make bench         # the replay of 1,000,000 rows too (~4 min)

`make bench` takes ~7 minutes on 2 cores (the 1,000,000-entry matching and memory runs,
HTTP at 1 and 2 workers, PostgreSQL and replicas are most of it).

Timings are wall-clock medians and 99th percentiles of single calls
(perf_counter_ns around each call) after a warm-up. This machine is shared
and noisy: compare the ratios measured in one run, not absolute figures
across runs. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import floors, replay, replicas  # noqa: E402
from bench.report import Report  # noqa: E402
from engine.project.project import Project, load_project  # noqa: E402
from engine.runtime.evaluate import decide  # noqa: E402

SHAPES = ROOT / "bench" / "shapes"
AT = "2024-09-21T12:00:00+09:00"


def timed(
    call: Callable[[Any], Any], inputs: Sequence[Any], count: int, warmup: int = 1000
) -> dict[str, float]:
    """Median and p99 in µs of `call(input)` over `count` calls cycling through inputs."""
    for i in range(min(warmup, count)):
        call(inputs[i % len(inputs)])
    samples = []
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(count):
        item = inputs[i % len(inputs)]
        start = clock()
        call(item)
        samples.append(clock() - start)
    return _spread(samples)


Timed = tuple[Callable[[Any], Any], Sequence[Any], int]
"""A call, the inputs it cycles through, how many calls to time."""


def timed_in_turns(
    calls: dict[str, Timed],
    rounds: int = 5,
    warmup: int = 1000,
    before: Callable[[], Any] | None = None,
) -> dict[str, dict[str, float]]:
    """Median and p99 in µs of each call, the calls taking turns over `rounds` rounds.

    Timed one after the other, a neighbour's burst on this shared machine fell on whichever
    call was being timed then, and moved the ratio of two calls by 10-15% from one run to
    the next (docs/benchmarks.md). In turns, it falls on all of them alike. `before` runs
    after the warm-up, before the first timed call (a peer that keeps its own figures)."""
    for call, inputs, count in calls.values():
        for i in range(min(warmup, count)):
            call(inputs[i % len(inputs)])
    if before is not None:
        before()
    samples: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for turn in range(rounds):
        for name, (call, inputs, count) in calls.items():
            gc.collect()
            kept = samples[name]
            for i in range(turn * count // rounds, (turn + 1) * count // rounds):
                item = inputs[i % len(inputs)]
                start = clock()
                call(item)
                kept.append(clock() - start)
    return {name: _spread(kept) for name, kept in samples.items()}


def _spread(samples: list[Any], unit: float = 1000) -> dict[str, float]:
    """Median and p99 of the samples (sorted in place), in µs: ns by default."""
    samples.sort()
    return {
        "median": samples[len(samples) // 2] / unit,
        "p99": samples[int(len(samples) * 0.99)] / unit,
    }


def breakdown(
    policy: Any, facts: Sequence[Any], backend: str, count: int, **kwargs: Any
) -> dict[str, float]:
    """Mean µs per stage of decide() (validate, derive, match, assemble)."""
    timings: dict[str, float] = {}
    for i in range(count):
        decide(policy, facts[i % len(facts)], at=AT, backend=backend, timings=timings, **kwargs)
    return {k: v / count * 1e6 for k, v in timings.items()}


# -- the order-hold and fee-table shapes -------------------------------------------------


def order_facts(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        total = rng.choice([1200, 5000, 9800, 15000, 120000])
        out.append(
            {
                "order": {
                    "order_id": f"T{i:06d}",
                    "total": total,
                    "payment_method": rng.choice(["np", "np", "card", "cod"]),
                    "np_result": rng.choice(["ok", "ok", "ok", "ng", "unknown"]),
                    "sequence": rng.choice([1, 1, 2, 5]),
                    "shipping_method": rng.choice(["yamato", "sagawa", "post"]),
                    "paid_amount": total if rng.random() < 0.9 else total - 100,
                    "island": rng.random() < 0.05,
                    "customer_blacklisted": rng.random() < 0.05,
                    "quantity": rng.choice([1, 2, 3, 12]),
                }
            }
        )
    return out


def fee_facts(count: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    stages = ["documents_filed", "in_progress", "initial_only", "started"]
    return [
        {
            "case": {
                "stage": rng.choice(stages),
                "days_since_start": rng.randint(0, 20),
                "fee": rng.choice([50000, 100000]),
            }
        }
        for _ in range(count)
    ]


def section_shapes(report: Report, quick: bool) -> None:
    count = 5_000 if quick else 50_000
    project = load_project(SHAPES)
    for policy_id, facts, rules, python_floor, first in (
        ("order-shape", order_facts(500), floors.ORDER_RULES, floors.python_order_holds, False),
        ("fee-shape", fee_facts(500), floors.FEE_RULES, floors.python_fee_percent, True),
    ):
        policy = project.policy(policy_id)
        key = next(iter(facts[0]))
        bodies = [f[key] for f in facts]
        host = floors.DurableHostFloor(rules, first=first)
        raw = floors.DurableRawFloor(rules, first=first)
        _check_floors(policy, facts, host, raw, python_floor, key)
        peers = zen_rows(facts, count) if policy_id == "order-shape" else {}
        rows = {
            "plain Python function (floor)": timed(python_floor, bodies, count),
            "durable_rules by hand, public API (floor)": timed(host.decide, bodies, count),
            "durable_rules C extension by hand (raw floor)": timed(raw.decide, bodies, count),
            "kimari, python backend, end to end": timed(
                lambda f, p=policy: decide(p, f, at=AT, backend="python"), facts, count
            ),
            "kimari, durable backend, end to end": timed(
                lambda f, p=policy: decide(p, f, at=AT, backend="durable"), facts, count
            ),
            **peers,
        }
        report.table(
            f"shape: {policy_id}",
            ["implementation", "median µs", "p99 µs"],
            [[name, r["median"], r["p99"]] for name, r in rows.items()],
        )
        floor_host = rows["durable_rules by hand, public API (floor)"]["median"]
        floor_raw = rows["durable_rules C extension by hand (raw floor)"]["median"]
        kimari_durable = rows["kimari, durable backend, end to end"]["median"]
        kimari_python = rows["kimari, python backend, end to end"]["median"]
        ratios = {
            "durable e2e / durable_rules public-API floor": kimari_durable / floor_host,
            "durable e2e / C-extension floor": kimari_durable / floor_raw,
            "python e2e / plain Python floor": kimari_python
            / rows["plain Python function (floor)"]["median"],
        }
        if peers:
            ratios["python e2e / zen-engine, its own evaluation time"] = (
                kimari_python / rows[ZEN_ENGINE]["median"]
            )
            ratios["python e2e / zen-engine, Python call"] = (
                kimari_python / rows[ZEN_CALL]["median"]
            )
        report.ratios(f"shape: {policy_id}", ratios)
        for backend in ("python", "durable"):
            stages = breakdown(policy, facts, backend, count // 5)
            report.table(
                f"shape: {policy_id}, {backend} backend, mean µs per stage",
                ["validate", "derive", "match", "assemble"],
                [[stages.get(k, 0.0) for k in ("validate", "derive", "match", "assemble")]],
            )


ZEN_CALL = "zen-engine (Rust, JDM decision table), Python call"
ZEN_ENGINE = "zen-engine, its own evaluation time (`performance`)"


def checked_zen(facts: Sequence[Any]) -> floors.ZenFloor:
    """zen-engine on the order shape (bench/shapes/order-shape.jdm.json), checked to decide
    like the plain Python floor, or the comparison means nothing."""
    zen = floors.ZenFloor(SHAPES / "order-shape.jdm.json")
    for item in facts[:200]:
        assert zen.decide(item) == floors.python_order_holds(item["order"])
    return zen


def zen_figures(
    zen: floors.ZenFloor, call: dict[str, float], count: int
) -> dict[str, dict[str, float]]:
    """The call's median and p99, and the same of the evaluation time zen-engine reported
    for itself over the `count` timed calls (the last it made)."""
    return {ZEN_CALL: call, ZEN_ENGINE: _spread(zen.engine_us[-count:], unit=1)}


def zen_rows(facts: Sequence[Any], count: int) -> dict[str, dict[str, float]]:
    zen = checked_zen(facts)
    return zen_figures(zen, timed(zen.decide, facts, count), count)


def _check_floors(
    policy: Any, facts: list[Any], host: Any, raw: Any, python_floor: Callable[[Any], Any], key: str
) -> None:
    """The floors must decide like kimari, or the comparison means nothing."""
    for item in facts[:200]:
        fired = decide(policy, item, at=AT).fired
        body = item[key]
        if policy.hit_policy == "collect":
            assert sorted(host.decide(body)) == sorted(fired), (host.decide(body), fired)
            assert sorted(raw.decide(body)) == sorted(fired)
            assert python_floor(body) == fired
        else:
            assert host.decide(body) == fired and raw.decide(body) == fired
            assert python_floor(body) == decide(policy, item, at=AT).outcome["percent"]


# -- shipped policies -------------------------------------------------------------------------


def shipped_inputs(project: Project, policy_id: str) -> list[dict[str, Any]]:
    """Each decidable test case of the policy, as (facts, at, settings, data) inputs."""
    from engine.core.errors import KimariError
    from engine.project.project import case_files
    from engine.testing.cases import case_data, load_cases

    inputs = []
    for path in case_files(project.folder):
        for case in load_cases(path, project):
            if case.policy.id != policy_id or case.policy.kind != "decision":
                continue
            item = {
                "facts": case.spec.get("facts") or {},
                "at": case.spec.get("at") or AT,
                "settings": case.spec.get("settings"),
                "data": case_data(case, project),
            }
            try:
                decide(case.policy, **item)
            except KimariError:
                continue
            inputs.append(item)
    return inputs


def section_policies(report: Report, quick: bool) -> None:
    """The shipped decision policies on their YAML test cases, per backend, with explain:
    a policy's four calls timed in turns, and zen-engine on the order shape in turns with
    order-holds, whose ratio to it is a target (timed_in_turns)."""
    count = 2_000 if quick else 20_000
    project = load_project(ROOT / "policies")
    shape = order_facts(500)
    zen = checked_zen(shape)
    rows, medians = [], {}
    peer: dict[str, dict[str, float]] = {}
    for policy_id, policy in sorted(project.policies.items()):
        if policy.kind != "decision":
            continue
        inputs = shipped_inputs(project, policy_id)
        if not inputs:
            continue
        calls: dict[str, Timed] = {}
        for backend in ("python", "durable"):
            calls[backend] = (
                lambda item, b=backend, p=policy: decide(p, backend=b, **item),
                inputs,
                count,
            )
            calls[f"{backend} explain"] = (
                lambda item, b=backend, p=policy: decide(p, backend=b, explain=True, **item),
                inputs,
                count // 4,
            )
        if policy_id == "order-holds":
            calls["zen"] = (zen.decide, shape, count)
        results = timed_in_turns(calls, before=zen.engine_us.clear)
        if "zen" in results:
            peer = zen_figures(zen, results["zen"], count)
        for backend in ("python", "durable"):
            result, explained = results[backend], results[f"{backend} explain"]
            medians[policy_id, backend] = result["median"]
            medians[policy_id, backend, "explain"] = explained["median"]
            stages = breakdown_items(policy, inputs, backend, count // 4)
            rows.append(
                [
                    policy_id,
                    backend,
                    len(inputs),
                    result["median"],
                    result["p99"],
                    explained["median"],
                    *(stages.get(k, 0.0) for k in ("validate", "derive", "match", "assemble")),
                ]
            )
    report.table(
        "shipped policies (inputs: their YAML test cases; explain = the same decision with "
        "its explanation)",
        [
            "policy",
            "backend",
            "cases",
            "median µs",
            "p99 µs",
            "explain median µs",
            "validate",
            "derive",
            "match",
            "assemble",
        ],
        rows,
    )
    report.table(
        "zen-engine on the order shape, timed in turns with order-holds",
        ["peer", "median µs", "p99 µs"],
        [[k, v["median"], v["p99"]] for k, v in peer.items()],
    )
    ratios = {}
    for (policy_id, backend, *explain), median in medians.items():
        if explain:
            ratios[f"{policy_id}, {backend}: explain / decision"] = (
                median / medians[policy_id, backend]
            )
        elif backend == "durable":
            ratios[f"{policy_id}: durable / python"] = median / medians[policy_id, "python"]
    if peer:
        holds = medians["order-holds", "python"]
        ratios["order-holds, python / zen-engine's own evaluation of the order shape"] = (
            holds / peer[ZEN_ENGINE]["median"]
        )
        ratios["order-holds, python / zen-engine's Python call on the order shape"] = (
            holds / peer[ZEN_CALL]["median"]
        )
    report.ratios("shipped policies (same run)", ratios)


def breakdown_items(
    policy: Any, inputs: list[dict[str, Any]], backend: str, count: int
) -> dict[str, float]:
    timings: dict[str, float] = {}
    for i in range(count):
        decide(policy, backend=backend, timings=timings, **inputs[i % len(inputs)])
    return {k: v / count * 1e6 for k, v in timings.items()}


# -- reference-data matching -------------------------------------------------------------


def people(count: int, seed: int = 3) -> list[dict[str, str]]:
    """Realistic Japanese names, postal codes and phones (Faker ja_JP pools, combined fast)."""
    from faker import Faker

    faker = Faker("ja_JP")
    Faker.seed(seed)
    rng = random.Random(seed)
    last = sorted({faker.last_name() for _ in range(3000)})
    first = sorted({faker.first_name() for _ in range(3000)})
    out = []
    for i in range(count):
        space = rng.choice(["", " ", "　"])
        out.append(
            {
                "id": f"BL{i:07d}",
                "name": f"{rng.choice(last)}{space}{rng.choice(first)}",
                "postal_code": f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}",
                "phone": f"0{rng.randint(10, 99)}-{rng.randint(1000, 9999)}-"
                f"{rng.randint(0, 9999):04d}",
            }
        )
    return out


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def section_matching(report: Report, quick: bool) -> None:
    from engine.source.data import Dataset

    sizes = [100, 10_000, 100_000] if quick else [100, 10_000, 100_000, 1_000_000]
    match = {
        "name": "normalize_name",
        "postal_code": "normalize_postal",
        "phone": "normalize_phone",
    }
    rows = []
    base_cost = None
    for size in sizes:
        gc.collect()
        empty = rss_bytes()
        entries = people(size)
        probes = _probes(entries, 2000)
        gc.collect()
        before = rss_bytes()
        entry_bytes = before - empty
        started = time.perf_counter()
        dataset = Dataset("blacklist", entries, match=match)
        build = time.perf_counter() - started
        gc.collect()
        index_bytes = rss_bytes() - before
        result = timed(lambda p, d=dataset: d.similar(p, 2), probes, 5_000 if quick else 20_000)
        base_cost = base_cost or result["median"]
        rows.append(
            [
                f"{size:,}",
                round(build, 3),
                *_per_entry((index_bytes, entry_bytes), size),
                result["median"],
                result["p99"],
                result["median"] / base_cost,
            ]
        )
        del dataset, entries
    report.table(
        "2-of-3 normalised matching (similar(), half the probes hit; bytes from the RSS, "
        f"from {RSS_ENTRIES:,} entries: below, the RSS moves by more than the data)",
        [
            "entries",
            "index build s",
            "index bytes/entry",
            "entries' own bytes/entry",
            "median µs",
            "p99 µs",
            "cost vs 100 entries",
        ],
        rows,
    )


RSS_ENTRIES = 10_000
"""The fewest entries whose bytes the RSS measures: 100 entries took -6,676 bytes each."""


def _per_entry(sizes: tuple[int, ...], entries: int) -> list[float | str]:
    """Bytes per entry of each RSS difference, or "-" for too few entries to tell."""
    if entries < RSS_ENTRIES:
        return ["-" for _ in sizes]
    return [round(size / entries, 1) for size in sizes]


def _probes(entries: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    rng = random.Random(5)
    probes = []
    for i in range(count):
        if i % 2:
            hit = rng.choice(entries)
            probes.append(
                {
                    "name": hit["name"].replace(" ", "　"),
                    "postal_code": hit["postal_code"].replace("-", "－"),
                    "phone": "000-0000-0000",
                }
            )
        else:
            probes.append(
                {
                    "name": "該当 なし",
                    "postal_code": "000-0000",
                    "phone": f"090-{rng.randint(0, 9999):04d}-0000",
                }
            )
    return probes


# -- rule count ---------------------------------------------------------------------------------


def generated_policy(folder: Path, count: int) -> str:
    rules = "".join(
        f"  - id: r{i}\n    refs: [BN-3]\n    when: order.quantity == {i} and order.total > {i}\n"
        for i in range(count)
    )
    policy_id = f"generated-{count}"
    (folder / f"{policy_id}.yaml").write_text(
        f"kimari: 1\nid: {policy_id}\ntitle: {{ja: 生成}}\nfacts: order-shape.facts.schema.json\n"
        f"rules:\n{rules}"
    )
    return policy_id


def section_rules(report: Report, quick: bool) -> None:
    import shutil
    import tempfile

    from engine.core.errors import PolicyError
    from engine.project.project import compile_policy_file, load_rulebook

    count = 2_000 if quick else 20_000
    facts = order_facts(200)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in ("order-shape.facts.schema.json", "rulebook.tsv"):
            shutil.copy(SHAPES / name, folder / name)
        rulebook = load_rulebook(folder / "rulebook.tsv")
        for size in (10, 50, 100, 150, 151):
            policy_id = generated_policy(folder, size)
            started = time.perf_counter()
            try:
                policy = compile_policy_file(folder / f"{policy_id}.yaml", rulebook)
            except PolicyError as exc:
                first = exc.diagnostics[0]
                rows.append([size, "-", "-", "-", "-", f"refused: {first.code}: {first.message}"])
                continue
            compiled = time.perf_counter() - started
            started = time.perf_counter()
            policy.durable_handle()
            registered = time.perf_counter() - started
            durable = timed(lambda f, p=policy: decide(p, f, at=AT), facts, count)
            python = timed(lambda f, p=policy: decide(p, f, at=AT, backend="python"), facts, count)
            rows.append(
                [
                    size,
                    round(compiled * 1000, 1),
                    round(registered * 1000, 1),
                    durable["median"],
                    python["median"],
                    f"{len(policy.durable_handle()._parts)} C ruleset(s)",
                ]
            )
            policy.close()
    report.table(
        "rule count (generated policies)",
        ["rules", "compile ms", "register ms", "durable median µs", "python median µs", "note"],
        rows,
    )


# -- load, compile, memory -----------------------------------------------------------------


def _load_once(folder: Path) -> tuple[float, Project]:
    started = time.perf_counter()
    project = load_project(folder)
    for policy in project.policies.values():
        policy.durable_handle()
    took = time.perf_counter() - started
    for policy in project.policies.values():
        policy.close()
    return took, project


def _forget_all(keys: Iterable[str] = ()) -> None:
    """As a fresh process: no remembered checks (but `keys`, as read from a store), no
    parsed documents (consulted policies among them) nor expressions, no remembered YAML
    tags, no compiled facts schemas."""
    from engine.lang.parser import parse
    from engine.source import memo
    from engine.source.facts import forget_compiled
    from engine.source.yaml import _Loader, forget_parsed

    memo.forget()
    forget_compiled()
    forget_parsed()
    memo.absorb(keys)
    parse.cache_clear()
    _Loader._tags.clear()


def decided_all(summary: Any) -> Any:
    """The summary of a batch in which every line was decided: a line refused would be timed
    as if decided (a refusal is cheaper), so it stops the benchmark instead."""
    if summary.failed or summary.decided != summary.total:
        raise RuntimeError(f"the benchmark's batch did not decide every line: {summary}")
    return summary


def _batch_start(lines: bytes, runs: int) -> dict[str, list[float]]:
    """Seconds of run_batch of one line on 2 workers (load the policy, start the pool,
    decide, stop); and of the whole `kimari batch` command (interpreter and imports too),
    first with an empty cache of clean checks (engine/cli/checks_cache.py), then with the
    one it left. The commands run from compiled bytecode, as an installed kimari does: the
    benchmark's own environment may set PYTHONDONTWRITEBYTECODE, and compiling the engine's
    sources at every start was ~0.1 s of each command."""
    import io
    import subprocess
    import tempfile

    from engine.cli.batch import run_batch

    inner = [
        decided_all(
            run_batch(ROOT / "policies", "order-holds", io.BytesIO(lines), io.BytesIO(), workers=2)
        )
        for _ in range(runs)
    ]
    figures: dict[str, list[float]] = {"batch": [s.seconds for s in inner]}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "one.jsonl"
        source.write_bytes(lines)
        command = [sys.executable, "-m", "engine.cli", "batch", "order-holds", str(source)]
        command += ["-o", str(Path(tmp) / "out.jsonl"), "--workers", "2", "--no-progress"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")

        def whole(cache: Path) -> float:
            started = time.perf_counter()
            environ = {**env, "KIMARI_CACHE_DIR": str(cache)}
            subprocess.run(command, cwd=ROOT, env=environ, check=True, capture_output=True)
            return time.perf_counter() - started

        whole(Path(tmp) / "warm-up")  # writes the bytecode
        figures["command"] = [whole(Path(tmp) / f"empty-{i}") for i in range(runs)]
        figures["command again"] = [whole(Path(tmp) / "warm-up") for _ in range(runs)]
    return figures


def reload_times(policy_id: str, runs: int) -> list[float]:
    """Seconds of compile_set after `policy_id`'s file changed (a comment added), in a copy
    of the project. The copy holds the schemas the policies name (`../schemas/`): without
    them every policy was refused at its first stage, and the recorded reloads until
    2026-12-06 timed those refusals. Each reload must serve the new revision."""
    import shutil
    import tempfile

    from engine.project.registry import compile_set

    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("policies", "schemas"):
            shutil.copytree(ROOT / name, Path(tmp) / name)
        copy = Path(tmp) / "policies"
        current = compile_set(copy, None)
        edited = copy / f"{policy_id}.yaml"
        for i in range(runs):
            edited.write_text(edited.read_text() + f"# edit {i}\n")
            started = time.perf_counter()
            current = compile_set(copy, current)
            times.append(time.perf_counter() - started)
            status = current.statuses[policy_id]
            if status.state != "valid" or status.policy is None:
                raise RuntimeError(f"the reload of {policy_id} did not compile: {status}")
    return times


def load_figures(runs: int) -> dict[str, list[float]]:
    """Seconds of each load, reload and batch start-up (run by section_load in a fresh
    process: in the benchmark's own, the objects earlier sections left slow every
    allocation down and make forking its workers copy a large process)."""
    import json

    from engine.source import memo

    folder = ROOT / "policies"
    figures: dict[str, list[float]] = {"cold": [], "stored": [], "warm": []}
    for _ in range(runs):
        _forget_all()
        took, project = _load_once(folder)
        figures["cold"].append(took)
    keys = memo.take_fresh()
    for _ in range(runs):
        _forget_all(keys)
        figures["stored"].append(_load_once(folder)[0])
    figures["warm"] = [_load_once(folder)[0] for _ in range(runs)]
    figures["reload"] = reload_times("order-holds", runs)
    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    line = json.dumps({"facts": facts, "at": "2024-10-01T10:00:00+09:00"}).encode() + b"\n"
    figures.update(_batch_start(line, runs))
    figures["policies"] = [len(project.policies)]
    return figures


def section_load(report: Report, quick: bool) -> None:
    """Load + compile + register every shipped policy: in a process that remembers nothing,
    in a worker starting with the store's remembered checks, again in the same process;
    a reload (engine/project/registry.py) after one file changed; batch start-up."""
    import json
    import subprocess

    runs = 3 if quick else 7
    code = (
        f"import json; from bench.run import load_figures; print(json.dumps(load_figures({runs})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])

    def ms(name: str) -> list[float]:
        return [statistics.median(figures[name]) * 1000, min(figures[name]) * 1000]

    report.table(
        f"load + validate + compile + register all {figures['policies'][0]} shipped "
        "policies; reload; batch start-up (a fresh process)",
        ["what", "median ms", "min ms"],
        [
            ["load, a process that remembers nothing", *ms("cold")],
            ["load, a worker starting with the store's remembered checks", *ms("stored")],
            ["load again in the same process (checks and expressions remembered)", *ms("warm")],
            ["reload: one policy file changed (compile_set)", *ms("reload")],
            [
                "batch start-up: run_batch, 1 line, 2 workers (load, fork, decide, stop)",
                *ms("batch"),
            ],
            [
                "kimari batch, 1 line, whole command (interpreter and imports too), nothing "
                "remembered",
                *ms("command"),
            ],
            [
                "kimari batch, 1 line, whole command again (clean checks remembered in the "
                "user's cache)",
                *ms("command again"),
            ],
        ],
    )


def memory_run(total: int) -> list[list[Any]]:
    """RSS across `total` decisions and across 100 reloads (run in a fresh process)."""
    project = load_project(SHAPES)
    policy = project.policy("order-shape")
    facts = order_facts(1000)
    marks = {}
    for i in range(total):
        decide(policy, facts[i % 1000], at=AT)
        if i + 1 in (total // 10, total):
            gc.collect()
            marks[i + 1] = rss_bytes()
    first, last = marks[total // 10], marks[total]
    rows: list[list[Any]] = [
        [
            f"{total // 10:,} -> {total:,} decisions (durable backend)",
            first / 2**20,
            last / 2**20,
            (last - first) / first * 100,
        ]
    ]
    reload_marks = {}
    for i in range(100):
        reloaded = load_project(SHAPES).policy("order-shape")  # compile + register a ruleset
        decide(reloaded, facts[i], at=AT)
        reloaded.close()
        if i + 1 in (10, 100):
            gc.collect()
            reload_marks[i + 1] = rss_bytes()
    rows.append(
        [
            "reloads 10 -> 100 (compile, register, decide, unregister)",
            reload_marks[10] / 2**20,
            reload_marks[100] / 2**20,
            (reload_marks[100] - reload_marks[10]) / reload_marks[10] * 100,
        ]
    )
    return rows


def section_memory(report: Report, quick: bool) -> None:
    import json
    import subprocess

    total = 100_000 if quick else 1_000_000
    code = f"import json; from bench.run import memory_run; print(json.dumps(memory_run({total})))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    report.table(
        "memory (RSS of a fresh process)",
        ["run", "RSS before MiB", "RSS after MiB", "growth %"],
        rows,
    )


# -- HTTP -----------------------------------------------------------------------------------


def _serve(workers: int, store: Path, port: int) -> Any:
    import subprocess

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--store",
            str(store),
            "--policies",
            str(ROOT / "policies"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("KIMARI_")},
    )


def _wait_ready(url: str, workers: int) -> None:
    import httpx

    for _ in range(240):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).json().get("workers", 0) >= workers:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError("the service did not become ready")


def _load(
    url: str, body: Path, seconds: float, connections: int, rate: float | None = None
) -> dict[str, Any]:
    """bench/http_load.py in its own process: the load generator is outside the server."""
    import json
    import subprocess

    command = [
        sys.executable,
        str(ROOT / "bench" / "http_load.py"),
        "--url",
        url,
        "--body",
        str(body),
        "--seconds",
        str(seconds),
        "--connections",
        str(connections),
    ]
    if rate:
        command += ["--rate", str(rate)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _wrk(url: str, body: Path, seconds: float, connections: int) -> dict[str, Any] | None:
    """Throughput and latency with wrk (C: far lighter than a Python client on 2 cores)."""
    import re
    import shutil
    import subprocess
    import tempfile

    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f'local f = io.open("{body}", "rb"); wrk.body = f:read("*all"); f:close()\n'
        )
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(seconds)}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} error responses")

    def pct(name: str) -> float:
        found = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", out)
        if not found:
            return 0.0
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
        return float(found.group(1)) * scale

    return {"per_second": rate, "p50_ms": pct("50"), "p99_ms": pct("99")}


def _h2load(
    url: str, body: Path, seconds: float, connections: int, rate: float
) -> dict[str, Any] | None:
    """Paced load with h2load (C: the client's own CPU stays small on 2 cores): each
    connection sends rate/connections requests per second; percentiles from its log of
    every request's latency. None if h2load is not installed."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("h2load") is None:
        return None
    per_client = max(1, round(rate / connections))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "requests.log"
        command = ["h2load", "--h1", "-c", str(connections), "-D", str(int(seconds))]
        command += ["--rps", str(per_client), "-d", str(body), "--log-file", str(log)]
        command += ["-H", "content-type: application/json", url]
        subprocess.run(command, capture_output=True, text=True, check=True)
        return h2load_figures(log.read_text(), seconds)


def _poisson(url: str, body: Path, seconds: float, connections: int, rate: float) -> dict[str, Any]:
    """bench/open_loop.py in its own process: Poisson arrivals, latency from each arrival."""
    import json
    import subprocess

    command = [sys.executable, str(ROOT / "bench" / "open_loop.py"), "--url", url]
    command += ["--body", str(body), "--rate", str(rate), "--seconds", str(seconds)]
    command += ["--connections", str(connections)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    figures = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    if figures["unanswered"] or set(figures["statuses"]) != {"200"}:
        raise RuntimeError(f"open_loop.py: {figures}")
    return figures


def h2load_figures(log: str, seconds: float) -> dict[str, Any]:
    """Throughput and latency percentiles from h2load's --log-file: a line per request,
    its start (µs since the epoch), status and latency (µs). Any status but 2xx: an error."""
    rows = [line.split() for line in log.splitlines() if line.strip()]
    bad = [r for r in rows if not r[1].startswith("2")]
    if bad or not rows:
        raise RuntimeError(f"h2load: {len(bad)} responses not 2xx of {len(rows)}")
    latencies = sorted(int(r[2]) / 1000 for r in rows)
    return {
        "client": "h2load",
        "per_second": round(len(rows) / seconds),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
    }


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _process_cpu(supervisor: int) -> dict[str, float]:
    """CPU seconds so far of the front process and of its children, the workers (each
    process whole: every thread it runs or ran)."""
    tick = os.sysconf("SC_CLK_TCK")
    split = {"front": 0.0, "worker": 0.0}
    for front in _children(supervisor):
        for pid in [front, *_children(front)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            split["front" if pid == front else "worker"] += seconds
    return split


_COMMIT_CPU = re.compile(r"^kimari_log_commit_cpu_seconds_total (\S+)$", re.MULTILINE)


def commit_cpu(metrics: str) -> float:
    """The workers' CPU seconds in decision-log commits (and the answers sent after them),
    from the text of GET /metrics: they commit on their deciding thread, so /proc alone
    cannot tell the log's share."""
    found = _COMMIT_CPU.search(metrics)
    if found is None:
        raise RuntimeError("GET /metrics has no kimari_log_commit_cpu_seconds_total")
    return float(found.group(1))


def _server_cpu(supervisor: int, base: str) -> dict[str, float]:
    """CPU seconds so far of the front, of the workers' deciding and of their log commits."""
    import httpx

    split = _process_cpu(supervisor)
    log = commit_cpu(httpx.get(f"{base}/metrics", timeout=30).text)
    return {"front": split["front"], "worker": split["worker"] - log, "log": log}


def _measured(supervisor: int, base: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()` (a load), with the server's CPU spent meanwhile and the load generator's."""
    import resource

    before, client = _server_cpu(supervisor, base), resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run()
    after, done = _server_cpu(supervisor, base), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu"] = {k: after[k] - before[k] for k in after}
    result["client_cpu"] = done.ru_utime + done.ru_stime - client.ru_utime - client.ru_stime
    return result


def _served_decision_us(facts: dict[str, Any], at: str) -> float:
    """The decision the service makes per request (durable backend), alone, in µs."""
    project = load_project(ROOT / "policies")
    policy = project.policy("order-holds")
    data = project.data_for(policy)
    return timed(lambda item: decide(policy, item, at=at, data=data), [facts], 5_000)["median"]


def section_http(report: Report, quick: bool, workers_counts: Sequence[int] = (1, 2)) -> None:
    import json
    import signal
    import tempfile

    seconds = 3.0 if quick else 8.0
    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    at = "2024-10-01T10:00:00+09:00"
    decision_us = _served_decision_us(facts, at)
    closed, paced, cpu_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps({"facts": facts, "at": at}, ensure_ascii=False))
        for workers in workers_counts:
            port = 18400 + workers
            server = _serve(workers, Path(tmp) / f"log{workers}.sqlite3", port)
            base = f"http://127.0.0.1:{port}"
            url = f"{base}/v1/decisions/order-holds"
            try:
                _wait_ready(base, workers)
                _load(url, body, 2.0, 16)  # warm up
                runs = [
                    (
                        c,
                        _measured(
                            server.pid,
                            base,
                            lambda c=c, u=url: (
                                _wrk(u, body, seconds, c) or _load(u, body, seconds, c)
                            ),
                        ),
                    )
                    for c in (8, 16, 32, 64)
                ]
                peak = max(r["per_second"] for _, r in runs)
                closed.extend(
                    [
                        workers,
                        c,
                        r["per_second"],
                        round(r["per_second"] / peak * 100),
                        r["p50_ms"],
                        r["p99_ms"],
                    ]
                    for c, r in runs
                )
                best = next(r for _, r in runs if r["per_second"] == peak)
                requests = best["per_second"] * seconds
                per = {k: v / requests * 1e6 for k, v in best["cpu"].items()}
                total = sum(per.values())
                cpu_rows.append(
                    [
                        workers,
                        round(peak),
                        per["front"],
                        per["worker"],
                        per["log"],
                        total,
                        decision_us,
                        total / decision_us,
                        best["client_cpu"] / requests * 1e6,
                    ]
                )
                offered = peak * 0.8
                open_loop = _h2load(url, body, seconds, 64, offered) or {
                    "client": "http_load.py",
                    **_load(url, body, seconds, 64, rate=offered),
                }
                poisson = _poisson(url, body, seconds, 64, offered)
                paced.extend(
                    [
                        workers,
                        figures["client"],
                        round(peak),
                        round(offered),
                        figures["per_second"],
                        figures["p50_ms"],
                        figures["p99_ms"],
                    ]
                    for figures in (open_loop, poisson)
                )
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(30)
    report.table(
        "HTTP: POST /v1/decisions/order-holds, decision log on (WAL, synchronous=FULL, group "
        "commit); wrk from a separate process, closed loop (one request in flight per "
        "connection)",
        ["workers", "connections", "decisions/s", "% of max", "p50 ms", "p99 ms"],
        closed,
    )
    report.table(
        "HTTP, paced at 80% of the maximum: h2load --rps (C, nghttp2-client; each of 64 "
        "connections sends at its share of the rate, one request in flight: latency from "
        "the send; the connections' timers fire together, so requests come in bursts of 64) "
        "where installed, else bench/http_load.py --rate; and bench/open_loop.py (Poisson "
        "arrivals over 64 keep-alive connections, latency from each arrival, its queue for "
        "a free connection and its 1 ms timer steps included)",
        ["workers", "client", "max decisions/s", "offered/s", "served/s", "p50 ms", "p99 ms"],
        paced,
    )
    report.table(
        "HTTP: server CPU per request at the maximum (from /proc: the front process, the "
        "workers; of the workers', the decision log's commits and the answers sent after "
        "them, which they count in kimari_log_commit_cpu_seconds_total), beside the decision "
        "alone (durable backend, in process) and the load generator's CPU",
        [
            "workers",
            "decisions/s",
            "front µs",
            "worker µs",
            "log µs",
            "server µs",
            "decision µs",
            "server / decision",
            "client µs",
        ],
        cpu_rows,
    )


# -- batch ----------------------------------------------------------------------------------


def section_batch(report: Report, quick: bool) -> None:
    import io
    import json

    from engine.cli.batch import run_batch

    count = 20_000 if quick else 100_000
    facts = json.loads((ROOT / "examples" / "order-holds.json").read_text())
    lines = []
    for i in range(count):
        facts["order"]["id"] = f"O-{i}"
        facts["order"]["total"] = 1000 + i % 5000
        lines.append(
            json.dumps(
                {"facts": facts, "at": "2024-10-01T10:00:00+09:00"}, ensure_ascii=False
            ).encode()
        )
    source = b"\n".join(lines) + b"\n"
    rows = []
    for workers in (1, 2):
        summary = decided_all(
            run_batch(
                ROOT / "policies", "order-holds", io.BytesIO(source), io.BytesIO(), workers=workers
            )
        )
        rows.append([workers, f"{summary.total:,}", round(summary.seconds, 1), round(summary.rate)])
    report.table(
        "batch: kimari batch order-holds (JSON Lines in, decisions out, in order)",
        ["processes", "decisions", "seconds", "decisions/s"],
        rows,
    )


SECTIONS: dict[str, Callable[[Report, bool], None]] = {
    "shapes": section_shapes,
    "policies": section_policies,
    "matching": section_matching,
    "rules": section_rules,
    "load": section_load,
    "memory": section_memory,
    "http": section_http,
    "batch": section_batch,
    "replay": replay.section_replay,
    "publication": replay.section_publication,
    "replicas": replicas.section_replicas,
    "contention": replicas.section_contention,
}


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.date.today().isoformat(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--workers", default="1,2", help="worker counts of the http section (e.g. 1,2,4,8,16)"
    )
    parser.add_argument("--replicas", default="1,2,3", help="replica counts of 'replicas'")
    args = parser.parse_args(list(argv) if argv is not None else None)
    workers = tuple(int(n) for n in args.workers.split(","))
    counts = tuple(int(n) for n in args.replicas.split(","))
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"--only: no section {', '.join(unknown)}; choose from {','.join(SECTIONS)}")
    report = Report(machine())
    for name in chosen:
        print(f"== {name}", flush=True)
        report.start(name)
        if name == "http":
            section_http(report, args.quick, workers)
        elif name == "replicas":
            replicas.section_replicas(report, args.quick, counts)
        else:
            SECTIONS[name](report, args.quick)
    if args.write:
        report.write(ROOT / "docs" / "benchmarks.md", chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
