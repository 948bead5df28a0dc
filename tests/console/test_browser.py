"""The console in a real browser (Debian's Chromium, driven by Playwright) against a real
`kimari serve` with the shipped policies: what an editor does, step by step, each step
asserting what is on the page. The browser's console log must stay free of errors.

Screenshots of each page go to a temporary folder, or to docs/console/ with
KIMARI_SCREENSHOTS=docs (`make screenshots`), which docs/console.md shows. The editor's
loop (drafts, approval, rollback) is in test_editor_loop.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.browser import NARROW, WIDE, fits, open_page, tab_until
from tests.service.server_process import ADMIN_TOKEN, DEALER_TOKEN, Server, copy_shipped


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    srv = Server(copy_shipped(tmp), tmp / "var" / "kimari.sqlite3", workers=1)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _sign_in(page: Page, server: Server, token: str = ADMIN_TOKEN) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/console/$"))
    expect(page.get_by_role("heading", name="サインイン")).to_be_visible()
    page.fill("#token", token)
    page.click("#sign-in")
    expect(page.locator("#policy-list")).to_be_visible()


def test_an_editor_signs_in_tries_a_decision_finds_it_in_the_log_and_opens_a_flow_and_data(
    server: Server, browser: Browser, shots: Path
) -> None:
    page, errors = open_page(browser, WIDE)

    # sign in with a token; the policies are listed with their status
    _sign_in(page, server)
    row = page.locator('tr[data-policy="order-holds"]')
    expect(row).to_contain_text("要対応受注の判定")
    expect(row).to_contain_text("有効")
    expect(page.locator('tr[data-policy="claim-status"]')).to_contain_text("フロー")
    fits(page)
    page.screenshot(path=shots / "policies.png")

    # the policy page: rules with rulebook refs, conditions, reasons; settings; data; facts
    row.get_by_role("link").click()
    rules = page.locator("#rule-list")
    blacklisted = rules.locator('tr[data-rule="blacklisted-customer"]')
    expect(blacklisted).to_contain_text("HB-1")
    expect(blacklisted).to_contain_text("derived.blacklist_entry != null")
    expect(blacklisted).to_contain_text("ブラックリストからの受注")
    expect(page.locator("#settings")).to_contain_text("np_ng_action")
    expect(page.locator("#data-read")).to_contain_text("blacklist")
    expect(page.locator("#facts-fields")).to_contain_text("order.customer.postal_code")

    # try a decision: the form is prefilled from examples/order-holds.json; the keyboard
    # reaches the submit button from the first field, and Enter decides
    page.get_by_role("link", name="判定を試す").click()
    expect(page.locator("#example")).to_have_value("file-0")
    expect(page.locator("#field-_facts_order_id")).to_have_value("O-1001")
    page.focus("#example")
    presses = tab_until(page, "decide")
    assert presses > 10  # it went through the form's fields on the way
    page.keyboard.press("Enter")
    explanation = page.locator(".explain-rules")
    applied = explanation.locator('tr[data-rule="blacklisted-customer"]')
    expect(applied).to_contain_text("適用")
    similar = explanation.locator('tr[data-rule="blacklist-similar-customer"]')
    expect(similar).to_contain_text("不適用")
    expect(similar).to_contain_text("derived.blacklist_entry == null")  # the first false one
    expect(similar).to_contain_text('"BL-001"')  # the value it read
    assert explanation.locator("tbody tr").count() == 27  # every rule, applied or not
    expect(page.locator("#reasons")).to_contain_text("BLACKLISTED_CUSTOMER")
    # the line link shows the source at that line
    similar.locator("a.source-link").click()
    marked = page.locator(".source .line.marked")
    expect(marked).to_contain_text("derived.blacklist_entry == null")
    link_line = similar.locator("a.source-link").inner_text().rsplit(":", 1)[1]
    expect(marked).to_have_attribute("data-line", link_line)
    decision_id = page.locator(".decision-id").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=shots / "try.png")

    # the decision log: the decision is there, filtered by policy and outcome
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-list tbody tr").first).to_have_attribute(
        "data-decision-id", decision_id
    )
    page.select_option("#filter-policy", "order-holds")
    page.fill("#filter-outcome", "held=true")
    page.fill("#filter-rule", "blacklisted-customer")
    page.click("#search")
    expect(page).to_have_url(re.compile(r"outcome=held%3Dtrue"))
    found = page.locator(f'#decision-list tr[data-decision-id="{decision_id}"]')
    expect(found).to_contain_text("blacklisted-customer")
    page.screenshot(path=shots / "log.png")
    page.fill("#filter-outcome", "held=false")
    page.click("#search")
    expect(page.locator(".muted", has_text="該当する判定はありません")).to_be_visible()

    # one logged decision with its explanation; "try again with changes" prefills the form
    page.go_back()
    page.locator(f'a[href="#/log/{decision_id}"]').click()
    expect(page.locator("#request")).to_contain_text("O-1001")
    expect(
        page.locator('.explain-rules tr[data-rule="blacklist-similar-customer"]')
    ).to_contain_text("derived.blacklist_entry == null")
    page.screenshot(path=shots / "decision.png")
    page.click("#try-again")
    expect(page.locator("#example")).to_have_value("log")
    expect(page.locator("#field-_facts_order_id")).to_have_value("O-1001")
    page.fill("#field-_facts_order_customer_id", "C-1")  # now not the blacklisted customer
    page.click("#decide")
    expect(page.locator('.explain-rules tr[data-rule="blacklisted-customer"]')).to_contain_text(
        "不適用"
    )
    expect(page.locator(".decision-id")).not_to_have_text(decision_id)

    # a flow: its diagram from the compiled policy; an entity looked up and moved
    page.get_by_role("link", name="フロー", exact=True).click()
    page.get_by_role("link", name=re.compile("claim-status")).click()
    expect(page.locator(".diagram-box")).to_have_attribute("data-ready", "true")
    expect(page.locator(".diagram-box svg")).to_contain_text("依頼中")
    expect(page.locator(".diagram-box svg")).to_contain_text("販売店")  # who may send it
    page.fill("#entity-id", "EST-1")
    page.click("#lookup")
    expect(page.locator("#current-state")).to_have_text("未申請")
    expect(page.locator("#entity-state")).to_contain_text("まだイベントがありません")
    expect(page.locator("#event-type")).to_have_value("claim")
    expect(page.locator("#event-needs")).to_contain_text("販売店")
    expect(page.locator('#send-event input[data-role="販売店"]')).to_be_checked()
    page.fill("#event-actor", "dealer-7")
    page.fill("#event-actor-name", "横浜店 山田")
    # EX-2: the estimate is made 対象外 with its reason (a select of the event's enum) first
    page.select_option("#event-type", "exclude")
    expect(page.locator('#send-event input[data-role="販売店"]')).to_be_checked()
    page.select_option("#field-_event_exclusion_reason", label="重複")
    page.click("#send")
    excluded = page.locator("#history-table tbody tr").first
    expect(excluded).to_contain_text("exclude")
    expect(excluded).to_contain_text("dealer-7 横浜店 山田")
    expect(page.locator("#current-state")).to_have_text("未申請")
    page.select_option("#event-type", "claim")
    page.click("#send")
    expect(page.locator("#current-state")).to_have_text("依頼中")
    moved = page.locator("#history-table tbody tr").nth(1)
    expect(moved).to_contain_text("claim")
    expect(moved).to_contain_text("dealer-7 横浜店 山田")  # the actor of the move
    expect(moved).to_contain_text("販売店")
    # from 依頼中: start_review (by the operator) is open to this token, claim is not
    expect(page.locator('#moves tr[data-event="start_review"]')).to_have_attribute(
        "data-open", "true"
    )
    expect(page.locator('#moves tr[data-event="claim"]')).to_have_attribute("data-open", "false")
    diagram = page.locator("#diagram .diagram-box")
    expect(diagram).to_have_attribute("data-ready", "true")
    greyed = int(diagram.get_attribute("data-greyed") or 0)
    assert 0 < greyed < int(diagram.get_attribute("data-edges") or 0)
    page.screenshot(path=shots / "flow.png", full_page=True)

    # a data set: its version, where it came from, its entries
    page.get_by_role("link", name="データセット", exact=True).click()
    page.locator('tr[data-name="blacklist"] a').click()
    version = httpx.get(
        server.url + "/v1/data/blacklist", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    ).json()["version"]
    expect(page.locator("#data-version")).to_have_text(version)
    expect(page.locator("#data-source")).to_have_text("ファイル（既定）")
    expect(page.locator("#entries-table")).to_contain_text("BL-001")
    served = page.locator(f'#versions-table tr[data-version="{version}"]')
    expect(served).to_have_attribute("data-current", "true")
    expect(served).to_contain_text("ファイル（既定）")
    page.screenshot(path=shots / "data.png")

    # the policy page again: the decisions made above, per day and outcome
    page.goto(server.url + "/console/#/policies/order-holds")
    expect(page.locator(".chart canvas")).to_have_attribute("data-ready", "true")
    expect(page.locator(".chart figcaption")).to_contain_text("合計 2 件")
    page.screenshot(path=shots / "policy.png")

    # the API documentation, served from here
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/v1/decisions/order-holds")
    page.screenshot(path=shots / "docs.png")

    # English at the flip of a switch
    page.goto(server.url + "/console/#/policies")
    page.click("#lang-en")
    expect(page.get_by_role("heading", name="Policies")).to_be_visible()
    expect(page.locator('tr[data-policy="order-holds"]')).to_contain_text("Order holds")
    page.click("#lang-ja")
    expect(page.get_by_role("heading", name="ポリシー一覧")).to_be_visible()

    assert errors.seen == []


def test_a_replacement_data_set_shows_its_impact_before_it_is_applied(
    server: Server, browser: Browser, shots: Path
) -> None:
    page, errors = open_page(browser, WIDE)
    _sign_in(page, server)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    # a decision the new data changes: a delivery to an island, with the island alert on
    islands: list[dict[str, Any]] = httpx.get(
        server.url + "/v1/data/remote_islands", headers=headers
    ).json()["entries"]
    island = islands[0]["postal_code"]
    order = {
        "id": "O-ISLAND",
        "total": 3000,
        "sequence": 1,
        "customer": {"id": "C-77", "name": "島 太郎", "postal_code": island},
        "payment": {"method": "credit_card"},
        "shipping": {"cod_available": True},
    }
    answer = httpx.post(
        server.url + "/v1/decisions/order-holds",
        headers=headers,
        json={"facts": {"order": order}, "settings": {"remote_island_alert": True}},
    )
    assert answer.json()["outcome"]["held"] is True
    page.goto(server.url + "/console/#/data/remote_islands")
    expect(page.locator("#entries-table")).to_be_visible()
    expect(page.locator("#upload")).to_be_disabled()  # the impact first

    # refused: each error with its pointer, in the console's language, nothing replayed
    errors.allowed.append(re.compile(r"status of 422"))
    page.fill("#data-text", '{"entries": [{"postal_code": "1000101"}, {"island": 7}]}')
    page.click("#check-impact")
    error = page.locator("#replace .error")
    expect(error).to_have_attribute("data-code", "data_invalid")
    expect(error).to_contain_text("/entries/1/island")
    expect(error).to_contain_text("データセット 'remote_islands'")
    page.click("#lang-en")
    page.click("#check-impact")
    expect(error).to_contain_text("data set 'remote_islands'")
    page.click("#lang-ja")
    expect(page.locator("#upload")).to_be_disabled()

    # without the island delivered to: its order would no longer be held, and the page says
    # so before anything is applied
    kept = [e for e in islands if e["postal_code"] != island]
    page.fill("#data-text", json.dumps({"entries": kept}, ensure_ascii=False))
    page.click("#check-impact")
    report = page.locator('.data-impact[data-policy="order-holds"] .impact-report')
    expect(report).to_have_attribute("data-changed", "1")
    expect(report.locator('.transitions-table tr[data-field="held"]')).to_contain_text("false")
    expect(report.locator('#stop-firing [data-rule="remote-island"]')).to_be_visible()
    expect(page.locator("#data-source")).to_have_text("ファイル（既定）")  # not applied yet
    expect(page.locator("#no-changes")).to_be_visible()  # never replaced so far
    page.locator("#replace").scroll_into_view_if_needed()
    page.screenshot(path=shots / "data-impact.png", full_page=True)

    # applied (once, though clicked twice): a new version, served, and the file default
    # kept in the history
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    page.dblclick("#upload")
    expect(page.locator("#replace .ok")).to_contain_text(f"{len(kept)} 件")
    expect(page.locator("#data-source")).to_have_text("API で置き換え")
    versions = page.locator("#versions-table tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_have_attribute("data-current", "true")
    expect(versions.first).to_contain_text("API で置き換え")
    expect(versions.nth(1)).to_contain_text("ファイル（既定）")
    # and who replaced it, when: the signed-in token's principal
    with server.client(ADMIN_TOKEN) as admin:
        principal = admin.get("/v1/whoami").json()["principal"]
    change = page.locator("#changes-table tbody tr")
    expect(change).to_have_count(1)
    expect(change.first).to_have_attribute("data-action", "replaced")
    expect(change.first.locator(".principal")).to_have_text(principal)
    expect(change.first).to_contain_text("置き換え")
    assert len(puts) == 1, puts
    assert errors.seen == []


def test_a_dealer_portals_token_may_claim_only_its_own_role_and_sees_the_rest_greyed(
    server: Server, browser: Browser
) -> None:
    page, errors = open_page(browser, WIDE)
    _sign_in(page, server, DEALER_TOKEN)
    expect(page.get_by_role("link", name="承認", exact=True)).to_have_count(0)  # no publish
    page.goto(server.url + "/console/#/flows/claim-status/EST-9")
    expect(page.locator("#current-state")).to_have_text("未申請")
    operator = page.locator('#send-event input[data-role="オートックワン"]')
    expect(operator).to_be_disabled()
    expect(page.locator("#roles-help")).to_contain_text("販売店")
    page.select_option("#event-type", "exclude")  # EX-2: 対象外 with its reason, as 販売店
    page.select_option("#field-_event_exclusion_reason", label="重複")
    page.click("#send")
    expect(page.locator("#history-table tbody tr")).to_have_count(1)
    page.select_option("#event-type", "claim")
    page.click("#send")  # claim, as 販売店
    expect(page.locator("#current-state")).to_have_text("依頼中")
    review = page.locator('#moves tr[data-event="start_review"]')
    expect(review).to_have_attribute("data-open", "false")
    expect(review).to_contain_text("このトークンでは名乗れない役割です")
    expect(page.locator('#moves tr[data-event="cancel"]')).to_have_attribute("data-open", "true")
    diagram = page.locator("#diagram .diagram-box")
    expect(diagram).to_have_attribute("data-ready", "true")
    assert errors.seen == []


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1280", "1024"])
def test_the_pages_fit_the_window_and_the_forms_are_usable_by_keyboard(
    server: Server, browser: Browser, viewport: dict[str, int]
) -> None:
    page, errors = open_page(browser, viewport)
    _sign_in(page, server)
    fits(page)
    for path in ("#/policies/order-holds", "#/log", "#/flows/claim-status", "#/data/blacklist"):
        page.goto(server.url + "/console/" + path)
        expect(page.locator("main h1")).to_be_visible()
        page.wait_for_load_state("networkidle")
        fits(page)
    page.goto(server.url + "/console/#/log")
    page.focus("#filter-policy")
    # policy, revision, outcome, rule, then since and until (a stop per part of a date-time)
    assert 6 <= tab_until(page, "search") <= 20
    page.goto(server.url + "/console/#/policies/cancellation-fees/try")
    expect(page.locator("#decide")).to_be_visible()
    page.focus("#example")
    tab_until(page, "decide")
    page.keyboard.press("Enter")
    expect(page.locator(".explain-rules")).to_be_visible()
    fits(page)
    assert errors.seen == []
