"""What goes wrong, said plainly, in a real browser (Debian's Chromium, driven by
Playwright) against a real `kimari serve` with the shipped policies:

    an edit not saved asks before the page is reloaded or closed (not before moving
    between the console's pages); a validation that gets no answer says so in Japanese,
    offers 再検証 and tries again by itself (and when the network is back); a validation
    the service refuses (4xx) ends the checking state with the refusal; a data set's JSON
    mistake is named by its line and column, a body of another shape by what is expected;
    numbers typed with the IME are read, a comma is refused beside its field, a number a
    double cannot hold is sent with its digits as typed; a decision is opened by its ID;
    the wide tables scroll in their own box in a 375 px window; a refusal says each thing
    once; the flow event's time is labelled in the console's language; a double click
    sends one request (a flow event, a draft, an approval, a submission) and a flow event
    sent again after its answer was lost moves the entity once; a job survives polls that
    get no answer; a draft saved stays saved after leaving the editor; a change of language
    validates again, and one error is "1 error"; every column of an impact is seen in a
    1280 px window; an impact stays with its draft when the editor is left (marked once the
    text is edited, followed to its end if it still ran); the revisions and the audit trail
    are readable in an 800 px window; an error says its words in the console's language, its
    code beside; a data set changed by someone else since the page was opened is not
    overwritten unseen, and its history beyond the newest 100 is a click away.

Every step waits on a state of the page, never on time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests import ROOT
from tests.console.browser import WIDE, Errors, fits, open_page
from tests.service.server_process import Server, copy_shipped

ALICE, BOB, SVC = "alice-secret-0123", "bob-secret-01234", "svc-secret-01234"
TOKENS = f"{ALICE}:alice:decide+admin+publish:*,{BOB}:bob:decide+publish:*,{SVC}:svc:decide"
PHONE = {"width": 375, "height": 740}
POLICY = "cancellation-fees"
SOURCE = (ROOT / "policies" / f"{POLICY}.yaml").read_text(encoding="utf-8")
# the browser logs each request the test makes fail on purpose
FAILED_LOADS = re.compile(r"Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_FAILED")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("mishaps")
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
    browser: Browser, server: Server, token: str = ALICE, viewport: dict[str, int] = WIDE
) -> tuple[Page, Errors]:
    page, errors = open_page(browser, viewport)
    page.goto(server.url + "/console/")
    page.fill("#token", token)
    page.press("#token", "Enter")
    expect(page.locator("#policy-list")).to_be_visible()
    return page, errors


def _open_editor(page: Page, server: Server) -> None:
    page.goto(server.url + f"/console/#/policies/{POLICY}/edit")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")


def _type_first(page: Page, text: str) -> None:
    """Type a comment line at the start of the text (where it is drawn)."""
    page.locator("#policy-editor .cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type(text.lstrip("\n") + "\n")


def _holds(page: Page, text: str, yes: bool = True) -> None:
    """Whether the policy editor's first lines (those drawn) hold `text`, or not."""
    content = expect(page.locator("#policy-editor .cm-content"))
    if yes:
        content.to_contain_text(text)
    else:
        content.not_to_contain_text(text)


def _would_ask(page: Page) -> bool:
    """Whether the page would ask before it is unloaded (its beforeunload is cancelled)."""
    return bool(
        page.evaluate(
            "() => { const e = new Event('beforeunload', {cancelable: true});"
            " window.dispatchEvent(e); return e.defaultPrevented; }"
        )
    )


def _asks_before_leaving(page: Page, wanted: bool = True) -> bool:
    """`_would_ask`, once it says `wanted` or 5 s have passed: the editor arms and disarms
    its question in an effect, after the render that shows the edit (or the save)."""
    deadline = time.monotonic() + 5
    while _would_ask(page) != wanted and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    return _would_ask(page)


def _revision(server: Server, token: str, state: str, message: str, days: int) -> dict[str, Any]:
    # a change no test case sees: the English description
    source = SOURCE.replace("en: Proposes the fee", f"en: ({days}) Proposes the fee", 1)
    assert source != SOURCE
    with server.client(token) as client:
        answer = client.post(
            f"/v1/policies/{POLICY}/revisions",
            json={"source": source, "message": message, "state": state},
        )
        assert answer.status_code in (200, 201, 202), answer.text
        if answer.status_code != 202:
            return answer.json()  # type: ignore[no-any-return]
        # a submission is a job (its tests and impact): until it is done
        job = answer.json()
        deadline = time.monotonic() + 60
        while job["state"] not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["state"] == "done", job
    return job["report"]["revision"]  # type: ignore[no-any-return]


def test_an_unsaved_edit_asks_before_the_page_is_left_but_not_between_pages(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    _open_editor(page, server)
    assert not _asks_before_leaving(page, wanted=False)  # nothing edited yet

    _type_first(page, "\n# a note not saved yet")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    assert _asks_before_leaving(page)

    # moving to another page of the console keeps the edit and asks nothing
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.type), dialog.accept()))
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-id")).to_be_visible()
    page.go_back()
    _holds(page, "a note not saved yet")
    assert dialogs == []

    # a reload asks (the browser's own question); accepted, the edit is gone
    page.reload()
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    assert dialogs == ["beforeunload"]
    _holds(page, "kimari: 1")
    _holds(page, "a note not saved yet", False)
    assert not _asks_before_leaving(page, wanted=False)

    # discarded: no question
    _type_first(page, "\n# another note")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    assert _asks_before_leaving(page)
    page.click("#discard")  # asked first: not thrown away at one click
    expect(page.locator("#discard-confirm")).to_contain_text("捨てて")
    page.click("#discard-no")
    _holds(page, "another note")
    page.click("#discard")
    page.click("#discard-yes")
    _holds(page, "kimari: 1")
    _holds(page, "another note", False)
    expect(page.locator("#discard-confirm")).to_have_count(0)
    assert not _asks_before_leaving(page, wanted=False)

    # saved: no question
    _type_first(page, "\n# a saved note")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    assert _asks_before_leaving(page)
    page.click("#save-draft")
    expect(page.locator("#saved")).to_be_visible()
    assert not _asks_before_leaving(page, wanted=False)
    assert errors.seen == []


