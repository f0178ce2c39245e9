"""The web app's shell in Chromium: signing in, the sidebar and its places, a phone's menu,
keyboard use, and the accessibility check (tests/web.py has the fixtures)."""

from __future__ import annotations

import httpx
from playwright.sync_api import expect

from tests.web import assert_accessible, sign_in


def test_a_wrong_token_is_refused_where_it_was_typed(page_url, browser_page):
    page = browser_page
    page.goto(page_url)
    assert_accessible(page)
    page.get_by_label("API token").fill("prg_nope_nope")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    expect(page.locator("#app")).to_be_hidden()


def test_the_places_open_from_the_sidebar_and_from_the_address(page_url, browser_page, admin_token):
    page = browser_page
    sign_in(page, page_url, admin_token)
    for name, heading in (
        ("Knowledge", "Knowledge"),
        ("Search", "Search"),
        ("Settings", "Settings"),
    ):
        page.get_by_role("link", name=name).click()
        expect(page.locator("#view h1")).to_have_text(heading)
        expect(page.get_by_role("link", name=name)).to_have_attribute("aria-current", "page")
        assert_accessible(page)
    page.goto(f"{page_url}/#/knowledge")
    expect(page.locator("#view h1")).to_have_text("Knowledge")
    page.get_by_role("button", name="New chat").click()
    assert page.url.endswith("#/chat")


def test_on_a_phone_the_sidebar_is_a_menu(page_url, phone_page, admin_token):
    page = phone_page
    sign_in(page, page_url, admin_token)
    sidebar = page.locator("#sidebar")
    expect(page.get_by_role("link", name="Knowledge")).not_to_be_in_viewport()
    page.get_by_role("button", name="Menu").click()
    expect(page.get_by_role("link", name="Knowledge")).to_be_in_viewport()
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "false")
    page.get_by_role("button", name="Menu").click()
    page.get_by_role("link", name="Search").click()
    expect(page.locator("#view h1")).to_have_text("Search")
    expect(sidebar).not_to_have_class("sidebar open")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider
    assert_accessible(page)


def test_keyboard_paths_keep_the_view_and_a_rename_cancelled_keeps_the_title(
    page_url, browser_page, admin_token
):
    page = browser_page
    headers = {"Authorization": f"Bearer {admin_token}"}
    chat = httpx.post(f"{page_url}/api/v1/chats", json={"title": "Budget"}, headers=headers)
    assert chat.status_code == 201
    sign_in(page, page_url, admin_token)
    page.get_by_role("link", name="Knowledge").click()
    expect(page.locator("#view h1")).to_have_text("Knowledge")
    page.keyboard.press("Tab")  # from the view's heading back to the top: the skip link first
    page.evaluate("document.querySelector('.skip-link').focus()")
    page.keyboard.press("Enter")
    expect(page.locator("#view h1")).to_have_text("Knowledge")  # still there, focused
    expect(page.locator("#view h1")).to_be_focused()

    page.get_by_role("button", name="Rename Budget").click()
    page.get_by_label("New title").fill("Changed my mind")
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Budget")).to_be_focused()
    page.get_by_role("button", name="Rename Budget").click()
    page.get_by_label("New title").fill("Budget 2027")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Budget 2027")).to_be_visible()
    stored = httpx.get(f"{page_url}/api/v1/chats/{chat.json()['id']}", headers=headers).json()
    assert stored["title"] == "Budget 2027"


def test_a_revoked_token_signs_the_page_out_saying_why(page_url, browser_page, admin_token):
    headers = {"Authorization": f"Bearer {admin_token}"}
    minted = httpx.post(f"{page_url}/api/v1/tokens", json={"name": "tab"}, headers=headers)
    assert minted.status_code == 201
    page = browser_page
    sign_in(page, page_url, minted.json()["token"])
    revoked = httpx.delete(f"{page_url}/api/v1/tokens/{minted.json()['id']}", headers=headers)
    assert revoked.status_code == 204
    page.evaluate("location.hash = '#/knowledge'")  # the view's next call is refused
    expect(page.locator("#sign-in-error")).to_have_text("Your session has ended: sign in again.")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('postrag.token')") is None


def test_an_answer_nested_too_deep_for_markdown_shows_as_text(
    page_url, browser_page, admin_token, llm
):
    llm.reply = "> " * 3000 + "deep end"
    headers = {"Authorization": f"Bearer {admin_token}"}
    chat = httpx.post(f"{page_url}/api/v1/chats", json={}, headers=headers).json()["id"]
    asked = httpx.post(
        f"{page_url}/api/v1/chats/{chat}/messages",
        json={"content": "Quote it"},
        headers=headers,
        timeout=60,
    )
    assert asked.status_code == 201, asked.text
    page = browser_page
    sign_in(page, page_url, admin_token)
    page.evaluate(f"location.hash = '#/chat/{chat}'")
    answer = page.locator("#messages li.assistant")
    expect(answer).to_contain_text("deep end")  # the conversation opens, the answer readable
    expect(page.locator("#messages li.user .text")).to_have_text("Quote it")
