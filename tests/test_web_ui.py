"""The web page in headless Chromium (Debian's, driven by Playwright) against a live server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from app.settings import OAuthClient
from tests.fake_atlassian import SITES, FakeAtlassian
from tests.fake_site import FakeSite, Page, html
from tests.helpers import live_server, running_workers, wait_for

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
def sources_page(make_app):  # type: ignore[no-untyped-def]
    """The page with Atlassian consent set up (the fake), a worker, and a small website."""
    with FakeAtlassian() as atlassian, FakeSite() as site:
        client = OAuthClient(
            "atlassian", atlassian.token_url, atlassian.client_id, atlassian.client_secret
        )
        app = make_app(
            secret_key="k1-" + "abcdefghijklmnopqrstuvwxyz0123456789",
            oauth_clients=(client,),
            atlassian_authorize_url=atlassian.authorize_url,
            atlassian_resources_url=atlassian.resources_url,
            source_hosts=("127.0.0.1",),  # the fake website's address
        )
        with live_server(app) as base, running_workers(app):
            yield base, site


def test_connect_atlassian_then_add_sync_pause_and_delete_a_website_source(
    sources_page, browser_page, admin_token
):
    base, site = sources_page
    links = ("valves.html", "pumps.html")
    site.pages["/docs/"] = Page(html("Handbook", "<p>The plant handbook.</p>", links))
    site.pages["/docs/valves.html"] = Page(html("Valves", "<p>Install the XR-7734 valve.</p>"))
    site.pages["/docs/pumps.html"] = Page(html("Pumps", "<p>Centrifugal pumps hum.</p>"))
    page = browser_page
    page.goto(base)
    page.get_by_label("API token").fill(admin_token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#atlassian-hint")).to_contain_text("not connected")

    # Consent at (the fake) Atlassian; its callback sends the browser back to the page, which
    # says so once and takes the message out of the address.
    page.get_by_role("button", name="Connect Atlassian").click()
    expect(page.locator("#connect-status")).to_have_text("Atlassian is connected.")
    assert page.url == f"{base}/"
    acme = SITES[0]
    page.get_by_role("button", name=f"Jira source from {acme['name']}").click()
    expect(page.get_by_label("Base URL")).to_have_value(
        f"https://api.atlassian.com/ex/jira/{acme['id']}"
    )
    expect(page.get_by_label("JQL")).to_be_focused()
    page.goto(f"{base}/?connect_error=Atlassian+said+no")
    expect(page.locator("#atlassian-error")).to_have_text(
        "Connecting Atlassian failed: Atlassian said no"
    )
    assert page.url == f"{base}/"

    page.get_by_label("New collection").fill("plant")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#sources-collection")).to_have_text("in plant")
    page.get_by_label("Kind").select_option("web")
    page.get_by_label("Source name").fill("handbook")
    start_urls = page.get_by_label("Start URLs or sitemaps")
    start_urls.fill("not a web address")
    page.get_by_label("Delay between requests").fill("0")
    page.get_by_role("button", name="Add source").click()  # the API's 422, beside the form
    expect(page.locator("#source-form-error")).to_contain_text("invalid web config at urls.0")
    start_urls.fill(f"{site.url}/docs/")
    page.get_by_role("button", name="Add source").click()
    expect(page.locator("#source-form-error")).to_have_text("")
    row = page.locator("#sources tbody tr", has_text="handbook")
    expect(row).to_contain_text(f"{site.url}/docs/")
    last_run = row.locator(".last-run")
    expect(last_run).to_have_text(
        "succeeded: 3 added, 0 updated, 0 deleted, 0 unchanged, 0 failed", timeout=60_000
    )
    for title in ("Handbook", "Valves", "Pumps"):
        document = page.locator("#documents tbody tr", has_text=f"{title}.md")
        expect(document.locator("td").nth(1)).to_have_text("indexed", timeout=60_000)

    site.pages["/docs/pumps.html"] = Page(html("Pumps", "<p>Pumps now push crude oil.</p>"))
    row.get_by_role("button", name="Sync handbook now").click()
    expect(last_run).to_have_text(
        "succeeded: 0 added, 1 updated, 0 deleted, 2 unchanged, 0 failed", timeout=60_000
    )
    row.get_by_text("Recent runs").click()
    expect(row.locator("ol.runs li")).to_have_count(2)
    expect(row.locator("ol.runs li").last).to_contain_text("(created) succeeded: 3 added")

    row.get_by_role("button", name="Pause handbook").click()
    expect(row).to_contain_text("paused (on demand)")
    row.get_by_role("button", name="Resume handbook").click()
    expect(row.get_by_role("button", name="Pause handbook")).to_be_visible()

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Delete source handbook").click()
    expect(page.locator("#sources tbody tr")).to_have_count(0)
    expect(page.locator("#documents tbody tr")).to_have_count(0)
    assert dialogs == ["Delete the source handbook and the documents it brought in?"]
    expect(page.locator("#sources-error")).to_have_text("")


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


# Every text the answer being shown goes through, and every state of the reconnecting status.
WATCH_ANSWER = """() => {
    window.shown = [];
    window.statuses = [];
    new MutationObserver(() => {
        const text = document.querySelector("#messages li.assistant:last-child .text");
        if (text) window.shown.push(text.textContent);
        window.statuses.push(document.querySelector("#chat-status").textContent);
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""
ASK = re.compile(r"/api/v1/chats/\d+/messages$")


def _sign_in(page, base: str, token: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(base)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text("Signed in as admin")


def _events_request(request) -> bool:  # type: ignore[no-untyped-def]
    return request.url.split("?")[0].endswith("/events")


def _cut_after(count: int):  # type: ignore[no-untyped-def]
    """A route handler: the question goes to the server, the page gets the first `count` events
    of its answer and half of the next one, then the stream ends (as a proxy cutting it)."""

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        request = route.request
        if request.method != "POST":
            route.continue_()
            return
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "accept")}
        headers["content-type"] = "application/json"
        sent, events = [], 0
        with httpx.stream(
            "POST", request.url, content=request.post_data_buffer, headers=headers, timeout=30
        ) as response:
            for line in response.iter_lines():
                sent.append(line)
                events += line == ""
                if events == count and line.startswith("event:"):
                    break  # the next event's id and name, without its data
        body = "\n".join(sent)
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    return handle


def test_an_answer_whose_stream_is_cut_resumes_without_repeating_text(
    page_url, browser_page, admin_token, admin, llm
):
    llm.reply = " ".join(f"word{i}" for i in range(30))
    llm.delay_s = 0.3  # slow: the answer is still being generated when the page reconnects
    page = browser_page
    _sign_in(page, page_url, admin_token)
    page.evaluate(WATCH_ANSWER)
    page.route(ASK, _cut_after(3))
    page.get_by_label("Your question").fill("Count for me")
    with page.expect_request(_events_request) as reconnected:
        page.get_by_role("button", name="Ask").click()
    assert reconnected.value.headers["last-event-id"] == "3"
    llm.delay_s = 0.0  # the rest comes quickly
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer.locator(".text")).to_have_text(llm.reply)
    expect(page.locator("#chat-error")).to_have_text("")
    chat = page.evaluate("Number(sessionStorage.getItem('postrag.chat'))")
    stored = httpx.get(f"{page_url}/api/v1/chats/{chat}", headers=admin).json()
    assert stored["messages"]["items"][-1]["content"] == llm.reply
    # Each text shown on the way was a beginning of the answer: nothing came twice.
    shown = page.evaluate("window.shown")
    assert shown and all(llm.reply.startswith(text) for text in shown)
    assert "reconnecting..." in page.evaluate("window.statuses")
    expect(page.locator("#chat-status")).to_have_text("")


def _with_event(name: str, data: dict):  # type: ignore[no-untyped-def]
    """A route handler: the question goes to the server, and the page gets its answer with one
    more event (`name`, `data`) after the first."""

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        request = route.request
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "accept")}
        headers["content-type"] = "application/json"
        answered = httpx.post(
            request.url, content=request.post_data_buffer, headers=headers, timeout=30
        )
        first, rest = answered.text.split("\n\n", 1)
        body = f"{first}\n\nevent: {name}\ndata: {json.dumps(data)}\n\n{rest}"
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    return handle


