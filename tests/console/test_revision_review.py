"""What an approver reads of pending revisions, in a real browser (Debian's Chromium,
driven by Playwright) against a real `kimari serve` with the shipped policies:

    a flow's pending revision shows its stored entities in the impact cell of the
    approvals and of its revisions (a flow logs no decisions: "0 of 0 change" said nothing),
    what it strands in red, or that none is touched; a decision policy's still shows its
    decisions; the approvals are readable in an 800 px window (a block of labelled values
    each, as the revisions are); a revision that strands stored entities says so beside
    the approve button, which waits until that is acknowledged; a decision policy's
    revision shows the published flows that consult it, tested against it at submission;
    stale_base reads right for a draft refused at submission and for a pending revision
    overtaken before its approval.

Every revision is submitted over HTTP, as the console's editor submits them (a job that
tests and measures); every step waits on a state of the page, never on time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests import ROOT
from tests.console.browser import WIDE, Errors, fits, open_page
from tests.service.server_process import Server, copy_shipped, finished_job

ALICE, BOB = "alice-secret-0123", "bob-secret-01234"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*,{BOB}:bob:decide+publish:*"
SCREEN_800 = {"width": 800, "height": 800}
FLOW = "claim-status"  # a flow: its revision renaming `requested` strands the entities there
RED = "rgb(179, 38, 30)"  # --bad


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("revision-review")
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


def _sign_in(
    browser: Browser, server: Server, token: str, viewport: dict[str, int] = WIDE
) -> tuple[Page, Errors]:
    page, errors = open_page(browser, viewport)
    page.goto(server.url + "/console/")
    page.fill("#token", token)
    page.press("#token", "Enter")
    expect(page.locator("#policy-list")).to_be_visible()
    return page, errors


def _text(policy: str, note: str) -> str:
    """The shipped policy with a comment line: another revision that changes nothing."""
    source = (ROOT / "policies" / f"{policy}.yaml").read_text(encoding="utf-8")
    return source + f"\n# {note}\n"


def _revision(
    client: httpx.Client,
    policy: str,
    source: str,
    message: str,
    state: str = "pending",
    tests: str | None = None,
) -> dict[str, Any]:
    """A revision sent as the editor sends it: a draft stored at once, a submission once
    its job (tests and impact) is done."""
    body: dict[str, Any] = {"source": source, "message": message, "state": state}
    if tests is not None:
        body["tests"] = tests
    answer = client.post(f"/v1/policies/{policy}/revisions", json=body)
    assert answer.status_code in (200, 201, 202), answer.text
    if answer.status_code != 202:
        return answer.json()  # type: ignore[no-any-return]
    job = finished_job(client, answer)
    assert job["state"] == "done", job.get("error")
    return job["report"]["revision"]  # type: ignore[no-any-return]


def _stranding(client: httpx.Client, tag: str) -> dict[str, Any]:
    """Two entities of the flow stored in `requested`, then a pending revision of the flow
    that renames that state (the entities there are stranded)."""
    facts = {"estimate_status": "対象外", "exclusion_reason": "重複", "claims": 1}
    for n in (1, 2):
        put = client.put(f"/v1/flows/{FLOW}/{tag}-{n}", json={"state": "requested", "facts": facts})
        assert put.status_code == 201, put.text
    renamed = {
        name: re.sub(
            r"\brequested\b", "submitted", (ROOT / "policies" / name).read_text(encoding="utf-8")
        )
        for name in (f"{FLOW}.yaml", f"{FLOW}.tests.yaml")
    }
    record = _revision(
        client,
        FLOW,
        renamed[f"{FLOW}.yaml"],
        "requested を submitted に改名",
        tests=renamed[f"{FLOW}.tests.yaml"],
    )
    assert record["impact"]["entities"]["stranded"] >= 2, record["impact"]
    return record


def _number(record: dict[str, Any]) -> str:
    return str(record["number"])


def test_a_flows_pending_revision_shows_its_stored_entities_in_the_impact_cells(
    server: Server, browser: Browser
) -> None:
    with server.client(ALICE) as alice:
        stranding = _stranding(alice, "cells")
        untouched = _revision(
            alice, "case-cancellation", _text("case-cancellation", "cells"), "コメントのみ"
        )
        decision = _revision(
            alice, "cancellation-fees", _text("cancellation-fees", "cells"), "コメントのみ"
        )
    stranded = stranding["impact"]["entities"]["stranded"]
    assert untouched["impact"]["entities"]["stranded"] == 0, untouched["impact"]
    assert "entities" not in decision["impact"], decision["impact"]

    page, errors = _sign_in(browser, server, BOB)
    page.goto(server.url + "/console/#/approvals")

    def impact(ref: str) -> Any:
        return page.locator(f'#pending-list tr[data-ref="{ref}"] td').nth(5)

    # the flow that strands: its entities, in red; not "0 of 0 change"
    cell = impact(stranding["ref"])
    expect(cell).to_have_text(f"動かせなくなる {stranded} 件")
    assert cell.locator(".stranded").evaluate("(e) => getComputedStyle(e).color") == RED
    # a flow that touches no stored entity says so
    expect(impact(untouched["ref"])).to_have_text("保存済みエンティティへの影響なし")
    # a decision policy: its decisions replayed, as before
    expect(impact(decision["ref"])).to_have_text(re.compile(r"^\d+ 件中 \d+ 件が変わる$"))
    page.click("#lang-en")
    expect(impact(stranding["ref"])).to_have_text(f"{stranded} stranded")
    expect(impact(untouched["ref"])).to_have_text("no stored entity affected")
    page.click("#lang-ja")

    # the same in the flow's revisions
    page.goto(server.url + f"/console/#/policies/{FLOW}/revisions")
    row = page.locator(f'#revision-list tr[data-number="{_number(stranding)}"]')
    expect(row.locator("td").nth(5)).to_have_text(f"動かせなくなる {stranded} 件")
    page.goto(server.url + "/console/#/policies/case-cancellation/revisions")
    row = page.locator(f'#revision-list tr[data-number="{_number(untouched)}"]')
    expect(row.locator("td").nth(5)).to_have_text("保存済みエンティティへの影響なし")
    assert errors.seen == []


def _cells_out_of_sight(page: Page, table: str) -> list[str]:
    """The cells of `table` not wholly inside the box it scrolls in (hidden sideways)."""
    return page.evaluate(  # type: ignore[no-any-return]
        """(selector) => {
            const table = document.querySelector(selector);
            const box = table.closest('.table-scroll') || table.parentElement;
            const edge = box.getBoundingClientRect();
            const out = [...table.querySelectorAll('th, td')].filter((cell) => {
                const r = cell.getBoundingClientRect();
                return r.width > 0 && (r.left < edge.left - 1 || r.right > edge.right + 1);
            }).map((cell) => cell.textContent.slice(0, 40));
            if (box.scrollWidth > box.clientWidth + 1) out.push('scrolls: ' + box.scrollWidth);
            return out;
        }""",
        table,
    )


def test_the_approvals_are_readable_in_an_800_px_window(server: Server, browser: Browser) -> None:
    with server.client(ALICE) as alice:
        long = _revision(
            alice,
            "cancellation-fees",
            _text("cancellation-fees", "800"),
            "無料期間を31日に延ばす（法務の確認待ち、長めの説明つき）",
        )
        _revision(alice, "exemption-claims", _text("exemption-claims", "800"), "コメントのみ")
    page, errors = _sign_in(browser, server, BOB, SCREEN_800)
    page.goto(server.url + "/console/#/approvals")
    table = page.locator("#pending-list")
    row = table.locator(f'tr[data-ref="{long["ref"]}"]')
    expect(row).to_be_visible()
    fits(page)
    assert _cells_out_of_sight(page, "#pending-list") == []
    assert table.locator("xpath=..").evaluate("(box) => box.scrollLeft") == 0  # not sideways

    def lines(cell: str) -> list[int]:
        """The lines each row's summary in that column takes (tests, impact)."""
        return table.locator(f"tbody tr td:nth-child({cell}) > span").evaluate_all(
            "(spans) => spans.map((s) => s.getClientRects().length)"
        )

    # the tests' summaries on one line each, a decision policy's impact too (a flow's may
    # take two: "no stored entity affected" is a phrase), the ref too, each value labelled
    assert lines("5") and set(lines("5")) == {1}, lines("5")
    impact = row.locator("td").nth(5).locator(":scope > span")
    assert impact.evaluate("(s) => s.getClientRects().length") == 1
    expect(row.locator("td").nth(4)).to_contain_text("件成功")
    before = "(td) => getComputedStyle(td, '::before').content"
    for n, name in ((0, "版"), (1, "名称"), (3, "説明"), (4, "テスト"), (5, "影響")):
        label = row.locator("td").nth(n).evaluate(before)
        assert name in label, (n, label)
    narrow = table.locator("tbody td").evaluate_all(
        """(cells) => cells.filter((c) => c.textContent.trim())
            .map((c) => c.getBoundingClientRect())
            .filter((r) => r.width < 4 * parseFloat(getComputedStyle(document.body).fontSize))
            .length"""
    )
    assert narrow == 0
    ref = row.locator("td").first.locator("a code")
    assert ref.evaluate("(e) => e.getClientRects().length") == 1
    # the message takes the block's whole width: it is not squeezed into a column
    message = row.locator("td").nth(3).bounding_box()
    block = row.bounding_box()
    assert message and block and message["width"] > 0.8 * block["width"], (message, block)

    # in a wide window it is still a table with its header row
    page.set_viewport_size(WIDE)
    expect(table.locator("thead th").first).to_be_visible()
    label = row.locator("td").nth(4).evaluate(before)
    assert label in ("none", "normal", ""), label
    assert _cells_out_of_sight(page, "#pending-list") == []
    assert errors.seen == []


