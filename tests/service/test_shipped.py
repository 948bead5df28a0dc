"""Every YAML test case of every shipped policy, through HTTP against a running service.

The cases in policies/*.tests.yaml are what policy editors read and run with
`kimari test` in-process; here the same cases go through `kimari serve`: the
decision policies through `POST /v1/decisions/{policy}`, the flow policies
step by step through `POST /v1/flows/{policy}/{entity}/events`. So every
rulebook ID that a case covers is also covered at the API level, and the
service answers exactly what the engine decides.

A case that replaces a data set does so through the API too (`PUT
/v1/data/{name}` with the admin token, `DELETE` to return to the file's
content), so the cases run one after the other on one worker. A flow case
that starts from a stored entity imports it first (`PUT
/v1/flows/{policy}/{entity}`, admin), as a case under way elsewhere would be.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from engine.core.jsonvalue import dumps, to_json_value
from engine.project.project import case_files
from engine.testing.cases import Case, load_cases, same_value
from tests import ROOT
from tests.service.server_process import ADMIN_TOKEN, DEALER_TOKEN, NO_ROLES_TOKEN, Server
from tests.strategies import shipped_project

JSON = {"content-type": "application/json"}


def wire(value: Any) -> bytes:
    """A YAML value as a client sends it: decimals as the JSON numbers written in the YAML
    (every digit, not a float's), dates as text."""
    return dumps(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return to_json_value(value)


def api_cases(kind: str) -> list[Case]:
    project = shipped_project()
    cases = [c for path in case_files(ROOT / "policies") for c in load_cases(path, project)]
    return [c for c in cases if c.policy.kind == kind]


DECISION_CASES = api_cases("decision")
FLOW_CASES = api_cases("flow")
_entities = itertools.count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("shipped")
    for folder in ("policies", "schemas"):
        shutil.copytree(ROOT / folder, tmp / folder)
    srv = Server(tmp / "policies", tmp / "var" / "kimari.sqlite3", workers=1)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def data_sets(server: Server) -> Iterator[DataSets]:
    with server.client(ADMIN_TOKEN) as admin:
        sets = DataSets(admin)
        yield sets
        sets.use({})


class DataSets:
    """Puts the data sets a case replaces, and resets the ones the previous case replaced."""

    def __init__(self, admin: httpx.Client) -> None:
        self.admin = admin
        self.current: dict[str, Any] = {}

    def use(self, wanted: dict[str, Any]) -> None:
        for name in sorted(set(self.current) | set(wanted)):
            if name in wanted and self.current.get(name) != wanted[name]:
                # a case's empty set is meant: said so, as a client must (else data_empty)
                body = {"entries": to_json_value(wanted[name]), "allow_empty": True}
                answer = self.admin.put(f"/v1/data/{name}", json=body)
                assert answer.status_code == 200, answer.text
            elif name not in wanted:
                assert self.admin.delete(f"/v1/data/{name}").status_code == 200
        self.current = dict(wanted)


def test_most_cases_can_be_run_through_the_api() -> None:
    assert len(DECISION_CASES) >= 150
    assert len(FLOW_CASES) >= 50


@pytest.mark.parametrize(
    "case", DECISION_CASES, ids=[f"{c.policy.id}: {c.name}" for c in DECISION_CASES]
)
def test_decision_case_over_http(client: httpx.Client, data_sets: DataSets, case: Case) -> None:
    spec, expect = case.spec, case.spec.get("expect", {})
    data_sets.use(spec.get("data") or {})
    body: dict[str, Any] = {"facts": spec.get("facts") or {}}
    for key in ("at", "settings"):
        if spec.get(key) is not None:
            body[key] = spec[key]
    answer = client.post(f"/v1/decisions/{case.policy.id}", content=wire(body), headers=JSON)
    if "error" in expect:
        assert answer.status_code == 422, answer.text
        errors = answer.json()["errors"]
        assert expect["error"]["code"] in {e["code"] for e in errors} | {answer.json()["code"]}
        if "pointer" in expect["error"]:
            assert expect["error"]["pointer"] in {e.get("pointer") for e in errors}
        return
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert decision["policy"]["revision"] == case.policy.revision
    for name, value in (expect.get("outcome") or {}).items():
        assert same_value(value, decision["outcome"][name]), (name, decision["outcome"][name])
    if "fired" in expect:
        assert sorted(decision["fired"]) == sorted(expect["fired"])
    assert not set(expect.get("not_fired", [])) & set(decision["fired"])
    remaining = list(decision["reasons"])
    for wanted in expect.get("reasons", []):
        match = next((r for r in remaining if same_value(wanted, r)), None)
        assert match is not None, (wanted, [r["code"] for r in decision["reasons"]])
        remaining.remove(match)


@pytest.mark.parametrize("case", FLOW_CASES, ids=[f"{c.policy.id}: {c.name}" for c in FLOW_CASES])
def test_flow_case_over_http(client: httpx.Client, data_sets: DataSets, case: Case) -> None:
    data_sets.use(case.spec.get("data") or {})
    entity = f"api-{next(_entities)}"
    path = f"/v1/flows/{case.policy.id}/{entity}"
    seed = case.spec.get("entity")
    if seed:
        body = {"state": seed.get("state", "__initial__"), "facts": seed.get("facts") or {}}
        if body["state"] == "__initial__":
            body["state"] = client.get(path).json()["state"]["id"]
        answer = data_sets.admin.put(path, content=wire(body), headers=JSON)
        assert answer.status_code == 201, answer.text
    for step in case.spec["steps"]:
        expect = step.get("expect", {})
        body: dict[str, Any] = {"event": step["event"]}
        actor = step.get("actor", case.spec.get("actor"))
        if actor is not None:
            body["actor"] = actor
        at = step.get("at", case.spec.get("at"))
        if at is not None:
            body["at"] = at
        settings = step.get("settings", case.spec.get("settings"))
        if settings is not None:
            body["settings"] = {**(case.spec.get("settings") or {}), **settings}
        if step.get("event_id") is not None:
            body["event_id"] = step["event_id"]
        before = client.get(path).json()
        answer = client.post(f"{path}/events", content=wire(body), headers=JSON)
        if "error" in expect:
            assert answer.status_code == 422, answer.text
            continue
        refused = bool(expect.get("refused")) or "code" in expect
        assert answer.status_code == (409 if refused else 200), answer.text
        result = answer.json()["result"] if refused else answer.json()
        if refused:
            assert client.get(path).json() == before  # a refusal changes nothing
        check_step(result, expect)


def check_step(result: dict[str, Any], expect: dict[str, Any]) -> None:
    refusal = result.get("refusal") or {}
    if "state" in expect:
        assert result["state"]["after"]["id"] == expect["state"]
    if "transition" in expect:
        assert (result.get("transition") or {}).get("id") == expect["transition"]
    if "code" in expect:
        assert refusal.get("code") == expect["code"]
    message = refusal.get("message") or result.get("message") or {}
    if "message" in expect:
        assert any(expect["message"] in text for text in message.values()), message
    if "message_not" in expect:
        assert not any(expect["message_not"] in text for text in message.values()), message
    if "actions" in expect:
        assert [a["code"] for a in result["actions"]] == expect["actions"]
    for code, wanted in (expect.get("details") or {}).items():
        details = next(a.get("details", {}) for a in result["actions"] if a["code"] == code)
        for key, value in wanted.items():
            assert same_value(value, details.get(key)), (code, key)
    for name, value in (expect.get("facts") or {}).items():
        assert same_value(value, result["facts"].get(name)), name


DEALER = {"id": "dealer-1", "roles": ["販売店"], "name": "横浜店 山田"}
OPERATOR = {"id": "op-1", "roles": ["オートックワン"]}


def claim(**extra: Any) -> dict[str, Any]:
    return {"event": {"type": "claim"}, "actor": DEALER, **extra}


def exclude(**extra: Any) -> dict[str, Any]:
    """EX-2: the dealer makes the estimate 対象外 with an eligible reason before claiming it."""
    return {"event": {"type": "exclude", "exclusion_reason": "重複"}, "actor": DEALER, **extra}


def test_an_unknown_flow_or_a_decision_policy_is_not_found(client: httpx.Client) -> None:
    answer = client.post("/v1/flows/claim-statu/E-1/events", json=claim())
    assert answer.status_code == 404 and "claim-status" in answer.text
    answer = client.post("/v1/flows/order-holds/E-1/events", json=claim())
    assert answer.status_code == 404


def test_an_invalid_event_is_refused_with_its_pointer(client: httpx.Client) -> None:
    body = {"event": {"type": "clam"}, "actor": DEALER}
    answer = client.post("/v1/flows/claim-status/E-2/events", json=body)
    assert answer.status_code == 422
    assert "/event/type" in {e.get("pointer") for e in answer.json()["errors"]}
    answer = client.post("/v1/flows/claim-status/E-2/events", json={"evnt": {}, "actor": DEALER})
    assert answer.status_code == 422
    assert {e.get("pointer") for e in answer.json()["errors"]} == {"/evnt", "/event"}


def test_an_event_without_an_actor_or_with_a_bad_one_is_invalid(client: httpx.Client) -> None:
    """Every flow event names who sends it; with no actor, or a malformed one, nothing is
    decided (422 with the pointer)."""
    path = "/v1/flows/claim-status/E-20/events"
    answer = client.post(path, json={"event": {"type": "claim"}})
    assert answer.status_code == 422
    assert {e.get("pointer") for e in answer.json()["errors"]} == {"/actor"}
    bad = {"id": "", "roles": "販売店"}
    answer = client.post(path, json={"event": {"type": "claim"}, "actor": bad})
    assert answer.status_code == 422
    assert {e.get("pointer") for e in answer.json()["errors"]} == {"/actor/id", "/actor/roles"}
    assert client.get("/v1/flows/claim-status/E-20").json()["entity"]["exists"] is False


def test_an_event_from_a_role_the_transition_does_not_name_is_refused_and_nothing_stored(
    client: httpx.Client,
) -> None:
    """EX-6: the dealer claims, the operator reviews; a dealer cannot move its own claim
    on to 確認中 (409 role_not_allowed naming the roles that may)."""
    path = "/v1/flows/claim-status/E-21"
    assert client.post(f"{path}/events", json=exclude()).status_code == 200
    assert client.post(f"{path}/events", json=claim()).status_code == 200
    review = {"event": {"type": "start_review"}, "actor": DEALER}
    answer = client.post(f"{path}/events", json=review)
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["code"] == "role_not_allowed"
    assert problem["result"]["refusal"]["roles"] == ["オートックワン"]
    assert "「オートックワン」" in problem["result"]["refusal"]["message"]["ja"]
    assert client.get(path).json()["state"]["id"] == "requested"
    answer = client.post(f"{path}/events", json={**review, "actor": OPERATOR})
    assert answer.status_code == 200 and answer.json()["actor"] == OPERATOR
    moves = client.get(f"{path}/history").json()["moves"]
    assert [m["actor"]["id"] for m in moves] == ["dealer-1", "dealer-1", "op-1"]
    assert moves[1]["actor"]["name"] == "横浜店 山田"


def test_a_token_may_claim_only_the_roles_configured_for_it(server: Server) -> None:
    """A dealer portal's token (roles: 販売店) cannot send an event as オートックワン (403,
    before the flow is asked); a token configured without roles sends no flow event."""
    path = "/v1/flows/claim-status/E-22"
    with server.client(DEALER_TOKEN) as portal:
        assert portal.post(f"{path}/events", json=exclude()).status_code == 200
        assert portal.post(f"{path}/events", json=claim()).status_code == 200
        pretend = {
            "event": {"type": "start_review"},
            "actor": {"id": "x", "roles": ["オートックワン"]},
        }
        answer = portal.post(f"{path}/events", json=pretend)
        assert answer.status_code == 403
        assert answer.json()["code"] == "actor_role_forbidden"
        assert answer.json()["pointer"] == "/actor/roles/0"
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/actor/roles/0"]
        both = {"id": "x", "roles": ["販売店", "オートックワン"]}
        assert portal.post(f"{path}/events", json=claim(actor=both)).status_code == 403
        assert portal.get(path).json()["state"]["id"] == "requested"
        refusals = portal.get(f"{path}/history", params={"refusals": "true"}).json()
        assert refusals["refusals"] == []  # refused before the flow: nothing logged
    with server.client(NO_ROLES_TOKEN) as no_roles:
        answer = no_roles.post("/v1/flows/claim-status/E-23/events", json=claim())
        assert answer.status_code == 403 and "no role" in answer.json()["detail"]


def test_history_lists_the_moves_and_on_request_the_refusals(client: httpx.Client) -> None:
    path = "/v1/flows/claim-status/E-3"
    assert client.post(f"{path}/events", json=exclude()).status_code == 200
    assert client.post(f"{path}/events", json=claim()).status_code == 200
    approve = {"event": {"type": "approve"}, "actor": OPERATOR}
    assert client.post(f"{path}/events", json=approve).status_code == 409
    history = client.get(f"{path}/history").json()
    assert [m["state"]["after"] for m in history["moves"]] == ["not_claimed", "requested"]
    assert "refusals" not in history
    with_refusals = client.get(f"{path}/history", params={"refusals": "true"}).json()
    assert len(with_refusals["refusals"]) == 1
    assert with_refusals["refusals"][0]["actor"] == OPERATOR


def test_flow_events_need_a_token(server: Server) -> None:
    with server.client(token=None) as anonymous:
        answer = anonymous.post("/v1/flows/claim-status/E-4/events", json=claim())
    assert answer.status_code == 401


def test_importing_an_entity_needs_the_admin_scope_and_happens_once(server: Server) -> None:
    path = "/v1/flows/claim-status/E-9"
    body = {"state": "under_review", "facts": {"claims": 1}}
    with server.client() as decide_only:
        assert decide_only.put(path, json=body).status_code == 403
    with server.client(ADMIN_TOKEN) as admin:
        assert admin.put(path, json=body).status_code == 201
        again = admin.put(path, json=body)
        assert again.status_code == 409 and again.json()["code"] == "entity_exists"
        bad = admin.put("/v1/flows/claim-status/E-10", json={"state": "undr_review"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/state"