def test_an_event_the_page_cannot_show_does_not_end_the_answer_shown(
    page_url, browser_page, admin_token, llm
):
    llm.reply = "Shown to the end."
    page = browser_page
    _sign_in(page, page_url, admin_token)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": True}
    page.route(ASK, _with_event("question", _question(5, requested_schema=schema)))
    page.get_by_label("Your question").fill("Say something")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer.locator(".text")).to_have_text("Shown to the end.")
    expect(page.locator("#chat-error")).to_have_text("")


def test_a_page_reloaded_mid_answer_follows_the_answer_to_its_end(
    page_url, browser_page, admin_token, llm
):
    llm.reply = " ".join(f"word{i}" for i in range(30))
    llm.delay_s = 0.3
    page = browser_page
    _sign_in(page, page_url, admin_token)
    page.get_by_label("Your question").fill("Count for me")
    page.get_by_role("button", name="Ask").click()
    answer = page.locator("#messages li.assistant").last
    expect(answer.locator(".text")).to_contain_text("word0")
    with page.expect_request(_events_request) as followed:
        page.reload()  # the chat shown is opened again, its answer followed from the start
    assert followed.value.headers["last-event-id"] == "0"
    llm.delay_s = 0.0
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer.locator(".text")).to_have_text(llm.reply)
    expect(page.locator("#messages li.user")).to_have_count(1)
    expect(page.locator("#chat-error")).to_have_text("")


