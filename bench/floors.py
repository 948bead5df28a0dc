"""The same rules as bench/shapes/*.yaml, written by hand: the floors kimari is compared with.

- `python_*`: a plain Python function, what a developer would write without
  an engine (the floor of the python backend).
- `DurableHostFloor`: the rules hand-written against durable_rules' public
  Python API (`durable.engine.Host`, JSON rulesets, Python actions), one
  fresh sid per decision deleted afterwards: what using durable_rules
  directly costs (the floor the issue's 2x target refers to).
- `DurableRawFloor`: the same rules on the C extension with the session
  handling kimari's adapter uses (one primed sid, facts retracted), without
  any of kimari's work: the lowest cost of durable_rules matching itself.

This file imports durable_rules on purpose: it measures durable_rules. The
engine itself only ever reaches durable_rules through engine/durable/adapter.py.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

ORDER_RULES: dict[str, Any] = {
    "np-ng": {"$and": [{"payment_method": "np"}, {"np_result": "ng"}]},
    "np-unknown": {"$and": [{"payment_method": "np"}, {"np_result": "unknown"}]},
    "amount": {"$neq": {"paid_amount": {"$m": "total"}}},
    "blacklisted": {"customer_blacklisted": True},
    "island": {"island": True},
    "card-failed": {"$and": [{"$gte": {"sequence": 2}}, {"payment_method": "card"}]},
    "quantity": {"$gt": {"quantity": 10}},
    "big-cod": {"$and": [{"$gt": {"total": 100000}}, {"payment_method": "cod"}]},
}

FEE_RULES: dict[str, Any] = {
    "full": {"stage": "documents_filed"},
    "half": {"stage": "in_progress"},
    "free": {"$and": [{"stage": "initial_only"}, {"$lte": {"days_since_start": 7}}]},
    "review": {"$ex": {"stage": 1}},
}


def python_order_holds(order: dict[str, Any]) -> list[str]:
    reasons = []
    method = order["payment_method"]
    if method == "np" and order["np_result"] == "ng":
        reasons.append("np-ng")
    if method == "np" and order["np_result"] == "unknown":
        reasons.append("np-unknown")
    if order["paid_amount"] != order["total"]:
        reasons.append("amount")
    if order["customer_blacklisted"]:
        reasons.append("blacklisted")
    if order["island"]:
        reasons.append("island")
    if order["sequence"] >= 2 and method == "card":
        reasons.append("card-failed")
    if order["quantity"] > 10:
        reasons.append("quantity")
    if order["total"] > 100000 and method == "cod":
        reasons.append("big-cod")
    return reasons


def python_fee_percent(case: dict[str, Any]) -> int:
    stage = case["stage"]
    if stage == "documents_filed":
        return 100
    if stage == "in_progress":
        return 50
    if stage == "initial_only" and case["days_since_start"] <= 7:
        return 0
    return 30


class DurableHostFloor:
    """durable_rules through its public Python API, as its documentation shows."""

    _names = itertools.count()

    def __init__(self, rules: dict[str, Any], *, first: bool = False) -> None:
        from durable.engine import Host

        self.fired: list[str] = []
        self.name = f"floor{next(self._names)}"
        definition: dict[str, Any] = {}
        for priority, (rule, condition) in enumerate(rules.items(), start=1):
            definition[rule] = {"all": [{"m": condition}], "run": self._action(rule)}
            if first:
                definition[rule]["pri"] = priority
        self.host = Host()
        self.host.register_rulesets({self.name: definition})
        self.first = first
        self.sids = itertools.count()

    def _action(self, rule: str) -> Any:
        def run(c: Any) -> None:
            self.fired.append(rule)

        return run

    def decide(self, message: dict[str, Any]) -> list[str]:
        from durable.engine import MessageNotHandledException

        self.fired = []
        sid = str(next(self.sids))
        try:
            if self.first:
                self.host.post(self.name, {**message, "sid": sid})
            else:
                self.host.assert_fact(self.name, {**message, "sid": sid, "id": sid})
        except MessageNotHandledException:
            pass
        finally:
            self.host.delete_state(self.name, sid)
        return self.fired


class DurableRawFloor:
    """The C extension with kimari's session handling and nothing else."""

    _names = itertools.count()

    def __init__(self, rules: dict[str, Any], *, first: bool = False) -> None:
        import durable_rules_engine as dre

        self.dre = dre
        definition: dict[str, Any] = {
            "prime": {"all": [{"m": {"$ex": {"prime": 1}}}]},
        }
        for priority, (rule, condition) in enumerate(rules.items(), start=1):
            definition[rule] = {"all": [{"m": condition}]}
            if first:
                definition[rule]["pri"] = priority
        self.handle = dre.create_ruleset(f"raw{next(self._names)}", json.dumps(definition))
        self.first = first
        self.ids = itertools.count()
        prime = json.dumps({"prime": 1, "sid": "s", "id": "p"})
        _, state = dre.assert_fact(self.handle, prime)
        self._drain(state)
        dre.retract_fact(self.handle, prime)

    def _drain(self, state: int) -> list[str]:
        dre = self.dre
        fired = []
        started = dre.start_action_for_state(self.handle, state)
        payload = started[1] if started else None
        while payload is not None:
            fired.append(payload[2 : payload.find('"', 2)])
            payload = dre.complete_and_start_action(self.handle, state)
        return fired

    def decide(self, message: dict[str, Any]) -> list[str]:
        dre = self.dre
        text = json.dumps({**message, "sid": "s", "id": next(self.ids)})
        if self.first:
            code, state = dre.assert_event(self.handle, text)
            return self._drain(state) if code == 0 else []
        code, state = dre.assert_fact(self.handle, text)
        fired = self._drain(state) if code == 0 else []
        dre.retract_fact(self.handle, text)
        return fired


def _duration_us(text: str) -> float:
    """zen-engine's `performance` field ('18.2µs', '1.2ms', '950ns') in µs."""
    for unit, scale in (("ns", 0.001), ("µs", 1.0), ("us", 1.0), ("ms", 1000.0), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(f"unknown duration {text!r}")


class ZenFloor:
    """The order shape as a GoRules JDM decision table (bench/shapes/order-shape.jdm.json),
    evaluated by zen-engine, the Rust rules engine, through its Python binding: a peer, not
    a floor of kimari's own backends. Two costs are reported: the Python call as a service
    pays it, and the evaluation time zen-engine measures itself (its `performance` field),
    which leaves out the binding's conversion and dispatch."""

    def __init__(self, path: Any) -> None:
        import zen

        self.decision = zen.ZenEngine().create_decision(path.read_text())
        self.engine_us: list[float] = []

    def decide(self, facts: dict[str, Any]) -> list[str]:
        answer = self.decision.evaluate(facts)
        self.engine_us.append(_duration_us(answer["performance"]))
        return [row["rule"] for row in answer["result"]]