def test_stale_base_reads_right_for_a_draft_refused_at_submission_and_a_pending_overtaken(
    server: Server, browser: Browser
) -> None:
    policy = "exemption-claims"
    with server.client(ALICE) as alice:
        draft = _revision(alice, policy, _text(policy, "draft"), "下書き", state="draft")
        first = _revision(alice, policy, _text(policy, "first"), "先に公開される版")
        second = _revision(alice, policy, _text(policy, "second"), "追い越される版")
    with server.client(BOB) as bob:
        approved = bob.post(f"/v1/policies/{policy}/revisions/{first['number']}:approve", json={})
        assert approved.status_code == 200, approved.text
    live = f"{policy}@{first['number']}"
    headline = "元にした版が、いま公開中の版ではありません"

    # a draft drafted from what was published before: refused at submission
    page, errors = _sign_in(browser, server, ALICE)
    errors.allowed.append(re.compile(r"status of 409"))
    page.goto(server.url + f"/console/#/policies/{policy}/revisions/{_number(draft)}")
    page.click("#submit-revision")
    box = page.locator('#decide .error[data-code="stale_base"]')
    expect(box.locator("strong")).to_have_text(headline)
    expect(box.locator(".detail")).to_contain_text(live)  # the service's detail names it
    expect(box).not_to_contain_text("提出後")  # it never was submitted
    page.click("#lang-en")
    expect(box.locator("strong")).to_have_text("It is not based on the revision published now")
    expect(box).not_to_contain_text("since it was submitted")
    page.click("#lang-ja")
    assert errors.seen == []

    # a pending revision another publication overtook: refused at approval, same words
    page, errors = _sign_in(browser, server, BOB)
    errors.allowed.append(re.compile(r"status of 409"))
    page.goto(server.url + f"/console/#/policies/{policy}/revisions/{_number(second)}")
    page.click("#approve")
    box = page.locator('#decide .error[data-code="stale_base"]')
    expect(box.locator("strong")).to_have_text(headline)
    expect(box.locator(".detail")).to_contain_text(live)
    expect(page.locator("#approved")).to_have_count(0)
    assert errors.seen == []


