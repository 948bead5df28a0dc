"""Property-based run of schemathesis against the live service's /openapi.json: no 5xx.

Each operation of the document (one decision path per policy, with its facts schema; one
data path per data set, with its entry schema; for the shipped flow policies, one event,
entity, import and history path each, with the event's schema) gets schema-conforming and
schema-violating requests; every answer must be below 500, and every error a problem+json.
Bounded: a fixed number of examples per operation and mode, no deadline, no example
database.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests import ROOT
from tests.service.server_process import ADMIN_TOKEN, Server, running

EXAMPLES = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    with running(tmp, workers=1, env={"KIMARI_MAX_BATCH": "5"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis-flows")
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp / folder)
    srv = Server(tmp / "policies", tmp / "var" / "kimari.sqlite3", workers=1)
    try:
        yield srv.start()
    finally:
        srv.stop()


def test_no_operation_answers_a_server_error_to_generated_requests(server: Server) -> None:
    statuses = run_schemathesis(server, lambda path: True, at_least=10)
    assert statuses.get(200, 0) > 20 and statuses.get(422, 0) > 5, statuses  # both sides ran


def test_no_flow_operation_answers_a_server_error_to_generated_requests(shipped: Server) -> None:
    statuses = run_schemathesis(shipped, lambda path: path.startswith("/v1/flows/"), at_least=12)
    assert statuses.get(200, 0) > 10 and statuses.get(422, 0) > 5, statuses


def run_schemathesis(
    server: Server, wanted: Callable[[str], bool], at_least: int
) -> dict[int, int]:
    """Every operation whose path is `wanted`, both modes; the statuses answered, by count."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    document = httpx.get(f"{server.url}/openapi.json", headers=auth).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=server.url)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if wanted(op.path)]
    assert len(operations) >= at_least
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                answer = case.call(headers=auth)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.path}: {answer.status_code} {answer.text[:300]}"
                    )
                if answer.status_code >= 400:
                    kind = answer.headers.get("content-type")
                    kind = kind[0] if isinstance(kind, list) else kind
                    assert kind == "application/problem+json", case.path

            try:
                check()
            except Unsatisfiable:  # nothing to violate (e.g. GET /healthz has no inputs)
                assert mode is GenerationMode.NEGATIVE
    assert failures == []
    return statuses
