"""The route table: what the front matches, the scope it asks for, what it forwards to a
worker, what a worker handles and what the OpenAPI document lists all come from one table."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from engine.project.registry import apply_data, compile_set
from engine.service import routes
from engine.service.config import load_config
from engine.service.http import DATA_CHANGES, App
from engine.service.ipc import Op
from engine.service.openapi import openapi_document
from engine.service.routes import ADMIN, DECIDE, PUBLISH, ROUTES, By, NoMethod, NoRoute, find
from engine.service.worker import Worker
from engine.store.versions import Store
from tests import ROOT, WORKER_STATS

DECIDER, ADMINISTRATOR = "decide-secret-1", "admin-secret-2"


@pytest.mark.parametrize(
    ("method", "path", "op", "params"),
    [
        ("POST", "/v1/decisions/np-check", Op.DECIDE, {"policy": "np-check"}),
        ("POST", "/v1/decisions/np-check:batch", Op.BATCH, {"policy": "np-check"}),
        ("POST", "/v1/decisions/:batch", Op.BATCH, {"policy": ""}),  # the worker says 404
        ("GET", "/v1/decisions/d-1", Op.GET_DECISION, {"decision_id": "d-1"}),
        ("GET", "/v1/decisions/d-1/", Op.GET_DECISION, {"decision_id": "d-1"}),
        ("GET", "/v1/policies", Op.POLICIES, {}),
        ("GET", "/v1/policies/np-check", Op.POLICY, {"policy_id": "np-check"}),
        ("DELETE", "/v1/data/blacklist", Op.DELETE_DATA, {"name": "blacklist"}),
        ("PUT", "/v1/flows/f/e 1", Op.FLOW_IMPORT, {"policy": "f", "entity_id": "e 1"}),
        ("POST", "/v1/flows/f/e/events", Op.FLOW_EVENT, {"policy": "f", "entity_id": "e"}),
        ("GET", "/v1/flows/f/e/history", Op.FLOW_HISTORY, {"policy": "f", "entity_id": "e"}),
        ("POST", "/v1/reload", Op.RELOAD, {}),
        ("GET", "/openapi.json", Op.OPENAPI, {}),
        ("GET", "/metrics", Op.STATS, {}),
        ("GET", "/healthz", None, {}),
        ("GET", "/v1/decisions", Op.LIST_DECISIONS, {}),
        ("GET", "/v1/data", Op.LIST_DATA, {}),
        ("GET", "/v1/policies/p/source", Op.POLICY_SOURCE, {"policy_id": "p"}),
        ("GET", "/v1/policies/p/examples", Op.POLICY_EXAMPLES, {"policy_id": "p"}),
        ("GET", "/v1/policies/p/stats", Op.POLICY_STATS, {"policy_id": "p"}),
        ("GET", "/", None, {}),
        ("GET", "/console", None, {}),
        ("GET", "/console/", None, {}),
        ("GET", "/console/assets/console-x1.js", None, {"asset": "console-x1.js"}),
        ("GET", "/docs", None, {}),
    ],
)
def test_a_path_finds_its_route_and_parameters(
    method: str, path: str, op: Op | None, params: dict[str, str]
) -> None:
    route, found = find(method, path)
    assert (route.op, found) == (op, params)


def test_a_path_found_again_is_the_same_route_with_parameters_of_its_own() -> None:
    # find() remembers what it matched; a caller adding to the parameters must not change
    # what the next request gets
    first_route, first = find("POST", "/v1/decisions/np-check")
    first["explain"] = "1"
    again_route, again = find("POST", "/v1/decisions/np-check")
    assert again_route is first_route
    assert again == {"policy": "np-check"}


def test_the_remembered_paths_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "FOUND_MAX", 8)
    monkeypatch.setattr(routes, "_FOUND", {})
    for n in range(50):  # decision ids: a new path each
        route, params = find("GET", f"/v1/decisions/d-{n}")
        assert (route.op, params) == (Op.GET_DECISION, {"decision_id": f"d-{n}"})
        assert len(routes._FOUND) <= 8


def test_a_long_path_is_found_but_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "_FOUND", {})
    for size in (routes.PATH_KEPT_MAX - len("/v1/decisions/"), routes.PATH_KEPT_MAX):
        decision_id = "d" * size
        route, params = find("GET", f"/v1/decisions/{decision_id}")
        assert (route.op, params) == (Op.GET_DECISION, {"decision_id": decision_id})
    assert [len(path) for _, path in routes._FOUND] == [routes.PATH_KEPT_MAX]


@pytest.mark.parametrize(
    "path",
    [
        "/v0",
        "/v1",
        "/v2/policies",
        "/v1/decisions/a/b",
        "/v1/flows/f//events",
        "/v1/flows/f/e/moves",
        "/healthz/x",
        "/console/assets",
        "/console/assets/a/b.js",
        "/console/assets/../../pyproject.toml",
        "/console/index.html",
        "/docs/x",
    ],
)
def test_a_path_no_route_has_is_not_found(path: str) -> None:
    with pytest.raises(NoRoute):
        find("GET", path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/decisions/np-check:batch", {"POST"}),  # not GET of a decision id
        ("DELETE", "/v1/decisions/x", {"GET", "POST"}),
        ("POST", "/v1/data/x", {"GET", "PUT", "DELETE"}),
        ("GET", "/v1/reload", {"POST"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/v1/flows/f/e", {"GET", "PUT"}),
    ],
)
def test_a_method_the_path_does_not_offer_lists_those_it_does(
    method: str, path: str, allowed: set[str]
) -> None:
    with pytest.raises(NoMethod) as caught:
        find(method, path)
    assert caught.value.allowed == allowed


def test_writes_need_admin_the_lifecycle_needs_publish_probes_need_nothing_the_rest_decide() -> (
    None
):
    scopes = {(r.method, r.path): r.scope for r in ROUTES}
    assert {k for k, v in scopes.items() if v == ADMIN} == {
        ("POST", "/v1/reload"),
        ("PUT", "/v1/data/{name}"),
        ("DELETE", "/v1/data/{name}"),
        ("PUT", "/v1/flows/{policy}/{entity_id}"),
        ("GET", "/v1/decisions"),  # the log holds every caller's facts
    }
    assert {k for k, v in scopes.items() if v is None} == {
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        # the console's pages and files: the page asks for a token before any API call
        ("GET", "/"),
        ("GET", "/console"),
        ("GET", "/console/assets/{asset}"),
        ("GET", "/docs"),
    }
    publish = {k for k, v in scopes.items() if v == PUBLISH}
    assert publish and all(
        "/revisions" in p
        or p.startswith(("/v1/jobs", "/v1/audit"))
        or p.endswith(("/diff", "/impact", "/rollback", "/audit", "/validate", "/tests"))
        for _, p in publish
    )
    assert all(v == DECIDE for v in scopes.values() if v not in (ADMIN, PUBLISH, None))


def test_every_frame_operation_has_one_route_but_the_fronts_own() -> None:
    ops = [r.op for r in ROUTES if r.op is not None]
    fronts = [Op.POLL, Op.DATA_SYNC]
    assert sorted([*ops, *fronts]) == sorted(Op) and routes.worker_ops() == frozenset(Op)


def test_the_worker_has_one_handler_per_operation_of_the_table() -> None:
    operations = ("revisions", "create", "revision", "submit", "reject", "diff", "impact")
    checks = ("validate", "run_tests")
    lifecycle = SimpleNamespace(
        **dict.fromkeys((*operations, *checks, "jobs", "job", "cancel", "audit"))
    )
    stub = SimpleNamespace(
        service=None,
        flows=None,
        lifecycle=lifecycle,
        reads=None,
        _decide=None,
        _openapi=None,
        _approve=None,
        _rollback=None,
        _put_data=None,
        _reset_data=None,
        _sync_data=None,
        reload_now=None,
        stats=None,
        store=None,
    )
    stub._lifecycle_handlers = lambda: Worker._lifecycle_handlers(stub)  # type: ignore[arg-type]
    assert Worker._handlers(stub).keys() == routes.worker_ops()  # type: ignore[arg-type]


def test_the_service_docs_list_every_route() -> None:
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([A-Z]+) (/[^`]*)` \|", text, re.MULTILINE))

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", path)

    assert {(m, shape(p)) for m, p in documented} == {(r.method, shape(r.path)) for r in ROUTES}


# -- the front, driven in-process over a pool that records what it is asked -------------
STATS = orjson.dumps(WORKER_STATS)


class RecordingPool:
    ready_count = 1
    restarts = 0

    def __init__(self) -> None:
        self.calls: list[tuple[int, Any, bytes]] = []
        self.on_event: Any = None

    async def call(self, op: int, meta: Any = None, body: bytes = b"") -> Any:
        self.calls.append((op, meta, body))
        return 200, {}, b"{}"

    async def call_all(self, op: int, meta: Any = None, body: bytes = b"") -> list[Any]:
        self.calls.append((op, meta, body))
        return [(200, {}, STATS if op == Op.STATS else b"{}")]


def request(
    app: App, method: str, path: str, token: str | None, body: bytes = b"", query: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [*headers, (b"idempotency-key", b"k-1")],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


@pytest.fixture
def front() -> tuple[App, RecordingPool]:
    config = load_config(env={"KIMARI_TOKENS": f"{DECIDER}:decide,{ADMINISTRATOR}:admin"})
    pool = RecordingPool()
    return App(config, pool), pool  # type: ignore[arg-type]


def test_the_front_forwards_each_worker_route_with_its_parameters_flags_and_body(
    front: tuple[App, RecordingPool],
) -> None:
    app, pool = front
    status, _, _ = request(app, "POST", "/v1/decisions/np-check", DECIDER, b"{}", b"explain=1")
    assert status == 200
    assert pool.calls[-1] == (
        Op.DECIDE,
        {"policy": "np-check", "explain": True, "key": "k-1"},
        b"{}",
    )
    request(app, "GET", "/v1/flows/f/e/history", DECIDER, query=b"refusals=true")
    assert pool.calls[-1] == (
        Op.FLOW_HISTORY,
        {"policy": "f", "entity_id": "e", "refusals": True},
        b"",
    )
    request(app, "GET", "/v1/policies", DECIDER, b"ignored")
    assert pool.calls[-1] == (Op.POLICIES, None, b"")  # a GET sends no body
    query = "policy=order-holds&outcome=held%3Dtrue&since=2024-10-01&limit=5&limit=7"
    request(app, "GET", "/v1/decisions", ADMINISTRATOR, query=query.encode())
    assert pool.calls[-1] == (  # the table's text parameters, the last of each
        Op.LIST_DECISIONS,
        {"policy": "order-holds", "outcome": "held=true", "since": "2024-10-01", "limit": "7"},
        b"",
    )


@pytest.mark.parametrize(
    ("path", "query", "flag"),
    [
        ("/v1/decisions/np-check", b"explain=YES", True),
        ("/v1/decisions/np-check", b"explain=0", False),
        ("/v1/flows/f/e/history", b"refusals=false", False),
    ],
)
def test_a_flag_is_read_from_its_spellings_of_true_and_false(
    front: tuple[App, RecordingPool], path: str, query: bytes, flag: bool
) -> None:
    app, pool = front
    method = "POST" if "decisions" in path else "GET"
    status, _, _ = request(app, method, path, DECIDER, b"{}", query)
    assert status == 200 and flag in pool.calls[-1][1].values()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "query", "parameter", "hint"),
    [
        ("/v1/flows/f/e/history", b"refusals=banana", "refusals", None),  # was read as false
        ("/v1/flows/f/e/history", b"refusal=true", "refusal", "did you mean 'refusals'?"),
        ("/v1/decisions/np-check", b"explian=1", "explian", "did you mean 'explain'?"),
        ("/v1/policies", b"x=1", "x", None),  # a path that reads none
    ],
)
def test_a_query_parameter_the_path_does_not_read_or_a_flag_that_is_no_boolean_is_a_422(
    front: tuple[App, RecordingPool], path: str, query: bytes, parameter: str, hint: str | None
) -> None:
    app, pool = front
    calls = len(pool.calls)
    method = "POST" if "decisions" in path else "GET"
    status, _, body = request(app, method, path, DECIDER, b"{}", query)
    answer = orjson.loads(body)
    assert (status, answer["code"], answer["parameter"]) == (422, "query_invalid", parameter)
    assert answer.get("hint") == hint
    assert len(pool.calls) == calls  # no worker was asked


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_the_front_asks_each_route_for_the_scope_the_table_names(
    front: tuple[App, RecordingPool], route: routes.Route
) -> None:
    app, pool = front
    path = route.path.replace("{", "").replace("}", "")  # a parameter's name as its value
    allowed = 0
    for token, scope in ((None, None), (DECIDER, DECIDE), (ADMINISTRATOR, ADMIN)):
        status, _, body = request(app, route.method, path, token, b"{}")
        if route.scope in (None, scope):
            allowed += 1
            # the console's files: a redirect, a page, or (no such asset, nothing built) a 404
            assert status == 200 or (route.by is By.FILES and status in (302, 404)), body
        else:
            code = "unauthorized" if token is None else "forbidden"
            assert (status, orjson.loads(body)["code"]) == (401 if token is None else 403, code)
    # a data set's change is answered once every worker serves it: the front asks them
    asked = [route.op, Op.DATA_SYNC] if route.op in DATA_CHANGES else [route.op]
    assert [op for op, _, _ in pool.calls] == (asked * allowed if route.op else [])


def test_the_front_answers_healthz_with_its_status_only(
    front: tuple[App, RecordingPool],
) -> None:
    app, pool = front
    assert request(app, "GET", "/healthz", None)[2] == b'{"status":"ok"}'
    assert pool.calls == []


def test_the_front_refuses_a_table_row_it_cannot_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = routes.Route("GET", "/v1/new", DECIDE, None, "new", "New", by=By.FRONT)
    monkeypatch.setattr(routes, "ROUTES", (*ROUTES, extra))
    with pytest.raises(RuntimeError, match="new"):
        App(load_config(env={}), RecordingPool())  # type: ignore[arg-type]


# -- the OpenAPI document -----------------------------------------------------------------
@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    policy_set = compile_set(ROOT / "policies", None)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "kimari.sqlite3")
        try:
            snapshot = apply_data(
                policy_set,
                store.current_data(),
                lambda name, version: None,
                None,
                1,
                store.data_generation(),
            )
        finally:
            store.close()
    out = openapi_document(snapshot, max_batch=5)
    out["x-kinds"] = {pid: p.kind for pid, p in snapshot.policies.items()}
    out["x-data"] = sorted(snapshot.policy_set.specs)
    return out


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split("[-_]", name))


def test_the_openapi_document_lists_every_route_of_the_table(document: dict[str, Any]) -> None:
    kinds: dict[str, str] = document["x-kinds"]
    for route in ROUTES:
        if not route.api:
            assert route.path not in document["paths"]
            continue
        if route.each is None:
            ids = {route.operation_id: route.path}
        else:
            names = (
                document["x-data"]
                if route.each == "data"
                else sorted(pid for pid, kind in kinds.items() if kind == route.each)
            )
            assert names, f"the shipped policies have no {route.each} for {route.path}"
            param = "{" + route.params[0] + "}"
            camel = "{" + route.params[0].capitalize() + "}"
            ids = {
                route.operation_id.replace(camel, _camel(n)): route.path.replace(param, n)
                for n in names
            }
        for operation_id, path in ids.items():
            operation = document["paths"][path][route.method.lower()]
            assert operation["operationId"] == operation_id
            assert re.fullmatch(r"[a-z][A-Za-z0-9]*", operation_id), operation_id
            wanted = [{"bearer": []}] if route.scope is not None else []
            assert operation["security"] == wanted
            if route.scope == ADMIN:
                assert operation["summary"].endswith("(admin)")
    listed = sum(len(item) for item in document["paths"].values())
    assert listed == sum(
        1
        if r.each is None
        else len(document["x-data"])
        if r.each == "data"
        else sum(kind == r.each for kind in kinds.values())
        for r in ROUTES
        if r.api
    )  # and nothing else


def test_the_reload_route_is_documented(document: dict[str, Any]) -> None:
    reload = document["paths"]["/v1/reload"]["post"]
    assert reload["operationId"] == "reload" and reload["security"] == [{"bearer": []}]


def test_an_unknown_action_on_a_revision_is_no_path_and_a_misspelt_one_is_suggested() -> None:
    """8:frobnicate was taken as the number of GET .../revisions/{number}: a POST got 405."""
    with pytest.raises(routes.NoRoute):
        routes.find("POST", "/v1/policies/p/revisions/8:frobnicate")
    assert routes.suggest("/v1/policies/p/revisions/8:aprove") == (
        "did you mean '/v1/policies/p/revisions/8:approve'?"
    )
    assert routes.find("GET", "/v1/policies/p/revisions/8")[1] == {"policy_id": "p", "number": "8"}


@pytest.mark.parametrize("raw", [b"/v1/policies/a%2Fb", b"/v1/policies/a%2fb"])
def test_no_route_is_offered_filled_with_the_halves_of_an_escaped_slash(raw: bytes) -> None:
    assert routes.suggest("/v1/policies/a/b", raw) is None


def test_a_path_sent_with_its_slashes_keeps_its_hint() -> None:
    hint = "did you mean '/v1/policies/a/diff'?"
    assert routes.suggest("/v1/policies/a/dif", b"/v1/policies/a/dif") == hint
    assert routes.suggest("/v1/policies/a/dif") == hint  # no raw path: as before
    assert routes.suggest("/v1/policies/a%2Fb/dif", b"/v1/policies/a%252Fb/dif") is not None