# MCP tools in a chat (tests/fake_mcp.py): the calls, their progress and the server's questions


@pytest.fixture
def tools_page(make_app, llm, fake_mcp, admin_token):  # type: ignore[no-untyped-def]
    """The page, with the fake MCP server registered (as `tickets`) and its tools discovered."""
    app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        mcp_hosts=("127.0.0.1",),
        mcp_timeout_s=5,
        chat_question_timeout_s=20,  # a question the test leaves unanswered ends anyway
    )
    headers = {"Authorization": f"Bearer {admin_token}"}
    with live_server(app) as base:
        created = httpx.post(
            f"{base}/api/v1/mcp-servers",
            json={"name": "tickets", "url": fake_mcp.url},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        server = created.json()["id"]
        refreshed = httpx.post(f"{base}/api/v1/mcp-servers/{server}/refresh", headers=headers)
        assert refreshed.status_code == 200, refreshed.text
        yield base, headers


def _tool_rounds(*calls: dict):  # type: ignore[no-untyped-def]
    """The fake model's tool calls: `calls` until it has read a tool's result."""
    return lambda sent: [] if any(m["role"] == "tool" for m in sent) else list(calls)


def _results(sent: list[dict]) -> str:
    return " | ".join(m["content"] for m in sent if m["role"] == "tool")


# The progress bars the page adds (value/max), kept even once the result replaced them.
WATCH_PROGRESS = """() => {
    window.bars = [];
    new MutationObserver((records) => {
        for (const record of records) for (const node of record.addedNodes) {
            if (node.nodeName === "PROGRESS") window.bars.push(`${node.value}/${node.max}`);
        }
    }).observe(document.body, {subtree: true, childList: true});
}"""


def test_an_answer_shows_its_tool_calls_progress_and_results(
    tools_page, browser_page, admin_token, llm
):
    base, headers = tools_page
    llm.tool_calls = _tool_rounds(
        {"name": "tickets__add", "arguments": {"a": 2, "b": 3}},
        {"name": "tickets__fail", "arguments": {}},
        {"name": "tickets__count", "arguments": {"steps": 3}},
    )
    llm.reply = lambda sent: f"Results: {_results(sent)}."
    page = browser_page
    _sign_in(page, base, admin_token)
    page.evaluate(WATCH_PROGRESS)
    expect(page.locator("#chat-tools-summary")).to_have_text("none")  # the preference's
    page.locator("#chat-tools summary").click()
    page.get_by_label("tickets", exact=True).check()
    expect(page.locator("#chat-tools-summary")).to_have_text("tickets")
    page.get_by_label("Your question").fill("What is 2 + 3?")
    page.get_by_role("button", name="Ask").click()

    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expected = "Results: 5 | Error executing tool fail: the ticket system is down | counted to 3."
    expect(answer.locator(".text")).to_have_text(expected)
    calls = answer.locator(".tool-call")  # as stored, once the answer ended
    expect(calls).to_have_count(3)
    added = calls.filter(has_text="Tool tickets › add")
    expect(added.locator(".tool-state")).to_have_text("done")
    added.locator("summary").click()  # closed once stored: opened from the keyboard's element
    expect(added.locator(".tool-arguments")).to_contain_text('"a": 2')
    expect(added.locator(".tool-result")).to_have_text("Result5")
    failed = calls.filter(has_text="Tool tickets › fail")
    expect(failed.locator(".tool-state")).to_have_text("failed")
    expect(failed.locator(".tool-result.error")).to_contain_text("the ticket system is down")
    # Progress that comes faster than the answer is passed on is coalesced (the latest wins):
    # some steps may be skipped, but the bars count up, each of 3, to the last step.
    bars = page.evaluate("window.bars")
    steps = [int(b.split("/")[0]) for b in bars]
    assert bars and all(b.endswith("/3") for b in bars) and steps == sorted(steps), bars
    assert steps[-1] == 3
    chat = page.evaluate("Number(sessionStorage.getItem('postrag.chat'))")
    stored = httpx.get(f"{base}/api/v1/chats/{chat}", headers=headers).json()
    assert len(stored["mcp_server_ids"]) == 1

    # The picker changes the chat shown at once.
    page.get_by_label("tickets", exact=True).uncheck()
    expect(page.locator("#chat-tools-summary")).to_have_text("none")
    wait_for(
        lambda: (
            httpx.get(f"{base}/api/v1/chats/{chat}", headers=headers).json()["mcp_server_ids"] == []
        ),
        "the chat without its server",
    )
    server = httpx.get(f"{base}/api/v1/mcp-servers", headers=headers).json()["items"][0]["id"]
    toggle = httpx.patch  # an admin disables the server meanwhile: the API's 422 is shown
    toggle(f"{base}/api/v1/mcp-servers/{server}", json={"enabled": False}, headers=headers)
    box = page.get_by_label("tickets", exact=True)
    box.check()
    expect(page.locator("#chat-tools-error")).to_contain_text("no enabled MCP server")
    expect(box).not_to_be_checked()  # what the chat uses
    toggle(f"{base}/api/v1/mcp-servers/{server}", json={"enabled": True}, headers=headers)
    box.check()
    expect(page.locator("#chat-tools-error")).to_have_text("")
    expect(box).to_be_checked()

    # Slash commands: "/" offers the servers' prompts, chosen from the keyboard.
    question = page.get_by_label("Your question")
    question.fill("/")
    options = page.get_by_role("listbox", name="Slash commands").get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("/tickets:summarise topic")
    question.press("ArrowDown")  # round to the first again
    question.press("Enter")
    expect(question).to_have_value("/tickets:summarise ")
    expect(page.get_by_role("listbox", name="Slash commands")).to_be_hidden()
    question.press("Escape")
    expect(page.locator("#chat-error")).to_have_text("")


def test_a_servers_question_is_a_form_that_lets_the_answer_complete(
    tools_page, browser_page, admin_token, llm
):
    base, headers = tools_page
    llm.tool_calls = _tool_rounds({"name": "tickets__ask", "arguments": {}})
    llm.reply = lambda sent: f"Done: {_results(sent)}"
    server = httpx.get(f"{base}/api/v1/mcp-servers", headers=headers).json()["items"][0]["id"]
    prefs = httpx.patch(
        f"{base}/api/v1/me/preferences", json={"mcp_server_ids": [server]}, headers=headers
    )
    assert prefs.status_code == 200, prefs.text
    page = browser_page
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if "/questions/" in r.url else None)
    _sign_in(page, base, admin_token)
    expect(page.locator("#chat-tools-summary")).to_have_text("tickets")  # the preference's
    page.get_by_label("Your question").fill("/sum")  # a new chat: its servers' prompts
    option = page.get_by_role("listbox", name="Slash commands").get_by_role("option")
    expect(option).to_have_text("/tickets:summarise topic Summarise a topic.")
    option.click()
    expect(page.get_by_label("Your question")).to_have_value("/tickets:summarise ")
    expect(page.get_by_label("Your question")).to_be_focused()
    page.get_by_label("Your question").fill("Make a ticket")
    page.get_by_role("button", name="Ask").click()
    form = page.locator("form.question")
    expect(form).to_contain_text("tickets asks: Which colour should the ticket be?")
    expect(page.locator(".tool-call", has_text="Tool tickets › ask").locator(form)).to_have_count(1)

    page.reload()  # pending when the chat is opened: shown once (listed, and in the stream)
    expect(form).to_have_count(1)
    form.get_by_role("button", name="Accept").click()  # a required field left empty: not sent
    form.get_by_label("Colour").fill("red")

    def not_a_colour(route) -> None:  # type: ignore[no-untyped-def]
        body = {"action": "accept", "content": {"colour": 7}}
        route.continue_(post_data=json.dumps(body))

    page.route(re.compile(r"/questions/\d+$"), not_a_colour, times=1)
    form.get_by_role("button", name="Accept").click()  # refused: said in the form, which stays
    expect(form.get_by_role("alert")).to_contain_text("is not of type 'string'")
    form.get_by_role("button", name="Accept").click()
    expect(form).to_have_count(0)
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(answer.locator(".text")).to_have_text("Done: the colour is red")
    expect(page.locator("#chat-error")).to_have_text("")
    assert len(posted) == 2  # the refused one, then the colour: none with the field left empty