def test_a_decision_policys_revision_shows_the_flows_that_consult_it_beside_its_tests(
    server: Server, browser: Browser
) -> None:
    with server.client(ALICE) as alice:
        holds = _revision(alice, "order-holds", _text("order-holds", "flows"), "コメントのみ")
        fees = _revision(
            alice, "cancellation-fees", _text("cancellation-fees", "flows"), "コメントのみ"
        )
    flows = holds["tests"].get("consulting_flows", [])
    assert {f["policy"] for f in flows} >= {"order-hold-status"}, holds["tests"]
    assert "consulting_flows" not in fees["tests"], fees["tests"]

    page, errors = _sign_in(browser, server, BOB)
    page.goto(server.url + f"/console/#/policies/order-holds/revisions/{_number(holds)}")
    tests = page.locator("#revision-tests")
    expect(tests.locator("#tests-report")).to_be_visible()
    expect(tests.locator("#consulting-flows li")).to_have_count(len(flows))
    for flow in flows:
        item = tests.locator(f'#consulting-flows li[data-policy="{flow["policy"]}"]')
        expect(item.locator("a code")).to_have_text(flow["ref"])
        expect(item).to_contain_text(flow["revision"])
        expect(item).to_contain_text(f"{flow['cases']} 件中 {flow['passed']} 件成功")
    # the flow's revision is one click away
    tests.locator('#consulting-flows li[data-policy="order-hold-status"] a').click()
    expect(page.locator("#revision-ref")).to_have_text(
        next(f["ref"] for f in flows if f["policy"] == "order-hold-status")
    )
    # no flow consults it: nothing more than its own tests
    page.goto(server.url + f"/console/#/policies/cancellation-fees/revisions/{_number(fees)}")
    expect(page.locator("#revision-tests #tests-report")).to_be_visible()
    expect(page.locator("#consulting-flows")).to_have_count(0)
    assert errors.seen == []


