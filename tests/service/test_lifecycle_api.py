"""The policy lifecycle through HTTP, against a decision log the tests write through HTTP.

A service over a copy of the shipped policies (bootstrapped into its store on start),
with three principals: `svc` (decide), `alice` and `bob` (decide + publish).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from engine.cli.main import main
from tests import ROOT
from tests.lifecycle.conftest import WORKLOAD_SCHEMA, cancellation, without_workload_percent
from tests.service.server_process import Server, running

SVC, ALICE, BOB = "svc-token-0123", "alice-token-0123", "bob-token-01234"
TOKENS = f"{SVC}:svc:decide,{ALICE}:alice:decide+publish,{BOB}:bob:decide+publish"
POLICY = "/v1/policies/cancellation-fees"
NO_FEE_DAYS = "    default: 7\n    minimum: 0\n    refs: [FE-2]"


def shipped_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "policies", project / "policies")
    shutil.copytree(ROOT / "schemas", project / "schemas")
    return project / "policies"


def _two_workers(tmp_path: Path, reload_interval: str) -> AbstractContextManager[Server]:
    """The shipped policies served by two workers that poll the store that often."""
    env = {"KIMARI_TOKENS": TOKENS, "KIMARI_RELOAD_INTERVAL": reload_interval}
    return running(tmp_path, workers=2, env=env, policies=shipped_copy(tmp_path))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with _two_workers(tmp_path, "0.1") as srv:
        yield srv


def _decide(client: httpx.Client, policy: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(f"/v1/decisions/{policy}", json=request)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _job(client: httpx.Client, answer: httpx.Response) -> dict[str, Any]:
    """Follow a 202 job to its end."""
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    deadline = time.monotonic() + 90
    while True:
        job = client.get(location).json()
        if job["state"] != "running":
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _draft(client: httpx.Client, source: str, **extra: Any) -> int:
    answer = client.post(f"{POLICY}/revisions", json={"source": source, "state": "draft", **extra})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["number"])


def _source(server: Server) -> str:
    return (server.policies / "cancellation-fees.yaml").read_text(encoding="utf-8")


def test_impact_over_http_lists_exactly_the_decisions_a_draft_or_new_data_would_change(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        server.client(SVC) as svc,
        server.client(ALICE) as alice,
    ):
        ids = [_decide(svc, "cancellation-fees", cancellation(d))["decision_id"] for d in range(12)]
        # a threshold moved: no fee within 5 days, not 7
        draft = _draft(alice, _source(server).replace(NO_FEE_DAYS, NO_FEE_DAYS.replace("7", "5")))
        job = _job(alice, alice.post(f"{POLICY}/impact", json={"draft": draft}))
        assert job["state"] == "done" and job["principal"] == "alice", job
        report = job["report"]
        assert (report["replayed"], report["changed"], report["unchanged"]) == (12, 2, 4)
        assert [c["decision_id"] for c in report["changes"]] == ids[6:8]
        # days 0-5 keep their fee; fee-none's reason says "（5日以内）" instead of "（7日以内）"
        assert report["reasons_only"] == 6 and report["reason_rules"] == {"fee-none": 6}
        assert all(
            (c["before"]["fee_tier"], c["after"]["fee_tier"]) == ("none", "by_workload")
            for c in report["changes"]
        )
        assert job["progress"]["done"] == 12
        # the CLI on the same store says the same
        store = str(server.store)
        code = main(["impact", "cancellation-fees", "--draft", str(draft), "--store", store,
                     "--format", "json", "--no-progress"])  # fmt: skip
        assert code == 0
        assert json.loads(capsys.readouterr().out)["changes"] == report["changes"]
        assert main(["impact", "cancellation-fees", "--draft", str(draft), "--store", store,
                     "--max-changed", "1", "--no-progress"]) == 1  # fmt: skip
        capsys.readouterr()

        # new data: which orders would a new blacklist hold?
        orders = [_order(c) for c in ("C-501", "C-502", "C-501", "C-502")]
        order_ids = [_decide(svc, "order-holds", o)["decision_id"] for o in orders]
        entries = [{"id": "BL-900", "customer_id": "C-502", "name": "森 花子"}]
        job = _job(
            alice,
            alice.post("/v1/policies/order-holds/impact", json={"data": {"blacklist": entries}}),
        )
        report = job["report"]
        assert (report["replayed"], report["changed"]) == (4, 2), report
        assert [c["decision_id"] for c in report["changes"]] == [order_ids[1], order_ids[3]]
        assert all(c["after"]["held"] is True for c in report["changes"])
        bad = alice.post(
            "/v1/policies/order-holds/impact", json={"data": {"blacklist": [{"x": 1}]}}
        )
        assert bad.status_code == 422 and bad.json()["code"] == "data_invalid"

        # a draft whose facts schema drops a field: those decisions are invalid, not crashed
        schema_name = WORKLOAD_SCHEMA
        schema = (server.policies / schema_name).read_text(encoding="utf-8")
        text, smaller = without_workload_percent(_source(server), schema)
        dropped = _draft(alice, text, files={schema_name: smaller})
        report = _job(alice, alice.post(f"{POLICY}/impact", json={"draft": dropped}))["report"]
        assert (report["replayed"], report["invalid"], report["failed"]) == (12, 12, 0)
        [kind] = report["invalid_facts"]
        assert kind["pointer"] == "/facts/cancellation/workload_percent"

        # one job per policy at a time, and a running job can be cancelled
        first = alice.post(f"{POLICY}/impact", json={"draft": draft})
        assert first.status_code == 202, first.text
        busy = alice.post(f"{POLICY}/impact", json={"draft": draft})
        assert busy.status_code == 409 and busy.json()["code"] == "job_running", busy.text
        cancel = alice.post(f"{first.headers['location']}:cancel")
        assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True
        assert _job(alice, first)["state"] == "cancelled"
        listed = alice.get("/v1/jobs", params={"policy": "cancellation-fees"}).json()["jobs"]
        assert listed[0]["id"] == first.json()["id"] and listed[0]["state"] == "cancelled"

        # the semantic diff of the draft
        diff = alice.get(f"{POLICY}/diff", params={"from": "published", "to": str(dropped)}).json()
        assert [f["field"] for f in diff["changes"]["facts"]["removed"]] == [
            "cancellation.workload_percent"
        ]
        assert "cancellation-fees.facts.schema.json" in diff["text"]
        # its labels in the request's language, as every text of an answer is
        asked_in_japanese = alice.get(
            f"{POLICY}/diff",
            params={"from": "published", "to": str(dropped)},
            headers={"accept-language": "ja"},
        ).json()
        assert asked_in_japanese["from"]["label"].startswith("公開中 (cancellation-fees@")
        assert diff["from"]["label"].startswith("published (cancellation-fees@")


def _order(customer: str) -> dict[str, Any]:
    return {
        "facts": {
            "order": {
                "id": f"O-{customer}",
                "total": 5980,
                "sequence": 1,
                "customer": {
                    "id": customer,
                    "name": "青木 誠" if customer == "C-501" else "森 花子",
                    "postal_code": "150-0002",
                    "phone": "03-1111-2222" if customer == "C-501" else "03-1111-3333",
                    "email": f"{customer.lower()}@example.jp",
                    "address": "東京都渋谷区渋谷2-1-1",
                },
                "payment": {"method": "credit_card"},
                "shipping": {"cod_available": True},
            }
        },
        "at": "2024-10-01T10:00:00+09:00",
    }


def _submit(client: httpx.Client, source: str, message: str) -> dict[str, Any]:
    answer = client.post(f"{POLICY}/revisions", json={"source": source, "message": message})
    job = _job(client, answer)
    assert job["state"] == "done", job
    return job["report"]["revision"]  # type: ignore[no-any-return]


def _served(svc: httpx.Client, publication: int) -> None:
    """Wait until every worker decides with `publication` (8 answers in a row)."""
    deadline = time.monotonic() + 30
    streak = 0
    while streak < 8:
        answer = _decide(svc, "cancellation-fees", cancellation(3))
        streak = streak + 1 if answer["policy"].get("publication") == publication else 0
        assert time.monotonic() < deadline, answer["policy"]


def test_approval_publication_and_rollback_over_http_with_the_log_naming_each_publication(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    with (
        server.client(SVC) as svc,
        server.client(ALICE) as alice,
        server.client(BOB) as bob,
    ):
        assert svc.get(f"{POLICY}/revisions").status_code == 403  # decide is not publish
        with server.client(None) as nobody:
            assert nobody.get(f"{POLICY}/revisions").status_code == 401
        start = _decide(svc, "cancellation-fees", cancellation(3))
        first_publication = start["policy"]["publication"]
        original = start["policy"]["revision"]

        text = _source(server)
        mine = _submit(
            alice, text.replace("キャンセル料は半額です", "キャンセル料は報酬の半額です"), "a"
        )
        assert (mine["state"], mine["author"], mine["tests"]["failed"]) == ("pending", "alice", 0)
        # a pending revision shows in every decision (of every worker) until it is decided on
        deadline, streak = time.monotonic() + 10, 0
        while streak < 8:
            policy = _decide(svc, "cancellation-fees", cancellation(3))["policy"]
            streak = streak + 1 if "unserved" in policy else 0
            assert time.monotonic() < deadline, policy
        unserved = policy["unserved"]
        assert unserved == {"state": "pending", "revision": f"cancellation-fees@{mine['number']}"}

        refused = alice.post(f"{POLICY}/revisions/{mine['number']}:approve")
        assert refused.status_code == 403 and refused.json()["code"] == "self_approval"

        theirs = _submit(
            bob, text.replace("キャンセル料は全額です", "キャンセル料は報酬の全額です"), "b"
        )
        approved = alice.post(
            f"{POLICY}/revisions/{theirs['number']}:approve", json={"message": "ok"}
        )
        assert approved.status_code == 200, approved.text
        publication = approved.json()["publication"]
        assert publication["principal"] == "alice" and publication["kind"] == "approval"
        stale = bob.post(f"{POLICY}/revisions/{mine['number']}:approve")
        assert stale.status_code == 409 and stale.json()["code"] == "stale_base", stale.text
        _served(svc, publication["publication"])
        middle = _decide(svc, "cancellation-fees", cancellation(3))

        back = bob.post(f"{POLICY}/rollback", json={"to": 1, "message": "back"})
        assert back.status_code == 200, back.text
        rolled = back.json()
        assert rolled["revision"] == original and rolled["publication"] > publication["publication"]
        _served(svc, rolled["publication"])
        end = _decide(svc, "cancellation-fees", cancellation(3))
        assert end["policy"]["revision"] == original

        listing = bob.get(f"{POLICY}/revisions").json()
        states = {r["number"]: r["state"] for r in listing["revisions"]}
        assert states[1] == "published" and states[theirs["number"]] == "retired"
        assert states[mine["number"]] == "pending"
        assert listing["revisions"][-1]["publications"] == [
            first_publication,
            rolled["publication"],
        ]
        actions = [e["action"] for e in bob.get(f"{POLICY}/audit").json()["entries"]]
        assert actions[:2] == ["rollback", "approve"]

    # the decision log names the publication that decided each decision
    store = str(server.store)
    assert main(["log", "--store", store, "--policy", "cancellation-fees", "--limit", "500",
                 "--format", "jsonl"]) == 0  # fmt: skip
    rows = {r["decision_id"]: r for r in map(orjson.loads, capsys.readouterr().out.splitlines())}
    for decision, expected in (
        (start, first_publication),
        (middle, publication["publication"]),
        (end, rolled["publication"]),
    ):
        logged = rows[decision["decision_id"]]["response"]["policy"]
        assert logged["publication"] == expected
        assert logged["revision"] == decision["policy"]["revision"]
    assert main(["log", "--store", store, "--id", end["decision_id"]]) == 0
    assert f"publication={rolled['publication']}" in capsys.readouterr().out


@pytest.fixture
def slow_polls(tmp_path: Path) -> Iterator[Server]:
    """Two workers that look at the store only every two minutes on their own."""
    with _two_workers(tmp_path, "120") as srv:
        yield srv


def test_a_publication_reaches_the_other_worker_at_once_not_at_its_next_poll(
    slow_polls: Server,
) -> None:
    """The approving worker serves the publication before it answers; the front then tells
    every worker to look at the store now. Without that, the other worker would answer
    with the old publication until its own poll, up to two minutes here (so this fails
    without the change unless that poll falls within the few seconds allowed)."""
    with (
        slow_polls.client(SVC) as svc,
        slow_polls.client(ALICE) as alice,
        slow_polls.client(BOB) as bob,
    ):
        before = _decide(svc, "cancellation-fees", cancellation(3))["policy"]["publication"]
        text = _source(slow_polls)
        theirs = _submit(
            bob, text.replace("キャンセル料は全額です", "キャンセル料は報酬の全額です"), "b"
        )
        approved = alice.post(f"{POLICY}/revisions/{theirs['number']}:approve")
        assert approved.status_code == 200, approved.text
        publication = approved.json()["publication"]["publication"]
        assert publication != before
        deadline, streak = time.monotonic() + 8, 0
        while streak < 8:  # both workers, whichever answers (ties go round-robin)
            policy = _decide(svc, "cancellation-fees", cancellation(3))["policy"]
            streak = streak + 1 if policy.get("publication") == publication else 0
            assert time.monotonic() < deadline, f"still {policy} after 8 s"


def test_numbers_in_paths_and_queries_are_ascii_digits_in_range(server: Server) -> None:
    """str.isdigit() and \\d say yes to '²' and '١', which int() then refuses or SQL cannot
    hold: such a limit, cursor or revision number was a 500 (found by schemathesis)."""
    with server.client(ALICE) as alice:
        for name, value in [
            ("limit", "²"),
            ("limit", "0"),
            ("limit", "501"),
            ("limit", "99999999999999999999"),
            ("before", "٣"),
            ("before", "99999999999999999999"),
        ]:
            answer = alice.get("/v1/audit", params={name: value})
            assert answer.status_code == 422, (name, value, answer.text)
            assert (answer.json()["code"], answer.json()["parameter"]) == ("query_invalid", name)
        assert len(alice.get("/v1/audit", params={"limit": "2"}).json()["entries"]) <= 2
        for number in ("²", "99999999999999999999"):
            answer = alice.get(f"{POLICY}/revisions/{number}")
            assert answer.status_code == 404, (number, answer.text)
            assert answer.json()["code"] == "unknown_revision"


def test_a_duration_is_ascii_digits() -> None:
    from engine.core.errors import UsageError
    from engine.service.lifecycle import since_ms

    assert since_ms("2d", "since") is not None
    for text in ("²d", "١d", "9999999999d"):
        with pytest.raises(UsageError):
            since_ms(text, "since")


def test_a_duration_reaching_before_year_1_is_refused_at_its_first_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the epoch, 719162 days ago is 0001-01-01T00:00:00Z, the first instant there is."""
    from engine.core.errors import UsageError
    from engine.service.lifecycle import since_ms

    monkeypatch.setattr(time, "time", lambda: 0.0)
    assert since_ms("719162d", "since") == -62135596800000
    assert since_ms("0001-01-01T00:00:00Z", "until") == -62135596800000
    for text in ("719163d", "17259889h", "99999999d"):
        with pytest.raises(UsageError) as caught:
            since_ms(text, "until")
        [problem] = caught.value.diagnostics
        assert problem.pointer == "/until"
        assert "out of range: instants must fall within the years 1-9999" in problem.message
    assert since_ms("17259888h", "since") == -62135596800000


