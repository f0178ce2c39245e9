"""The settings view in Chromium: preferences, API tokens, connections, and the admin's users,
groups, models (a pull with progress) and MCP servers; the sign-in page with and without the
identity provider; a phone and dark mode (tests/web.py has the fixtures)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.helpers import bearer, live_server
from tests.web import assert_accessible, screenshot, sign_in

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
SECRET = "header-secret-value-42"
ADMIN_TABS = ["Users", "Groups", "Models", "MCP servers"]
OWN_TABS = ["Preferences", "API tokens", "Connections"]


@pytest.fixture
def base(make_app, llm):  # type: ignore[no-untyped-def]
    """postrag on loopback with the fake Ollama's models, MCP servers allowed on loopback."""
    app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        secret_key=KEY,
        mcp_hosts=("127.0.0.1",),
        mcp_timeout_s=10,
    )
    with live_server(app) as url:
        yield url


@pytest.fixture
def oidc_base(make_app, llm, provider):  # type: ignore[no-untyped-def]
    app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        oidc_issuer=provider.issuer,
        oidc_audience="postrag",
    )
    with live_server(app) as url:
        yield url


def _tab(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Settings").get_by_role("link", name=name).click()
    expect(page.locator("#view h2").first).to_have_text(name)


def _confirm(page: Page, label: str) -> None:
    page.get_by_role("dialog").get_by_role("button", name=label).click()


def _user(base: str, admin_token: str, name: str) -> str:
    made = httpx.post(f"{base}/api/v1/users", json={"name": name}, headers=bearer(admin_token))
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def test_a_preference_is_checked_at_its_field_saved_and_kept(base, browser_page, admin_token):
    page = browser_page
    sign_in(page, base, admin_token)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("link", name="Preferences")).to_have_attribute("aria-current", "page")
    expect(page.get_by_label("Chat model")).to_contain_text("fake-chat (ollama)")
    page.get_by_label("Passages per answer (top k)").fill("99")
    page.get_by_label("System prompt").fill("Answer in French.")
    expect(page.get_by_label("Rerank passages")).to_be_checked()
    expect(page.get_by_label("Context window (tokens)")).to_have_value("")  # the server's
    page.get_by_label("Context window (tokens)").fill("1001")
    page.get_by_role("button", name="Save").click()
    top_k = page.get_by_label("Passages per answer (top k)")
    expect(top_k).to_have_attribute("aria-invalid", "true")  # the API's 422, at its field
    expect(page.locator("#view [data-error-of=top_k]")).to_contain_text("less than or equal to 50")
    window = page.locator("#view [data-error-of=context_window]")
    expect(window).to_contain_text("less than or equal to 1000")
    assert_accessible(page)
    top_k.fill("7")
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_label("Search mode").select_option("fulltext")
    page.get_by_label("Context window (tokens)").fill("300")
    page.get_by_label("Rerank passages").uncheck()
    page.get_by_label("Passages reranked").fill("20")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.locator("#view [data-error-of=top_k]")).to_have_text("")
    expect(top_k).not_to_have_attribute("aria-invalid", "true")
    page.get_by_label("Temperature").fill("0.4")  # a change: "Saved." no longer applies
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_have_count(0)

    page.reload()
    expect(page.get_by_label("Passages per answer (top k)")).to_have_value("7")
    expect(page.get_by_label("Temperature")).to_have_value("0.3")
    expect(page.get_by_label("Search mode")).to_have_value("fulltext")
    expect(page.get_by_label("System prompt")).to_have_value("Answer in French.")
    expect(page.get_by_label("Context window (tokens)")).to_have_value("300")
    expect(page.get_by_label("Rerank passages")).not_to_be_checked()
    expect(page.get_by_label("Passages reranked")).to_have_value("20")
    stored = httpx.get(f"{base}/api/v1/me/preferences", headers=bearer(admin_token)).json()
    assert (stored["top_k"], stored["search_mode"], stored["temperature"]) == (7, "fulltext", 0.3)
    assert (stored["context_window"], stored["rerank"], stored["rerank_candidates"]) == (
        300,
        False,
        20,
    )


