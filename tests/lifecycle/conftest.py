"""A copy of the shipped project and a store bootstrapped from it, with a decision log
written the way the service writes it (tests of the HTTP twin: tests/service)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine.core.jsonvalue import dumps, format_datetime
from engine.lifecycle.workflow import Lifecycle, Rules
from engine.project.project import load_project
from engine.runtime.evaluate import decide
from engine.store.decisions import DecisionLog, Entry
from tests import ROOT

AT = "2024-06-01T10:00:00+09:00"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """policies/ and schemas/ of the shipped project, copied: tests edit them."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    return tmp_path / "policies"


@pytest.fixture
def lifecycle(folder: Path) -> Iterator[Lifecycle]:
    """A store bootstrapped from the folder; no approval required (a sandbox)."""
    with Lifecycle(folder.parent / "var" / "kimari.sqlite3", Rules(workers=1), files=True) as lc:
        lc.bootstrap(folder)
        yield lc


def log_decisions(
    store: Path,
    folder: Path,
    policy_id: str,
    requests: Sequence[Mapping[str, Any]],
    *,
    publication: int | None = None,
) -> list[str]:
    """Decide each request with the folder's policy and log it as the service does; ids."""
    project = load_project(folder)
    policy = project.policy(policy_id)
    entries, ids = [], []
    for request in requests:
        decision = decide(
            policy,
            request["facts"],
            at=request.get("at", AT),
            settings=request.get("settings"),
            data=project.data_for(policy),
        )
        if publication is not None:
            decision.served = {"publication": publication}
        entries.append(
            Entry(
                decision.decision_id,
                policy.id,
                policy.revision,
                format_datetime(decision.at),
                int(time.time() * 1000),
                1,
                None,
                orjson.dumps({"at": AT, **request}).decode(),
                dumps(decision.outcome).decode(),
                orjson.dumps(decision.fired).decode(),
                decision.to_json(),
            )
        )
        ids.append(decision.decision_id)
    log = DecisionLog(store)
    try:
        log.commit(entries)
    finally:
        log.close()
    return ids


def cancellation(day: int, stage: str = "initial_only") -> dict[str, Any]:
    """A cancellation `day` days after a contract started on 2024-04-01."""
    return {
        "facts": {
            "cancellation": {
                "reward": 150000,
                "stage": stage,
                "contract_start": "2024-04-01",
                "cancelled_on": f"2024-04-{1 + day:02d}",
                "workload_percent": 30,
            }
        }
    }


WORKLOAD_SCHEMA = "../schemas/cancellation-fees.facts.schema.json"


def without_workload_percent(policy_text: str, schema_text: str) -> tuple[str, str]:
    """cancellation-fees with `cancellation.workload_percent` dropped from its facts schema
    (and from the derived value that read it: only the rate the customer confirmed)."""
    import json

    schema = json.loads(schema_text)
    del schema["properties"]["cancellation"]["properties"]["workload_percent"]
    policy = policy_text.replace(
        "coalesce(cancellation.workload_percent, cancellation.rate_confirmation.asked_percent)",
        "cancellation.rate_confirmation.asked_percent",
    )
    assert "cancellation.workload_percent" not in policy
    return policy, json.dumps(schema, ensure_ascii=False, indent=2)


def drop_workload_percent(folder: Path) -> None:
    policy = folder / "cancellation-fees.yaml"
    schema = folder.parent / "schemas" / "cancellation-fees.facts.schema.json"
    text, schema_text = without_workload_percent(
        policy.read_text(encoding="utf-8"), schema.read_text(encoding="utf-8")
    )
    policy.write_text(text, encoding="utf-8")
    schema.write_text(schema_text, encoding="utf-8")
