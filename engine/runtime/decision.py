"""The Decision record and its JSON form."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from engine.core.jsonvalue import dumps, format_datetime, to_json_value


def _fresh_prefix() -> str:
    return f"{int(time.time() * 1000):012x}{os.urandom(5).hex()}"


_PREFIX = _fresh_prefix()
_counter = itertools.count()


def _after_fork_in_child() -> None:
    """A forked child inherits the parent's prefix and counter: without a new prefix both
    would hand out the same ids from there on. Batch and the service pool spawn their
    workers today, but a library user (or a fork-started multiprocessing pool) may fork."""
    global _PREFIX, _counter
    _PREFIX = _fresh_prefix()
    _counter = itertools.count()


os.register_at_fork(after_in_child=_after_fork_in_child)


def new_decision_id() -> str:
    """Unique: the process's start time and a random part, then a counter.

    Cheaper than fresh random bytes per decision (this runs for every one),
    and unique across processes and restarts: the prefix differs, the counter
    never repeats within a process. Ids of one process sort in decision order.
    """
    # %-formatting: a format spec in an f-string costs twice as much here.
    return _PREFIX + "%010x" % next(_counter)  # noqa: UP031


@dataclass(slots=True)
class Decision:
    """One decision; built once by `decide` and not changed afterwards.

    `explanation` holds what depends only on the revision (locations, labels, refs, an
    applied rule's entry) as the revision's own read-only dicts and lists, shared by every
    explanation of it (engine/core/readonly.py): to change one, change a copy."""

    decision_id: str
    policy_id: str
    revision: str
    at: datetime
    backend: str
    outcome: dict[str, Any]
    reasons: list[dict[str, Any]]
    fired: list[str]
    settings: dict[str, Any]
    data_versions: dict[str, str]
    elapsed_us: float
    derived: dict[str, Any] | None = None
    explanation: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # what the service adds to `policy`: the publication served, a newer revision not
    # served (engine/project/registry.py Snapshot.served)
    served: dict[str, Any] | None = None

    def _policy(self) -> dict[str, Any]:
        policy = {"id": self.policy_id, "revision": self.revision}
        if self.served:
            policy.update(self.served)
        return policy

    def to_json(self, at: str | None = None, outcome: bytes | None = None) -> bytes:
        """The JSON of to_dict(), byte for byte, serialised in one pass (the service's
        response body: converting every value in Python first costs more than deciding).
        `at`: format_datetime(self.at), `outcome`: dumps(self.outcome), when the caller has
        them already (the log's row keeps both)."""
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "policy": self._policy(),
            "at": self.at if at is None else at,
            "outcome": self.outcome if outcome is None else orjson.Fragment(outcome),
            "reasons": self.reasons,
            "fired": self.fired,
            "backend": self.backend,
            "settings": self.settings,
            "data": self.data_versions,
            "elapsed_us": round(self.elapsed_us, 1),
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return dumps(out)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "policy": self._policy(),
            "at": format_datetime(self.at),
            "outcome": to_json_value(self.outcome),
            "reasons": to_json_value(self.reasons),
            "fired": list(self.fired),
            "backend": self.backend,
            "settings": to_json_value(self.settings),
            "data": dict(self.data_versions),
            "elapsed_us": round(self.elapsed_us, 1),
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out