def test_a_token_is_shown_once_copied_used_and_revoked(base, browser_page, admin_token):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, base, admin_token)
    page.goto(f"{base}/#/settings/tokens")
    page.get_by_role("button", name="Create token").click()  # no name: the API says so there
    expect(page.locator("#view [data-error-of=name]")).not_to_have_text("")
    page.get_by_label("Name", exact=True).fill("laptop script")
    page.get_by_label("Write").uncheck()
    page.get_by_label("Expires on").fill("2099-01-31")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Your new token laptop script")
    expect(secret).to_have_value(re.compile(r"^prg_"))
    expect(page.get_by_text("it is not shown again")).to_be_visible()
    expect(page.locator("#view [data-error-of=name]")).to_have_text("")
    value = secret.input_value()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == value
    assert_accessible(page)

    me = httpx.get(f"{base}/api/v1/me", headers=bearer(value))
    assert me.status_code == 200 and me.json()["scopes"] == ["read"]
    listed = httpx.get(f"{base}/api/v1/tokens", headers=bearer(admin_token)).json()["items"]
    assert listed[0]["expires_at"].startswith(("2099-01-31", "2099-02-01"))  # that day, there
    page.get_by_role("button", name="Done").click()
    expect(page.get_by_label("Your new token laptop script")).to_have_count(0)
    card = page.locator("#view li.item").filter(has_text="laptop script")
    expect(card).to_contain_text(value[:12])  # its prefix, to recognise it; never the secret
    assert value not in page.locator("#view").inner_text()
    screenshot(page, "settings-tokens")

    card.get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(card).not_to_contain_text("revoked")
    card.get_by_role("button", name="Revoke").click()
    _confirm(page, "Revoke")
    expect(card).to_contain_text("revoked")
    expect(card.get_by_role("button", name="Revoke")).to_have_count(0)
    assert httpx.get(f"{base}/api/v1/me", headers=bearer(value)).status_code == 401


def test_an_admin_creates_a_user_and_a_group_with_a_member(base, browser_page, admin_token):
    page = browser_page
    sign_in(page, base, admin_token)
    page.goto(f"{base}/#/settings/users")
    expect(page.locator("#view li.item").filter(has_text="you")).to_contain_text("admin")
    page.get_by_label("Name", exact=True).fill("dana")
    page.get_by_role("button", name="Create user").click()
    handed = page.get_by_label("dana's first API token (give it to them)")
    expect(handed).to_have_value(re.compile(r"^prg_"))
    dana = httpx.get(f"{base}/api/v1/me", headers=bearer(handed.input_value())).json()
    assert dana["name"] == "dana" and dana["role"] == "user"
    expect(page.locator("#view li.item").filter(has_text="dana")).to_be_visible()
    page.get_by_role("button", name="Create user").click()  # the same name again: refused there
    page.get_by_label("Name", exact=True).fill("dana")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("alert").filter(has_text="already exists")).to_be_visible()
    assert_accessible(page)

    _tab(page, "Groups")
    page.get_by_label("Group name").fill("editors")
    page.get_by_role("button", name="Create group").click()
    group = page.locator("#view li.item").filter(has_text="editors")
    group.get_by_role("button", name="Members").click()
    group.get_by_label("Add to editors").select_option(label="dana")
    group.get_by_role("button", name="Add", exact=True).click()
    member = group.get_by_role("list", name="Members of editors").locator("li")
    expect(member).to_contain_text("dana")
    assert_accessible(page)
    groups = httpx.get(f"{base}/api/v1/groups", headers=bearer(admin_token)).json()["items"]
    members = httpx.get(
        f"{base}/api/v1/groups/{groups[0]['id']}/members", headers=bearer(admin_token)
    ).json()
    assert [m["name"] for m in members["items"]] == ["dana"]
    member.get_by_role("button", name="Remove").click()
    _confirm(page, "Remove")
    expect(group.get_by_text("No members yet.")).to_be_visible()
    group.get_by_role("button", name="Delete").click()
    _confirm(page, "Delete")
    expect(page.get_by_text("No groups yet.")).to_be_visible()


def test_an_admin_registers_an_mcp_server_and_discovers_its_tools(
    base, browser_page, admin_token, fake_mcp
):
    page = browser_page
    sign_in(page, base, admin_token)
    page.goto(f"{base}/#/settings/mcp")
    page.get_by_label("Name", exact=True).fill("tickets")
    page.get_by_label("Address").fill(fake_mcp.url)
    expect(page.get_by_label("Header value")).to_be_hidden()
    page.get_by_label("Authentication").select_option("static_header")
    page.get_by_role("button", name="Register server").click()  # no header: named at its field
    expect(page.locator("#view [data-error-of=header_name]")).not_to_have_text("")
    page.get_by_label("Header name").fill("X-Api-Key")
    page.get_by_label("Header value").fill(SECRET)
    page.get_by_role("button", name="Register server").click()
    server = page.locator("#view li.item[data-server=tickets]")
    expect(server).to_contain_text("header X-Api-Key (set)")
    expect(server).to_contain_text("never discovered")
    assert_accessible(page)

    fake_mcp.required = ("X-Api-Key", SECRET)  # discovery sends the stored header
    server.get_by_role("button", name="Refresh").click()
    expect(server.locator(".catalog")).to_contain_text("add")
    expect(server).to_contain_text("discovered")
    expect(server.get_by_role("heading", name="Prompts")).to_be_visible()
    assert SECRET not in page.content()  # the API never returns it; the form was emptied
    assert_accessible(page)

    server.get_by_role("button", name="Disable").click()
    expect(server).to_contain_text("disabled")
    listed = httpx.get(f"{base}/api/v1/mcp-servers", headers=bearer(admin_token)).json()
    assert listed["items"][0]["enabled"] is False
    server.get_by_role("button", name="Delete").click()
    _confirm(page, "Delete")
    expect(page.get_by_text("No MCP servers registered.")).to_be_visible()


