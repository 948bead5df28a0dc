"""Hostile input against the running service: no request answers a server error or kills a worker.

A fuzzer in the suite, against a real `kimari serve` with the shipped policies and two
workers. Its bodies start from real ones (the facts, settings and events of the shipped
policies' YAML test cases) and change one place each: a value replaced by an extreme date
(years 1 and 9999, offsets of ±14:00, a leap second as text, hour 24), an extreme number
(integers past 64 bits, 1e308, -0, NaN and Infinity as text and as bare tokens) or a value of
the wrong shape (a list, a text, null where an object belongs). They go to every endpoint
that reads a body or a path parameter, decisions and flows alike.

What must hold: every answer is below 500 (a 4xx is a problem+json), and the worker
processes are the ones that started: /metrics names each worker's pid and counts restarts.
A request may be refused; it may not cost a worker. Bounded: a fixed number of examples,
no deadline, no example database; about half a minute on two cores.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.jsonvalue import to_json_value
from engine.project.project import case_files
from engine.testing.cases import load_cases
from tests import ROOT
from tests.service.server_process import ADMIN_TOKEN, Server
from tests.strategies import shipped_project

EXAMPLES = 300


class Raw:
    """A JSON token written as it is: numbers no Python float can hold, bare NaN."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text})"


def encode(value: Any) -> bytes:
    """JSON text of `value`, with Raw tokens as written (json.dumps would refuse or round them)."""
    tokens: dict[str, str] = {}

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            key = f"\x00raw{len(tokens)}\x00"
            tokens[key] = item.text
            return key
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        if isinstance(item, Decimal):
            return float(item)
        return to_json_value(item)

    text = json.dumps(mark(value), ensure_ascii=False)
    for key, raw in tokens.items():
        text = text.replace(json.dumps(key), raw)
    return text.encode()


# -- what the fuzzer puts in -------------------------------------------------------------
EDGE_TEXTS = [
    "0001-01-01",
    "9999-12-31",
    "0000-01-01",
    "10000-01-01",
    "2024-02-30",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00Z",
    "0001-01-01T09:00:00+09:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T14:59:59Z",
    "9999-12-31T15:00:00Z",
    "9999-12-31T23:59:59.999999+09:00",
    "9999-12-31T24:00:00+09:00",
    "2024-12-31T24:00:00+09:00",
    "2016-12-31T23:59:60Z",
    "2016-12-31T23:59:60+09:00",
    "2024-01-01T00:00:00+24:00",
    "2024-01-01T00:00:00.1234567891234+09:00",
    "NaN",
    "Infinity",
    "-0",
    "1e999",
    "",
    "x" * 5000,
]
EDGE_NUMBERS = [
    Raw("9223372036854775807"),
    Raw("9223372036854775808"),
    Raw("-9223372036854775808"),
    Raw("-9223372036854775809"),
    Raw("18446744073709551616"),
    Raw("1" + "0" * 30),
    Raw("-" + "9" * 400),
    Raw("1e308"),
    Raw("-1e308"),
    Raw("1e300"),
    Raw("5e-324"),
    Raw("1e-308"),
    Raw("-0"),
    Raw("-0.0"),
    Raw("0.1"),
    Raw("1E+2"),
    Raw("NaN"),
    Raw("Infinity"),
]
SHAPES: list[Any] = [None, [], [None, None], "x", "", 0, True, {}, {"": None}, [{}], {"a": []}]


def _dates() -> st.SearchStrategy[str]:
    years = st.sampled_from([1, 2, 1969, 1970, 2024, 9998, 9999])
    offsets = st.sampled_from(["Z", "+14:00", "-14:00", "+09:00", "-00:00", "+23:59"])
    return st.builds(
        lambda y, m, d, h, o: f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:00:00{o}",
        years,
        st.sampled_from([1, 2, 12]),
        st.sampled_from([1, 28, 29, 31]),
        st.sampled_from([0, 9, 15, 23, 24]),
        offsets,
    ) | st.builds(lambda y: f"{y:04d}-12-31", years)


