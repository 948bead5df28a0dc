"""The read endpoints the console is built on, through HTTP against the shipped policies:
the decision log listing, daily counts, a policy's examples and source, the data sets,
and the console's own files (redirect, pages, assets, no way out of the assets folder)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests import ROOT
from tests.service.server_process import ADMIN_TOKEN, DECIDE_TOKEN, Server, copy_shipped

ORDER = {
    "order": {
        "id": "O-1",
        "total": 5980,
        "sequence": 1,
        "customer": {"id": "C-10021", "name": "山田 太郎"},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
}
CLEAN = {**ORDER, "order": {**ORDER["order"], "customer": {"id": "C-1"}}}
AT = "2024-10-01T10:00:00+09:00"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("reads")
    srv = Server(copy_shipped(tmp), tmp / "var" / "kimari.sqlite3", workers=1)
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_TOKEN) as c:
        yield c


@pytest.fixture(scope="module")
def decided(admin: httpx.Client) -> list[str]:
    """Three decisions, oldest first: held (blacklisted customer), not held, held."""
    ids = []
    for facts in (ORDER, CLEAN, ORDER):
        answer = admin.post("/v1/decisions/order-holds", json={"facts": facts, "at": AT})
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["decision_id"])
    return ids


def _listed(admin: httpx.Client, **params: Any) -> list[str]:
    answer = admin.get("/v1/decisions", params=params)
    assert answer.status_code == 200, answer.text
    return [d["decision_id"] for d in answer.json()["decisions"]]


def test_the_log_lists_decisions_newest_first_filtered_by_outcome_rule_and_policy(
    admin: httpx.Client, decided: list[str]
) -> None:
    held, clean, again = decided
    assert _listed(admin, policy="order-holds") == [again, clean, held]
    assert _listed(admin, policy="order-holds", outcome="held=true") == [again, held]
    assert _listed(admin, outcome="held=false") == [clean]
    assert _listed(admin, outcome="effects=not_shipped") == [again, held]
    assert _listed(admin, rule="blacklisted-customer") == [again, held]
    assert _listed(admin, policy="cancellation-fees") == []
    revision = admin.get("/v1/policies/order-holds").json()["revision"]
    assert _listed(admin, revision=revision, outcome="held=false") == [clean]
    assert _listed(admin, revision="0000000000000000") == []
    first = admin.get("/v1/decisions", params={"limit": 1}).json()["decisions"][0]
    publication = admin.get("/v1/policies/order-holds").json()["publication"]
    assert first["policy"] == {
        "id": "order-holds",
        "revision": revision,
        "publication": publication,
    }
    assert "request" not in first and first["fired"] == ["blacklisted-customer"]


def test_the_log_is_paged_by_a_cursor_until_a_page_is_not_full(
    admin: httpx.Client, decided: list[str]
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = admin.get(
            "/v1/decisions", params={"policy": "order-holds", "limit": 2, "cursor": cursor}
        ).json()
        seen += [d["decision_id"] for d in page["decisions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[-3:] == decided[::-1] and len(seen) == len(set(seen))


def test_the_log_filters_by_time_on_both_sides_of_the_bound(
    admin: httpx.Client, decided: list[str]
) -> None:
    logged = admin.get(f"/v1/decisions/{decided[1]}").json()["logged_at"]
    from datetime import UTC, datetime

    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")

    assert decided[1] in _listed(admin, since=iso(logged), until=iso(logged + 1))
    assert decided[1] not in _listed(admin, since=iso(logged + 1))
    assert decided[1] not in _listed(admin, until=iso(logged))
    assert decided[1] not in _listed(admin, until="2000-01-01")


def test_listing_the_log_needs_the_admin_scope(server: Server) -> None:
    with server.client(DECIDE_TOKEN) as client:
        answer = client.get("/v1/decisions")
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "-1"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-10-01T10:00:00"}, "until"),  # no UTC offset
        ({"since": "0001-01-01"}, "since"),  # its start in Japan is year 0 in UTC
        ({"until": "0001-01-01"}, "until"),
        ({"since": "0000-12-31T23:59:59Z"}, "since"),
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),  # year 10000 in UTC
        ({"outcome": "held"}, "outcome"),
        ({"outcome": "a.b=1"}, "outcome"),
        ({"policy": "Order Holds"}, "policy"),
    ],
)
def test_a_bad_log_filter_is_a_422_naming_the_parameter(
    admin: httpx.Client, params: dict[str, str], parameter: str
) -> None:
    answer = admin.get("/v1/decisions", params=params)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["code"], body["parameter"]) == ("query_invalid", parameter)


def test_a_date_out_of_range_is_refused_with_the_words_of_an_instant_out_of_range(
    admin: httpx.Client,
) -> None:
    answer = admin.get("/v1/decisions", params={"since": "0001-01-01"})
    assert answer.status_code == 422, answer.text
    assert "out of range: instants must fall within the years 1-9999" in answer.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-02"},  # 0001-01-01T15:00:00Z
        {"until": "0001-01-02"},
        {"since": "0001-01-01T00:00:00Z"},
        {"until": "0001-01-01T09:00:00+09:00"},
        {"until": "9999-12-31"},  # 9999-12-30T15:00:00Z
        {"since": "9999-12-31T14:59:59Z"},
        {"since": "30d"},  # a duration ago, as impact's since and the CLI's --since read it
        {"until": "15m"},
    ],
)
def test_the_first_and_last_instants_are_accepted(
    admin: httpx.Client, params: dict[str, str]
) -> None:
    answer = admin.get("/v1/decisions", params=params)
    assert answer.status_code == 200, answer.text


def test_limit_500_is_accepted_and_1_returns_one(admin: httpx.Client, decided: list[str]) -> None:
    assert len(_listed(admin, limit=500)) >= 3
    assert len(_listed(admin, limit=1)) == 1


def test_the_stats_count_todays_decisions_per_outcome(
    admin: httpx.Client, decided: list[str]
) -> None:
    stats = admin.get("/v1/policies/order-holds/stats", params={"days": 3}).json()
    assert stats["days"] == 3 and len(stats["series"]) == 3
    assert stats["field"] == "held_automatically"
    today = stats["series"][-1]["counts"]
    assert today["held_automatically=true"] >= 2 and today["held_automatically=false"] >= 1
    assert set(stats["outcomes"]) >= {"held_automatically=true", "held_automatically=false"}
    assert len(admin.get("/v1/policies/order-holds/stats").json()["series"]) == 14


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/policies/order-holds/stats?days=0", 422, "query_invalid"),
        ("/v1/policies/order-holds/stats?days=367", 422, "query_invalid"),
        ("/v1/policies/claim-status/stats", 404, "not_a_decision_policy"),
        ("/v1/policies/order-hold/stats", 404, "unknown_policy"),
        ("/v1/policies/order-hold/source", 404, "unknown_policy"),
        ("/v1/policies/order-hold/examples", 404, "unknown_policy"),
    ],
)
def test_stats_source_and_examples_refuse_what_they_cannot_answer(
    admin: httpx.Client, path: str, status: int, code: str
) -> None:
    answer = admin.get(path)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_366_days_of_stats_are_accepted(admin: httpx.Client) -> None:
    assert len(admin.get("/v1/policies/order-holds/stats?days=366").json()["series"]) == 366


def test_the_source_is_the_text_of_the_revision_served(admin: httpx.Client) -> None:
    source = admin.get("/v1/policies/order-holds/source").json()
    assert source["text"] == (ROOT / "policies" / "order-holds.yaml").read_text(encoding="utf-8")
    assert source["revision"] == admin.get("/v1/policies/order-holds").json()["revision"]


def test_each_condition_of_a_policy_names_the_line_its_text_is_on(admin: httpx.Client) -> None:
    policy = admin.get("/v1/policies/order-holds").json()
    lines = admin.get("/v1/policies/order-holds/source").json()["text"].split("\n")
    conditions = [c for rule in policy["rules"] for c in rule["conditions"]]
    assert len(conditions) > 26
    for condition in conditions:
        line = lines[condition["location"]["line"] - 1]
        first = condition["text"].split("\n")[0].split()[0]
        assert first in line, (condition, line)
    similar = next(r for r in policy["rules"] if r["id"] == "blacklist-similar-customer")
    assert similar["reason"]["code"] == "BLACKLIST_SIMILAR_CUSTOMER"
    assert "{derived.similar_entry.id}" in similar["reason"]["message"]["ja"]
    assert {d["name"] for d in policy["derived"]} >= {"blacklist_entry", "similar_entry"}


def test_a_flow_policy_document_has_its_states_events_and_transitions(
    admin: httpx.Client,
) -> None:
    flow = admin.get("/v1/policies/claim-status").json()["flow"]
    assert flow["initial"] == "not_claimed"
    assert {s["id"] for s in flow["states"]} >= {"not_claimed", "requested", "approved"}
    claim = next(t for t in flow["transitions"] if t["id"] == "claim")
    assert (claim["from"], claim["event"], claim["to"]) == (["not_claimed"], "claim", "requested")


def test_examples_come_from_the_yaml_cases_and_the_examples_folder(admin: httpx.Client) -> None:
    examples = admin.get("/v1/policies/order-holds/examples").json()
    assert examples["errors"] == []
    assert [f["name"] for f in examples["files"]] == ["examples/order-holds.json"]
    first = examples["cases"][0]
    assert first["name"] == "an ordinary order is not held"
    assert first["facts"]["order"]["customer"]["name"] == "青木 誠"  # merged over the defaults
    assert first["at"] == "2024-10-01T10:00:00+09:00" and first["expect"]["fired"] == []
    assert first["own_data"] == ["blacklist", "blacklist_conditions", "customers", "remote_islands"]
    assert first["location"]["line"] > 1
    flow = admin.get("/v1/policies/claim-status/examples").json()
    assert flow["cases"][0]["events"][0] == {"type": "claim"}
    assert flow["files"][0]["event"] == {"type": "claim"}
    # and the move that makes a new estimate claimable (EX-2), beside it
    assert [f["name"] for f in flow["files"]] == [
        "examples/claim-status.event.json",
        "examples/claim-status.exclude.json",
    ]
    assert flow["files"][1]["event"]["type"] == "exclude"


def test_the_data_sets_are_listed_with_their_source_and_readers(admin: httpx.Client) -> None:
    data = {d["name"]: d for d in admin.get("/v1/data").json()["data"]}
    blacklist = data["blacklist"]
    assert blacklist["policies"] == ["order-holds"] and blacklist["source"] == "file"
    assert blacklist["file"].endswith("data/blacklist.yaml") and blacklist["count"] > 0
    assert blacklist["label"]["ja"] == "ブラックリスト顧客"


# -- the console's files -------------------------------------------------------------------
def test_the_root_redirects_to_the_console(server: Server) -> None:
    answer = httpx.get(server.url + "/")
    assert (answer.status_code, answer.headers["location"]) == (302, "/console/")


@pytest.mark.parametrize("path", ["/console", "/console/", "/docs"])
def test_the_pages_are_html_revalidated_each_time_and_allow_only_this_origin(
    server: Server, path: str
) -> None:
    answer = httpx.get(server.url + path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy
    assert "http" not in answer.text.replace("http-equiv", "")  # no address of elsewhere


def test_the_assets_a_page_names_are_served_immutable_with_their_type(server: Server) -> None:
    page = httpx.get(server.url + "/console").text
    names = re.findall(r'(?:src|href)="(/console/assets/[^"]+)"', page)
    assert any(n.endswith(".js") for n in names) and any(n.endswith(".css") for n in names)
    for name in names:
        answer = httpx.get(server.url + name)
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        assert answer.headers["content-type"] == f"{kind}; charset=utf-8"
        assert answer.headers["x-content-type-options"] == "nosniff"


def _raw_get(server: Server, target: bytes) -> tuple[int, bytes]:
    """One request with exactly this target, as a client that normalises nothing sends it."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