# A question shown as the page shows a `question` event, in an answer's list item.
SHOW_QUESTION = """async (question) => {
    const { showQuestion } = await import("/ui/tools.js");
    const item = document.createElement("li");
    item.className = "assistant";
    item.append(Object.assign(document.createElement("span"), {className: "text"}));
    document.querySelector("#messages").append(item);
    showQuestion(item, 4242, question);
}"""


def _question(number: int, **fields) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": number,
        "message_id": 1,
        "server": "tickets",
        "tool": "plan",
        "message": "How should the ticket look?",
        "requested_schema": {},
        "url": None,
        "state": "pending",
        "answer": None,
        "expires_at": "2026-12-05T12:00:00Z",
        **fields,
    }


def test_a_questions_form_follows_its_requested_schema(page_url, browser_page, admin_token):
    page = browser_page
    _sign_in(page, page_url, admin_token)
    replies: list[dict] = []

    def answered(route) -> None:  # type: ignore[no-untyped-def]
        replies.append(json.loads(route.request.post_data))
        route.fulfill(status=200, json={"state": "answered"})

    page.route(re.compile(r"/api/v1/chats/4242/questions/\d+$"), answered)
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "title": "Title", "description": "a short line"},
            "points": {"type": "integer", "title": "Story points", "minimum": 1},
            "urgent": {"type": "boolean", "title": "Urgent", "default": False},
            "team": {
                "type": "string",
                "title": "Team",
                "enum": ["ops", "dev"],
                "enumNames": ["Operations", "Development"],
            },
            "estimate": {"type": "number", "title": "Estimate (days)"},
            'why "now"': {"type": "string", "title": "Why now"},  # any name, " included
        },
        "required": ["title", "team"],
    }
    page.evaluate(SHOW_QUESTION, _question(7, requested_schema=schema))
    form = page.locator('form.question[data-question="7"]')
    expect(form.get_by_label("Title")).to_have_accessible_description("a short line")
    form.get_by_label("Title").fill("Fix the pump")
    form.get_by_label("Story points").fill("3")
    form.get_by_label("Urgent").check()
    form.get_by_label("Team").select_option(label="Development")
    form.get_by_label("Why now").fill("it leaks")
    form.get_by_role("button", name="Accept").click()
    expect(form).to_have_count(0)
    assert replies == [
        {
            "action": "accept",
            "content": {
                "title": "Fix the pump",
                "points": 3,
                "urgent": True,
                "team": "dev",
                'why "now"': "it leaks",
            },
        }
    ]

    # A page to open instead of a form: a link only when it is a web address.
    page.evaluate(SHOW_QUESTION, _question(8, url="javascript:alert(1)"))
    form = page.locator('form.question[data-question="8"]')
    expect(form).to_contain_text("javascript:alert(1)")
    expect(form.get_by_role("link")).to_have_count(0)
    form.get_by_role("button", name="Accept").click()
    expect(form).to_have_count(0)
    page.evaluate(SHOW_QUESTION, _question(9, url="https://tickets.example/consent"))
    form = page.locator('form.question[data-question="9"]')
    link = form.get_by_role("link", name="https://tickets.example/consent")
    expect(link).to_have_attribute("href", "https://tickets.example/consent")
    form.get_by_role("button", name="Decline").click()
    expect(form).to_have_count(0)
    assert replies[1:] == [{"action": "accept"}, {"action": "decline"}]
