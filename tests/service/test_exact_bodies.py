"""A body's numbers as written, whatever a float makes of them (1e-400 is no 0.0, 4.9e-324 no
5e-324, 1e400 no infinity refused as JSON), and the decision id's first character named in
the message that refuses it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.server_process import ADMIN_TOKEN, Server, copy_shipped, running


def _body(share: str, **keys: Any) -> bytes:
    facts = (
        '{"uncollected": {"reward": 100000, "documents_guided_on": "2024-01-31", '
        '"booked_on": "2024-02-29", "assignee_share": ' + share + ', "manager_share": 40}}'
    )
    extra = "".join(f', "{k}": "{v}"' for k, v in keys.items())
    return ('{"facts": ' + facts + extra + "}").encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("exact")
    # Python's int-digit limit at its default, whatever this run's environment says
    with running(tmp, policies=copy_shipped(tmp), env={"PYTHONINTMAXSTRDIGITS": "4300"}) as srv:
        yield srv


@pytest.mark.parametrize(
    ("share", "logged"),
    [("1e-400", "1E-400"), ("4.9e-324", "4.9E-324"), ("1.5e-330", "1.5E-330"), ("2.5", "2.5")],
)
def test_a_tiny_number_is_decided_and_logged_as_written(
    server: Server, share: str, logged: str
) -> None:
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body(share),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        stored = client.get(f"/v1/decisions/{answer.json()['decision_id']}").text
    assert re.search(r'"assignee_share":\s*' + re.escape(logged) + r"[,}]", stored), stored


@pytest.mark.parametrize("share", ["1e400", "-1E+400", "1" + "0" * 400])
def test_a_number_past_a_float_is_refused_at_its_pointer_not_as_json(
    server: Server, share: str
) -> None:
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body(share),
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    pointers = [e.get("pointer") for e in answer.json()["errors"]]
    assert pointers == ["/facts/uncollected/assignee_share"]


def test_a_body_past_a_float_that_is_not_json_is_still_a_400(server: Server) -> None:
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=b'{"facts": {"a": 1e400, "b": NaN}}',
            headers={"content-type": "application/json"},
        )
    assert (answer.status_code, answer.json()["code"]) == (400, "json_invalid")


FIRST = "1-128 letters, digits or . _ : -, the first a letter or digit"


@pytest.mark.parametrize("key", ["_abc", "-abc", ".abc", ":abc"])
def test_a_decision_id_must_start_with_a_letter_or_digit_as_its_message_says(
    server: Server, key: str
) -> None:
    with server.client(ADMIN_TOKEN) as client:
        in_body = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body("2.5", decision_id=key),
            headers={"content-type": "application/json"},
        )
        in_header = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body("2.5"),
            headers={"content-type": "application/json", "idempotency-key": key},
        )
        accepted = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body("2.5"),
            headers={"content-type": "application/json", "idempotency-key": "a" + key},
        )
    assert in_body.status_code == 422
    assert in_body.json()["errors"][0]["message"] == f"'decision_id' must be {FIRST}"
    assert in_header.status_code == 422
    assert in_header.json()["detail"] == f"Idempotency-Key must be {FIRST}"
    assert accepted.status_code == 200, accepted.text


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_a_retry_whose_number_differs_past_a_double_is_a_conflict_not_a_replay(
    tmp_path: Any, request: pytest.FixtureRequest, store_kind: str
) -> None:
    """Two shares a double cannot tell apart (the 18th digit) are two requests: a retry
    under the same key with the other one is refused, on both stores; the same body, in any
    spelling of the same number, is answered again."""
    store = (
        request.getfixturevalue("pg_url")
        if store_kind == "postgresql"
        else tmp_path / "var" / "kimari.sqlite3"
    )
    first, other, respelt = "0.123456789012345678", "0.123456789012345679", "1.23456789012345678E-1"
    server = Server(copy_shipped(tmp_path), store).start()
    try:
        with server.client(ADMIN_TOKEN) as client:

            def post(share: str) -> Any:
                return client.post(
                    "/v1/decisions/cancellation-fees",
                    content=_body(share),
                    headers={"content-type": "application/json", "idempotency-key": "k-18"},
                )

            answers = [post(first), post(other), post(respelt), post(first)]
    finally:
        server.stop()
    assert [a.status_code for a in answers] == [200, 409, 200, 200], [a.text for a in answers]
    assert answers[1].json()["code"] == "idempotency_conflict"
    assert answers[2].content == answers[0].content == answers[3].content


@pytest.mark.parametrize("reward", ["1" * 4300, "1" * 4301, "-" + "1" * 5000])
def test_an_integer_too_long_for_python_is_refused_at_its_pointer_as_any_past_64_bits(
    server: Server, reward: str
) -> None:
    """On both sides of int()'s 4,300 digits: the 64-bit rule at the value's pointer (422),
    never a 400 quoting Python's own limit."""
    body = _body("60").replace(b'"reward": 100000', b'"reward": ' + reward.encode())
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert answer.json()["code"] == "facts_invalid"
    assert (error["pointer"], error["code"]) == ("/facts/uncollected/reward", "out_of_range")
    digits = len(reward.lstrip("-"))
    assert error["message"].endswith(f"; got an integer of {digits} digits"), error
    assert "sys." not in answer.text


def test_an_at_past_microseconds_is_cut_in_the_decision_and_kept_in_the_logged_request(
    server: Server,
) -> None:
    """As docs/service.md says: instants count to the microsecond; the request as sent is
    logged byte for byte, so nothing the client sent is lost."""
    with server.client(ADMIN_TOKEN) as client:
        answer = client.post(
            "/v1/decisions/cancellation-fees",
            content=_body("2.5", at="2024-06-01T10:00:00.1234567+09:00"),
            headers={"content-type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        logged = client.get(f"/v1/decisions/{answer.json()['decision_id']}").json()
    assert answer.json()["at"] == logged["at"] == "2024-06-01T10:00:00.123456+09:00"
    assert logged["request"]["at"] == "2024-06-01T10:00:00.1234567+09:00"
