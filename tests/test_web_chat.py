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
from tests.web import assert_accessible, sign_in

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
    box = page.get_by_label("Your question")
    box.fill(text)
    box.press("Enter")


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
