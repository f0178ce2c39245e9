"""The conversation in Chromium: answers streamed as safe Markdown with citation chips that open
the passage, stop, regenerate, edit and resend, the chat's collections and model, rename and
delete from the sidebar, a cut stream resumed and a reload followed, MCP tool calls, progress and
questions, a phone and dark mode (tests/web.py has the fixtures)."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers import live_server, wait_for
from tests.web import assert_accessible, screenshot, sign_in

HOSTILE = (
    "## Booking\n\n"
    "Book holidays in the **staff portal**, two weeks ahead [1].\n\n"
    "- ask your *lead*\n- then `submit`\n\n"
    "```python\nprint('hi')\n```\n\n"
    "See [the wiki](https://wiki.example/holidays) or "
    "[x](javascript:alert(1)) <img src=x onerror=alert(1)>"
)


def _document(base: str, headers: dict[str, str], collection: str, name: str, text: str) -> int:
    """A collection named `collection` holding the file `name`, indexed; the document's id."""
    found = httpx.post(f"{base}/api/v1/collections", json={"name": collection}, headers=headers)
    assert found.status_code == 201, found.text
    files = {"file": (name, text.encode(), "text/markdown")}
    data = {"collection_id": str(found.json()["id"])}
    posted = httpx.post(f"{base}/api/v1/documents", files=files, data=data, headers=headers)
    assert posted.status_code == 202, posted.text
    document = posted.json()["id"]
    wait_for(
        lambda: (
            httpx.get(f"{base}/api/v1/documents/{document}", headers=headers).json()["status"]
            == "indexed"
        ),
        f"{name} indexed",
    )
    return int(document)


def _ask(page: Page, text: str) -> None:
    """Ask from the composer (Enter sends), once the question is in the conversation."""
    asked = page.locator("#messages li.user")
    before = asked.count()
    box = page.get_by_label("Your question")
    box.fill(text)
    box.press("Enter")
    expect(asked).to_have_count(before + 1)


def _answer(page: Page):  # type: ignore[no-untyped-def]
    """The last answer, once stored (complete or incomplete)."""
    answer = page.locator("#messages li.assistant").last
    expect(answer).to_have_attribute("data-status", re.compile("complete"), timeout=30_000)
    return answer


def _chat_id(page: Page) -> int:
    found = re.search(r"#/chat/(\d+)$", page.url)
    assert found, page.url
    return int(found.group(1))


