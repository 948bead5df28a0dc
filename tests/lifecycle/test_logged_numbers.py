"""A logged request's numbers are read back as its live decision read them.

The service reads a body with a number that a float cannot hold (a decimal of 21 digits, an
integer past 64 bits) exactly (engine/core/jsonvalue.py `loads_request`). The log keeps the
body as sent; reading it back with orjson alone made such a decimal a float of 17 digits, so
`GET /v1/decisions/{id}` and `kimari log` showed another number than was sent, and a replay
decided on other facts than the live decision: `not_reproduced` for a draft identical to the
published policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine.core.jsonvalue import loads_logged
from engine.lifecycle.workflow import Lifecycle, Rules
from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped, running

SHARE = "24.9994999999999999999"  # FE-5's test case: 21 digits, a float keeps 17
BODY = (
    '{"facts": {"uncollected": {"reward": 100000, "documents_guided_on": "2024-01-31", '
    '"booked_on": "2024-02-29", "assignee_share": ' + SHARE + ', "manager_share": 40}}, '
    '"at": "2024-03-01T10:00:00+09:00", "decision_id": "exact-1"}'
)
SHORT = BODY.replace(SHARE, "25").replace("exact-1", "short-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("exact")
    with running(tmp, policies=copy_shipped(tmp)) as srv:
        yield srv


def _decide(server: Server, body: str) -> dict[str, object]:
    with server.client() as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=body.encode(),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_log_gives_back_the_decimal_as_sent_and_the_decision_it_made(server: Server) -> None:
    outcome = _decide(server, BODY)["outcome"]
    assert outcome["assignee_negative"] == -24999  # used as written: under 24,999.5
    with server.client(ADMIN_TOKEN) as client:
        raw = client.get("/v1/decisions/exact-1").content
    assert f'"assignee_share":{SHARE}' in raw.decode()
    assert b'"assignee_negative":-24999' in raw


def test_a_replay_against_the_published_policy_reproduces_every_logged_decision(
    server: Server,
) -> None:
    _decide(server, SHORT)
    _decide(server, BODY)  # the same id again: the logged answer, nothing new logged
    policy = Path(server.policies) / "cancellation-fees.yaml"
    with Lifecycle(Path(server.store), Rules(workers=1), files=True) as lifecycle:
        report = lifecycle.impact("cancellation-fees", draft=str(policy))
    assert report["replayed"] == 2
    assert (report["not_reproduced"], report["changed"], report["failed"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 24.9994999999999999999}', Decimal("24.9994999999999999999")),
        ('{"a": 1.5}', 1.5),  # short: as orjson reads it, as the live decision did
        ('{"a": 123456789012345678901}', 123456789012345678901),  # past 64 bits, exact
    ],
)
def test_a_logged_text_is_read_with_the_live_reading_of_its_numbers(
    text: str, expected: object
) -> None:
    value = loads_logged(text)["a"]
    assert value == expected and type(value) is type(expected)


def test_an_old_row_nested_past_todays_limit_stays_readable() -> None:
    # logged before requests were refused past 64 levels (up to 255 were decided then)
    value = loads_logged('{"facts": {"a": ' + "[" * 100 + "]" * 100 + "}}")
    node, depth = value["facts"]["a"], 1
    while node:
        node, depth = node[0], depth + 1
    assert depth == 100