# Every text the pull's status line shows, as it changes.
WATCH_PULL = """() => {
    window.pulled = [];
    new MutationObserver(() => {
        const said = document.querySelector("#view .pull [role=status]");
        if (said && window.pulled.at(-1) !== said.textContent) window.pulled.push(said.textContent);
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_an_admin_registers_pulls_with_progress_and_removes_a_model(
    base, browser_page, admin_token, llm
):
    llm.delay_s = 0.05
    page = browser_page
    sign_in(page, base, admin_token)
    page.goto(f"{base}/#/settings/models")
    chat = page.locator("#view li.item[data-model=fake-chat]")
    expect(chat).to_contain_text("installed")
    expect(chat).to_contain_text("default")
    page.get_by_label("Model name").fill("new-model")
    page.get_by_role("button", name="Register model").click()
    model = page.locator("#view li.item[data-model=new-model]")
    expect(model).to_contain_text("missing")
    assert_accessible(page)

    page.evaluate(WATCH_PULL)
    model.get_by_role("button", name="Pull", exact=True).click()
    expect(model).to_contain_text("installed")
    pulled = page.evaluate("window.pulled")
    assert "pulling abc123: 50%" in pulled and pulled[-1] == "success", pulled
    screenshot(page, "settings-models")
    model.get_by_role("button", name="Make default").click()
    expect(model).to_contain_text("default")
    expect(chat.get_by_role("button", name="Make default")).to_be_visible()
    chat.get_by_role("button", name="Make default").click()
    expect(chat.get_by_role("button", name="Make default")).to_have_count(0)
    model.get_by_role("button", name="Remove").click()
    _confirm(page, "Remove")
    expect(model).to_have_count(0)


def test_a_user_sees_only_their_own_settings_and_signs_out(base, browser_page, admin_token):
    token = _user(base, admin_token, "robin")
    page = browser_page
    page.goto(base)
    expect(page.get_by_role("link", name="Sign in with your identity provider")).to_be_hidden()
    sign_in(page, base, token, name="robin")
    page.goto(f"{base}/#/settings")
    tabs = page.get_by_role("navigation", name="Settings").get_by_role("link")
    expect(tabs).to_have_text(OWN_TABS)
    _tab(page, "Connections")
    expect(page.get_by_text("No connections.")).to_be_visible()
    assert_accessible(page)
    page.goto(f"{base}/#/settings/users")
    expect(page.locator("#view h2")).to_have_text("For admins only")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('postrag.token')") is None
    assert not [url for url in sent if "/auth/logout" in url]  # a token has no session to end


def test_sign_in_with_the_provider_save_a_preference_and_sign_out(
    oidc_base, browser_page, provider
):
    provider.login_claims = {"sub": "s-pat", "preferred_username": "pat"}
    page = browser_page
    page.goto(oidc_base)
    expect(page.get_by_label("API token")).to_be_visible()  # the other way in, for scripts' tokens
    assert_accessible(page)
    page.get_by_role("link", name="Sign in with your identity provider").click()
    expect(page.locator("#who")).to_have_text("Signed in as pat")
    assert page.evaluate("sessionStorage.getItem('postrag.token')") is None  # the cookie did it
    assert page.evaluate("document.cookie") == ""  # which the page's scripts cannot read

    page.goto(f"{oidc_base}/#/settings")
    page.get_by_label("System prompt").fill("Be brief.")
    page.get_by_role("button", name="Save").click()  # a write: it carries the CSRF token
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    page.reload()  # the session outlives the page
    expect(page.locator("#who")).to_have_text("Signed in as pat")
    expect(page.get_by_label("System prompt")).to_have_value("Be brief.")

    page.get_by_role("button", name="Sign out").click()  # through the provider's end-session
    expect(page.get_by_role("link", name="Sign in with your identity provider")).to_be_visible()
    back = f"{oidc_base}/"
    assert provider.logouts == [{"client_id": "postrag", "post_logout_redirect_uri": back}]
    expect(page.locator("#app")).to_be_hidden()


@pytest.mark.parametrize("look", ["phone_page", "dark_page"])
def test_every_settings_tab_fits_a_phone_and_reads_in_dark_mode(base, admin_token, look, request):
    page = request.getfixturevalue(look)
    width = page.viewport_size["width"]
    sign_in(page, base, admin_token)
    httpx.post(
        f"{base}/api/v1/mcp-servers",
        json={"name": "tickets", "url": "http://127.0.0.1:9/mcp"},
        headers=bearer(admin_token),
    )
    for tab in OWN_TABS + ADMIN_TABS:
        page.goto(f"{base}/#/settings")
        _tab(page, tab)
        expect(page.locator("#view .error").filter(has_text=re.compile("."))).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, tab
        assert_accessible(page)