def test_an_answer_is_safe_markdown_whose_citation_opens_the_passage(
    page_url, browser_page, admin_token, admin, llm
):
    _document(page_url, admin, "handbook", "holidays.md", "# Holidays\n\nBook in the portal.\n")
    llm.reply = HOSTILE
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, page_url, admin_token)
    expect(page.locator("#view h1")).to_have_text("New chat")
    _ask(page, "How do I book holidays?")
    answer = _answer(page)
    chat = _chat_id(page)  # the address names the chat created by the first message
    expect(page.locator(f'#chat-list a[data-chat="{chat}"]')).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.locator("#view h1")).to_have_text("How do I book holidays?")
    expect(answer.locator("h4")).to_have_text("Booking")
    expect(answer.locator("strong")).to_have_text("staff portal")
    expect(answer.locator("li")).to_have_count(2)
    expect(answer.locator("code").first).to_have_text("submit")
    # What a model writes as HTML, or a javascript: link, is text: nothing runs.
    expect(answer.locator("img")).to_have_count(0)
    expect(answer).to_contain_text("<img src=x onerror=alert(1)>")
    expect(answer).to_contain_text("[x](javascript:alert(1))")
    links = answer.get_by_role("link")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://wiki.example/holidays")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    answer.get_by_role("button", name="Copy python code").click()
    assert page.evaluate("navigator.clipboard.readText()") == "print('hi')"
    answer.get_by_role("button", name="Copy answer").click()
    expect(answer.get_by_role("button", name="Copy answer")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == HOSTILE

    chip = answer.get_by_role("button", name="Source 1: holidays.md")
    chip.click()
    panel = page.locator("#citation-panel")
    expect(panel.get_by_role("heading")).to_have_text("[1] holidays.md")
    expect(panel.locator("mark")).to_contain_text("Book in the portal.")
    expect(panel.get_by_role("button", name="Download holidays.md")).to_be_visible()
    screenshot(page, "chat-citation")
    assert_accessible(page)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(chip).to_be_focused()  # back where the passage was opened from
    chip.press("Enter")
    panel.get_by_role("button", name="Close").click()
    expect(chip).to_be_focused()

    page.reload()  # stored, the answer renders the same
    expect(_answer(page).locator("h4")).to_have_text("Booking")
    expect(page.locator("#messages li.user")).to_have_count(1)
    assert dialogs == []


def test_an_answer_is_stopped_then_the_composer_works_again(
    page_url, browser_page, admin_token, llm
):
    llm.reply = " ".join(f"word{i}" for i in range(40))
    llm.delay_s = 0.3
    page = browser_page
    sign_in(page, page_url, admin_token)
    _ask(page, "Count slowly")
    answer = page.locator("#messages li.assistant").last
    expect(answer.locator(".text")).to_contain_text("word1")
    box = page.get_by_label("Your question")
    expect(box).to_be_disabled()  # while the answer is written, Stop is offered instead
    expect(page.get_by_role("button", name="Send")).to_be_hidden()
    page.get_by_role("button", name="Stop").click()
    expect(answer).to_have_attribute("data-status", "incomplete", timeout=30_000)
    expect(answer).to_contain_text("Stopped.")
    assert llm.reply not in answer.inner_text()
    expect(box).to_be_enabled()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    expect(page.locator("#chat-error")).to_have_text("")


def test_regenerate_then_edit_and_resend_the_last_question(
    page_url, browser_page, admin_token, admin, llm
):
    llm.reply = "First answer."
    page = browser_page
    sign_in(page, page_url, admin_token)
    # An event the page cannot show (a question with a broken schema) does not end the answer.
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": True}
    page.route(ASK, _with_event("question", _question(5, requested_schema=schema)), times=1)
    _ask(page, "Where is the office?")
    expect(_answer(page).locator(".text")).to_have_text("First answer.")
    expect(page.locator("#chat-error")).to_have_text("")
    chat = _chat_id(page)

    llm.reply = "Second answer."
    page.get_by_role("button", name="Regenerate answer").click()
    expect(_answer(page)).to_contain_text("Second answer.")
    expect(page.locator("#messages li")).to_have_count(2)

    llm.reply = "Third answer."
    page.get_by_role("button", name="Edit question").click()
    editor = page.get_by_label("Edit your question")
    expect(editor).to_have_value("Where is the office?")
    editor.fill("Where is the canteen?")
    page.get_by_role("button", name="Send edited question").click()
    expect(_answer(page)).to_contain_text("Third answer.")
    expect(page.locator("#messages li.user")).to_have_text(re.compile("Where is the canteen?"))
    stored = httpx.get(f"{page_url}/api/v1/chats/{chat}", headers=admin).json()["messages"]
    assert [(m["role"], m["content"]) for m in stored["items"]] == [
        ("user", "Where is the canteen?"),
        ("assistant", "Third answer."),
    ]
    asked = [r["messages"][-1]["content"] for r in llm.chat_requests()]
    assert "Where is the canteen?" in asked[-1]


def _ratings(page: Page):  # type: ignore[no-untyped-def]
    """The last answer's thumbs up and down, once it is stored."""
    answer = _answer(page)
    return (
        answer.get_by_role("button", name="Good answer"),
        answer.get_by_role("button", name="Bad answer"),
    )


def test_an_answer_is_rated_and_the_rating_stays_after_a_reload(
    page_url, browser_page, admin_token, admin, llm
):
    llm.reply = "Book in the portal."
    page = browser_page
    sign_in(page, page_url, admin_token)
    _ask(page, "Where do I book holidays?")
    good, bad = _ratings(page)
    expect(good).to_have_attribute("aria-pressed", "false")
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    chat = _chat_id(page)

    def stored() -> dict:
        url = f"{page_url}/api/v1/chats/{chat}"
        return dict(httpx.get(url, headers=admin).json()["messages"]["items"][-1])

    assert stored()["feedback"]["rating"] == "up"
    page.reload()
    good, bad = _ratings(page)
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(bad).to_have_attribute("aria-pressed", "false")
    bad.click()  # the other thumb replaces the rating
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    assert stored()["feedback"]["rating"] == "down"
    bad.click()  # the pressed one again removes it
    expect(bad).to_have_attribute("aria-pressed", "false")
    assert stored()["feedback"] is None
    assert_accessible(page)
    answer = stored()["id"]  # gone meanwhile (another tab regenerated it): the error is shown
    httpx.delete(f"{page_url}/api/v1/chats/{chat}/messages/{answer}", headers=admin)
    good.click()
    expect(page.locator("#messages .rating-error")).to_contain_text(f"no message {answer}")
    expect(good).to_have_attribute("aria-pressed", "false")


def test_a_chat_searches_the_collections_and_uses_the_model_chosen_in_it(
    page_url, browser_page, admin_token, admin, llm
):
    _document(page_url, admin, "pumps", "pumps.md", "Pumps need oil every week.\n")
    _document(page_url, admin, "valves", "valves.md", "Valves need oil every month.\n")
    llm.models["other-chat"] = {"capabilities": ["completion"], "context_length": 4096}
    registered = httpx.post(
        f"{page_url}/api/v1/models",
        json={"provider": "ollama", "name": "other-chat", "kind": "chat"},
        headers=admin,
    )
    assert registered.status_code == 201, registered.text
    llm.reply = "Oil them [1]."
    page = browser_page
    sign_in(page, page_url, admin_token)
    _ask(page, "How often do they need oil?")
    expect(_answer(page).locator("button.cite")).to_have_count(1)
    chat = _chat_id(page)

    page.locator("summary", has_text="Collections").click()
    expect(page.get_by_label("All collections")).to_be_checked()
    page.get_by_label("valves", exact=True).check()
    expect(page.get_by_label("All collections")).not_to_be_checked()
    expect(page.locator("summary", has_text="Collections")).to_have_text("Collections: valves")
    page.get_by_label("Model").select_option(label="other-chat")

    def saved() -> bool:
        stored = httpx.get(f"{page_url}/api/v1/chats/{chat}", headers=admin).json()
        return len(stored["collection_ids"]) == 1 and stored.get("chat_model") == "other-chat"

    wait_for(saved, "the chat's collections and model saved")
    _ask(page, "How often do they need oil now?")
    answer = _answer(page)
    expect(answer.get_by_role("button", name=re.compile("Source 1"))).to_have_accessible_name(
        "Source 1: valves.md"
    )
    assert llm.chat_requests()[-1]["model"] == "other-chat"
    prompt = json.dumps(llm.chat_requests()[-1]["messages"])
    assert "Valves need oil" in prompt and "Pumps need oil" not in prompt

    page.reload()  # what the chat uses, as stored
    expect(page.get_by_label("Model")).to_have_value(str(registered.json()["id"]))
    page.locator("summary", has_text="Collections").click()
    expect(page.get_by_label("valves", exact=True)).to_be_checked()
    page.get_by_label("All collections").check()
    expect(page.get_by_label("valves", exact=True)).not_to_be_checked()
    wait_for(
        lambda: (
            httpx.get(f"{page_url}/api/v1/chats/{chat}", headers=admin).json()["collection_ids"]
            is None
        ),
        "every collection again",
    )
    expect(page.locator("#chat-options-error")).to_have_text("")


def test_a_chat_is_renamed_and_deleted_from_the_sidebar(page_url, browser_page, admin_token):
    page = browser_page
    sign_in(page, page_url, admin_token)
    expect(page.locator("#chat-list")).to_contain_text("No conversations yet.")
    _ask(page, "Plan the offsite")
    _answer(page)
    item = page.locator("#chat-list li").first
    expect(item.get_by_role("link")).to_have_text("Plan the offsite")
    item.get_by_role("button", name="Rename Plan the offsite").click()
    title = page.get_by_label("New title")
    title.fill("Offsite 2027")
    title.press("Enter")
    renamed = page.get_by_role("link", name="Offsite 2027")
    expect(renamed).to_be_focused()
    page.get_by_role("button", name="Delete Offsite 2027").click()
    dialog = page.locator("#confirm")
    expect(dialog).to_contain_text('Delete the conversation "Offsite 2027"?')
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator("#chat-list")).to_contain_text("No conversations yet.")
    expect(page.locator("#view h1")).to_have_text("New chat")
    assert page.url.endswith("#/chat")


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


