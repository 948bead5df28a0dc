"""Every endpoint and every error status of the decision service, through HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.server_process import (
    ADMIN_TOKEN,
    DECIDE_TOKEN,
    ONLY_ADMIN_TOKEN,
    Server,
    copy_project,
)

AT = "2024-09-21T23:59:59+09:00"
NG_ORDER = {
    "order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}, "np": {"result": "ng"}}
}
OK_ORDER = {"order": {"total": 15000, "sequence": 2, "payment": {"method": "card"}}}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("api")
    env = {"KIMARI_MAX_BODY_BYTES": "65536", "KIMARI_MAX_BATCH": "5"}
    srv = Server(copy_project(tmp), tmp / "var" / "kimari.sqlite3", workers=2, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as c:
        yield c


def problem_of(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert "Traceback" not in answer.text
    return body


# -- health --------------------------------------------------------------------------


def test_healthz_and_readyz_answer_without_a_token(server: Server) -> None:
    with server.client(token=None) as anonymous:
        # nothing about the server (no pid, no version) to an anonymous caller
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        ready = anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["workers"] == 2


# -- decisions -----------------------------------------------------------------------


def test_a_decision_names_the_policy_revision_and_the_rules_that_fired(
    client: httpx.Client,
) -> None:
    answer = client.post("/v1/decisions/np-check", json={"facts": NG_ORDER, "at": AT})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["policy"]["id"] == "np-check"
    assert len(body["policy"]["revision"]) == 16
    assert body["at"] == AT
    assert body["outcome"] == {"held": True}
    assert body["fired"] == ["np-ng-hold-all"]
    assert body["reasons"][0]["code"] == "NP_CREDIT_NG"
    assert body["decision_id"]


def test_settings_in_the_request_override_the_defaults(client: httpx.Client) -> None:
    facts = {"order": {**NG_ORDER["order"], "sequence": 2}}
    answer = client.post(
        "/v1/decisions/np-check", json={"facts": facts, "at": AT, "settings": {"np_ng_action": 3}}
    )
    assert answer.json()["fired"] == ["np-ng-second-order"]
    assert answer.json()["settings"] == {"np_ng_action": 3}


def test_invalid_facts_are_422_with_a_json_pointer_for_each_error(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/decisions/np-check",
        json={
            "facts": {"order": {"total": "many", "sequence": 1, "payment": {"method": "bitcoin"}}}
        },
    )
    body = problem_of(answer, 422, "facts_invalid")
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/facts/order/total", "/facts/order/payment/method"}


def test_a_bad_setting_and_a_bad_at_are_422_with_their_pointers(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/decisions/np-check", json={"facts": OK_ORDER, "settings": {"np_ng_action": 7}}
    )
    assert (
        problem_of(answer, 422, "setting_invalid")["errors"][0]["pointer"]
        == "/settings/np_ng_action"
    )
    answer = client.post("/v1/decisions/np-check", json={"facts": OK_ORDER, "at": "yesterday"})
    assert problem_of(answer, 422, "at_invalid")["errors"][0]["pointer"] == "/at"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("true", "got true"),
        ("1.5", "got 1.5"),
        ("0.30000000000000001", "got 0.30000000000000001"),  # exact, not Decimal('...')
        ('"2"', 'got "2"'),
        ('{"a": [1, true]}', 'got {"a":[1,true]}'),
    ],
)
def test_a_bad_setting_value_is_quoted_as_json_writes_it(
    client: httpx.Client, given: str, shown: str
) -> None:
    body = f'{{"facts": {json.dumps(OK_ORDER)}, "settings": {{"np_ng_action": {given}}}}}'
    answer = client.post(
        "/v1/decisions/np-check", content=body, headers={"content-type": "application/json"}
    )
    (error,) = problem_of(answer, 422, "setting_invalid")["errors"]
    assert error["message"].endswith(shown), error["message"]


def test_an_unknown_request_field_is_422_with_a_suggestion(client: httpx.Client) -> None:
    answer = client.post("/v1/decisions/np-check", json={"fact": OK_ORDER})
    body = problem_of(answer, 422, "request_invalid")
    codes = {(e["code"], e["pointer"]) for e in body["errors"]}
    assert ("unknown_field", "/fact") in codes
    assert ("missing_field", "/facts") in codes


def test_malformed_json_is_400(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/decisions/np-check",
        content=b'{"facts": ',
        headers={"content-type": "application/json"},
    )
    problem_of(answer, 400, "json_invalid")
    problem_of(client.post("/v1/decisions/np-check"), 400, "body_missing")


def test_an_unknown_policy_is_404_with_a_suggestion(client: httpx.Client) -> None:
    body = problem_of(
        client.post("/v1/decisions/np-chek", json={"facts": {}}), 404, "unknown_policy"
    )
    assert "np-check" in body["hint"]


def test_a_body_over_the_limit_is_413(client: httpx.Client) -> None:
    big = {"facts": {"order": {**OK_ORDER["order"], "note": "x" * 70_000}}}
    problem_of(client.post("/v1/decisions/np-check", json=big), 413, "body_too_large")


def test_unknown_paths_are_404_and_wrong_methods_405(client: httpx.Client) -> None:
    problem_of(client.get("/v2/decisions"), 404, "not_found")
    answer = client.delete("/v1/policies/np-check")
    problem_of(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET"


def test_a_misspelt_path_gets_a_hint_and_a_path_of_dot_segments_none(
    client: httpx.Client,
) -> None:
    body = problem_of(client.get("/v1/policy/np-check"), 404, "not_found")
    assert body["hint"] == "did you mean '/v1/policies/np-check'?"
    for path in ("/v1/decisions/..%2f..", "/v1/decisions/np-check%2f..", "/v1/policies/.%2fx"):
        body = problem_of(client.post(path, json={"facts": {}}), 404, "not_found")
        assert "hint" not in body, (path, body)  # was "/v1/flows/np-check/.." and the like


def test_a_misspelt_query_flag_is_a_422_not_ignored_in_the_request_language(
    client: httpx.Client,
) -> None:
    answer = client.post("/v1/decisions/np-check?explian=true", json={"facts": OK_ORDER})
    body = problem_of(answer, 422, "query_invalid")
    assert (body["parameter"], body["hint"]) == ("explian", "did you mean 'explain'?")
    answer = client.post(
        "/v1/decisions/np-check?explain=banana",
        json={"facts": OK_ORDER},
        headers={"accept-language": "ja"},
    )
    body = problem_of(answer, 422, "query_invalid")
    assert (
        "banana" in body["detail"]
        and body["detail"] != body["detail"].encode("ascii", "ignore").decode()
    )
    ok = client.post("/v1/decisions/np-check?explain=TRUE&explain=", json={"facts": OK_ORDER})
    assert ok.status_code == 200 and "explanation" not in ok.json()  # the last, blank: not given
    ok = client.post("/v1/decisions/np-check?explain=Yes", json={"facts": OK_ORDER})
    assert ok.status_code == 200 and "explanation" in ok.json()


# -- batch ---------------------------------------------------------------------------


def test_a_batch_decides_each_item_and_reports_invalid_ones_in_place(client: httpx.Client) -> None:
    items = [
        {"facts": NG_ORDER, "at": AT},
        {"facts": {"order": {"total": -1}}},
        {"facts": OK_ORDER, "at": AT},
    ]
    answer = client.post("/v1/decisions/np-check:batch", json={"items": items})
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [200, 422, 200]
    assert results[0]["decision"]["fired"] == ["np-ng-hold-all"]
    assert results[2]["decision"]["outcome"] == {"held": False}
    pointers = {e["pointer"] for e in results[1]["problem"]["errors"]}
    assert "/items/1/facts/order/total" in pointers
    logged = client.get(f"/v1/decisions/{results[0]['decision']['decision_id']}")
    assert logged.status_code == 200


def test_a_batch_over_the_configured_count_is_413(client: httpx.Client) -> None:
    items = [{"facts": OK_ORDER}] * 6
    body = problem_of(
        client.post("/v1/decisions/np-check:batch", json={"items": items}), 413, "batch_too_large"
    )
    assert body["max_batch"] == 5


# -- the log and idempotency -----------------------------------------------------------


def test_a_logged_decision_is_read_back_with_its_explanation(client: httpx.Client) -> None:
    decided = client.post("/v1/decisions/np-check", json={"facts": NG_ORDER, "at": AT}).json()
    answer = client.get(f"/v1/decisions/{decided['decision_id']}")
    assert answer.status_code == 200
    logged = answer.json()
    assert logged["outcome"] == decided["outcome"]
    assert logged["request"] == {"facts": NG_ORDER, "at": AT}
    rules = {r["rule"]: r for r in logged["explanation"]["rules"]}
    assert set(rules) == {"np-ng-hold-all", "np-ng-second-order"}
    problem_of(client.get("/v1/decisions/no-such-decision"), 404, "unknown_decision")


def test_the_same_idempotency_key_and_body_return_the_logged_decision(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-4711-check-1"}
    request = {"facts": NG_ORDER}  # no 'at': a retry must not be decided again at a later time
    first = client.post("/v1/decisions/np-check", json=request, headers=headers)
    again = client.post("/v1/decisions/np-check", json=request, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["decision_id"] == "order-4711-check-1"
    assert again.headers["idempotent-replayed"] == "true"


def test_an_idempotency_key_that_cannot_be_a_decision_id_is_422(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/decisions/np-check", json={"facts": OK_ORDER}, headers={"Idempotency-Key": "a/b c"}
    )
    problem_of(answer, 422, "idempotency_key_invalid")


def test_an_idempotency_key_reused_for_another_request_is_409(client: httpx.Client) -> None:
    client.post("/v1/decisions/np-check", json={"facts": NG_ORDER, "decision_id": "reuse-1"})
    answer = client.post(
        "/v1/decisions/np-check", json={"facts": OK_ORDER, "decision_id": "reuse-1"}
    )
    problem_of(answer, 409, "idempotency_conflict")


# -- policies ------------------------------------------------------------------------


def test_policies_are_listed_with_revision_and_status(client: httpx.Client) -> None:
    policies = {p["id"]: p for p in client.get("/v1/policies").json()["policies"]}
    assert set(policies) == {"np-check", "blacklist-check"}
    assert policies["np-check"]["status"] == "valid"


def test_a_policy_shows_revision_title_rules_settings_facts_schema_and_status(
    client: httpx.Client,
) -> None:
    body = client.get("/v1/policies/np-check").json()
    assert body["status"] == "valid" and body["errors"] == []
    assert body["title"] == {"ja": "NP与信の確認", "en": "NP credit check"}
    assert [r["id"] for r in body["rules"]] == ["np-ng-hold-all", "np-ng-second-order"]
    assert body["rules"][0]["location"]["line"] > 1
    assert body["settings"]["np_ng_action"]["default"] == 1
    assert body["facts_schema"]["required"] == ["order"]
    problem_of(client.get("/v1/policies/nope"), 404, "unknown_policy")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/policies/..%2F..%2Fetc%2Fpasswd",
        "/v1/policies/%2e%2e",
        "/v1/data/..%2Fpolicies%2Fnp-check",
        "/v1/data/%2e%2e",
        "/v1/decisions/..%2Fnp-check",
        "/v1/policies/np-check.yaml",
        "/v1/data/blacklist.yaml",
    ],
)
def test_ids_and_names_cannot_escape_their_folders(client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code in (404, 405)
    assert answer.headers["content-type"] == PROBLEM


# -- reference data --------------------------------------------------------------------


def test_a_data_set_is_read_with_its_version_and_source(client: httpx.Client) -> None:
    body = client.get("/v1/data/blacklist").json()
    assert body["count"] == 1
    assert body["entries"][0]["id"] == "BL-1"
    assert body["source"] in ("file", "api")
    problem_of(client.get("/v1/data/blacklistt"), 404, "unknown_data_set")


def test_replacing_data_validates_every_entry_with_a_pointer(admin: httpx.Client) -> None:
    entries = [{"id": "BL-9", "phone": "03"}, {"id": "BL-10", "phone": 31234}, {"name": "x"}]
    body = problem_of(
        admin.put("/v1/data/blacklist", json={"entries": entries}), 422, "data_invalid"
    )
    pointers = {e["pointer"] for e in body["errors"]}
    assert pointers == {"/entries/1/phone", "/entries/2/id"}


def test_replaced_data_is_used_by_the_next_decision_on_every_worker(
    client: httpx.Client, admin: httpx.Client
) -> None:
    customer = {"name": "佐藤 花子", "postal_code": "100-0001", "phone": "090-0000-1111"}
    facts = {"order": {**OK_ORDER["order"], "customer": customer}}
    before = client.post("/v1/decisions/blacklist-check", json={"facts": facts}).json()
    assert before["fired"] == []
    entries = [{"id": "BL-1", "name": "山田 太郎"}, {"id": "BL-2", **customer}]
    put = admin.put("/v1/data/blacklist", json={"entries": entries})
    assert put.status_code == 200, put.text
    version = put.json()["version"]
    for _ in range(6):  # both workers, whichever answers
        after = client.post("/v1/decisions/blacklist-check", json={"facts": facts}).json()
        assert after["fired"] == ["blacklist-similar"]
        assert after["data"] == {"blacklist": version}
    read = client.get("/v1/data/blacklist").json()
    assert (read["version"], read["source"], read["count"]) == (version, "api", 2)


# -- auth ----------------------------------------------------------------------------


def test_a_missing_or_unknown_token_is_401(server: Server) -> None:
    with server.client(token=None) as anonymous:
        answer = anonymous.post("/v1/decisions/np-check", json={"facts": OK_ORDER})
        problem_of(answer, 401, "unauthorized")
        assert answer.headers["www-authenticate"].startswith("Bearer")
    with server.client(token="wrong-token-000") as stranger:
        problem_of(stranger.get("/v1/policies"), 401, "unauthorized")


def test_a_token_without_the_scope_is_403(server: Server) -> None:
    with server.client(DECIDE_TOKEN) as decider:
        problem_of(decider.put("/v1/data/blacklist", json={"entries": []}), 403, "forbidden")
        problem_of(decider.delete("/v1/data/blacklist"), 403, "forbidden")
        problem_of(decider.post("/v1/reload"), 403, "forbidden")
    with server.client(ONLY_ADMIN_TOKEN) as operator:
        problem_of(
            operator.post("/v1/decisions/np-check", json={"facts": OK_ORDER}), 403, "forbidden"
        )


def test_test_faults_are_ignored_unless_the_server_enables_them(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/decisions/np-check", json={"facts": OK_ORDER}, headers={"X-Kimari-Test-Fault": "exit"}
    )
    assert answer.status_code == 200


# -- operations ----------------------------------------------------------------------


def test_an_admin_can_force_a_reload(admin: httpx.Client) -> None:
    answer = admin.post("/v1/reload")
    assert answer.status_code == 200
    assert {p["id"] for p in answer.json()["policies"]} == {"np-check", "blacklist-check"}


def test_metrics_count_decisions_by_policy_and_outcome_latency_errors_and_reloads(
    client: httpx.Client,
) -> None:
    client.post("/v1/decisions/np-check", json={"facts": NG_ORDER})
    client.post("/v1/decisions/np-check", json={"facts": {}})
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert 'kimari_decisions_total{policy="np-check",outcome="held=true"}' in text
    assert 'kimari_decision_seconds_bucket{policy="np-check",le="+Inf"}' in text
    assert 'kimari_http_errors_total{status="422",code="facts_invalid"}' in text
    assert 'kimari_policy_reloads_total{policy="np-check",result="loaded"} 1' in text
    assert 'kimari_policy_info{policy="np-check"' in text
    assert "kimari_log_commit_rows_count" in text
    assert "kimari_log_commit_cpu_seconds_total " in text
    assert "kimari_workers_ready 2" in text


def test_openapi_embeds_each_policys_facts_schema(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    request = doc["components"]["schemas"]["NpCheckRequest"]
    assert request["properties"]["facts"] == {"$ref": "#/components/schemas/NpCheckFacts"}
    facts = doc["components"]["schemas"]["NpCheckFacts"]
    assert facts["properties"]["order"]["required"] == ["total", "sequence", "payment"]
    assert "/v1/decisions/np-check" in doc["paths"]
    assert "/v1/decisions/blacklist-check:batch" in doc["paths"]
    put = doc["paths"]["/v1/data/blacklist"]["put"]["requestBody"]["content"]["application/json"]
    assert put["schema"] == {"$ref": "#/components/schemas/BlacklistEntries"}
    assert doc["components"]["schemas"]["BlacklistEntry"]["required"] == ["id"]
