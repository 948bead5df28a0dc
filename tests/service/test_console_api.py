"""The API the console's editor, data and flow pages read, through HTTP: who a token is,
a draft's text validated as one types (diagnostics at line:col, in the policy and in its
tests), its YAML tests run as a job, and the versions of a data set.

One service over a copy of the shipped policies (bootstrapped into its store), with a
service token and an editor who may publish and replace data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.server_process import Server, copy_shipped

SVC, EDITOR, PORTAL = "svc-token-0123", "editor-token-0123", "portal-token-0123"
TOKENS = (
    f"{SVC}:svc:decide,{EDITOR}:alice:decide+admin+publish:*,{PORTAL}:portal:decide:販売店|dealer"
)
POLICY = "/v1/policies/order-holds"
THRESHOLD = '      - order.sequence >= 2\n      - order.payment.method == "credit_card"'
CARD_CASE = "        sequence: 2\n        generated_from_subscription: true"
CARD_EXPECT = "        subscription: {id: S-100}\n    expect:"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("console-api")
    srv = Server(
        copy_shipped(tmp),
        tmp / "var" / "kimari.sqlite3",
        workers=1,
        env={"KIMARI_TOKENS": TOKENS},
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def texts(server: Server) -> tuple[str, str]:
    """The policy text and its tests, as the store serves them."""
    with server.client(EDITOR) as editor:
        record = editor.get(f"{POLICY}/revisions/1").json()
    return record["source"], record["tests_source"]


def _job(client: httpx.Client, answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    deadline = time.monotonic() + 60
    while True:
        job = client.get(location).json()
        if job["state"] != "running":
            return job  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# -- whoami ------------------------------------------------------------------------------
def test_whoami_names_the_tokens_principal_scopes_and_roles_and_never_its_secret(
    server: Server,
) -> None:
    with server.client(EDITOR) as editor, server.client(PORTAL) as portal:
        assert editor.get("/v1/whoami").json() == {
            "principal": "alice",
            "scopes": ["admin", "decide", "publish"],
            "roles": ["*"],
        }
        answer = portal.get("/v1/whoami")
        assert answer.json() == {
            "principal": "portal",
            "scopes": ["decide"],
            "roles": ["dealer", "販売店"],
        }
        assert PORTAL not in answer.text
    with server.client(None) as nobody:
        assert nobody.get("/v1/whoami").status_code == 401


# -- validate ----------------------------------------------------------------------------
def test_a_valid_draft_text_gets_its_revision_and_no_errors(
    server: Server, texts: tuple[str, str]
) -> None:
    source, tests = texts
    edited = source.replace(THRESHOLD, THRESHOLD.replace(">= 2", ">= 3"))
    with server.client(EDITOR) as editor:
        found = editor.post(f"{POLICY}/validate", json={"source": edited, "tests": tests}).json()
        published = editor.get(f"{POLICY}/revisions/1").json()["revision"]
    assert found["valid"] is True and found["errors"] == [] and found["tests"]["checked"]
    assert found["revision"] not in (None, published)


def test_a_typo_in_the_draft_is_reported_at_its_line_and_column_with_a_suggestion(
    server: Server, texts: tuple[str, str]
) -> None:
    source, _ = texts
    edited = source.replace(THRESHOLD, THRESHOLD.replace("order.sequence", "order.sequnce"))
    line = _line_of(edited, "order.sequnce >= 2")
    with server.client(EDITOR) as editor:
        answer = editor.post(
            f"{POLICY}/validate", json={"source": edited}, headers={"Accept-Language": "ja"}
        )
    assert answer.status_code == 200
    found = answer.json()
    assert found["valid"] is False and found["revision"] is None
    assert found["tests"] == {"checked": False, "errors": []}
    (error,) = found["errors"]
    assert error["code"] == "unknown_fact_field"
    assert error["location"]["line"] == line
    assert error["location"]["col"] == 15  # the unknown segment: order.[s]equnce
    assert "order.sequence" in error["hint"] or "order.sequence" in error["message"]
    assert "事実" in error["message"] or "ファクト" in error["message"]  # in Japanese


def test_a_broken_test_case_is_reported_in_the_tests_file_at_its_line(
    server: Server, texts: tuple[str, str]
) -> None:
    source, tests = texts
    broken = tests.replace(CARD_EXPECT, CARD_EXPECT.replace("expect:", "expcet:"), 1)
    with server.client(EDITOR) as editor:
        found = editor.post(f"{POLICY}/validate", json={"source": source, "tests": broken}).json()
    assert found["valid"] is False and found["errors"] == []
    located = [e["location"] for e in found["tests"]["errors"]]
    assert located and located[0]["file"] == "order-holds.tests.yaml"
    assert located[0]["line"] == _line_of(broken, "expcet:")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"tests": "x"}, "/source"),
        ({"source": "kimari: 1", "tests": 3}, "/tests"),
        ({"source": "kimari: 1", "files": ["a"]}, "/files"),
        ({"source": "kimari: 1", "state": "draft"}, "/state"),
    ],
)
def test_a_request_that_is_not_a_drafts_text_is_refused_with_its_pointer(
    server: Server, body: dict[str, Any], pointer: str
) -> None:
    with server.client(EDITOR) as editor:
        answer = editor.post(f"{POLICY}/validate", json=body)
    assert answer.status_code == 422
    assert pointer in [e["pointer"] for e in answer.json()["errors"]]


@pytest.mark.parametrize("source", ["", "  \n", "# only a comment\n"])
def test_an_emptied_editor_gets_a_diagnostic_at_1_1_not_a_refused_request(
    server: Server, source: str
) -> None:
    """The console validates as one types, a cleared buffer included: the answer is the
    diagnostic `kimari validate` gives an empty file (was a 422 the console could not show).
    Tests are not run for an empty text: that is still refused at /source."""
    with server.client(EDITOR) as editor:
        answer = editor.post(f"{POLICY}/validate", json={"source": source})
        if not source.strip():
            refused = editor.post(f"{POLICY}/tests", json={"source": source})
            assert refused.status_code == 422
            assert [e["pointer"] for e in refused.json()["errors"]] == ["/source"]
    assert answer.status_code == 200, answer.text
    [error] = answer.json()["errors"]
    assert answer.json()["valid"] is False
    assert (error["code"], error["location"]["line"], error["location"]["col"]) == (
        "file_empty",
        1,
        1,
    )


def test_validating_and_testing_a_draft_need_the_publish_scope_and_a_known_policy(
    server: Server, texts: tuple[str, str]
) -> None:
    source, _ = texts
    with server.client(SVC) as svc, server.client(EDITOR) as editor:
        for path in ("validate", "tests"):
            answer = svc.post(f"{POLICY}/{path}", json={"source": source})
            assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
            answer = editor.post(f"/v1/policies/order-hodls/{path}", json={"source": source})
            assert answer.status_code == 404
            assert "order-holds" in answer.json()["hint"]


# -- the tests on demand ---------------------------------------------------------------------
def test_the_tests_of_a_draft_text_run_as_a_job_and_name_each_failing_case_by_its_line(
    server: Server, texts: tuple[str, str]
) -> None:
    source, tests = texts
    edited = source.replace(THRESHOLD, THRESHOLD.replace(">= 2", ">= 3"))
    with server.client(EDITOR) as editor:
        body = {"source": edited, "tests": tests}
        job = _job(editor, editor.post(f"{POLICY}/tests", json=body))
        assert (job["kind"], job["state"]) == ("tests", "done")
        assert "source" not in job["params"] and "tests" not in job["params"]
        report = job["report"]["tests"]
        assert report["failed"] == 1 and report["passed"] == report["cases"] - 1
        (failure,) = report["failures"]
        assert failure["file"] == "order-holds.tests.yaml"
        assert failure["line"] == _line_of(tests, CARD_CASE) - 4  # the case's "- name:"
        assert "subscription-card-payment-failed" in " ".join(failure["failures"])
        # the boundary moved with it: every case passes
        moved = tests.replace(CARD_CASE, CARD_CASE.replace("sequence: 2", "sequence: 3"), 1)
        job = _job(editor, editor.post(f"{POLICY}/tests", json={"source": edited, "tests": moved}))
        assert job["report"]["tests"]["failed"] == 0
        assert job["report"]["revision"] != editor.get(f"{POLICY}/revisions/1").json()["revision"]
        # a text that does not compile fails the job with its diagnostics
        job = _job(editor, editor.post(f"{POLICY}/tests", json={"source": "kimari: 1\n"}))
        assert job["state"] == "failed" and job["error"]["code"] == "policy_invalid"
        # the report is written in the language of the request that started the job
        asked_in_japanese = editor.post(
            f"{POLICY}/tests", json=body, headers={"accept-language": "ja"}
        )
        (failure,) = _job(editor, asked_in_japanese)["report"]["tests"]["failures"]
        shown = " ".join(failure["failures"])
        assert "subscription-card-payment-failed" in shown
        assert "expected" not in shown and "を期待しましたが" in shown, shown
        failed = _job(
            editor,
            editor.post(
                f"{POLICY}/tests", json={"source": "kimari: 1\n"}, headers={"accept-language": "ja"}
            ),
        )
        assert all(not e["message"].isascii() for e in failed["error"]["errors"]), failed
        # nothing was stored: still one revision
        assert len(editor.get(f"{POLICY}/revisions").json()["revisions"]) == 1


# -- the versions of a data set ------------------------------------------------------------
def test_a_data_sets_versions_list_the_file_default_and_each_replacement_newest_first(
    server: Server,
) -> None:
    with server.client(EDITOR) as editor, server.client(SVC) as svc:
        before = svc.get("/v1/data/remote_islands/versions").json()
        assert [v["source"] for v in before["versions"]] == ["file"]
        assert before["versions"][0]["current"] is True
        entries = editor.get("/v1/data/remote_islands").json()["entries"]
        put = editor.put("/v1/data/remote_islands", json={"entries": entries[:1]})
        assert put.status_code == 200, put.text
        after = svc.get("/v1/data/remote_islands/versions").json()
        assert after["current"] == put.json()["version"]
        newest, oldest = after["versions"]
        assert (newest["source"], newest["count"], newest["current"]) == ("api", 1, True)
        assert (oldest["version"], oldest["current"]) == (before["current"], False)
        assert newest["created_at"] >= oldest["created_at"]
        # who replaced it, and when: the editor token's principal
        (change,) = after["changes"]
        assert (change["action"], change["version"], change["principal"]) == (
            "replaced",
            put.json()["version"],
            "alice",
        )
        assert change["at"] >= newest["created_at"]
        assert editor.delete("/v1/data/remote_islands").status_code == 200
        reset = svc.get("/v1/data/remote_islands/versions").json()
        assert reset["current"] == before["current"]
        assert [(c["action"], c["version"], c["principal"]) for c in reset["changes"]] == [
            ("reset", None, "alice"),
            ("replaced", put.json()["version"], "alice"),
        ]
        answer = svc.get("/v1/data/remote_island/versions")
        assert answer.status_code == 404 and "remote_islands" in answer.json()["hint"]


def test_the_openapi_document_describes_the_consoles_routes(server: Server) -> None:
    with server.client(SVC) as svc:
        paths = svc.get("/openapi.json").json()["paths"]
    assert paths["/v1/whoami"]["get"]["operationId"] == "whoami"
    assert paths["/v1/policies/{policy_id}/validate"]["post"]["operationId"] == "validateDraft"
    assert paths["/v1/policies/{policy_id}/tests"]["post"]["operationId"] == "testDraft"
    assert paths["/v1/data/blacklist/versions"]["get"]["operationId"] == "getBlacklistDataVersions"


def test_new_data_refused_by_an_impact_names_each_error_by_its_pointer_in_the_request(
    server: Server,
) -> None:
    bad = {"remote_islands": [{"postal_code": "1000101", "island": "大島"}, {"island": 7}]}
    with server.client(EDITOR) as editor:
        answer = editor.post(f"{POLICY}/impact", json={"data": bad})
    assert answer.status_code == 422 and answer.json()["code"] == "data_invalid"
    pointers = {e["pointer"] for e in answer.json()["errors"]}
    assert pointers == {"/data/remote_islands/1/island", "/data/remote_islands/1/postal_code"}