def _events_request(request) -> bool:  # type: ignore[no-untyped-def]
    return request.url.split("?")[0].endswith("/events")


def _forwarded(route) -> dict[str, str]:  # type: ignore[no-untyped-def]
    headers = {k: v for k, v in route.request.headers.items() if k in ("authorization", "accept")}
    return {**headers, "content-type": "application/json"}


def _cut_after(count: int):  # type: ignore[no-untyped-def]
    """A route handler: the question goes to the server, the page gets the first `count` events
    of its answer and half of the next one, then the stream ends (as a proxy cutting it)."""

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        if route.request.method != "POST":
            route.continue_()
            return
        sent, events = [], 0
        body, headers = route.request.post_data_buffer, _forwarded(route)
        with httpx.stream(
            "POST", route.request.url, content=body, headers=headers, timeout=30
        ) as response:
            for line in response.iter_lines():
                sent.append(line)
                events += line == ""
                if events == count and line.startswith("event:"):
                    break  # the next event's id and name, without its data
        route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body="\n".join(sent)
        )

    return handle


def test_a_cut_stream_resumes_and_a_reload_follows_the_answer_to_its_end(
    page_url, browser_page, admin_token, admin, llm
):
    llm.reply = " ".join(f"word{i}" for i in range(30))
    llm.delay_s = 0.3  # slow: the answer is still being generated when the page reconnects
    page = browser_page
    sign_in(page, page_url, admin_token)
    expect(page.locator("#chat-status")).to_be_attached()  # the view is there to watch
    page.evaluate(WATCH_ANSWER)
    page.route(ASK, _cut_after(3))
    with page.expect_request(_events_request) as reconnected:
        _ask(page, "Count for me")
    assert reconnected.value.headers["last-event-id"] == "3"
    llm.delay_s = 0.0  # the rest comes quickly
    answer = _answer(page)
    expect(answer.locator(".text")).to_have_text(llm.reply)
    expect(page.locator("#chat-error")).to_have_text("")
    stored = httpx.get(f"{page_url}/api/v1/chats/{_chat_id(page)}", headers=admin).json()
    assert stored["messages"]["items"][-1]["content"] == llm.reply
    # Each text shown on the way was a beginning of the answer: nothing came twice.
    shown = page.evaluate("window.shown")
    assert shown and all(llm.reply.startswith(text) for text in shown)
    assert "reconnecting..." in page.evaluate("window.statuses")
    expect(page.locator("#chat-status")).to_have_text("")

    page.unroute(ASK)
    llm.reply = " ".join(f"step{i}" for i in range(30))
    llm.delay_s = 0.3
    _ask(page, "Count again")
    answer = page.locator("#messages li.assistant").last
    expect(answer.locator(".text")).to_contain_text("step0")
    with page.expect_request(_events_request) as followed:
        page.reload()  # the chat at its address, its answer followed from the start
    assert followed.value.headers["last-event-id"] == "0"
    llm.delay_s = 0.0
    expect(_answer(page).locator(".text")).to_have_text(llm.reply)
    expect(page.locator("#messages li.user")).to_have_count(2)
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
    sign_in(page, base, admin_token)
    page.evaluate(WATCH_PROGRESS)
    expect(page.locator("#chat-tools-summary")).to_have_text("none")  # the preference's
    page.locator("#chat-tools summary").click()
    page.get_by_label("tickets", exact=True).check()
    expect(page.locator("#chat-tools-summary")).to_have_text("tickets")
    _ask(page, "What is 2 + 3?")

    answer = _answer(page)
    expected = "Results: 5 | Error executing tool fail: the ticket system is down | counted to 3."
    expect(answer.locator(".text")).to_have_text(expected)
    calls = answer.locator(".tool-call")  # as stored, once the answer ended
    expect(calls).to_have_count(3)
    added = calls.filter(has_text="Tool tickets › add")
    expect(added.locator(".tool-state")).to_have_text("done")
    added.locator("summary").press("Enter")  # closed once stored: opened from the keyboard
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
    chat = _chat_id(page)
    stored = httpx.get(f"{base}/api/v1/chats/{chat}", headers=headers).json()
    assert len(stored["mcp_server_ids"]) == 1

    # The picker changes the chat shown at once; the API's refusal is shown and undone.
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
    expect(page.locator("#chat-options-error")).to_contain_text("no enabled MCP server")
    expect(box).not_to_be_checked()  # what the chat uses
    toggle(f"{base}/api/v1/mcp-servers/{server}", json={"enabled": True}, headers=headers)
    box.check()
    expect(page.locator("#chat-options-error")).to_have_text("")
    expect(box).to_be_checked()

    # Slash commands: "/" offers the servers' prompts, chosen from the keyboard.
    question = page.get_by_label("Your question")
    question.fill("/")
    options = page.get_by_role("listbox", name="Slash commands").get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("/tickets:summarise topic")
    question.press("ArrowDown")  # round to the first again
    question.press("Enter")  # takes the command; does not send
    expect(question).to_have_value("/tickets:summarise ")
    expect(page.get_by_role("listbox", name="Slash commands")).to_be_hidden()
    expect(page.locator("#messages li")).to_have_count(2)
    expect(page.locator("#chat-error")).to_have_text("")