def test_a_bad_since_or_until_of_an_impact_is_a_422_pointing_at_it(server: Server) -> None:
    """It was a 404 `usage` ("not found"); a duration long before year 1 was taken; a bare
    date, which the log's filter reads, was refused."""
    entries = [{"id": "BL-900", "customer_id": "C-502", "name": "森 花子"}]
    impact = "/v1/policies/order-holds/impact"
    with server.client(ALICE) as alice:
        for name in ("since", "until"):
            for value in ("bogus", "2y", "-5d", "0001-01-01", "2024-02-30", "99999999d", 5):
                for request in ({"draft": 3}, {"data": {"blacklist": entries}}):
                    answer = alice.post(impact, json={**request, name: value})
                    assert answer.status_code == 422, (name, value, answer.text)
                    body = answer.json()
                    assert body["code"] == "request_invalid", body
                    assert [e["pointer"] for e in body["errors"]] == [f"/{name}"], body
        for name, value in [
            ("since", "30d"),
            ("since", "0d"),
            ("since", "0001-01-01T00:00:00Z"),
            ("until", "9999-12-31T14:59:59Z"),
            ("since", "2024-06-01"),  # a date, its start in Japan: as the log's filter reads it
            ("until", "9999-12-31"),
        ]:
            answer = alice.post(impact, json={"data": {"blacklist": entries}, name: value})
            assert _job(alice, answer)["state"] == "done", (name, value)
        # a window that ends before it starts holds nothing: refused, not replayed empty
        reversed_window = {"since": "2030-01-01", "until": "2020-01-01"}
        answer = alice.post(impact, json={"data": {"blacklist": entries}, **reversed_window})
        assert answer.status_code == 422, answer.text
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/until"]
        same_day = {"since": "2024-06-01T00:00:00+09:00", "until": "2024-06-01T00:00:00+09:00"}
        answer = alice.post(impact, json={"data": {"blacklist": entries}, **same_day})
        assert _job(alice, answer)["state"] == "done"