@pytest.mark.parametrize(
    "target",
    [
        b"/console/assets/../../../pyproject.toml",
        b"/console/assets/..%2F..%2F..%2Fpyproject.toml",
        b"/console/assets/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        b"/console/assets/..",
        b"/console/assets/%2e%2e",
        b"/console/assets/.",
        b"/console/assets/..%5c..%5cpyproject.toml",
        b"/console/assets/%00",
        b"/console/assets/assets.py",
        b"/console/assets/..%2Fassets.py",
        b"/console/assets/index.html",
        b"/console/../engine/console/assets.py",
        b"/console/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_no_asset_path_leads_out_of_the_assets_folder(server: Server, target: bytes) -> None:
    status, body = _raw_get(server, target)
    assert status in (400, 404)
    assert b"[project]" not in body and b"import" not in body


def test_an_outcome_computed_past_64_bits_is_a_422_and_not_logged(admin: httpx.Client) -> None:
    """cancellation-fees books -percent_of(reward * 5, share): the largest reward a fact holds,
    five times at 100%, leaves 64 bits (the fitting side: tests/runtime/test_outcome_range.py)."""
    uncollected = {"reward": 9223372036854775807, "documents_guided_on": "2024-01-31"}
    uncollected |= {"booked_on": "2024-04-29", "assignee_share": 100, "manager_share": 40}
    request = {"facts": {"uncollected": uncollected}, "at": "2024-06-01T10:00:00+09:00"}
    answer = admin.post("/v1/decisions/cancellation-fees", json=request)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "evaluation_error"
    [error] = body["errors"]
    assert error["code"] == "value_out_of_range"
    assert "outcome.assignee_negative: must be a 64-bit integer" in error["message"]
    assert _listed(admin, policy="cancellation-fees") == []


def test_each_listed_decision_names_its_policy_as_the_decision_did_publication_included(
    admin: httpx.Client, decided: list[str]
) -> None:
    """The listing named id and revision only: which publication served a decision (a
    rollback republishes a revision) was only in the decision opened by id."""
    listed = {d["decision_id"]: d["policy"] for d in admin.get("/v1/decisions").json()["decisions"]}
    for decision_id in decided:
        opened = admin.get(f"/v1/decisions/{decision_id}").json()
        assert listed[decision_id] == opened["policy"]
        assert listed[decision_id]["publication"] >= 1


def test_a_decision_served_by_no_publication_is_listed_without_one() -> None:
    from engine.service.reads import _logged_policy

    row = {"policy_id": "p", "revision": "r", "response": {"policy": {"id": "p", "revision": "r"}}}
    assert _logged_policy(row) == {"id": "p", "revision": "r"}