EXTREMES = st.one_of(
    st.sampled_from(EDGE_TEXTS),
    _dates(),
    st.sampled_from(EDGE_NUMBERS),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda n: Raw(str(n))),
    st.sampled_from(SHAPES),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: replace(v, rest, new) if k == head else v for k, v in value.items()}
    return [replace(v, rest, new) if i == head else v for i, v in enumerate(value)]


@st.composite
def mutated(draw: st.DrawFn, bases: list[Any]) -> Any:
    """One of `bases` with one place changed (or, now and then, a key added)."""
    base = draw(st.sampled_from(bases))
    places = list(paths(base))
    path = draw(st.sampled_from(places))
    if draw(st.integers(0, 9)) == 0:
        parent = [p for p in places if isinstance(_at(base, p), dict)]
        where = draw(st.sampled_from(parent))
        return replace(base, where, {**_at(base, where), "extra": draw(EXTREMES)})
    return replace(base, path, draw(EXTREMES))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


# -- the real bodies they start from -----------------------------------------------------
def _bases() -> tuple[dict[str, list[Any]], dict[str, list[Any]], dict[str, list[Any]]]:
    project = shipped_project()
    decisions: dict[str, list[Any]] = {}
    events: dict[str, list[Any]] = {}
    imports: dict[str, list[Any]] = {}
    for path in case_files(ROOT / "policies"):
        for case in load_cases(path, project):
            spec = case.spec
            if case.policy.kind == "decision":
                body = {"facts": spec.get("facts") or {}}
                body.update({k: spec[k] for k in ("at", "settings") if spec.get(k) is not None})
                decisions.setdefault(case.policy.id, []).append(body)
                continue
            for step in spec["steps"]:
                body = {"event": step["event"]}
                at = step.get("at", spec.get("at"))
                if at is not None:
                    body["at"] = at
                body.update({k: step[k] for k in ("settings", "event_id") if step.get(k)})
                events.setdefault(case.policy.id, []).append(body)
            seed = spec.get("entity")
            if seed and seed.get("state"):
                state = {"state": seed["state"], "facts": seed.get("facts") or {}}
                imports.setdefault(case.policy.id, []).append(state)
    return decisions, events, imports


DECISIONS, EVENTS, IMPORTS = _bases()
ENTITY_IDS = ["E-1", "x" * 200, "日本語", "a.b", "%2e%2e", "-", "0"]
_serial = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp / folder)
    srv = Server(tmp / "policies", tmp / "var" / "kimari.sqlite3", workers=2)
    try:
        LOG[:] = [srv.start().errors]
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as client:
        yield client


@pytest.fixture(scope="module")
def workers(admin: httpx.Client) -> Iterator[dict[str, str]]:
    """The workers' pids before the fuzzing; after it, they must be the same processes."""
    before = worker_pids(admin)
    assert len(before) == 2
    yield before
    assert worker_pids(admin) == before
    assert restarts(admin) == 0


def worker_pids(client: httpx.Client) -> dict[str, str]:
    text = client.get("/metrics").text
    return dict(re.findall(r'kimari_worker_info\{worker="(\d+)",pid="(\d+)"\} 1', text))


def restarts(client: httpx.Client) -> int:
    text = client.get("/metrics").text
    return int(re.search(r"^kimari_worker_restarts_total (\d+)$", text, re.M).group(1))


SERVER_ERRORS: list[str] = []
LOG: list[list[str]] = []  # the server's log lines, to show the trace of an internal error


def logged_trace(answer: httpx.Response) -> str:
    error_id = answer.json().get("error_id") if answer.text.startswith("{") else None
    lines = LOG[0] if LOG else []
    start = next((i for i, line in enumerate(lines) if error_id and error_id in line), None)
    return "" if start is None else "\n".join(lines[start : start + 40])