def test_a_servers_question_is_a_form_answered_in_the_page(
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
    sign_in(page, base, admin_token)
    expect(page.locator("#chat-tools-summary")).to_have_text("tickets")  # the preference's
    question = page.get_by_label("Your question")
    question.fill("/sum")  # a new chat: its servers' prompts
    option = page.get_by_role("listbox", name="Slash commands").get_by_role("option")
    expect(option).to_have_text("/tickets:summarise topic Summarise a topic.")
    option.click()
    expect(question).to_have_value("/tickets:summarise ")
    expect(question).to_be_focused()
    _ask(page, "Make a ticket")
    form = page.locator("form.question")
    expect(form).to_contain_text("tickets asks: Which colour should the ticket be?")
    expect(page.locator(".tool-call", has_text="Tool tickets › ask").locator(form)).to_have_count(1)

    page.reload()  # pending when the chat is opened: shown once (listed, and in the stream)
    expect(form).to_have_count(1)
    form.get_by_role("button", name="Accept").click()  # a required field left empty: not sent
    form.get_by_label("Colour").fill("red")

    def not_a_colour(route) -> None:  # type: ignore[no-untyped-def]
        route.continue_(post_data=json.dumps({"action": "accept", "content": {"colour": 7}}))

    page.route(re.compile(r"/questions/\d+$"), not_a_colour, times=1)
    form.get_by_role("button", name="Accept").click()  # refused: said in the form, which stays
    expect(form.get_by_role("alert")).to_contain_text("is not of type 'string'")
    form.get_by_role("button", name="Accept").click()
    expect(form).to_have_count(0)
    expect(_answer(page).locator(".text")).to_have_text("Done: the colour is red")
    expect(page.locator("#chat-error")).to_have_text("")
    assert len(posted) == 2  # the refused one, then the colour: none with the field left empty


def _with_event(name: str, data: dict):  # type: ignore[no-untyped-def]
    """A route handler: the question goes to the server, and the page gets its answer with one
    more event (`name`, `data`) after the first."""

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        body, headers = route.request.post_data_buffer, _forwarded(route)
        answered = httpx.post(route.request.url, content=body, headers=headers, timeout=30)
        first, rest = answered.text.split("\n\n", 1)
        body = f"{first}\n\nevent: {name}\ndata: {json.dumps(data)}\n\n{rest}"
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body)

    return handle


