"""Stress scenarios for engine.durable.adapter, run in a child process.

tests/durable/test_adapter.py starts `python tests/durable/durable_child.py SCENARIO [ARGS]`
so that a segfault in durable_rules fails one test instead of killing pytest.
A scenario prints one JSON line with its figures and exits 0; any wrong result
raises (exit 1, traceback on stderr).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from engine.core.errors import EngineFault
from engine.durable.adapter import (
    DurableAdapter,
    Mode,
    RulesetHandle,
    Sessions,
    get_adapter,
)

PAGE = os.sysconf("SC_PAGE_SIZE")

# One small policy, with a Python oracle for each rule: (condition, oracle, pri).
RULES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], bool], int]] = {
    "big": ({"$gt": {"amount": 1000}}, lambda m: m["amount"] > 1000, 3),
    "vip": ({"tier": "gold"}, lambda m: m["tier"] == "gold", 1),
    "risky": (
        {"$or": [{"country": "XX"}, {"country": "YY"}]},
        lambda m: m["country"] in ("XX", "YY"),
        2,
    ),
    "no_email": ({"$nex": {"email": 1}}, lambda m: "email" not in m, 1),
}


def rules(mode: Mode, threshold: int = 1000) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, (cond, _, pri) in RULES.items():
        if name == "big":
            cond = {"$gt": {"amount": threshold}}
        out[name] = {"all": [{"m": cond}]}
        if mode is Mode.FIRST:
            out[name]["pri"] = pri
    return out


def message(i: int) -> dict[str, Any]:
    """Deterministic facts; about one in three matches no rule at all."""
    m: dict[str, Any] = {
        "amount": (i * 37) % 2000,
        "tier": "gold" if i % 7 == 0 else "silver",
        "country": ("XX", "JP", "YY", "JP", "JP")[i % 5],
    }
    if i % 4:
        m["email"] = f"u{i}@example.jp"
    return m


def expected(mode: Mode, m: dict[str, Any], threshold: int = 1000) -> list[str]:
    hits: list[tuple[int, int, str]] = []
    for name, (_, oracle, pri) in RULES.items():
        hit = m["amount"] > threshold if name == "big" else oracle(m)
        if hit:
            hits.append((pri if mode is Mode.FIRST else 0, len(hits), name))
    names = [name for _, _, name in sorted(hits)]
    return names[:1] if mode is Mode.FIRST else names


def rss() -> int:
    gc.collect()
    with open("/proc/self/statm") as f:  # noqa: PTH123 - a procfs read, not a path API use
        return int(f.read().split()[1]) * PAGE


def check(got: list[str], want: list[str], what: str) -> None:
    if got != want:
        raise AssertionError(f"{what}: got {got}, want {want}")


def long_run(mode_text: str, sessions_text: str, count: str = "100000") -> dict[str, Any]:
    mode, adapter, n = Mode(mode_text), DurableAdapter(Sessions(sessions_text)), int(count)
    handle = adapter.register("long", rules(mode), mode=mode)
    msgs = [message(i) for i in range(1000)]
    wants = [expected(mode, m) for m in msgs]
    empty = 0
    rss_10k = 0
    for i in range(n):
        got = adapter.evaluate(handle, msgs[i % 1000])
        if got != wants[i % 1000]:
            check(got, wants[i % 1000], f"decision {i}")
        empty += not got
        if i + 1 == n // 10:
            rss_10k = rss()
    rss_end = rss()
    facts, events = adapter._session_messages(handle)
    check(facts + events, [], "left in the session")
    adapter.unregister(handle)
    return {"decisions": n, "no_match": empty, "rss_10k": rss_10k, "rss_end": rss_end}


def reloads(mode_text: str) -> dict[str, Any]:
    mode, adapter = Mode(mode_text), get_adapter()
    msgs = [message(i) for i in range(200)]
    old: RulesetHandle | None = None
    rss_10 = 0
    for revision in range(1, 101):
        threshold = 500 + revision * 10  # every revision decides a little differently
        new = adapter.register("policy@r", rules(mode, threshold), mode=mode)
        for m in msgs:
            check(adapter.evaluate(new, m), expected(mode, m, threshold), f"revision {revision}")
        if old is not None:
            adapter.unregister(old)
        old = new
        if adapter.live_rulesets != 1:
            raise AssertionError(f"{adapter.live_rulesets} live rulesets after reload {revision}")
        if revision == 10:
            rss_10 = rss()
    return {"reloads": 100, "rss_10": rss_10, "rss_end": rss()}


def no_match_first() -> dict[str, Any]:
    decided = 0
    for sessions in Sessions:
        adapter = DurableAdapter(sessions)
        for mode in Mode:
            for k in range(50):
                handle = adapter.register(f"nm{k}", rules(mode), mode=mode)
                nothing = {"amount": 1, "tier": "silver", "country": "JP", "email": "a@b"}
                check(adapter.evaluate(handle, nothing), [], "first decision")
                for i in range(20):
                    m = message(i)
                    check(adapter.evaluate(handle, m), expected(mode, m), f"{sessions} {mode}")
                    decided += 1
                adapter.unregister(handle)
    return {"rulesets": 200, "decisions": decided}


def action_errors() -> dict[str, Any]:
    raised = correct = 0
    for sessions in Sessions:
        adapter = DurableAdapter(sessions)
        for mode in Mode:
            handle = adapter.register("act", rules(mode), mode=mode)
            for i in range(1000):
                m, want = message(i), expected(mode, message(i))
                seen: list[str] = []

                def on_fire(name: str, i: int = i, seen: list[str] = seen) -> None:
                    seen.append(name)
                    if i % 10 == 0:
                        raise ValueError(f"boom {i}")

                try:
                    got = adapter.evaluate(handle, m, on_fire=on_fire)
                except EngineFault as fault:
                    if fault.code != "action_failed" or i % 10 or not want:
                        raise
                    if not isinstance(fault.__cause__, ValueError):
                        raise AssertionError("the action's exception is not chained") from fault
                    raised += 1
                    continue
                if i % 10 == 0 and want:
                    raise AssertionError(f"decision {i} succeeded although its action failed")
                check(got, want, f"decision {i}")
                check(seen, want, f"on_fire calls of decision {i}")
                correct += 1
            facts, events = adapter._session_messages(handle)
            check(facts + events, [], "left in the session")
            adapter.unregister(handle)
    return {"raised": raised, "correct": correct}


def backend_errors() -> dict[str, Any]:
    """C errors mid-decision (302: >255 properties) reset the session; the wide ruleset is
    chunked by the adapter, so 80 rules holding at once no longer hit error 303."""
    recovered = 0
    for sessions in Sessions:
        adapter = DurableAdapter(sessions)
        for mode in Mode:
            wide: dict[str, dict[str, Any]] = {
                f"gt{i}": {"all": [{"m": {"$gt": {"amount": i}}}]} for i in range(80)
            }
            if mode is Mode.FIRST:
                wide = {k: {**v, "pri": 1} for k, v in wide.items()}
            handle = adapter.register("wide", wide, mode=mode)
            for i in range(250):
                bad = {f"k{j}": j for j in range(300 + i % 2)}
                try:
                    adapter.evaluate(handle, bad)
                except EngineFault as fault:
                    if fault.code != "backend_error":
                        raise
                else:
                    raise AssertionError("a failing C call reported success")
                got = adapter.evaluate(handle, {"amount": 3})
                check(got, ["gt0", "gt1", "gt2"][: 1 if mode is Mode.FIRST else 3], "after error")
                recovered += 1
            adapter.unregister(handle)
    return {"recovered": recovered}


def threads(count: str = "2000") -> dict[str, Any]:
    sys.setswitchinterval(1e-5)  # switch threads as often as possible
    adapter, n = get_adapter(), int(count)
    handles = {mode: adapter.register(f"thr-{mode}", rules(mode), mode=mode) for mode in Mode}
    msgs = [message(i) for i in range(500)]
    wants = {mode: [expected(mode, m) for m in msgs] for mode in Mode}
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        barrier.wait()
        try:
            for i in range(n):
                mode = (Mode.COLLECT, Mode.FIRST)[(i + t) % 2]
                got = adapter.evaluate(handles[mode], msgs[(i * 7 + t) % 500])
                if got != wants[mode][(i * 7 + t) % 500]:
                    errors.append(f"thread {t} decision {i}: {got}")
        except Exception as exc:
            errors.append(f"thread {t}: {exc!r}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise AssertionError(f"{len(errors)} wrong: {errors[:5]}")
    return {"threads": 8, "decisions": 8 * n}


def fork() -> dict[str, Any]:
    adapter = get_adapter()
    handle = adapter.register("forked", rules(Mode.COLLECT), mode=Mode.COLLECT)
    pid = os.fork()
    if pid == 0:  # the child: the parent's handle is foreign, its own adapter works
        code = 0
        try:
            try:
                get_adapter().evaluate(handle, message(0))
                code = 3
            except EngineFault as fault:
                code = 0 if fault.code == "foreign_handle" else 4
            fresh = get_adapter()
            if fresh is adapter:
                code = 5
            own = fresh.register("forked", rules(Mode.COLLECT), mode=Mode.COLLECT)
            if fresh.evaluate(own, message(1)) != expected(Mode.COLLECT, message(1)):
                code = 6
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    check(adapter.evaluate(handle, message(2)), expected(Mode.COLLECT, message(2)), "parent")
    return {"child_status": os.waitstatus_to_exitcode(status)}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    f.__name__: f
    for f in (long_run, reloads, no_match_first, action_errors, backend_errors, threads, fork)
}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]](*sys.argv[2:])))
