"""docs/reliability.md is true: its tables are what the engine and the service answer now.

The table of bad policies is written from the fixtures of tests/fixtures/bad (each one's
`# expect:` lines are what `kimari validate` prints, checked by tests/compile), plus the
cases too large to keep as files. The table of bad requests is written from a live
service: each row's request is sent, and the status, the code and the words the client
gets must be the row's.

When a table is out of date the test fails and prints the table as it is now; to write it
into the document:

    KIMARI_WRITE_DOCS=1 .venv/bin/python -m pytest tests/docs/test_reliability.py
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from engine.core.errors import PolicyError
from engine.source.yaml import parse_yaml
from tests import ROOT
from tests.compile.test_bad_policies import CASES, compact_rules, expected
from tests.service.server_process import ADMIN_TOKEN, DEALER_TOKEN, DECIDE_TOKEN, Server

DOC = ROOT / "docs" / "reliability.md"
WRITE = os.environ.get("KIMARI_WRITE_DOCS") == "1"


def section(name: str) -> tuple[int, int]:
    """Where the generated part `name` sits in the document (between its markers)."""
    text = DOC.read_text(encoding="utf-8")
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    start = text.index(begin) + len(begin)
    return start, text.index(end, start)


def check_section(name: str, generated: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = section(name)
    if WRITE:
        DOC.write_text(text[:start] + generated + text[end:], encoding="utf-8")
        return
    assert text[start:end] == generated, f"docs/reliability.md is out of date:\n{generated}"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


# -- bad policies ------------------------------------------------------------------------
def too_large() -> list[str]:
    """A policy of 30,000 rules, written as usual (~1.8 MB): refused before it is parsed."""
    try:
        parse_yaml(compact_rules(30_000), "huge.yaml")
    except PolicyError as exc:
        return [d.render() for d in exc.diagnostics]
    raise AssertionError("a 30,000-rule policy was read")


SYNTHESISED: dict[str, Callable[[], list[str]]] = {
    "a policy of 30,000 rules (1.7 MB)": too_large,
}


def policy_rows() -> list[tuple[str, list[str]]]:
    rows = [(case.stem.replace("-", " "), expected(case)) for case in CASES]
    rows += [(label, make()) for label, make in SYNTHESISED.items()]
    return rows


def policy_table() -> str:
    lines = [
        "| # | bad policy | what `kimari validate` prints (and the service logs) |",
        "|---|---|---|",
    ]
    for number, (label, printed) in enumerate(policy_rows(), 1):
        shown = "<br>".join(f"`{cell(line)}`" for line in printed)
        lines.append(f"| {number} | {cell(label)} | {shown} |")
    return "\n".join(lines) + "\n"


def test_the_document_lists_at_least_34_kinds_of_bad_policy() -> None:
    assert len(policy_rows()) >= 34
    assert all(printed for _, printed in policy_rows())


def test_the_table_of_bad_policies_is_what_validation_prints() -> None:
    check_section("bad-policies", policy_table())


# -- bad requests --------------------------------------------------------------------------
ORDER = orjson.loads((ROOT / "examples" / "order-holds.json").read_bytes())
AT = "2024-10-01T10:00:00+09:00"
FEES = {"reward": 100001, "stage": "application_in_progress", "contract_start": "2024-03-01"}
ESTIMATE = orjson.loads((ROOT / "examples" / "exemption-claims.json").read_bytes())


def decision(facts: Any = ORDER, **more: Any) -> bytes:
    return orjson.dumps({"facts": facts, "at": AT, **more})


@dataclass(frozen=True)
class Bad:
    """One row: a request the service must refuse, as the document describes it."""

    label: str
    method: str
    path: str
    body: bytes | None = None
    token: str | None = DECIDE_TOKEN
    headers: dict[str, str] = field(default_factory=dict)
    # sent first, to put the service in the state the row needs (a decision id used, ...)
    setup: tuple[tuple[str, str, bytes], ...] = ()
    short_by: int = 0  # sent over a raw socket, this many bytes short of its Content-Length


HOLDS = "/v1/decisions/order-holds"
FEES_PATH = "/v1/decisions/cancellation-fees"
EVENTS = "/v1/flows/claim-status/{}/events"
BAD_REQUESTS = [
    Bad("no token", "POST", HOLDS, decision(), token=None),
    Bad("a decide token on an admin route", "PUT", "/v1/data/blacklist", b'{"entries": []}'),
    Bad("an unknown path (/health)", "GET", "/health"),
    Bad("a path not UTF-8 once decoded (an entity id %ff)", "GET", "/v1/flows/claim-status/%ff"),
    Bad("a method the path does not take", "DELETE", "/v1/policies"),
    Bad("an unknown policy", "POST", "/v1/decisions/order-hold", decision()),
    Bad("a flow policy on the decisions path", "POST", "/v1/decisions/claim-status", decision()),
    Bad("no body", "POST", HOLDS),
    Bad("malformed JSON", "POST", HOLDS, b'{"facts": '),
    Bad("NaN, a token JSON has not", "POST", HOLDS, b'{"facts": {"order": {"total": NaN}}}'),
    Bad("a key twice in one object", "POST", HOLDS, b'{"facts": {}, "at": "x", "facts": {}}'),
    Bad(
        "objects and arrays nested 65 deep",
        "POST",
        HOLDS,
        b'{"facts": {"order": ' + b"[" * 63 + b"]" * 63 + b"}}",
    ),
    Bad("a body over max_body_bytes", "POST", HOLDS, b"[" + b"0," * 600_000 + b"0]"),
    Bad("a body shorter than its Content-Length", "POST", HOLDS, decision(), short_by=10),
    Bad("a body that is a list", "POST", HOLDS, b"[1, 2]"),
    Bad("an unknown field beside the facts", "POST", HOLDS, b'{"fact": {}}'),
    Bad(
        "a fact of the wrong type",
        "POST",
        HOLDS,
        decision({"order": {**ORDER["order"], "total": "x"}}),
    ),
    Bad(
        "an integer fact of 1e300",
        "POST",
        FEES_PATH,
        b'{"facts": {"cancellation": {"reward": 1e300, "stage": "initial_only"}}}',
    ),
    Bad(
        "an integer fact of 1e1000000 (int() would write its million digits)",
        "POST",
        FEES_PATH,
        b'{"facts": {"cancellation": {"reward": 1e1000000, "stage": "initial_only"}}}',
    ),
    Bad(
        "a number past Decimal's exponent (1e9999999999999999999)",
        "POST",
        FEES_PATH,
        b'{"facts": {"cancellation": {"reward": 1e9999999999999999999}}}',
    ),
    Bad(
        "an integer fact past 64 bits",
        "POST",
        FEES_PATH,
        b'{"facts": {"cancellation": {"reward": 18446744073709551616, "stage": "initial_only"}}}',
    ),
    Bad("`at` past year 9999 in UTC", "POST", HOLDS, decision(at="9999-12-31T23:59:59-14:00")),
    Bad("`at` before year 1 in UTC", "POST", HOLDS, decision(at="0001-01-01T00:00:00+14:00")),
    Bad("`at` without a UTC offset", "POST", HOLDS, decision(at="2024-10-01T10:00:00")),
    Bad("`at` on a leap second", "POST", HOLDS, decision(at="2016-12-31T23:59:60Z")),
    Bad("settings that are a list", "POST", HOLDS, decision(settings=[None, None])),
    Bad("an unknown setting", "POST", HOLDS, decision(settings={"np_ng_actoin": 1})),
    Bad(
        "dates that leave the years 1-9999 in a derived value",
        "POST",
        "/v1/decisions/exemption-claims",
        decision(
            {"estimate": {**ESTIMATE["estimate"], "received_at": "9999-12-31T10:00:00+09:00"}},
            at="9999-12-31T10:00:00+09:00",
        ),
    ),
    Bad(
        "a batch over max_batch",
        "POST",
        "/v1/decisions/order-holds:batch",
        orjson.dumps({"items": [{"facts": ORDER}] * 101}),
    ),
    Bad(
        "a decision id used before for another request",
        "POST",
        HOLDS,
        decision(decision_id="doc-1", settings={"np_ng_action": 1}),
        setup=(("POST", HOLDS, decision(decision_id="doc-1")),),
    ),
    Bad(
        "a flow event its state does not allow",
        "POST",
        EVENTS.format("DOC-1"),
        orjson.dumps(
            {"event": {"type": "approve"}, "actor": {"id": "op-1", "roles": ["オートックワン"]}}
        ),
    ),
    Bad(
        "a flow event of an unknown type",
        "POST",
        EVENTS.format("DOC-2"),
        b'{"event": {"type": "clam"}, "actor": {"id": "d-1", "roles": ["x"]}}',
    ),
    Bad(
        "flow settings that are a text",
        "POST",
        EVENTS.format("DOC-3"),
        b'{"event": {"type": "claim"}, "actor": {"id": "d-1", "roles": ["x"]}, "settings": "x"}',
    ),
    Bad(
        "an event field in year 1",
        "POST",
        "/v1/flows/lead-follow-up/DOC-4/events",
        orjson.dumps(
            {
                "event": {"type": "send", "sent_at": "0001-01-01T00:00:00+09:00"},
                "actor": {"id": "op-1", "roles": ["オートックワン"]},
            }
        ),
    ),
    Bad(
        "a flow event without its actor",
        "POST",
        EVENTS.format("DOC-6"),
        b'{"event": {"type": "claim"}}',
    ),
    Bad(
        "a flow event from a role its transition does not name",
        "POST",
        EVENTS.format("DOC-7"),
        orjson.dumps(
            {"event": {"type": "claim"}, "actor": {"id": "op-1", "roles": ["オートックワン"]}}
        ),
    ),
    Bad(
        "an actor claiming a role its token may not claim",
        "POST",
        EVENTS.format("DOC-8"),
        orjson.dumps(
            {"event": {"type": "claim"}, "actor": {"id": "x", "roles": ["オートックワン"]}}
        ),
        token=DEALER_TOKEN,
    ),
    Bad(
        "an import of an entity that exists",
        "PUT",
        "/v1/flows/claim-status/DOC-5",
        b'{"state": "requested"}',
        token=ADMIN_TOKEN,
        setup=(("PUT", "/v1/flows/claim-status/DOC-5", b'{"state": "requested"}'),),
    ),
    Bad("an unknown decision id", "GET", "/v1/decisions/no-such-decision"),
    Bad(
        "a data set entry of the wrong type",
        "PUT",
        "/v1/data/blacklist",
        b'{"entries": [{"id": 5}]}',
        token=ADMIN_TOKEN,
    ),
    Bad(
        "a data set replaced by no entries, not said to be meant",
        "PUT",
        "/v1/data/blacklist",
        b'{"entries": []}',
        token=ADMIN_TOKEN,
    ),
    Bad(
        "a bug of ours inside a request (an injected exception)",
        "POST",
        HOLDS,
        decision(),
        headers={"X-Kimari-Test-Fault": "raise"},
    ),
    Bad(
        "a worker that dies mid-request (an injected crash)",
        "POST",
        HOLDS,
        decision(),
        headers={"X-Kimari-Test-Fault": "exit"},
    ),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("reliability")
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp / folder)
    srv = Server(
        tmp / "policies",
        tmp / "var" / "kimari.sqlite3",
        workers=2,
        env={"KIMARI_TEST_FAULTS": "1"},
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


def send(server: Server, bad: Bad) -> tuple[int, dict[str, Any]]:
    headers = {**bad.headers, "Content-Type": "application/json"}
    if bad.token:
        headers["Authorization"] = f"Bearer {bad.token}"
    if bad.short_by:
        return send_short(server.url, bad, headers)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for method, path, body in bad.setup:
            token = {"Authorization": headers.get("Authorization", "")}
            assert client.request(method, path, content=body, headers=token).status_code < 300
        answer = client.request(bad.method, bad.path, content=bad.body, headers=headers)
    return answer.status_code, answer.json()


def send_short(url: str, bad: Bad, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Headers that promise more body than is sent; then wait for the answer."""
    assert bad.body is not None
    where = urlsplit(url)
    head = f"{bad.method} {bad.path} HTTP/1.1\r\nHost: {where.hostname}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(bad.body)}\r\n\r\n"
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(head.encode() + bad.body[: -bad.short_by])
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    status = int(raw.split(b" ", 2)[1])
    return status, orjson.loads(raw.split(b"\r\n\r\n", 1)[1])


