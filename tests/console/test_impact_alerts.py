"""What an approver reads on a pending revision's page before approving it (a real
browser against a real `kimari serve`): a flow revision that would strand stored entities
says so as an alert, with the state and the entities; a decision policy's revision that
rewords a reason shows the decisions whose reasons read otherwise, before and after.

Both revisions are submitted over HTTP, as the console's editor submits them (a job that
tests and measures), so the job's report is checked on the way."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import ROOT
from tests.console.browser import WIDE, open_page
from tests.lifecycle.conftest import cancellation
from tests.service.server_process import Server, copy_shipped

ALICE, BOB, SVC = "alice-secret-0123", "bob-secret-01234", "svc-secret-01234"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*,{BOB}:bob:decide+publish:*,{SVC}:svc:decide"
FLOW = "claim-status"
HALF, FULL = "キャンセル料は半額です", "キャンセル料は全額です"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("impact-alerts")
    srv = Server(
        copy_shipped(tmp),
        tmp / "var" / "kimari.sqlite3",
        workers=1,
        env={"KIMARI_TOKENS": TOKENS, "KIMARI_RELOAD_INTERVAL": "0.1"},
    )
    try:
        yield srv.start()
    finally:
        srv.stop()


def _submit(client: httpx.Client, policy: str, source: str, tests: str) -> dict[str, Any]:
    """Submit a text as the editor does; the job's report once it is done."""
    answer = client.post(
        f"/v1/policies/{policy}/revisions",
        json={"source": source, "tests": tests, "message": "impact alerts"},
    )
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 90
    while True:
        job = client.get(answer.headers["location"]).json()
        if job["state"] != "running":
            assert job["state"] == "done", job.get("error")
            return job["report"]  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def _sign_in(page: Page, server: Server, token: str, principal: str) -> None:
    page.goto(server.url + "/console/")
    page.fill("#token", token)
    page.press("#token", "Enter")
    expect(page.locator("#policy-list")).to_be_visible()
    expect(page.locator("#principal")).to_contain_text(principal)


def test_the_approver_sees_stranded_entities_and_reworded_reasons(
    server: Server, browser: Browser, shots: Path
) -> None:
    with server.client(SVC) as svc:
        for stage in ("application_in_progress", "documents_filed"):
            for day in (3, 10):
                answer = svc.post("/v1/decisions/cancellation-fees", json=cancellation(day, stage))
                assert answer.status_code == 200, answer.text
    with server.client(ALICE) as alice:
        facts = {"estimate_status": "対象外", "exclusion_reason": "重複", "claims": 1}
        for entity in ("claim-1", "claim-2"):
            put = alice.put(
                f"/v1/flows/{FLOW}/{entity}", json={"state": "requested", "facts": facts}
            )
            assert put.status_code == 201, put.text
        renamed = {
            name: re.sub(
                r"\brequested\b",
                "submitted",
                (ROOT / "policies" / name).read_text(encoding="utf-8"),
            )
            for name in (f"{FLOW}.yaml", f"{FLOW}.tests.yaml")
        }
        report = _submit(alice, FLOW, renamed[f"{FLOW}.yaml"], renamed[f"{FLOW}.tests.yaml"])
        flow_ref = report["revision"]["ref"]
        assert report["revision"]["state"] == "pending"
        assert report["revision"]["impact"]["entities"]["stranded"] == 2
        fees = (ROOT / "policies" / "cancellation-fees.yaml").read_text(encoding="utf-8")
        fee_tests = (ROOT / "policies" / "cancellation-fees.tests.yaml").read_text(encoding="utf-8")
        report = _submit(alice, "cancellation-fees", fees.replace(HALF, FULL), fee_tests)
        fees_ref = report["revision"]["ref"]
        effect = report["revision"]["impact"]
        assert (effect["changed"], effect["reasons_only"], effect["unchanged"]) == (0, 2, 2)

    page, errors = open_page(browser, WIDE)
    _sign_in(page, server, BOB, "bob")
    number = flow_ref.rpartition("@")[2]
    page.goto(f"{server.url}/console/#/policies/{FLOW}/revisions/{number}")
    alert = page.locator("#revision-impact #entities-stranded")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("2 件が動かせなくなります")
    expect(alert.locator('li[data-state="requested"]')).to_contain_text("claim-1, claim-2")
    expect(page.locator("#approve")).to_be_visible()  # shown, not refused: bob decides
    page.screenshot(path=shots / "impact-stranded.png", full_page=True)

    number = fees_ref.rpartition("@")[2]
    page.goto(f"{server.url}/console/#/policies/cancellation-fees/revisions/{number}")
    impact = page.locator("#revision-impact")
    expect(impact.locator('[data-count="reasons_only"] dd')).to_have_text("2")
    expect(impact.locator('[data-count="changed"] dd')).to_have_text("0")
    rows = impact.locator('#reason-changes tr[data-rule="fee-half"]')
    expect(rows).to_have_count(2)
    expect(rows.first.locator(".from")).to_contain_text(HALF)
    expect(rows.first.locator(".to")).to_contain_text(FULL)
    expect(rows.first).to_contain_text("message.ja")
    expect(impact.locator("#entity-impact")).to_have_count(0)  # not a flow
    page.screenshot(path=shots / "impact-reasons.png", full_page=True)
    assert errors.seen == []
