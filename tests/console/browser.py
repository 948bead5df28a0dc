"""What the browser tests share: Debian's Chromium driven by Playwright, the window sizes,
the console log watched for errors, and small steps (fits the window, Tab until)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 1024, "height": 768}
TIMEOUT_MS = 15_000


class Errors:
    """What the browser logged as an error, and exceptions thrown in the page."""

    def __init__(self, page: Page) -> None:
        self.seen: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.seen.append(f"{message.type}: {message.text}")


def open_page(browser: Browser, viewport: dict[str, int]) -> tuple[Page, Errors]:
    context = browser.new_context(viewport=viewport, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    return page, Errors(page)


def fits(page: Page) -> None:
    """Nothing wider than the window: no sideways scrolling at this size."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def tab_until(page: Page, element_id: str, limit: int = 250) -> int:
    """Press Tab until the element of that id has the focus; how many presses it took."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return presses
    raise AssertionError(f"Tab never reached #{element_id}")