def what_the_client_gets(problem: dict[str, Any]) -> str:
    words = problem["detail"]
    first = (problem.get("errors") or [{}])[0]
    if first:
        where = first.get("pointer") or ""
        words += f"; {where + ': ' if where else ''}{first['code']}: {first['message']}"
    if problem.get("hint"):
        words += f" ({problem['hint']})"
    if problem.get("retriable"):
        words += " (retriable)"
    return re.sub(r"\b[0-9a-f]{16}\b", "<error id>", words)


def test_every_bad_request_is_answered_as_the_document_says(server: Server) -> None:
    lines = ["| # | bad request | status | code | what the client gets |", "|---|---|---|---|---|"]
    for number, bad in enumerate(BAD_REQUESTS, 1):
        status, problem = send(server, bad)
        assert problem.get("status") == status, (bad.label, problem)
        assert "Traceback" not in str(problem) and str(server.policies) not in str(problem)
        words = cell(what_the_client_gets(problem))
        lines.append(f"| {number} | {cell(bad.label)} | {status} | `{problem['code']}` | {words} |")
    check_section("bad-requests", "\n".join(lines) + "\n")
    with server.client() as client:
        metrics = client.get("/metrics").text
    restarts = re.search(r"^kimari_worker_restarts_total (\d+)$", metrics, re.M)
    assert restarts is not None and int(restarts.group(1)) <= 1  # the injected crash only
