"""One Chromium per module of browser tests, and where their screenshots go:
a temporary folder, or docs/console/ with KIMARI_SCREENSHOTS=docs (`make screenshots`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests import ROOT
from tests.console.browser import ARGS, CHROMIUM, TIMEOUT_MS

# A page's state is awaited as long as an action is (Playwright's expect waits 5 s of its
# own): with the suite on two processes, a job's answer on a loaded machine took longer.
expect.set_options(timeout=TIMEOUT_MS)


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in the
# main thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "the browser tests need Debian's chromium: see the Makefile"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("KIMARI_SCREENSHOTS") == "docs":
        folder = ROOT / "docs" / "console"
        folder.mkdir(exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")
