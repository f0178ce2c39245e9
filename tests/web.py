"""What the browser tests (tests/test_web_*.py) share: a live server with an ingestion worker,
Debian's Chromium driven by Playwright (desktop, phone, dark), signing in, the axe-core check,
and screenshots for the README. Registered as a plugin in tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers import live_server, running_workers

CHROMIUM = "/usr/bin/chromium"
# As root on this machine: no sandbox; no background networking (the network is closed).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}
AXE = Path(axe_playwright_python.__file__).parent / "axe.min.js"  # axe-core, shipped in the wheel
SCREENSHOTS = Path(__file__).parent.parent / "docs" / "screenshots"


@pytest.fixture
def page_url(make_app, llm) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """postrag on loopback (the fake Ollama as its chat model) with an ingestion worker."""
    app = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    with live_server(app) as base, running_workers(app):
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _page(browser: Browser, **options: Any) -> Iterator[Page]:
    context = browser.new_context(**options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page threw: {errors}"  # an uncaught error in the app fails its test


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    """A desktop-sized page in the light scheme; uncaught script errors fail the test."""
    yield from _page(browser, viewport=DESKTOP, color_scheme="light")


@pytest.fixture
def phone_page(browser: Browser) -> Iterator[Page]:
    """A 390 px wide touch page, as a phone."""
    yield from _page(browser, viewport=PHONE, color_scheme="light", has_touch=True, is_mobile=True)


@pytest.fixture
def dark_page(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, viewport=DESKTOP, color_scheme="dark")


def sign_in(page: Page, base: str, token: str, name: str = "admin") -> None:
    """Sign in with an API token on the sign-in page."""
    page.goto(base)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text(f"Signed in as {name}")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """The serious and critical accessibility violations axe-core finds on the page as it is."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def assert_accessible(page: Page) -> None:
    found = axe_violations(page)
    assert not found, f"axe-core found serious or critical violations: {found}"


def screenshot(page: Page, name: str) -> None:
    """With POSTRAG_SCREENSHOTS=1, save the page as docs/screenshots/<name>.png (the README
    shows them); otherwise nothing, so a test run leaves the tree as it was."""
    if os.environ.get("POSTRAG_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