# A question shown as the page shows a `question` event, in an answer's list item.
SHOW_QUESTION = """async (question) => {
    const { showQuestion } = await import("/ui/views/chat/tools.js");
    const item = document.createElement("li");
    item.className = "assistant";
    item.append(Object.assign(document.createElement("div"), {className: "text"}));
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
    sign_in(page, page_url, admin_token)
    expect(page.locator("#messages")).to_be_attached()
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


WIDE = (
    "| Pump | Oil | Interval | Notes |\n|---|---|---|---|\n"
    "| XR-7734 | SAE 30 | weekly | " + "very long note " * 12 + "|\n\n"
    "```\n" + "x" * 300 + "\n```\n\nThe valve [1] and the pump."
)


def test_the_chat_fits_a_phone_and_follows_dark_mode(
    page_url, phone_page, dark_page, admin_token, admin, llm
):
    _document(page_url, admin, "plant", "pumps.md", "Pumps need oil every week.\n")
    llm.reply = WIDE
    page = phone_page
    sign_in(page, page_url, admin_token)
    _ask(page, "Tell me about the pumps, in a table")
    answer = _answer(page)
    expect(answer.locator("table")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider
    expect(page.get_by_label("Your question")).to_be_in_viewport()
    answer.get_by_role("button", name="Source 1: pumps.md").click()
    panel = page.locator("#citation-panel")
    expect(panel.locator("mark")).to_contain_text("Pumps need oil")
    expect(panel.get_by_role("button", name="Close")).to_be_in_viewport()
    screenshot(page, "chat-phone")
    assert_accessible(page)
    panel.get_by_role("button", name="Close").click()

    page = dark_page  # the same chat in the dark
    sign_in(page, page_url, admin_token)
    page.locator("#chat-list a").first.click()
    expect(_answer(page).locator("table")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    text = page.evaluate("getComputedStyle(document.querySelector('.message .text')).color")
    assert _lightness(background) < 0.3 < _lightness(text), (background, text)
    screenshot(page, "chat-dark")
    assert_accessible(page)


def _lightness(rgb: str) -> float:
    red, green, blue = (int(v) for v in re.findall(r"\d+", rgb)[:3])
    return (max(red, green, blue) + min(red, green, blue)) / 510
