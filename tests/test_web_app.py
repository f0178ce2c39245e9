"""The web app's shell in Chromium: signing in, the sidebar and its places, a phone's menu,
keyboard use, and the accessibility check (tests/web.py has the fixtures)."""

from __future__ import annotations

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