def test_a_validation_without_an_answer_says_so_and_is_asked_again(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed.append(FAILED_LOADS)
    _open_editor(page, server)
    status = page.locator("#validation")

    # the network drops: could not check, in Japanese, with 再検証; nothing can be saved
    page.context.set_offline(True)
    _type_first(page, "\n# offline")
    expect(status).to_have_attribute("data-state", "unreachable")
    expect(status).to_contain_text("検証できませんでした")
    expect(page.locator("#revalidate")).to_have_text("再検証")
    expect(page.locator("#save-draft")).to_be_disabled()
    expect(page.locator("#save")).to_contain_text("検証が済むと保存できます")
    expect(page.locator("main")).not_to_contain_text("TypeError")
    expect(page.locator("main")).not_to_contain_text("Failed to fetch")
    # the network is back: validated again without a keystroke
    page.context.set_offline(False)
    expect(status).to_have_attribute("data-state", "valid")
    expect(page.locator("#revalidate")).to_have_count(0)
    expect(page.locator("#save-draft")).to_be_enabled()

    # a request that fails once: 再検証 asks again at once
    page.route("**/validate", lambda route: route.abort(), times=1)
    _type_first(page, "\n# once")
    expect(status).to_have_attribute("data-state", "unreachable")
    page.click("#revalidate")
    expect(status).to_have_attribute("data-state", "valid")

    # a request that fails once and nobody clicks: asked again by itself
    page.route("**/validate", lambda route: route.abort(), times=1)
    _type_first(page, "\n# twice")
    expect(status).to_have_attribute("data-state", "unreachable")
    expect(status).to_have_attribute("data-state", "valid")

    # a server error (5xx) is asked again as well
    page.route(
        "**/validate",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"status": 503, "code": "unavailable"}',
        ),
        times=1,
    )
    _type_first(page, "\n# thrice")
    expect(status).to_have_attribute("data-state", "unreachable")
    expect(status).to_contain_text("503")
    expect(status).to_have_attribute("data-state", "valid")
    assert errors.seen == []