def test_rollback_approve_and_reject_bodies_are_checked_before_anything_is_looked_up(
    server: Server,
) -> None:
    with server.client(ALICE) as alice:
        cases = [  # revision 1 is the published one: its shape would not matter otherwise
            (f"{POLICY}/rollback", {"to": 1, "message": 5}, "request_invalid", "/message"),
            (f"{POLICY}/rollback", {"to": 1, "mesage": "x"}, "unknown_field", "/mesage"),
            (f"{POLICY}/rollback", {"message": "back"}, "required", "/to"),
            (f"{POLICY}/revisions/1:approve", {"message": 5}, "request_invalid", "/message"),
            (f"{POLICY}/revisions/1:reject", {"why": "no"}, "unknown_field", "/why"),
        ]
        for path, body, code, pointer in cases:
            answer = alice.post(path, json=body)
            assert answer.status_code == 422, (path, body, answer.text)
            problem = answer.json()
            first = problem["errors"][0]
            assert problem["code"] == "request_invalid"
            assert (first["code"], first["pointer"]) == (code, pointer)
        # well formed: the state of revision 1 answers (published already, nothing pending)
        assert alice.post(f"{POLICY}/rollback", json={"to": 1}).status_code == 409
        assert alice.post(f"{POLICY}/revisions/1:reject").status_code == 409