# last: it publishes the flow that strands the entities every test stored
def test_the_approve_button_waits_until_stranded_entities_are_acknowledged(
    server: Server, browser: Browser
) -> None:
    with server.client(ALICE) as alice:
        stranding = _stranding(alice, "approve")
        fees = _revision(
            alice, "cancellation-fees", _text("cancellation-fees", "approve"), "コメントのみ"
        )
    stranded = stranding["impact"]["entities"]["stranded"]
    # over the API: refused unless the approval accepts as many as it strands now
    url = f"/v1/policies/{FLOW}/revisions/{_number(stranding)}:approve"
    with server.client(BOB) as bob:
        refused = bob.post(url, json={})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert (problem["code"], problem["stranded"]) == ("strands_entities", stranded)
        assert problem["states"] == ["requested"] and "acknowledge_stranded" in problem["hint"]
        fewer = bob.post(url, json={"acknowledge_stranded": stranded - 1})
        assert fewer.status_code == 409 and fewer.json()["code"] == "strands_entities"
        for bad in (True, -1, "2", 1.5):
            answer = bob.post(url, json={"acknowledge_stranded": bad})
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.json()["errors"][0]["pointer"] == "/acknowledge_stranded"

    page, errors = _sign_in(browser, server, BOB)
    page.goto(server.url + f"/console/#/policies/{FLOW}/revisions/{_number(stranding)}")
    warning = page.locator("#decide #stranded-warning")
    expect(warning).to_contain_text(f"エンティティ {stranded} 件が動かせなくなります")
    expect(warning.locator('li[data-state="requested"]')).to_contain_text(f"{stranded} 件")
    approve = page.locator("#approve")
    expect(approve).to_be_disabled()
    expect(page.locator("#stranded-ack-first")).to_be_visible()
    # in the first screen, right above the button it is about
    expect(warning).to_be_in_viewport()
    expect(approve).to_be_in_viewport()
    above, button = warning.bounding_box(), approve.bounding_box()
    assert above and button and 0 <= button["y"] - (above["y"] + above["height"]) < 80
    # the details are one click away: the alert in the impact below
    page.click("#stranded-details")
    expect(page.locator("#revision-impact #entities-stranded")).to_be_in_viewport()
    page.check("#stranded-ack")
    expect(approve).to_be_enabled()
    expect(page.locator("#stranded-ack-first")).to_have_count(0)
    # one more entity reached `requested` since the submission counted them: the approval
    # is refused, and the page asks again with the count now
    facts = {"estimate_status": "対象外", "exclusion_reason": "重複", "claims": 1}
    with server.client(ALICE) as alice:
        late = alice.put(f"/v1/flows/{FLOW}/late-1", json={"state": "requested", "facts": facts})
        assert late.status_code == 201, late.text
    errors.allowed.append(re.compile(r"status of 409"))
    page.click("#approve")
    expect(page.locator('#decide .error[data-code="strands_entities"]')).to_be_visible()
    expect(page.locator("#stranded-now")).to_contain_text(f"{stranded + 1} 件")
    expect(warning).to_have_attribute("data-stranded", str(stranded + 1))
    expect(approve).to_be_disabled()
    page.check("#stranded-ack")
    page.click("#approve")
    expect(page.locator("#approved")).to_be_visible()
    expect(page.locator("p.meta [data-state]")).to_have_attribute("data-state", "published")

    # a decision policy's revision: nothing to acknowledge, approved at once
    page.goto(server.url + f"/console/#/policies/cancellation-fees/revisions/{_number(fees)}")
    expect(page.locator("#revision-tests #tests-report")).to_be_visible()
    expect(page.locator("#stranded-warning")).to_have_count(0)
    expect(page.locator("#stranded-ack")).to_have_count(0)
    page.click("#approve")
    expect(page.locator("#approved")).to_be_visible()
    assert errors.seen == []


