"""The editor's loop in a real browser (Debian's Chromium, driven by Playwright) against a
real `kimari serve` with the shipped policies, two editors and a calling service:

    alice signs in, opens order-holds, tries a decision and reads its explanation;
    edits a threshold in the draft editor (HO-7: a card failure holds from the 3rd
    subscription order on), mistypes a fact field and sees the marker at its line, fixes
    it; runs the tests, sees the boundary case fail at its line and moves it; saves the
    draft, reads the diff and the impact on decisions the test logged first; submits it;
    cannot approve it herself (the refusal is on the page); bob approves it; the service
    answers with the new revision; bob rolls back and the old content is served again
    under a new publication.

Each step asserts what is on the page; the browser's console must stay free of errors
(but for the refusals the test provokes on purpose). Screenshots of the editor, the
impact report, the revision under review, the approvals and the revisions go to
docs/console/ with KIMARI_SCREENSHOTS=docs (`make screenshots`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect

from tests import ROOT
from tests.console.browser import NARROW, WIDE, fits, open_page, tab_until
from tests.service.server_process import Server, copy_shipped

ALICE, BOB, SVC = "alice-secret-0123", "bob-secret-01234", "svc-secret-01234"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*,{BOB}:bob:decide+publish:*,{SVC}:svc:decide"
POLICY_TEXT = (ROOT / "policies" / "order-holds.yaml").read_text(encoding="utf-8")
TESTS_TEXT = (ROOT / "policies" / "order-holds.tests.yaml").read_text(encoding="utf-8")
THRESHOLD = "order.sequence >= 2"
CARD_CASE = "a failed card charge of a second subscription order holds the order about to be born"


def _case_count(tests_file: Path) -> int:
    """The test cases of a tests file, as the submission runs them all."""
    return len(yaml.safe_load(tests_file.read_text(encoding="utf-8"))["cases"])


def _line(text: str, needle: str, occurrence: int = 1) -> int:
    at = -1
    for _ in range(occurrence):
        at = text.index(needle, at + 1)
    return text[:at].count("\n") + 1


# HO-7's threshold is the second `order.sequence >= 2` of the policy (the first is NP's P2)
THRESHOLD_LINE = _line(POLICY_TEXT, THRESHOLD, 2)
THRESHOLD_COL = POLICY_TEXT.splitlines()[THRESHOLD_LINE - 1].index("sequence") + 1
CASE_LINE = _line(TESTS_TEXT, f"- name: {CARD_CASE}")
CASE_SEQUENCE_LINE = _line(TESTS_TEXT[TESTS_TEXT.index(CARD_CASE) :], "sequence: 2") + CASE_LINE - 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("editor-loop")
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


def _order(number: int, sequence: int, card_failed: bool = True) -> dict[str, Any]:
    return {
        "facts": {
            "order": {
                "id": f"O-{number}",
                "total": 5980,
                "sequence": sequence,
                "generated_from_subscription": True,
                "customer": {"id": f"C-{number}", "name": "青木 誠", "postal_code": "150-0002"},
                "payment": {"method": "credit_card", "card_charge_failed": card_failed},
                "subscription": {"id": f"S-{number}"},
                "shipping": {"cod_available": True},
            }
        },
        "at": "2024-10-01T10:00:00+09:00",
    }


def _decide(svc: httpx.Client, request: dict[str, Any]) -> dict[str, Any]:
    answer = svc.post("/v1/decisions/order-holds", json=request)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _served(svc: httpx.Client, revision: str) -> dict[str, Any]:
    """A decision of the second-order case once `revision` serves it (the worker that
    answers an approval serves it before it answers; this waits for the rest)."""
    deadline = time.monotonic() + 10
    while True:
        decision = _decide(svc, _order(99, 2))
        if decision["policy"]["revision"] == revision or time.monotonic() > deadline:
            return decision
        time.sleep(0.1)


def _sign_in(page: Page, server: Server, token: str, principal: str) -> None:
    page.goto(server.url + "/console/")
    page.fill("#token", token)
    page.press("#token", "Enter")
    expect(page.locator("#policy-list")).to_be_visible()
    expect(page.locator("#principal")).to_contain_text(principal)


def _replace_in_editor(page: Page, editor: str, query: str, occurrence: int, text: str) -> None:
    """With the keyboard only: the search panel (Ctrl-F) finds the occurrence, Escape goes
    back to the text with it selected, and the typing replaces it."""
    page.locator(f"#{editor} .cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.press("Control+f")
    search = page.locator(f"#{editor} .cm-search input[name=search]")
    expect(search).to_be_focused()
    search.press_sequentially(query)  # the panel reads its query on each key
    for _ in range(occurrence):
        search.press("Enter")
    search.press("Escape")
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # a completion offered while typing


def test_an_editor_changes_a_threshold_another_approves_it_and_a_rollback_serves_the_old_one(
    server: Server, browser: Browser, shots: Path
) -> None:
    with server.client(SVC) as svc:
        _editor_loop(server, browser, shots, svc)


def _editor_loop(server: Server, browser: Browser, shots: Path, svc: httpx.Client) -> None:
    # the log the impact replays: three second orders held by HO-7, two third orders
    # (held before and after), one order nothing holds
    for number in (1, 2, 3):
        _decide(svc, _order(number, 2))
    for number in (4, 5):
        _decide(svc, _order(number, 3))
    _decide(svc, _order(6, 2, card_failed=False))
    published = _decide(svc, _order(7, 1))["policy"]

    page, errors = open_page(browser, WIDE)
    # the refusals this test provokes are logged by the browser as failed resources
    errors.allowed.append(re.compile(r"status of 403"))
    _sign_in(page, server, ALICE, "alice")

    # order-holds: try a decision and read its explanation
    page.locator('tr[data-policy="order-holds"] a').click()
    page.get_by_role("link", name="判定を試す").click()
    expect(page.locator("#field-_facts_order_id")).to_have_value("O-1001")
    page.click("#decide")
    applied = page.locator('.explain-rules tr[data-rule="blacklisted-customer"]')
    expect(applied).to_contain_text("適用")
    card = page.locator('.explain-rules tr[data-rule="subscription-card-payment-failed"]')
    expect(card).to_contain_text("不適用")
    expect(card).to_contain_text("order.generated_from_subscription == true")

    # the draft editor, on the published text, valid
    page.go_back()
    page.click("#edit-draft")
    expect(page.locator("#base-ref")).to_have_text("order-holds@1")
    expect(page.locator("#policy-editor .cm-content")).to_contain_text("kimari: 1")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")

    # the policy schema completes what is typed (a key the policy does not have yet)
    page.locator("#policy-editor .cm-line", has_text="id: order-holds").click()
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.keyboard.type("kin")
    page.keyboard.press("Control+Space")
    expect(page.locator(".cm-tooltip-autocomplete li").first).to_contain_text("kind")
    page.keyboard.press("Escape")
    for _ in range(4):  # "kin" and its line: the text is as published again
        page.keyboard.press("Backspace")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")

    # a threshold edited with a typo in the field: a marker at its line, as one types
    _replace_in_editor(page, "policy-editor", THRESHOLD, 2, "order.sequnce >= 3")
    expect(page.locator("#validation")).to_have_attribute("data-state", "invalid")
    marker = page.locator('#diagnostics li[data-code="unknown_fact_field"]')
    expect(marker).to_have_attribute("data-line", str(THRESHOLD_LINE))
    expect(marker).to_contain_text(f"order-holds.yaml:{THRESHOLD_LINE}:{THRESHOLD_COL}")
    expect(marker).to_contain_text("order.sequence")  # did you mean
    marker.get_by_role("button").click()  # to the marker's place in the text
    expect(page.locator("#cursor")).to_have_text(f"{THRESHOLD_LINE} 行 {THRESHOLD_COL} 列")
    expect(page.locator("#policy-editor .cm-lineNumbers .cm-activeLineGutter")).to_have_text(
        str(THRESHOLD_LINE)
    )
    underlined = page.locator("#policy-editor .cm-activeLine .cm-lintRange-error")
    expect(underlined).to_have_text("sequnce")
    page.screenshot(path=shots / "edit.png")

    # fixed: valid again
    page.keyboard.press("Shift+End")
    page.keyboard.type("sequence >= 3")
    page.keyboard.press("Escape")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    expect(page.locator("#diagnostics")).to_have_count(0)

    # the tests on demand: the boundary case of HO-7 fails, at its line
    page.click("#run-tests")
    report = page.locator("#tests-report")
    expect(report).to_have_attribute("data-failed", "1")
    failure = page.locator(f'#test-failures li[data-line="{CASE_LINE}"]')
    expect(failure).to_contain_text(CARD_CASE)
    expect(failure).to_contain_text("order.sequence >= 3")
    failure.get_by_role("button").click()  # to the case, in the tests' tab
    expect(page.locator("#tab-tests")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#cursor")).to_have_text(f"{CASE_LINE} 行 1 列")
    for _ in range(CASE_SEQUENCE_LINE - CASE_LINE):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    page.keyboard.type("3")
    page.keyboard.press("Escape")
    expect(page.locator("#cursor")).to_have_text(f"{CASE_SEQUENCE_LINE} 行 20 列")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    page.click("#run-tests")
    expect(report).to_have_attribute("data-failed", "0")
    expect(report).to_contain_text("0 件失敗")

    # saved as a draft: the diff against the published revision, rule by rule
    page.fill("#draft-message", "HO-7: 定期3回目以降のクレジット決済失敗を要対応に")
    page.click("#save-draft")
    expect(page.locator("#saved")).to_have_attribute("data-number", "2")
    changed = page.locator('#diff [data-changed="subscription-card-payment-failed"]')
    expect(changed).to_contain_text("order.sequence >= 2")
    expect(changed).to_contain_text("order.sequence >= 3")
    expect(page.locator("#diff .text-diff .plus").first).to_contain_text(">= 3")

    # the impact on the log this test made: the three second orders are no longer held
    page.click("#run-impact")
    impact = page.locator("#impact .impact-report")
    expect(impact).to_have_attribute("data-changed", "3")
    # the seven decisions above, and the one tried in the console
    expect(impact.locator('[data-count="replayed"] dd')).to_have_text("8")
    held = impact.locator('.transitions-table tr[data-field="held"]')
    expect(held).to_contain_text("true")
    expect(held).to_contain_text("false")
    expect(held.locator("td.number")).to_have_text("3")
    stopped = impact.locator('#stop-firing [data-rule="subscription-card-payment-failed"]')
    expect(stopped).to_be_visible()
    expect(impact.locator(".transitions-chart canvas")).to_have_attribute("data-ready", "true")
    sample = impact.locator(".sample").first
    before_side = sample.locator('.side-before tr[data-rule="subscription-card-payment-failed"]')
    after_side = sample.locator('.side-after tr[data-rule="subscription-card-payment-failed"]')
    expect(before_side).to_contain_text("適用")
    expect(after_side).to_contain_text("order.sequence >= 3")  # the false condition
    expect(after_side).to_contain_text("order.sequence = 2")  # and the value it read
    page.locator("#impact").scroll_into_view_if_needed()
    page.screenshot(path=shots / "impact.png", full_page=True)

    # submitted: tested and measured again, pending
    page.click("#submit-draft")
    expect(page.locator("#submitted")).to_have_attribute("data-state", "pending")
    page.locator("#submitted a").click()
    expect(page.locator("#revision-ref")).to_have_text("order-holds@2")
    expect(page.locator("#own-revision")).to_be_visible()
    page.click("#approve")  # the author cannot approve
    refusal = page.locator('#decide .error[data-code="self_approval"]')
    expect(refusal).to_contain_text("alice")
    expect(page.locator("#decide .error")).to_contain_text("order-holds@2")
    assert _decide(svc, _order(8, 2))["policy"]["revision"] == published["revision"]
    page.screenshot(path=shots / "self-approval.png")

    # bob, another principal, reviews it from the approvals page and approves it
    other, other_errors = open_page(browser, WIDE)
    _sign_in(other, server, BOB, "bob")
    other.get_by_role("link", name="承認", exact=True).click()
    pending = other.locator('#pending-list tr[data-ref="order-holds@2"]')
    expect(pending).to_contain_text("alice")
    cases = _case_count(ROOT / "policies" / "order-holds.tests.yaml")
    expect(pending).to_contain_text(f"{cases} / {cases} 件成功")
    expect(pending).to_contain_text("8 件中 3 件が変わる")
    other.screenshot(path=shots / "approvals.png")
    pending.get_by_role("link", name="order-holds@2").click()
    expect(other.locator("#revision-author")).to_have_text("alice")
    expect(
        other.locator('#revision-diff [data-changed="subscription-card-payment-failed"]')
    ).to_contain_text("order.sequence >= 3")
    expect(other.locator("#revision-tests #tests-report")).to_have_attribute("data-failed", "0")
    expect(other.locator('#revision-impact [data-count="changed"] dd')).to_have_text("3")
    other.fill("#decision-message", "HO-7 の改定を確認しました")
    other.screenshot(path=shots / "revision.png", full_page=True)
    other.click("#approve")
    approved = other.locator("#approved")
    expect(approved).to_contain_text("order-holds@2 を公開しました")
    publication = int(approved.get_attribute("data-publication") or 0)

    # the service answers with the new revision: the second order is no longer held
    new_revision = svc.get("/v1/policies/order-holds").json()["revision"]
    assert new_revision != published["revision"]
    decision = _served(svc, new_revision)
    assert decision["policy"]["revision"] == new_revision
    assert decision["policy"]["publication"] == publication
    assert decision["outcome"]["held"] is False

    # rollback: bob publishes revision 1 again; the old content, under a new publication
    other.click("text=すべての版")
    rows = other.locator("#revision-list")
    expect(rows.locator('tr[data-number="2"]')).to_have_attribute("data-state", "published")
    expect(rows.locator('tr[data-number="1"]')).to_have_attribute("data-state", "retired")
    other.fill("#rollback-message-1", "HO-7 の改定は延期")
    other.dblclick("#rollback-1")  # a double click rolls back once, and says so
    expect(rows.locator('tr[data-number="1"]')).to_have_attribute("data-state", "published")
    expect(other.locator("#rolled-back")).to_contain_text("order-holds@1")
    expect(other.locator("#published")).to_contain_text("order-holds@1")
    expect(other.locator("#published")).to_contain_text("ロールバック")
    audit = other.locator("#audit-table")
    expect(audit.locator('tr[data-action="rollback"]')).to_contain_text("bob")
    expect(audit.locator('tr[data-action="rollback"]')).to_have_count(1)
    expect(audit.locator('tr[data-action="approve"]')).to_contain_text("bob")
    expect(audit.locator('tr[data-action="submit"][data-principal="alice"]').first).to_be_visible()
    other.screenshot(path=shots / "revisions.png", full_page=True)
    decision = _served(svc, published["revision"])
    assert decision["policy"]["revision"] == published["revision"]
    assert decision["policy"]["publication"] > publication > published["publication"]
    assert decision["outcome"]["held"] is True

    assert errors.seen == []
    assert other_errors.seen == []


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280", "1024"])
def test_the_editor_fits_the_window_and_its_buttons_are_reached_by_keyboard(
    server: Server, browser: Browser, viewport: dict[str, int]
) -> None:
    page, errors = open_page(browser, viewport)
    _sign_in(page, server, ALICE, "alice")
    for path in (
        "#/policies/cancellation-fees/edit",
        "#/policies/cancellation-fees/revisions",
        "#/approvals",
    ):
        page.goto(server.url + "/console/" + path)
        expect(page.locator("main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        fits(page)
    page.goto(server.url + "/console/#/policies/cancellation-fees/edit")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    # Tab leaves the text (no trap): the editor's buttons come next
    page.locator("#policy-editor .cm-content").click()
    assert tab_until(page, "run-tests", limit=5) <= 5
    tab_until(page, "save-draft", limit=10)
    assert errors.seen == []
