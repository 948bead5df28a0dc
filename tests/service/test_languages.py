"""The service answers in the language of `Accept-Language` (ja or en; English by default).

problem+json titles, details, errors[].message and hints come back in that language, with
`Content-Language`; codes, pointers, locations and the decisions' own {ja, en} reasons do
not change; a flow's refusal keeps its {ja, en} message and its detail is the one asked for.
Through a real `kimari serve` (tests/service/server_process.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests import FIXTURES
from tests.service.server_process import ADMIN_TOKEN, DEALER_TOKEN, Server, copy_project

AT = "2024-10-01T10:00:00+09:00"
BAD_FACTS = {"facts": {"order": {"total": "many", "sequence": 1, "payment": {"method": "card"}}}}
GOOD_FACTS = {
    "facts": {"order": {"total": 15000, "sequence": 1, "payment": {"method": "np"}}},
    "at": AT,
}
JA = {"Accept-Language": "ja"}
DOORS = FIXTURES / "flows" / "doors"
EN = {"Accept-Language": "en"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("languages")
    policies = copy_project(tmp)
    text = (policies / "np-check.yaml").read_text()
    broken = text.replace("id: np-check", "id: broken").replace(
        'order.np.result == "ng"', 'order.np.reslt == "ng"', 1
    )
    (policies / "broken.yaml").write_text(broken)
    for path in DOORS.iterdir():  # a flow: roles, notes, refusal texts in both languages
        shutil.copy(path, policies / path.name)
    # --watch: the files as saved, so that the broken one is listed with its errors (the
    # store's bootstrap would leave it unpublished, and unknown to the service)
    srv = Server(policies, tmp / "var" / "kimari.sqlite3", workers=1, watch=True)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def problem(answer: httpx.Response, status: int, code: str, lang: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["content-language"] == lang
    body: dict[str, Any] = answer.json()
    assert body["code"] == code and body["type"] == f"urn:kimari:problem:{code}"
    return body


def test_a_facts_error_comes_back_in_japanese_when_asked(client: httpx.Client) -> None:
    answer = client.post("/v1/decisions/np-check", json=BAD_FACTS, headers=JA)
    body = problem(answer, 422, "facts_invalid", "ja")
    assert body["title"] == "処理できないリクエスト"
    assert body["detail"] == "このポリシーに対するリクエストとして正しくありません"
    assert body["errors"] == [
        {
            "code": "type_mismatch",
            "message": "integer が必要ですが、string になっています",
            "pointer": "/facts/order/total",
        }
    ]


def test_the_same_facts_error_in_english_or_with_no_preference(client: httpx.Client) -> None:
    for headers in (EN, {}, {"Accept-Language": "fr-FR, de;q=0.8"}):
        answer = client.post("/v1/decisions/np-check", json=BAD_FACTS, headers=headers)
        body = problem(answer, 422, "facts_invalid", "en")
        assert body["title"] == "Unprocessable request"
        assert body["detail"] == "the request is not valid for this policy"
        assert body["errors"][0]["message"] == "expected integer, got string"


def test_the_client_s_ranking_decides_between_the_two(client: httpx.Client) -> None:
    ranked = {"Accept-Language": "en;q=0.3, ja-JP;q=0.9"}
    answer = client.post("/v1/decisions/np-check", json=BAD_FACTS, headers=ranked)
    assert problem(answer, 422, "facts_invalid", "ja")["errors"][0]["pointer"] == (
        "/facts/order/total"
    )


def test_a_request_validation_error_names_the_field_and_its_hint_in_japanese(
    client: httpx.Client,
) -> None:
    body = {"fact": BAD_FACTS["facts"]}
    answer = client.post("/v1/decisions/np-check", json=body, headers=JA)
    found = problem(answer, 422, "request_invalid", "ja")
    assert found["detail"] == "判定リクエストが正しくありません"
    assert {"code": "unknown_field", "pointer": "/fact"}.items() <= found["errors"][0].items()
    assert found["errors"][0]["message"] == "項目 'fact' はありません"
    assert found["errors"][0]["hint"] == "'facts' のことですか?"
    assert found["errors"][1]["message"] == "'facts' は必須です"


def test_a_refused_policy_shows_its_validation_errors_in_the_language_asked_for(
    client: httpx.Client,
) -> None:
    japanese = client.get("/v1/policies/broken", headers=JA).json()
    english = client.get("/v1/policies/broken", headers=EN).json()
    assert japanese["status"] == english["status"] != "valid"
    (ja,), (en,) = japanese["errors"], english["errors"]
    assert ja["code"] == en["code"] == "unknown_fact_field"
    assert ja["location"] == en["location"]
    assert en["message"] == "unknown fact field 'order.np.reslt'"
    assert ja["message"] == "ファクト項目 'order.np.reslt' はありません"
    assert ja["hint"] == "'order.np.result' のことですか?"
    assert japanese["error_text"][0].endswith(
        "unknown_fact_field: ファクト項目 'order.np.reslt' はありません "
        "('order.np.result' のことですか?)"
    )
    answer = client.post("/v1/decisions/broken", json=GOOD_FACTS, headers=JA)
    unavailable = problem(answer, 503, "policy_unavailable", "ja")
    assert unavailable["detail"].startswith("ポリシー 'broken' には有効なリビジョンがありません")
    assert unavailable["errors"][0]["message"] == ja["message"]


def test_the_front_s_own_problems_are_in_japanese_too(server: Server) -> None:
    with server.client(token=None) as anonymous:
        denied = anonymous.post("/v1/decisions/np-check", json=GOOD_FACTS, headers=JA)
        body = problem(denied, 401, "unauthorized", "ja")
        assert body["title"] == "認証が必要です"
        assert "Authorization: Bearer <トークン>" in body["detail"]
    with server.client() as client:
        body = problem(client.get("/v1/decision/x", headers=JA), 404, "not_found", "ja")
        assert body["detail"] == "そのパスはありません: /v1/decision/x"
        assert body["hint"] == "'/v1/decisions/x' のことですか?"


def test_an_unknown_policy_and_its_suggestion_in_japanese(client: httpx.Client) -> None:
    answer = client.post("/v1/decisions/np-chek", json=GOOD_FACTS, headers=JA)
    body = problem(answer, 404, "unknown_policy", "ja")
    assert body["detail"] == "ポリシー 'np-chek' はありません"
    assert body["hint"] == "'np-check' のことですか?"


def test_a_batch_item_s_problem_is_in_the_language_of_the_batch(client: httpx.Client) -> None:
    items = {"items": [GOOD_FACTS, BAD_FACTS, {"facts": {}, "at": 3}]}
    answer = client.post("/v1/decisions/np-check:batch", json=items, headers=JA)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert results[0]["status"] == 200
    assert results[1]["problem"]["errors"][0]["message"] == (
        "integer が必要ですが、string になっています"
    )
    assert results[1]["problem"]["errors"][0]["pointer"] == "/items/1/facts/order/total"
    assert results[2]["problem"]["detail"] == "この要素は判定リクエストとして正しくありません"
    assert results[2]["problem"]["errors"][0]["message"] == "'at' は日時の文字列にしてください"


def test_a_decision_is_the_same_in_either_language(client: httpx.Client) -> None:
    ja = client.post("/v1/decisions/np-check", json=GOOD_FACTS, headers=JA).json()
    en = client.post("/v1/decisions/np-check", json=GOOD_FACTS, headers=EN).json()
    for body in (ja, en):
        body.pop("decision_id")
        body.pop("elapsed_us", None)
    assert ja == en  # outcome, rules and the policy's own {ja, en} reasons: no language of ours


def test_the_openapi_document_names_accept_language_and_content_language(
    client: httpx.Client,
) -> None:
    document = client.get("/openapi.json").json()
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert operations
    for operation in operations:
        names = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
        assert ("header", "Accept-Language") in names, operation["operationId"]
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert response["headers"]["Content-Language"]["schema"]["enum"] == ["en", "ja"]


# -- flows ------------------------------------------------------------------------------

GUEST = {"id": "g-1", "roles": ["guest"]}
KEEPER = {"id": "k-1", "roles": ["keeper"]}


def send(
    client: httpx.Client, entity: str, event: dict[str, Any], actor: Any, lang: str
) -> httpx.Response:
    body = {"event": event, "actor": actor, "at": AT}
    return client.post(
        f"/v1/flows/doors/{entity}/events", json=body, headers={"Accept-Language": lang}
    )


def test_a_refused_move_is_detailed_in_the_language_asked_for_with_both_texts_kept(
    client: httpx.Client,
) -> None:
    answers = {
        lang: send(client, f"D-{lang}", {"type": "open"}, GUEST, lang) for lang in ("ja", "en")
    }
    ja = problem(answers["ja"], 409, "missing_field", "ja")
    en = problem(answers["en"], 409, "missing_field", "en")
    assert ja["title"] == "競合" and en["title"] == "Conflict"
    message = {
        "ja": "現在の状態「閉」で「開ける」を行うには「メモ」（event.note）が必要です。"
        "メモを書いてください。",
        "en": "In state 'closed', 'open' needs 'note' (event.note). Write a note.",
    }
    assert ja["detail"] == message["ja"] and en["detail"] == message["en"]
    for body in (ja, en):
        assert body["result"]["refusal"]["message"] == message  # the same result either way
        assert body["result"]["refusal"]["pointer"] == "/event/note"


def test_role_and_state_refusals_over_http_in_japanese(client: httpx.Client) -> None:
    assert send(client, "D-1", {"type": "open", "note": "x"}, GUEST, "ja").status_code == 200
    body = problem(
        send(client, "D-1", {"type": "close"}, GUEST, "ja"), 409, "role_not_allowed", "ja"
    )
    assert body["detail"] == (
        "現在の状態「開」で「閉める」を行えるのは「管理人」です（g-1 の役割: 「来客」）。"
    )
    assert body["result"]["refusal"]["roles"] == ["keeper"]
    answer = send(client, "D-1", {"type": "open", "note": "y"}, KEEPER, "ja")
    body = problem(answer, 409, "event_not_allowed", "ja")
    assert body["detail"] == (
        "現在の状態「開」では「開ける」はできません（この状態でできる操作: 「閉める」、"
        "「撤去する」）。開いている間は鍵をかけられません。"
    )
    assert body["result"]["refusal"]["allowed_events"] == ["close", "remove"]


def test_an_invalid_event_or_actor_is_explained_in_japanese_at_its_pointer(
    client: httpx.Client,
) -> None:
    answer = send(client, "D-2", {"type": "opn"}, GUEST, "ja")
    body = problem(answer, 422, "event_invalid", "ja")
    assert body["detail"] == "イベントが正しくありません"
    assert body["errors"] == [
        {
            "code": "unknown_event",
            "message": "イベントの種類 'opn' はありません（open, close, break, remove "
            "のいずれかにしてください）",
            "pointer": "/event/type",
            "hint": "'open' のことですか?",
        }
    ]
    answer = send(client, "D-2", {"type": "open"}, {"id": "", "roles": []}, "ja")
    body = problem(answer, 422, "event_invalid", "ja")
    assert [(e["pointer"], e["message"]) for e in body["errors"]] == [
        (
            "/actor/id",
            "送信者の id は表示できる文字で 1〜200 文字にし、両端に空白を入れないでください",
        ),
        ("/actor/roles", "送信者の roles は 1〜32 個の役割名のリストにしてください"),
    ]


def test_a_token_that_may_not_claim_the_role_is_told_so_in_japanese(server: Server) -> None:
    with server.client(DEALER_TOKEN) as portal:
        answer = send(portal, "D-3", {"type": "open", "note": "x"}, GUEST, "ja")
    body = problem(answer, 403, "actor_role_forbidden", "ja")
    assert body["detail"] == "このトークンでは guest として操作できません（使える役割: 販売店）"
    assert body["pointer"] == "/actor/roles/0"


def test_a_decision_policy_or_an_entity_that_exists_is_refused_in_japanese(
    server: Server, client: httpx.Client
) -> None:
    body = {"event": {"type": "open"}, "actor": GUEST}
    answer = client.post("/v1/flows/np-check/D-4/events", json=body, headers=JA)
    assert problem(answer, 404, "not_a_flow", "ja")["detail"] == (
        "ポリシー 'np-check' は判定のポリシーで、フローではありません。"
        "`kimari decide` / POST /v1/decisions を使ってください"
    )
    with server.client(ADMIN_TOKEN) as admin:
        seeded = {"state": "open", "facts": {"count": 1}}
        assert admin.put("/v1/flows/doors/D-5", json=seeded).status_code == 201
        answer = admin.put("/v1/flows/doors/D-5", json=seeded, headers=JA)
    assert problem(answer, 409, "entity_exists", "ja")["detail"] == (
        "'doors' のエンティティ 'D-5' はすでにあります。取り込めるのは新しいエンティティだけです"
    )