def send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    content = encode(body)
    answer = client.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )
    if answer.status_code >= 500:
        SERVER_ERRORS.append(
            f"{method} {path} {content[:300]!r}: {answer.text[:300]}\n{logged_trace(answer)}"
        )
    elif answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        assert "Traceback" not in answer.text
    return answer


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(data=st.data())
def test_no_decision_request_answers_a_server_error(
    admin: httpx.Client, workers: dict[str, str], data: st.DataObject
) -> None:
    policy = data.draw(st.sampled_from(sorted(DECISIONS)))
    body = data.draw(mutated(DECISIONS[policy]))
    if data.draw(st.booleans()):
        send(admin, "POST", f"/v1/decisions/{policy}", body)
    else:
        send(admin, "POST", f"/v1/decisions/{policy}:batch", {"items": [body, body]})
    assert SERVER_ERRORS == []


@FUZZ
@given(data=st.data())
def test_no_flow_event_answers_a_server_error(
    admin: httpx.Client, workers: dict[str, str], data: st.DataObject
) -> None:
    policy = data.draw(st.sampled_from(sorted(EVENTS)))
    entity = data.draw(st.sampled_from([*ENTITY_IDS, f"F-{next(_serial)}"]))
    body = data.draw(mutated(EVENTS[policy]))
    send(admin, "POST", f"/v1/flows/{policy}/{entity}/events", body)
    assert SERVER_ERRORS == []


@FUZZ
@given(data=st.data())
def test_no_flow_import_answers_a_server_error(
    admin: httpx.Client, workers: dict[str, str], data: st.DataObject
) -> None:
    policy = data.draw(st.sampled_from(sorted(IMPORTS)))
    entity = f"I-{next(_serial)}"
    body = data.draw(mutated(IMPORTS[policy]))
    answer = send(admin, "PUT", f"/v1/flows/{policy}/{entity}", body)
    if answer.status_code == 201:  # imported: the next events, history and state must answer
        event = data.draw(st.sampled_from(EVENTS[policy]))
        send(admin, "POST", f"/v1/flows/{policy}/{entity}/events", event)
        for suffix in ("", "/history?refusals=true"):
            got = admin.get(f"/v1/flows/{policy}/{entity}{suffix}")
            assert got.status_code == 200, got.text
    assert SERVER_ERRORS == []


@FUZZ
@given(data=st.data())
def test_no_envelope_of_the_wrong_shape_answers_a_server_error(
    admin: httpx.Client, workers: dict[str, str], data: st.DataObject
) -> None:
    body = data.draw(st.sampled_from(SHAPES) | EXTREMES)
    method, path = data.draw(
        st.sampled_from(
            [
                ("POST", "/v1/decisions/order-holds"),
                ("POST", "/v1/decisions/order-holds:batch"),
                ("POST", "/v1/flows/claim-status/S-1/events"),
                ("PUT", "/v1/flows/claim-status/S-2"),
                ("PUT", "/v1/data/blacklist"),
            ]
        )
    )
    send(admin, method, path, body)
    assert SERVER_ERRORS == []


PATH_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=80)


@FUZZ
@given(data=st.data())
def test_no_path_parameter_answers_a_server_error(
    admin: httpx.Client, workers: dict[str, str], data: st.DataObject
) -> None:
    name = quote(data.draw(PATH_TEXT | st.sampled_from(ENTITY_IDS)), safe="")
    policy = quote(data.draw(st.sampled_from(sorted(EVENTS)) | PATH_TEXT), safe="")
    path = data.draw(
        st.sampled_from(
            [
                f"/v1/flows/{policy}/{name}",
                f"/v1/flows/{policy}/{name}/history?refusals=true",
                f"/v1/decisions/{name}",
                f"/v1/policies/{name}",
                f"/v1/data/{name}",
            ]
        )
    )
    answer = admin.get(path)
    if answer.status_code >= 500:
        SERVER_ERRORS.append(f"GET {path}: {answer.text[:300]}\n{logged_trace(answer)}")
    assert SERVER_ERRORS == []