def test_a_bad_revision_in_the_diff_query_is_a_query_invalid_naming_it(server: Server) -> None:
    with server.client(ALICE) as alice:
        for query in ({"to": "-1"}, {"to": "../../etc/passwd"}, {"to": "\x00"}, {"from": "x"}):
            answer = alice.get(f"{POLICY}/diff", params=query)
            assert answer.status_code == 422, (query, answer.text)
            problem = answer.json()
            (name,) = query
            assert (problem["code"], problem["parameter"]) == ("query_invalid", name), query
            assert "errors" not in problem  # no body to point into
        nothing = alice.get(f"{POLICY}/diff")  # nothing pending or drafted to compare with
        assert nothing.status_code == 422
        assert (nothing.json()["code"], nothing.json()["parameter"]) == ("query_invalid", "to")
        same = alice.get(f"{POLICY}/diff", params={"from": "published", "to": "1"})
        assert same.status_code == 200


@pytest.mark.parametrize("route", ["revisions", "impact", "validate", "tests"])
def test_a_body_that_is_no_object_is_pointed_at_on_every_lifecycle_route(
    server: Server, route: str
) -> None:
    with server.client(ALICE) as alice:
        answer = alice.post(f"{POLICY}/{route}", json=[])
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        assert problem["code"] == "request_invalid"
        assert [(e["code"], e["pointer"]) for e in problem["errors"]] == [("type_mismatch", "")]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_nul_in_a_lifecycle_text_or_filter_is_refused_alike_on_either_store(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """PostgreSQL's text holds no NUL: a draft's message, a rollback's, an outcome filter,
    the audit's or jobs' ?policy= with one were a 500 there and stored on SQLite (a rollback
    then published on one store and not on the other)."""
    store: Path | str = tmp_path / "var" / "kimari.sqlite3"
    if backend == "postgres":
        store = request.getfixturevalue("pg_server").create_database()
    env = {"KIMARI_TOKENS": f"{TOKENS},admin-token-0123:ops:decide+admin"}
    server = Server(shipped_copy(tmp_path), store, workers=1, env=env).start()
    try:
        _nul_refused(server)
    finally:
        server.stop()


def _nul_refused(server: Server) -> None:
    with server.client(ALICE) as alice, server.client(BOB) as bob:
        source = alice.get(f"{POLICY}/source").json()["text"]
        sent = {"source": source + "\n# again\n", "message": "m\x00", "state": "draft"}
        answer = alice.post(f"{POLICY}/revisions", json=sent)
        assert answer.status_code == 422, answer.text
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/message"]
        tests = {"source": source, "state": "draft", "tests": "# t\x00\n"}
        answer = alice.post(f"{POLICY}/revisions", json=tests)
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/tests"]
        answer = bob.post(f"{POLICY}/rollback", json={"to": 1, "message": "r\x00"})
        assert [e["pointer"] for e in answer.json()["errors"]] == ["/message"]
        for path, query in [
            ("/v1/audit", {"policy": "\x00"}),
            ("/v1/jobs", {"policy": "x\x00y"}),
        ]:
            answer = alice.get(path, params=query)
            assert answer.status_code == 422, (path, answer.text)
            assert answer.json()["parameter"] == "policy"
        with server.client("admin-token-0123") as ops:
            answer = ops.get("/v1/decisions", params={"outcome": "fee_tier=half\x00"})
            assert answer.status_code == 422, answer.text
            assert answer.json()["parameter"] == "outcome"
        assert alice.get("/v1/audit", params={"policy": "cancellation-fees"}).status_code == 200
        # no decision id has one: not looked up in the log, nor in the flows' history
        answer = alice.get("/v1/decisions/d%00x")
        assert (answer.status_code, answer.json()["code"]) == (404, "unknown_decision")


def test_the_revisions_are_paged_over_http_through_the_front(server: Server) -> None:
    """The worker read ?limit= and ?before=, but the front refused them: "this path reads
    no query parameters"."""
    with server.client(ALICE) as alice:
        drafts = [_draft(alice, _source(server)) for _ in range(3)]
        page = alice.get(f"{POLICY}/revisions", params={"limit": 2})
        assert page.status_code == 200, page.text
        body = page.json()
        assert [r["number"] for r in body["revisions"]] == drafts[:0:-1]
        assert body["next_before"] == drafts[1]
        rest = alice.get(f"{POLICY}/revisions", params={"before": body["next_before"]}).json()
        assert [r["number"] for r in rest["revisions"]] == [drafts[0], 1]
        assert rest["next_before"] is None
        refused = alice.get(f"{POLICY}/revisions", params={"limits": 2})
        assert refused.status_code == 422 and refused.json()["parameter"] == "limits"