def _served_states(client: httpx.Client) -> list[str]:
    served = client.get(f"/v1/policies/{FLOW}").json()
    return [state["id"] for state in served["flow"]["states"]]


def _renamed_published(server: Server) -> None:
    """The flow published with `submitted` where claim-status@1 has `requested`: as the
    approval test above leaves it, or, run alone, submitted and approved here."""
    with server.client(ALICE) as alice:
        if "submitted" in _served_states(alice):
            return
        record = _stranding(alice, "renamed")
    url = f"/v1/policies/{FLOW}/revisions/{_number(record)}:approve"
    with server.client(BOB) as bob:
        stranded = record["impact"]["entities"]["stranded"]
        answer = bob.post(url, json={"acknowledge_stranded": stranded})
        assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 30
    with server.client(ALICE) as alice:
        while "submitted" not in _served_states(alice):
            assert time.monotonic() < deadline, "the approved revision is not served"
            time.sleep(0.1)


def test_a_rollback_that_strands_entities_shows_the_count_and_waits_for_the_tick(
    server: Server, browser: Browser
) -> None:
    """A rollback published a flow's earlier revision without a word about the entities
    standing in states it lacks: refused like an approval, the count acknowledged."""
    _renamed_published(server)
    facts = {"estimate_status": "対象外", "exclusion_reason": "重複", "claims": 1}
    url = f"/v1/policies/{FLOW}/rollback"
    with server.client(ALICE) as alice:
        for n in (1, 2):
            body = {"state": "submitted", "facts": facts}
            put = alice.put(f"/v1/flows/{FLOW}/back-{n}", json=body)
            assert put.status_code == 201, put.text
        refused = alice.post(url, json={"to": 1})
        assert refused.status_code == 409, refused.text
        problem = refused.json()
        assert (problem["code"], problem["stranded"]) == ("strands_entities", 2)
        assert problem["states"] == ["submitted"] and "acknowledge_stranded" in problem["hint"]
        fewer = alice.post(url, json={"to": 1, "acknowledge_stranded": 1})
        assert fewer.status_code == 409 and fewer.json()["stranded"] == 2, fewer.text
        bad = alice.post(url, json={"to": 1, "acknowledge_stranded": -2})
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["pointer"] == "/acknowledge_stranded"
        assert alice.get(f"/v1/policies/{FLOW}/revisions").json()["published"]["number"] != 1

    page, errors = _sign_in(browser, server, BOB)
    errors.allowed.append(re.compile(r"status of 409"))
    page.goto(server.url + f"/console/#/policies/{FLOW}/revisions")
    rollback = page.locator("#rollback-1")
    rollback.click()
    warning = page.locator("#rollback-stranded-1")
    expect(warning).to_contain_text(f"{FLOW}@1 に戻すと、保存されているエンティティ 2 件")
    expect(warning).to_contain_text("submitted")
    expect(rollback).to_be_disabled()
    expect(page.locator("#rolled-back")).to_have_count(0)
    page.check("#rollback-ack-1")
    rollback.click()
    expect(page.locator("#rolled-back")).to_contain_text(f"{FLOW}@1")
    with server.client(ALICE) as alice:
        assert alice.get(f"/v1/policies/{FLOW}/revisions").json()["published"]["number"] == 1
    assert errors.seen == []