def test_a_validation_the_service_refuses_ends_the_checking_with_its_message(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of 4\d\d"))
    _open_editor(page, server)
    status = page.locator("#validation")

    # any 4xx: its message as an error, not a spinner, and not asked again
    problem = {
        "status": 422,
        "code": "request_invalid",
        "detail": "the request is invalid (from the test)",
    }
    page.route(
        "**/validate",
        lambda route: route.fulfill(
            status=422, content_type="application/json", body=json.dumps(problem)
        ),
        times=1,
    )
    _type_first(page, "\n# refused")
    expect(status).to_have_attribute("data-state", "refused")
    refusal = page.locator('#editor-section .error[data-code="request_invalid"]')
    expect(refusal).to_contain_text("the request is invalid (from the test)")
    expect(page.locator("#revalidate")).to_have_count(0)
    expect(page.locator("#save-draft")).to_be_disabled()

    # the whole text cleared: an answer either way (a refusal, or an error at 1:1)
    page.locator("#policy-editor .cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    expect(status).to_have_attribute("data-state", re.compile(r"^(refused|invalid)$"))
    expect(page.locator("#save-draft")).to_be_disabled()
    assert errors.seen == []


def test_a_data_sets_json_mistake_and_shape_are_named_before_anything_is_sent(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    page.goto(server.url + "/console/#/data/remote_islands")
    expect(page.locator("#check-impact")).to_be_visible()
    sent: list[str] = []
    page.on(
        "request", lambda request: sent.append(request.url) if request.method != "GET" else None
    )
    error = page.locator("#replace .error")

    # a trailing comma: a JSON mistake at its line and column, in Japanese
    page.fill("#data-text", '{\n  "entries": [\n    {"postal_code": "1000101"},\n  ]\n}')
    page.click("#check-impact")
    expect(error).to_contain_text("JSON の書き方に誤りがあります（4 行 3 列）")
    expect(error).to_contain_text("カンマ")
    expect(error).to_have_attribute("data-kind", "input")
    expect(error).not_to_contain_text("接続できません")
    expect(error).not_to_contain_text("SyntaxError")
    expect(page.locator("#upload")).to_be_disabled()

    # an object without "entries", another key, entries not a list: what is expected
    page.fill("#data-text", '{"rows": []}')
    page.click("#check-impact")
    expect(error).to_contain_text('"entries" がありません')
    page.fill("#data-text", '{"entries": [], "note": "x"}')
    page.click("#check-impact")
    expect(error).to_contain_text("note")
    page.fill("#data-text", '{"entries": {"postal_code": "1000101"}}')
    page.click("#check-impact")
    expect(error).to_contain_text('"entries" はエントリーの配列')
    page.fill("#data-text", "7")
    page.click("#check-impact")
    expect(error).to_contain_text('{"entries": [...]}')
    expect(page.locator("#upload")).to_be_disabled()
    assert sent == []  # nothing was checked or replaced with any of them
    assert errors.seen == []


def test_numbers_typed_with_the_ime_are_read_and_a_long_one_is_sent_as_typed(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of 422"))  # a number too long for the policy
    page.goto(server.url + f"/console/#/policies/{POLICY}/try")
    field = page.locator("#field-_facts_cancellation_reward")
    expect(field).to_be_visible()
    box = page.locator('.field[data-pointer="/facts/cancellation/reward"]')

    # full-width digits (the IME's) are the number
    field.fill("１５００００")
    field.press("Tab")
    expect(field).to_have_value("150000")
    expect(box.locator(".field-error")).to_have_count(0)

    # a comma: refused beside the field, in Japanese
    field.fill("150,000")
    field.press("Tab")
    expect(box.locator(".field-error")).to_contain_text("半角数字で入力してください（カンマなし）")
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("１５０．５")
    field.press("Tab")
    expect(box.locator(".field-error")).to_contain_text("整数")

    # past 2^53: its digits reach the API as typed, never rounded
    for digits in ("12345678901234567890", "9" * 400):
        field.fill(digits)
        field.press("Tab")
        expect(field).to_have_value(digits)
        with page.expect_request(
            lambda r: r.method == "POST" and "/v1/decisions/" in r.url
        ) as request:
            page.click("#decide")
        body = request.value.post_data or ""
        assert f'"reward":{digits}' in body, body[:300]
        expect(page.locator("#decide")).to_be_enabled()
    assert errors.seen == []


def test_a_decision_is_opened_by_its_id(server: Server, browser: Browser) -> None:
    with server.client(SVC) as svc:
        example = svc.get(f"/v1/policies/{POLICY}/examples").json()
        first = (example["files"] or example["cases"])[0]
        request = {k: first[k] for k in ("facts", "at", "settings") if first.get(k) is not None}
        answer = svc.post(f"/v1/decisions/{POLICY}", json=request)
        assert answer.status_code == 200, answer.text
        decision_id = answer.json()["decision_id"]
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of 404"))
    page.goto(server.url + "/console/#/log")
    page.fill("#decision-id", f"  {decision_id} ")  # pasted with spaces around
    page.press("#decision-id", "Enter")
    expect(page).to_have_url(re.compile(f"#/log/{decision_id}$"))
    expect(page.locator("#request")).to_be_visible()
    expect(page.locator("h1")).to_contain_text(decision_id)
    page.go_back()
    page.fill("#decision-id", "0" * 32)
    page.click("#open-id")
    expect(page.locator('.error[data-code="unknown_decision"]')).to_be_visible()
    assert errors.seen == []


def test_the_wide_tables_scroll_in_their_own_box_in_a_375_px_window(
    server: Server, browser: Browser
) -> None:
    # a retired revision (with its rollback), a published one, one pending, with messages
    _revision(
        server, ALICE, "draft", "無料期間を10日に延ばす（営業部からの依頼、長めの説明つき）", 10
    )
    pending = _revision(server, ALICE, "pending", "無料期間を14日に延ばす", 14)
    with server.client(BOB) as bob:
        approved = bob.post(f"/v1/policies/{POLICY}/revisions/{pending['number']}:approve", json={})
        assert approved.status_code == 200, approved.text
    _revision(server, ALICE, "pending", "無料期間を5日に縮める", 5)
    page, errors = _sign_in(browser, server, viewport=PHONE)
    for where, table in (
        (f"#/policies/{POLICY}/revisions", "#revision-list"),
        ("#/approvals", "#pending-list"),
        ("#/policies/order-holds", "#rule-list"),
        ("#/policies", "#policy-list"),
        ("#/data/remote_islands", "#versions-table"),
    ):
        page.goto(server.url + "/console/" + where)
        expect(page.locator(table)).to_be_visible()
        fits(page)
        wrapper = page.locator(table).locator("xpath=..")
        expect(wrapper).to_have_class("table-scroll")
    # on the revisions page: a ref is one line, the rollback is reached by scrolling its box
    page.goto(server.url + f"/console/#/policies/{POLICY}/revisions")
    ref = page.locator('#revision-list tr[data-number="1"] td').first.locator("a code")
    expect(ref).to_have_text(f"{POLICY}@1")
    line = float(
        page.evaluate("getComputedStyle(document.querySelector('main')).lineHeight").rstrip("px")
    )
    height = ref.bounding_box()["height"]  # type: ignore[index]
    assert height < 1.6 * line, (height, line)
    rollback = page.locator("#rollback-1")
    rollback.scroll_into_view_if_needed()
    expect(rollback).to_be_in_viewport()
    fits(page)
    assert errors.seen == []


def test_a_refusal_says_each_thing_once(server: Server, browser: Browser) -> None:
    record = _revision(server, ALICE, "pending", "自分で承認してみる", 9)
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of 403"))
    page.goto(server.url + f"/console/#/policies/{POLICY}/revisions/{record['number']}")
    page.click("#approve")
    refusal = page.locator('.error[data-code="self_approval"]')
    expect(refusal).to_contain_text("作成者は自分の版を承認できません")
    detail = refusal.locator(".detail").inner_text().strip()
    assert record["ref"] in detail
    assert refusal.inner_text().count(detail) == 1, refusal.inner_text()
    expect(refusal.locator(".problem-code")).to_have_text(re.compile("self_approval"))
    assert errors.seen == []


def test_the_flow_events_time_is_labelled_in_the_consoles_language(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    page.goto(server.url + "/console/#/flows/claim-status/EST-LABEL")
    label = page.locator('label[for="event-at"]')
    expect(label).to_contain_text("日時")
    page.get_by_role("button", name="English").click()
    expect(label).to_contain_text("Time")
    page.get_by_role("button", name="日本語").click()
    assert errors.seen == []


def _moves(server: Server, entity: str) -> int:
    with server.client(ALICE) as client:
        answer = client.get(f"/v1/flows/claim-status/{entity}/history")
        assert answer.status_code == 200, answer.text
        return len(answer.json()["moves"])


def test_a_double_click_sends_one_flow_event_and_one_sent_again_moves_the_entity_once(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed.append(FAILED_LOADS)
    page.goto(server.url + "/console/#/flows/claim-status/EST-TWICE")
    expect(page.locator("#current-state")).to_have_text("未申請")
    sent: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: (
            sent.append(json.loads(r.post_data or "{}"))
            if r.method == "POST" and r.url.endswith("/events")
            else None
        ),
    )
    # 対象外 (EX-2) keeps the state: a second request would record a second move
    page.select_option("#event-type", "exclude")
    page.select_option("#field-_event_exclusion_reason", label="重複")
    page.dblclick("#send")
    expect(page.locator("#send-event .ok")).to_be_visible()
    expect(page.locator("#history-table tbody tr")).to_have_count(1)
    assert len(sent) == 1 and sent[0]["event_id"], sent
    assert _moves(server, "EST-TWICE") == 1

    # the answer lost on its way back (the move was made): sent again unchanged, it keeps
    # its event id and the service moves the entity once
    def lose_the_answer(route: Route) -> None:
        route.fetch()
        route.abort()

    page.route("**/events", lose_the_answer, times=1)
    page.select_option("#field-_event_exclusion_reason", label="重複")
    page.click("#send")
    expect(page.locator('#send-event .error[data-kind="network"]')).to_be_visible()
    page.click("#send")
    expect(page.locator("#send-event .ok")).to_be_visible()
    expect(page.locator("#history-table tbody tr")).to_have_count(2)
    assert sent[1]["event_id"] == sent[2]["event_id"] != sent[0]["event_id"], sent
    assert _moves(server, "EST-TWICE") == 2

    # the flow's transitions name the states as its diagram and the history do
    page.goto(server.url + "/console/#/flows/claim-status")
    expect(page.locator("table.transitions")).to_contain_text("未申請")
    expect(page.locator("table.transitions")).not_to_contain_text("not_claimed")
    assert errors.seen == []


def test_a_double_click_saves_one_draft_that_stays_saved_after_leaving_the_editor(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    _open_editor(page, server)
    posted: list[str] = []
    page.on(
        "request",
        lambda r: (
            posted.append(r.url) if r.method == "POST" and r.url.endswith("/revisions") else None
        ),
    )
    _type_first(page, "\n# saved once")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    page.dblclick("#save-draft")
    saved = page.locator("#saved")
    expect(saved).to_be_visible()
    expect(page.locator("#diff .text-diff")).to_contain_text("saved once")
    assert len(posted) == 1, posted
    number = saved.get_attribute("data-number")
    expect(page.locator("#save-draft")).to_be_disabled()  # nothing new to save

    # away and back: the draft is still saved, with its diff, and may be submitted
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-id")).to_be_visible()
    page.go_back()
    _holds(page, "saved once")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    expect(saved).to_have_attribute("data-number", str(number))
    expect(saved.locator(".warn")).to_have_count(0)
    expect(page.locator("#diff .text-diff")).to_contain_text("saved once")
    expect(page.locator("#submit-draft")).to_be_enabled()
    expect(page.locator("#save-draft")).to_be_disabled()
    assert not _asks_before_leaving(page, wanted=False)

    # changed again: to be saved again
    _type_first(page, "\n# and more")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    expect(page.locator("#save-draft")).to_be_enabled()
    expect(saved.locator(".warn")).to_be_visible()
    assert len(posted) == 1
    assert errors.seen == []


def test_a_job_survives_polls_without_an_answer_and_one_given_up_frees_its_button(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed += [FAILED_LOADS, re.compile(r"status of 404")]
    _open_editor(page, server)
    job = page.locator("#tests-job")

    # two polls get no answer: it says it reconnects, then follows the job to its end
    page.route("**/v1/jobs/*", lambda route: route.abort(), times=2)
    page.click("#run-tests")
    expect(job).to_have_attribute("data-reconnecting", "true")
    expect(job.locator('[role="status"]')).to_contain_text("接続し直しています")
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator('[role="status"]')).to_have_count(0)
    expect(page.locator("#tests-report")).to_be_visible()
    expect(page.locator("#run-tests")).to_be_enabled()
    expect(page.locator("#editor-section .error")).to_have_count(0)

    # the service no longer knows the job: given up at once, the error said, the button free
    problem = {"status": 404, "code": "unknown_job", "detail": "no such job (from the test)"}
    page.route(
        "**/v1/jobs/*",
        lambda route: route.fulfill(
            status=404, content_type="application/json", body=json.dumps(problem)
        ),
    )
    with page.expect_response(lambda r: r.request.method == "POST") as started:
        page.click("#run-tests")
    expect(page.locator("#editor-section .error")).to_contain_text("no such job (from the test)")
    expect(job).to_have_count(0)  # not left as running
    expect(page.locator("#run-tests")).to_be_enabled()
    assert errors.seen == []
    # the job itself ran on: its end awaited, lest the next test's submission meet it
    with server.client(ALICE) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client.get(f"/v1/jobs/{started.value.json()['id']}").json()["state"] != "running":
                break
            time.sleep(0.1)


def test_an_approval_double_clicked_approves_once_and_leaves_nothing_to_click(
    server: Server, browser: Browser
) -> None:
    record = _revision(server, ALICE, "pending", "承認を二度押す", 21)
    page, errors = _sign_in(browser, server, BOB)
    page.goto(server.url + f"/console/#/policies/{POLICY}/revisions/{record['number']}")
    expect(page.locator("#reject")).to_be_visible()
    page.dblclick("#approve")
    expect(page.locator("#approved")).to_be_visible()
    expect(page.locator("p.meta [data-state]")).to_have_attribute("data-state", "published")
    expect(page.locator("#decide .error")).to_have_count(0)  # no second approval refused
    expect(page.locator("#decide button")).to_have_count(0)  # neither 承認 nor 却下
    assert errors.seen == []


def test_a_draft_submitted_from_its_page_reads_pending_once_its_job_is_done(
    server: Server, browser: Browser
) -> None:
    draft = _revision(server, ALICE, "draft", "版のページから承認に回す", 22)
    page, errors = _sign_in(browser, server)
    page.goto(server.url + f"/console/#/policies/{POLICY}/revisions/{draft['number']}")
    badge = page.locator("p.meta [data-state]")
    expect(badge).to_have_text("下書き")
    page.dblclick("#submit-revision")
    expect(badge).to_have_attribute("data-state", "pending", timeout=60_000)
    expect(badge).to_have_text("承認待ち")
    expect(page.locator("#submit-revision")).to_have_count(0)
    expect(page.locator("#own-revision")).to_be_visible()  # another principal approves it
    expect(page.locator("#decide .error")).to_have_count(0)  # no second job refused
    assert errors.seen == []


def test_a_change_of_language_validates_again_and_one_error_is_singular(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    _open_editor(page, server)
    page.locator("#policy-editor .cm-content").click()
    page.keyboard.press("Control+Home")
    page.keyboard.type("bogus: 1")
    page.keyboard.press("Escape")  # a completion offered while typing
    page.keyboard.press("Enter")
    status, diagnostics = page.locator("#validation"), page.locator("#diagnostics")
    expect(status).to_have_attribute("data-state", "invalid")
    expect(status).to_have_text("✗ 誤りが 1 件あります")
    expect(diagnostics).to_contain_text("キー 'bogus' は書けません")
    page.click("#lang-en")
    expect(status).to_have_text("✗ 1 error")
    expect(diagnostics).to_contain_text("unknown key 'bogus'")
    page.click("#lang-ja")
    expect(diagnostics).to_contain_text("キー 'bogus' は書けません")
    assert errors.seen == []


# -- the impact of a draft, the revisions in a narrow window, an error in words ------------

HOLDS = "order-holds"
HOLDS_SOURCE = (ROOT / "policies" / f"{HOLDS}.yaml").read_text(encoding="utf-8")
# HO-7's threshold is the second `order.sequence >= 2` of order-holds (the first is NP's P2)
THRESHOLD = "order.sequence >= 2"
SCREEN_800 = {"width": 800, "height": 800}


def _second_order(number: int) -> dict[str, Any]:
    """A second subscription order whose card charge failed: HO-7 holds it."""
    return {
        "facts": {
            "order": {
                "id": f"O-M{number}",
                "total": 5980,
                "sequence": 2,
                "generated_from_subscription": True,
                "customer": {"id": f"C-M{number}", "name": "青木 誠", "postal_code": "150-0002"},
                "payment": {"method": "credit_card", "card_charge_failed": True},
                "subscription": {"id": f"S-M{number}"},
                "shipping": {"cod_available": True},
            }
        },
        "at": "2024-10-01T10:00:00+09:00",
    }


def _holds_draft(server: Server) -> int:
    """Second orders in the log, and a draft of order-holds that no longer holds them
    (HO-7 from the 3rd order on): the draft's number."""
    with server.client(SVC) as svc:
        for number in range(3):
            answer = svc.post(f"/v1/decisions/{HOLDS}", json=_second_order(number))
            assert answer.status_code == 200, answer.text
    at = HOLDS_SOURCE.index(THRESHOLD, HOLDS_SOURCE.index(THRESHOLD) + 1)
    source = HOLDS_SOURCE[:at] + "order.sequence >= 3" + HOLDS_SOURCE[at + len(THRESHOLD) :]
    with server.client(ALICE) as alice:
        answer = alice.post(
            f"/v1/policies/{HOLDS}/revisions",
            json={"source": source, "message": "HO-7 を 3 回目以降に", "state": "draft"},
        )
        assert answer.status_code == 201, answer.text
        return int(answer.json()["number"])


def _impact_shown(page: Page, server: Server) -> str:
    """In the editor: that draft, saved again with a note, and its impact measured; the
    number of the draft saved."""
    page.goto(server.url + f"/console/#/policies/{HOLDS}/edit?from={_holds_draft(server)}")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    _type_first(page, "\n# impact")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    page.click("#save-draft")
    expect(page.locator("#saved")).to_be_visible()
    page.click("#run-impact")
    expect(page.locator("#impact-job")).to_have_attribute("data-state", "done")
    expect(page.locator("#impact .impact-report")).to_be_visible()
    return str(page.locator("#saved").get_attribute("data-number"))


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


def test_every_column_of_an_impact_is_seen_in_a_1280_px_window(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    _impact_shown(page, server)
    report = page.locator("#impact .impact-report")
    # a long value (the effects of a held order) is shown whole, and its columns beside it
    effects = report.locator('.transitions-table tr[data-field="effects"]')
    expect(effects.locator("code.from")).to_contain_text('"no_automatic_credit_charge"')
    expect(effects.locator("code.to")).to_have_text("[]")
    expect(report.locator('.transitions-table tr[data-field="held"] td.number')).to_be_visible()
    for viewport in (WIDE, {"width": 1024, "height": 768}):
        page.set_viewport_size(viewport)
        for table in ("#impact .transitions-table", "#changed-decisions"):
            assert _cells_out_of_sight(page, table) == [], (viewport, table)
        # the chart follows the window on its own time
        page.wait_for_function("() => document.documentElement.scrollWidth <= window.innerWidth")
        fits(page)
    # a ref or a decision id is still never broken
    link = report.locator("#changed-decisions td a code").first
    assert link.evaluate("(e) => e.getClientRects().length") == 1
    assert errors.seen == []


def test_an_impact_stays_with_its_draft_when_the_editor_is_left_and_is_marked_once_edited(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    number = _impact_shown(page, server)
    report, job = page.locator("#impact .impact-report"), page.locator("#impact-job")
    changed = report.get_attribute("data-changed")
    assert changed and int(changed) > 0
    expect(page.locator("#impact-stale")).to_have_count(0)
    measured: list[str] = []
    page.on(
        "request",
        lambda r: (
            measured.append(r.url) if r.method == "POST" and r.url.endswith("/impact") else None
        ),
    )

    # away and back: the same report for the same draft, not measured again
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-id")).to_be_visible()
    page.go_back()
    expect(page.locator("#saved")).to_have_attribute("data-number", number)
    expect(job).to_have_attribute("data-state", "done")
    expect(report).to_have_attribute("data-changed", changed)
    expect(page.locator("#impact-stale")).to_have_count(0)
    assert measured == []

    # edited since: still there, but said to be the saved draft's, not the text's
    _type_first(page, "\n# after the impact")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")
    stale = page.locator("#impact-stale")
    expect(stale).to_contain_text(f"{HOLDS}@{number}")
    expect(stale).to_contain_text("保存してから")
    expect(report).to_have_attribute("data-stale", "true")
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-id")).to_be_visible()
    page.go_back()
    expect(stale).to_be_visible()

    # saved again: another draft, whose impact is not measured yet
    page.click("#save-draft")
    expect(page.locator("#saved")).to_have_attribute("data-number", str(int(number) + 1))
    expect(report).to_have_count(0)
    expect(stale).to_have_count(0)

    # a measure still running when the editor is left is followed to its end on coming back
    def still_running(route: Route) -> None:
        answer = route.fetch().json()
        answer.update(state="running", finished_at=None, report=None)
        route.fulfill(json=answer)

    page.route("**/v1/jobs/*", still_running)
    page.click("#run-impact")
    expect(job).to_have_attribute("data-state", "running")
    page.get_by_role("link", name="判定ログ", exact=True).click()
    expect(page.locator("#decision-id")).to_be_visible()
    page.unroute("**/v1/jobs/*")
    page.go_back()
    expect(report).to_have_attribute("data-changed", changed)
    expect(job).to_have_attribute("data-state", "done")
    expect(stale).to_have_count(0)
    assert len(measured) == 1, measured
    assert errors.seen == []


def test_the_revisions_are_readable_in_an_800_px_window(server: Server, browser: Browser) -> None:
    # one retired (with its rollback), one published, one pending with its tests and impact
    pending = _revision(server, ALICE, "pending", "無料期間を30日に延ばす", 30)
    with server.client(BOB) as bob:
        approved = bob.post(f"/v1/policies/{POLICY}/revisions/{pending['number']}:approve", json={})
        assert approved.status_code == 200, approved.text
    _revision(
        server, ALICE, "pending", "無料期間を31日に延ばす（法務の確認待ち、長めの説明つき）", 31
    )
    page, errors = _sign_in(browser, server, viewport=SCREEN_800)
    page.goto(server.url + f"/console/#/policies/{POLICY}/revisions")
    table = page.locator("#revision-list")
    expect(table.locator('tr[data-state="pending"]').first).to_be_visible()
    fits(page)
    # nothing past the box's edge: the rollback is on the screen, not scrolled to
    assert _cells_out_of_sight(page, "#revision-list") == []
    rollback = table.locator('tr[data-state="retired"] form.rollback button').first
    rollback.scroll_into_view_if_needed()
    expect(rollback).to_be_in_viewport()
    assert table.locator("xpath=..").evaluate("(box) => box.scrollLeft") == 0  # not sideways

    def lines(cell: str) -> list[int]:
        """The lines each row's summary in that column takes (tests, impact)."""
        return table.locator(f"tbody tr td:nth-child({cell}) > span").evaluate_all(
            "(spans) => spans.map((s) => s.getClientRects().length)"
        )

    # the tests' and impact's summaries on one line each, the ref too, each value labelled
    for column in ("5", "6"):
        assert lines(column) and set(lines(column)) == {1}, (column, lines(column))
    row = table.locator('tr[data-state="pending"]').first
    expect(row.locator("td").nth(4)).to_contain_text("件成功")
    label = row.locator("td").nth(4).evaluate("(td) => getComputedStyle(td, '::before').content")
    assert "テスト" in label, label
    narrow = table.locator("tbody td").evaluate_all(
        """(cells) => cells.filter((c) => c.textContent.trim())
            .map((c) => c.getBoundingClientRect())
            .filter((r) => r.width < 4 * parseFloat(getComputedStyle(document.body).fontSize))
            .length"""
    )
    assert narrow == 0
    ref = row.locator("td").first.locator("a code")
    assert ref.evaluate("(e) => e.getClientRects().length") == 1

    # the audit trail below: its detail was crushed to a few characters a line at 800 px
    audit = page.locator("#audit-table")
    expect(audit.locator('tr[data-action="approve"]').first).to_be_visible()
    assert _cells_out_of_sight(page, "#audit-table") == []
    assert audit.locator("xpath=..").evaluate("(box) => box.scrollLeft") == 0
    detail = audit.locator("tbody td.audit-detail").first
    assert detail.evaluate("(td) => td.getBoundingClientRect().width") > 400
    label = detail.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert "詳細" in label, label
    fits(page)

    # in a wide window it is still a table with its header row
    page.set_viewport_size(WIDE)
    expect(table.locator("thead")).to_be_visible()
    label = row.locator("td").nth(4).evaluate("(td) => getComputedStyle(td, '::before').content")
    assert label in ("none", "normal", ""), label
    assert _cells_out_of_sight(page, "#revision-list") == []
    assert ref.evaluate("(e) => e.getClientRects().length") == 1
    assert errors.seen == []


def test_an_error_says_its_words_in_the_consoles_language_with_its_code_beside(
    server: Server, browser: Browser
) -> None:
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of (409|503)"))
    _open_editor(page, server)
    _type_first(page, "\n# not stored")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")

    def refuse(status: int, problem: dict[str, Any]) -> None:
        """The next draft saved is answered with this problem, as the service words it."""
        body = json.dumps(
            {"type": f"urn:kimari:problem:{problem['code']}", "status": status, **problem}
        )

        def answer(route: Route) -> None:
            if route.request.method != "POST":
                route.fallback()
                return
            route.fulfill(status=status, content_type="application/problem+json", body=body)

        page.route(f"**/v1/policies/{POLICY}/revisions", answer, times=1)

    # the store cannot be reached: its words, the service's detail, the code beside
    refuse(
        503,
        {
            "title": "サービスを利用できません",
            "code": "store_unavailable",
            "detail": "ストアに今は接続できません。受け付けた処理はありません。"
            "もう一度送ってください",
            "retriable": True,
        },
    )
    page.click("#save-draft")
    box = page.locator('#save .error[data-code="store_unavailable"]')
    expect(box.locator("strong")).to_have_text("データベースに一時的に接続できません")
    expect(box.locator(".detail")).to_contain_text("もう一度送ってください")
    expect(box.locator(".problem-code")).to_have_text(re.compile(r"^\s*store_unavailable$"))
    page.click("#lang-en")
    expect(box.locator("strong")).to_have_text("The store cannot be reached right now")
    expect(box.locator(".problem-code")).to_have_text(re.compile(r"^\s*store_unavailable$"))
    page.click("#lang-ja")
    expect(page.locator("#validation")).to_have_attribute("data-state", "valid")

    # a code the console has no words for: the service's own title, never the bare code
    refuse(
        409,
        {"title": "競合", "code": "draft_conflict", "detail": "別の下書きと競合しました（テスト）"},
    )
    page.click("#save-draft")
    box = page.locator('#save .error[data-code="draft_conflict"]')
    expect(box.locator("strong")).to_have_text("競合")
    expect(box.locator(".detail")).to_have_text(re.compile("別の下書きと競合しました"))
    expect(box.locator(".problem-code")).to_have_text(re.compile(r"^\s*draft_conflict$"))

    # a job that fails the same way: its words, the message, the code beside
    def failed(route: Route) -> None:
        answer = route.fetch().json()
        message = "ストアに今は接続できません（テスト）"
        answer.update(
            state="failed",
            report=None,
            error={
                "code": "store_unavailable",
                "status": 503,
                "errors": [{"code": "store_unavailable", "message": message}],
            },
        )
        route.fulfill(json=answer)

    page.route("**/v1/jobs/*", failed)
    with page.expect_response(lambda r: r.request.method == "POST") as started:
        page.click("#run-tests")
    box = page.locator('#tests-job .error[data-code="store_unavailable"]')
    expect(box.locator("strong")).to_have_text("データベースに一時的に接続できません")
    expect(box).to_contain_text("ストアに今は接続できません（テスト）")
    expect(box.locator("strong")).not_to_contain_text("store_unavailable")
    page.unroute("**/v1/jobs/*")

    # a code it knows still reads as before (its words first, its code beside)
    problem = {"title": "競合", "code": "job_running", "detail": "別のジョブが実行中です（テスト）"}
    refuse(409, problem)
    page.click("#save-draft")
    box = page.locator('#save .error[data-code="job_running"]')
    expect(box.locator("strong")).to_have_text("このポリシーでは別のジョブが実行中です")
    expect(box.locator(".problem-code")).to_have_text(re.compile(r"^\s*job_running$"))
    assert errors.seen == []
    # the tests' job itself ran on: its end awaited, lest a later submission meet it
    with server.client(ALICE) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if client.get(f"/v1/jobs/{started.value.json()['id']}").json()["state"] != "running":
                break
            time.sleep(0.1)


def test_a_data_set_changed_since_the_page_opened_is_not_overwritten_unseen(
    server: Server, browser: Browser
) -> None:
    """The replacement sent the page's entries over whatever was current: a change someone
    made after the page was opened was lost without a word. It is sent with If-Match now."""
    page, errors = _sign_in(browser, server)
    errors.allowed.append(re.compile(r"status of 412"))
    url = server.url + "/v1/data/remote_islands"
    headers = {"Authorization": f"Bearer {ALICE}"}
    islands = httpx.get(url, headers=headers).json()["entries"]
    try:
        page.goto(server.url + "/console/#/data/remote_islands")
        expect(page.locator("#entries-table")).to_be_visible()
        page.fill("#data-text", json.dumps({"entries": islands[1:]}, ensure_ascii=False))
        page.click("#check-impact")
        expect(page.locator("#upload")).to_be_enabled()
        theirs = httpx.put(url, headers=headers, json={"entries": islands[:-1]})  # meanwhile
        assert theirs.status_code == 200, theirs.text
        page.click("#upload")
        error = page.locator("#replace .error")
        expect(error).to_have_attribute("data-code", "version_moved")
        expect(error).to_contain_text("ほかの人がこのデータセットを変更しました")
        expect(page.locator("#replace .ok")).to_have_count(0)
        assert httpx.get(url, headers=headers).json()["version"] == theirs.json()["version"]

        # reloaded, the page shows their version, and a change made on it is applied
        page.reload()
        expect(page.locator("#data-version")).to_have_text(theirs.json()["version"])
        page.fill("#data-text", json.dumps({"entries": islands[1:]}, ensure_ascii=False))
        page.click("#check-impact")
        expect(page.locator("#upload")).to_be_enabled()
        page.click("#upload")
        expect(page.locator("#replace .ok")).to_contain_text(f"{len(islands) - 1} 件")
        assert errors.seen == []
    finally:
        httpx.delete(url, headers=headers)


def test_an_empty_replacement_is_sent_only_once_emptying_the_set_is_ticked(
    server: Server, browser: Browser
) -> None:
    """An empty list (an export that found nothing) emptied the set for every policy reading
    it without a word; the service refuses it unless it says so (allow_empty), and the page
    asks for that with a tick of its own."""
    page, errors = _sign_in(browser, server)
    url = server.url + "/v1/data/remote_islands"
    headers = {"Authorization": f"Bearer {ALICE}"}
    try:
        page.goto(server.url + "/console/#/data/remote_islands")
        expect(page.locator("#entries-table")).to_be_visible()
        expect(page.locator("#data-empty")).to_have_count(0)  # the page's own entries
        page.fill("#data-text", "[]")
        warning = page.locator("#data-empty")
        expect(warning).to_contain_text("エントリが 0 件です")
        expect(warning).to_contain_text("remote_islands は空になり")
        page.click("#check-impact")
        expect(page.locator(".data-impact #impact-job-order-holds")).to_be_visible()
        upload = page.locator("#upload")
        page.check("#data-empty-ack")
        expect(upload).to_be_enabled()  # the impact checked, and the tick given
        page.uncheck("#data-empty-ack")
        expect(upload).to_be_disabled()
        page.check("#data-empty-ack")
        # another text: no warning; the same empty text again asks again
        page.fill("#data-text", '{"entries": [{"postal_code": "1000101"}]}')
        expect(warning).to_have_count(0)
        # one too long to be read at every key typed: not warned of, and refused by the service
        errors.allowed.append(re.compile(r"status of 422"))
        page.fill("#data-text", "[" + " " * 5000 + "]")
        page.click("#check-impact")
        expect(upload).to_be_enabled()
        expect(warning).to_have_count(0)
        upload.click()
        expect(page.locator('#replace .error[data-code="data_empty"]')).to_be_visible()
        assert httpx.get(url, headers=headers).json()["entries"] != []
        page.fill("#data-text", "[]")
        expect(page.locator("#data-empty-ack")).not_to_be_checked()
        page.click("#check-impact")
        page.check("#data-empty-ack")
        expect(upload).to_be_enabled()
        upload.click()
        expect(page.locator("#replace .ok")).to_be_visible()
        assert httpx.get(url, headers=headers).json()["entries"] == []
        assert errors.seen == []
    finally:
        httpx.delete(url, headers=headers)


def test_a_data_sets_history_beyond_its_first_hundred_is_a_click_away(
    server: Server, browser: Browser
) -> None:
    """The page showed the newest 100 versions and changes, and nothing of the others."""
    url = server.url + "/v1/data/remote_islands"
    headers = {"Authorization": f"Bearer {ALICE}"}
    islands = httpx.get(url, headers=headers).json()["entries"]
    try:
        with httpx.Client(headers=headers, timeout=30) as admin:
            for n in range(101):  # 101 distinct versions, each a change
                kept = [{**island, "island": f"{island['island']}{n}"} for island in islands[:1]]
                assert admin.put(url, json={"entries": kept}).status_code == 200
            kept_versions = admin.get(url + "/versions", params={"limit": 500}).json()
        page, errors = _sign_in(browser, server)
        page.goto(server.url + "/console/#/data/remote_islands")
        versions = page.locator("#versions-table tbody tr")
        changes = page.locator("#changes-table tbody tr")
        expect(versions).to_have_count(100)
        expect(changes).to_have_count(100)
        page.click("#more-versions")
        expect(versions).to_have_count(len(kept_versions["versions"]))
        expect(page.locator("#more-versions")).to_have_count(0)
        shown = versions.evaluate_all("(rows) => rows.map((r) => r.dataset.version)")
        assert shown == [v["version"] for v in kept_versions["versions"]]  # none twice
        page.click("#more-changes")
        expect(changes).to_have_count(len(kept_versions["changes"]))
        expect(page.locator("#more-changes")).to_have_count(0)
        assert errors.seen == []
    finally:
        httpx.delete(url, headers=headers)
