"""A flow entity's history on its console page, in a real browser (Debian's Chromium, driven
by Playwright) against a real `kimari serve` with the shipped policies:

    `GET .../history` answers a page at a time (100 rows unless asked otherwise, then
    `next_after`); the page of an entity of more moves opens at its newest 100, oldest
    first, says how many earlier moves are not shown, and loads them a page at a time
    above with a button, up to the import; a move sent meanwhile is appended, the earlier
    rows kept. The import (row 0) reads as one: 「取り込み」, who imported it, the state it
    was imported into, its time. A short history is shown whole, as before, without the
    button.

The entities are made over HTTP (imported with the admin token, then moved by `exclude`,
which keeps claim-status's state and can be sent any number of times); every step waits on
a state of the page, never on time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.browser import WIDE, Errors, fits, open_page
from tests.service.server_process import Server, copy_shipped

ALICE = "alice-secret-0123"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*"
FLOW = "claim-status"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("flow-history")
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


def _entity(server: Server, entity: str, moves: int, imported: str | None = None) -> None:
    """The entity imported into `imported` (by alice), if given, then moved `moves` times by
    dealer-1, dealer-2, ...: `exclude` keeps its state."""
    with server.client(ALICE) as client:
        if imported:
            answer = client.put(f"/v1/flows/{FLOW}/{entity}", json={"state": imported, "facts": {}})
            assert answer.status_code == 201, answer.text
        for n in range(1, moves + 1):
            answer = client.post(
                f"/v1/flows/{FLOW}/{entity}/events",
                json={
                    "event": {"type": "exclude", "exclusion_reason": "重複"},
                    "actor": {"id": f"dealer-{n}", "roles": ["販売店"]},
                },
            )
            assert answer.status_code == 200, answer.text


def _open(browser: Browser, server: Server, entity: str) -> tuple[Page, Errors]:
    page, errors = open_page(browser, WIDE)
    page.goto(server.url + "/console/")
    page.fill("#token", ALICE)
    page.press("#token", "Enter")
    expect(page.locator("#policy-list")).to_be_visible()
    page.goto(server.url + f"/console/#/flows/{FLOW}/{entity}")
    expect(page.locator("#current-state")).to_be_visible()
    return page, errors


def test_a_long_history_opens_at_its_newest_moves_and_the_earlier_are_a_click_away(
    server: Server, browser: Browser
) -> None:
    _entity(server, "EST-LONG", 230, imported="not_claimed")  # rows 0 (the import) to 230
    page, errors = _open(browser, server, "EST-LONG")
    rows = page.locator("#history-table tbody tr")
    # the newest 100 moves, oldest first: the last row is the last move, not move 99
    expect(rows).to_have_count(100)
    expect(rows.last).to_contain_text("dealer-230")
    expect(rows.first).to_contain_text("dealer-131")
    expect(page.locator("#history-partial")).to_have_text(
        "最新の 100 件を古い順に表示しています。これより前の遷移があと 130 件あります。"
    )
    earlier = page.locator("#history-earlier")
    expect(earlier).to_have_text("さらに前の履歴を表示（残り 130 件）")
    fits(page)

    # the earlier moves, a page at a time, above those shown
    earlier.click()
    expect(rows).to_have_count(200)
    expect(rows.first).to_contain_text("dealer-31")
    expect(rows.nth(99)).to_contain_text("dealer-130")
    expect(rows.nth(100)).to_contain_text("dealer-131")
    expect(rows.last).to_contain_text("dealer-230")
    expect(earlier).to_have_text("さらに前の履歴を表示（残り 30 件）")
    earlier.click()
    expect(rows).to_have_count(231)
    expect(page.locator("#history-more")).to_have_count(0)  # nothing left to load

    # the import, first: who imported it, into which state, when; not blank columns
    imported = rows.first
    expect(imported).to_have_attribute("data-kind", "import")
    expect(imported.locator("td").nth(1)).to_have_text("取り込み")
    expect(imported.locator(".principal")).to_have_text("alice")
    expect(imported).to_contain_text("取り込み実行者")
    expect(imported.locator("td").last).to_have_text("未申請")
    assert imported.locator("td").first.inner_text().strip()  # its time
    expect(rows.nth(1)).to_contain_text("dealer-1")
    versions = [int(v) for v in rows.evaluate_all("rows => rows.map(r => r.dataset.version)")]
    assert versions == list(range(231)), versions

    # a move sent from the page is appended; the earlier rows loaded stay
    page.select_option("#event-type", "exclude")
    page.select_option("#field-_event_exclusion_reason", label="重複")
    page.click("#send")
    expect(page.locator("#send-event .ok")).to_be_visible()
    expect(rows).to_have_count(232)
    expect(rows.last).to_have_attribute("data-version", "231")
    expect(rows.first).to_have_attribute("data-kind", "import")
    fits(page)
    assert errors.seen == []


def test_a_history_just_past_one_page_leaves_one_move_and_the_import_to_load(
    server: Server, browser: Browser
) -> None:
    _entity(server, "EST-101", 101, imported="not_claimed")  # rows 0 to 101
    page, errors = _open(browser, server, "EST-101")
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text("dealer-2")
    expect(rows.last).to_contain_text("dealer-101")
    page.get_by_role("button", name="English").click()
    expect(page.locator("#history-partial")).to_have_text(
        "Showing the latest 100 entries, oldest first; 1 earlier move is not shown yet."
    )
    expect(page.locator("#history-earlier")).to_have_text("Show earlier history (1 left)")
    page.click("#history-earlier")
    expect(rows).to_have_count(102)
    expect(rows.first).to_have_attribute("data-kind", "import")
    expect(rows.first.locator("td").nth(1)).to_have_text("Imported")
    expect(rows.first).to_contain_text("imported by")
    expect(rows.nth(1)).to_contain_text("dealer-1")
    expect(page.locator("#history-more")).to_have_count(0)
    page.get_by_role("button", name="日本語").click()
    assert errors.seen == []


def test_a_short_history_is_shown_whole_with_its_import_as_an_import(
    server: Server, browser: Browser
) -> None:
    _entity(server, "EST-SHORT", 2, imported="rejected")
    _entity(server, "EST-PLAIN", 100)  # one page exactly, no import
    page, errors = _open(browser, server, "EST-SHORT")
    rows = page.locator("#history-table tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#history-more")).to_have_count(0)
    expect(rows.first).to_have_attribute("data-kind", "import")
    expect(rows.first.locator("td").nth(1)).to_have_text("取り込み")
    expect(rows.first.locator(".principal")).to_have_text("alice")
    expect(rows.first.locator("td").last).to_have_text("非承認")  # the state it came in
    expect(rows.nth(1)).to_contain_text("dealer-1")
    expect(rows.nth(2)).to_contain_text("dealer-2")
    expect(rows.nth(2).locator("td").nth(4)).to_have_text("非承認")  # from: the state kept

    page.fill("#entity-id", "EST-PLAIN")
    page.click("#lookup")
    expect(rows).to_have_count(100)
    expect(rows.first).to_contain_text("dealer-1")
    expect(rows.first).to_have_attribute("data-kind", "move")
    expect(rows.last).to_contain_text("dealer-100")
    expect(page.locator("#history-more")).to_have_count(0)
    assert errors.seen == []


def test_a_flows_decision_id_pasted_in_the_log_opens_its_entity(
    server: Server, browser: Browser
) -> None:
    """The log's "open decision" took a flow's decision ID to a page of an unknown decision."""
    with server.client(ALICE) as client:
        answer = client.post(
            f"/v1/flows/{FLOW}/EST-PASTED/events",
            json={
                "event": {"type": "exclude", "exclusion_reason": "重複"},
                "actor": {"id": "dealer-9", "roles": ["販売店"]},
            },
        )
        assert answer.status_code == 200, answer.text
    page, errors = _open(browser, server, "EST-PASTED")
    page.goto(server.url + "/console/#/log")
    page.fill("#decision-id", answer.json()["decision_id"])
    page.click("#open-id")
    expect(page.locator("#current-state")).to_be_visible()
    assert page.url.endswith(f"#/flows/{FLOW}/EST-PASTED?move=1")
    opened = page.locator('#history-table tbody tr[aria-current="true"]')
    expect(opened).to_have_attribute("data-version", "1")
    expect(opened).to_contain_text("dealer-9")

    # a move older than the page of newest moves: the table opens from it, scrolled to it
    _entity(server, "EST-OLD", 130)
    with server.client(ALICE) as client:
        history = client.get(f"/v1/flows/{FLOW}/EST-OLD/history", params={"limit": "12"})
    tenth = history.json()["moves"][9]
    assert tenth["version"] == 10
    page.goto(server.url + "/console/#/log")
    page.fill("#decision-id", tenth["decision_id"])
    page.click("#open-id")
    expect(opened).to_have_attribute("data-version", "10")
    expect(opened).to_contain_text("dealer-10")
    expect(opened).to_be_in_viewport()
    expect(page.locator("#history-table tbody tr")).to_have_count(121)  # 10 to 130
    expect(page.locator("#history-partial")).to_have_text(
        "最新の 121 件を古い順に表示しています。これより前の遷移があと 9 件あります。"
    )
    # one among the newest 100, 90 rows down the table: scrolled to
    with server.client(ALICE) as client:
        later = client.get(
            f"/v1/flows/{FLOW}/EST-OLD/history", params={"after": "119", "limit": "1"}
        ).json()["moves"][0]
    assert later["version"] == 120
    page.goto(server.url + "/console/#/log")
    page.fill("#decision-id", later["decision_id"])
    page.click("#open-id")
    expect(opened).to_have_attribute("data-version", "120")
    expect(page.locator("#history-table tbody tr")).to_have_count(100)  # 31 to 130
    expect(opened).to_be_in_viewport()
    assert page.evaluate("window.scrollY") > 0
    assert errors.seen == []
