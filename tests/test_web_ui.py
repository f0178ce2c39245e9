"""The web page in headless Chromium (Debian's, driven by Playwright) against a live server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.helpers import live_server, running_workers

CHROMIUM = "/usr/bin/chromium"
# As root on this machine: no sandbox; no background networking (the network is closed).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture
def page_url(make_app, llm):  # type: ignore[no-untyped-def]
    app = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    with live_server(app) as base, running_workers(app):
        yield base


@pytest.fixture
def browser_page():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        try:
            yield page
        finally:
            browser.close()


def test_sign_in_upload_search_and_chat_with_a_citation(
    page_url, browser_page, admin_token, tmp_path, llm
):
    llm.reply = "Book holidays in the staff portal, two weeks ahead [1]."
    page = browser_page
    page.goto(page_url)
    page.get_by_label("API token").fill("prg_nope_nope")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").first).to_contain_text("not valid")

    page.get_by_label("API token").fill(admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text("Signed in as admin")
    assert page.evaluate("sessionStorage.getItem('postrag.token')") == admin_token

    page.get_by_label("New collection").fill("handbook")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#current-collection")).to_have_text("in handbook")
    page.get_by_label("New collection").fill("handbook")  # a duplicate: the API's 409 is shown
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#app-error")).to_contain_text("already have a collection")

    notes = tmp_path / "holidays.md"
    notes.write_text("# Holidays\n\nHolidays are booked in the staff portal two weeks ahead.\n")
    page.get_by_label("Files to upload").set_input_files(str(notes))
    row = page.locator("#documents tbody tr", has_text="holidays.md")
    expect(row.locator("td").nth(1)).to_have_text("indexed", timeout=60_000)

    # Several files dropped at once (a real drop event carrying two files).
    page.evaluate(
        """() => {
            const files = new DataTransfer();
            const text = {type: "text/plain"};
            files.items.add(new File(["Parking is free for staff."], "parking.txt", text));
            files.items.add(new File(["Lunch is served at noon."], "lunch.txt", text));
            document.querySelector("#drop").dispatchEvent(
                new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
        }"""
    )
    for name in ("parking.txt", "lunch.txt"):
        dropped = page.locator("#documents tbody tr", has_text=name)
        expect(dropped.locator("td").nth(1)).to_have_text("indexed", timeout=60_000)
    # Every control has a label (the file chooser is the keyboard's way to upload).
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label"))
            .map((e) => e.id)"""
    )
    assert unlabelled == []

    page.get_by_label("Query").fill("booking holidays")
    page.get_by_role("button", name="Search").click()
    hit = page.locator("#hits li.hit").first
    expect(hit).to_contain_text("holidays.md")
    expect(hit.locator("mark").first).to_have_text(re.compile("holidays", re.I))

    # Chat: the answer streams in, and its [1] opens the cited passage.
    page.get_by_label("Your question").fill("How do I book holidays?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer).to_contain_text("Book holidays in the staff portal, two weeks ahead")
    citation = answer.get_by_role("link", name=re.compile(r"\[1\] source: holidays.md"))
    citation.click()
    expect(page.locator("#passage-title")).to_contain_text("holidays.md")
    expect(page.locator("#passage-text")).to_contain_text("staff portal two weeks ahead")
    page.get_by_role("button", name="Close").click()
    expect(citation).to_be_focused()  # focus goes back to the citation
    expect(page.locator("#chats li")).to_have_count(1)
    # Reopened from the list, the stored answer keeps its clickable citation.
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#messages li")).to_have_count(0)
    page.locator("#chats li button").first.click()
    expect(page.locator("#messages li.assistant a.citation")).to_have_count(1)
    streamed = [r for r in llm.chat_requests() if r.get("stream")]
    assert streamed, "the page asked for a streamed answer"

    # Preferences: the model picker lists the configured model; saving persists.
    expect(page.locator("#pref-model option", has_text="fake-chat")).to_have_count(1)
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.reload()  # still signed in (session storage), the saved value shows
    expect(page.get_by_label("Temperature")).to_have_value("0.3")


@pytest.fixture
def oidc_page_url(make_app, llm, provider):  # type: ignore[no-untyped-def]
    app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        oidc_issuer=provider.issuer,
        oidc_audience="postrag",
    )
    with live_server(app) as base:
        yield base


def test_sign_in_with_the_provider_chat_and_sign_out(oidc_page_url, browser_page, provider, llm):
    llm.reply = "Ask the team lead."
    provider.login_claims = {"sub": "s-pat", "preferred_username": "pat"}
    page = browser_page
    page.goto(oidc_page_url)
    page.get_by_role("link", name="Sign in with your identity provider").click()
    expect(page.locator("#who")).to_have_text("Signed in as pat")
    assert page.evaluate("sessionStorage.getItem('postrag.token')") is None  # the cookie did it
    assert page.evaluate("document.cookie") == ""  # which the page's scripts cannot read

    page.get_by_label("New collection").fill("team")  # a write: it carries the CSRF token
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#current-collection")).to_have_text("in team")
    page.get_by_label("Your question").fill("Who approves holidays?")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer).to_contain_text("Ask the team lead.")
    page.reload()  # the session outlives the page
    expect(page.locator("#who")).to_have_text("Signed in as pat")

    page.get_by_role("button", name="Sign out").click()  # through the provider's end-session
    expect(page.get_by_role("link", name="Sign in with your identity provider")).to_be_visible()
    assert provider.logouts == [
        {"client_id": "postrag", "post_logout_redirect_uri": f"{oidc_page_url}/"}
    ]
    expect(page.locator("#app")).to_be_hidden()
