"""The knowledge and search views in Chromium: collections, dropped files reaching `indexed`
with their errors on their rows, reindex, download, delete with a confirmation; sharing;
sources with the Atlassian connection; search with its modes, filters and highlights; a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Route, expect

from app.settings import OAuthClient
from tests.fake_atlassian import SITES, FakeAtlassian
from tests.fake_site import FakeSite, html
from tests.fake_site import Page as SitePage
from tests.helpers import create_collection, live_server, running_workers, upload, wait_for
from tests.web import assert_accessible, screenshot, sign_in

DROP = """(files) => {
    const dropped = new DataTransfer();
    for (const [name, text, type] of files) dropped.items.add(new File([text], name, {type}));
    document.querySelector("#drop").dispatchEvent(
        new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));
}"""


def _row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("#panel-documents tr[data-document]", has_text=name)


def _open_knowledge(page: Page, base: str, token: str) -> None:
    sign_in(page, base, token)
    # The first view (a new chat) is mounted before another is asked for.
    expect(page.locator("#chat-title")).to_be_visible()
    page.get_by_role("link", name="Knowledge").click()
    expect(page.locator("#view h1")).to_have_text("Knowledge")


def test_drop_files_watch_them_get_indexed_then_reindex_download_and_delete(
    page_url, browser_page, admin_token, client, admin
):
    page = browser_page
    _open_knowledge(page, page_url, admin_token)
    page.get_by_label("New collection").fill("handbook")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#view h1")).to_have_text("handbook")
    collection_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("tab", name="Documents")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-documents")).to_contain_text("No documents yet.")
    assert_accessible(page)

    holidays = "# Holidays\n\nHolidays are booked in the staff portal two weeks ahead.\n"
    page.evaluate(
        DROP,
        [
            ["holidays.md", holidays, "text/markdown"],
            ["parking.txt", "Parking is free for staff.", "text/plain"],
            ["lunch.txt", "Lunch is served at noon.", "text/plain"],
            ["blank.html", "<html><body><script>1</script></body></html>", "text/html"],
            ["empty.txt", "", "text/plain"],
        ],
    )
    for name in ("holidays.md", "parking.txt", "lunch.txt"):
        expect(_row(page, name)).to_have_attribute("data-status", "indexed", timeout=60_000)
    expect(_row(page, "holidays.md")).to_contain_text("1 chunk")
    failed = _row(page, "blank.html")
    expect(failed).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(failed.locator(".doc-error")).to_contain_text("no text found")
    refused = page.locator("#panel-documents tr.upload", has_text="empty.txt")
    expect(refused).to_have_attribute("data-status", "refused")
    expect(refused.get_by_role("alert")).to_have_text("the file is empty")  # on its own row
    expect(page.locator("#documents-status")).to_have_text("4 documents, all processed.")
    assert_accessible(page)
    screenshot(page, "knowledge-documents")
    refused.get_by_role("button", name="Dismiss empty.txt").click()
    expect(refused).to_have_count(0)

    # Download: the original bytes, fetched with the token and saved under the file's name.
    with page.expect_download() as downloading:
        _row(page, "holidays.md").get_by_role("button", name="Download holidays.md").click()
    download = downloading.value
    assert download.suggested_filename == "holidays.md"
    with open(download.path(), encoding="utf-8") as saved:
        assert saved.read() == holidays

    # Reindex: processed again, indexed again.
    holidays_id = int(_row(page, "holidays.md").get_attribute("data-document") or 0)
    _row(page, "holidays.md").get_by_role("button", name="Reindex holidays.md").click()

    def indexed_twice() -> bool:
        history = client.get(f"/api/v1/documents/{holidays_id}", headers=admin).json["history"]
        return [h["status"] for h in history].count("indexed") == 2

    wait_for(indexed_twice, "the reindexed document is indexed again")
    expect(_row(page, "holidays.md")).to_have_attribute("data-status", "indexed")

    # Delete asks first: Cancel keeps the document, Delete removes it.
    parking = _row(page, "parking.txt")
    parking.get_by_role("button", name="Delete parking.txt").click()
    expect(page.locator("#confirm")).to_contain_text('Delete "parking.txt"')
    page.locator("#confirm").get_by_role("button", name="Cancel").click()
    expect(parking).to_have_count(1)
    parking.get_by_role("button", name="Delete parking.txt").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(parking).to_have_count(0)
    expect(page.locator("#documents-title")).to_be_focused()
    listed = client.get(f"/api/v1/documents?collection_id={collection_id}", headers=admin).json
    assert sorted(d["filename"] for d in listed["items"]) == [
        "blank.html",
        "holidays.md",
        "lunch.txt",
    ]


def test_collections_are_created_renamed_and_deleted_with_errors_where_they_happen(
    page_url, browser_page, admin_token, client, admin
):
    page = browser_page
    create_collection(client, admin, "manuals")
    _open_knowledge(page, page_url, admin_token)
    item = page.locator("li.collection", has_text="manuals")
    expect(item).to_contain_text("Yours")
    page.get_by_label("New collection").fill("manuals")  # a duplicate: the API's 409 at the form
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#create-error")).to_contain_text("already")
    assert_accessible(page)

    item.get_by_role("button", name="Rename manuals").click()
    page.get_by_label("New name of manuals").fill("guides")
    page.get_by_role("button", name="Save").click()
    renamed = page.locator("li.collection", has_text="guides")
    expect(renamed.get_by_role("link", name="guides")).to_be_focused()
    renamed.get_by_role("button", name="Delete guides").click()
    page.locator("#confirm").get_by_role("button", name="Cancel").click()
    expect(renamed).to_have_count(1)
    renamed.get_by_role("button", name="Delete guides").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator("li.collection")).to_have_count(0)
    expect(page.locator("ul.collections")).to_contain_text("No collections yet")
    assert client.get("/api/v1/collections", headers=admin).json["total"] == 0


def test_share_a_collection_with_a_person_change_the_role_and_stop(
    page_url, browser_page, admin_token, client, admin, new_user
):
    bob = new_user("bob")
    collection_id = create_collection(client, admin, "payroll")
    page = browser_page
    sign_in(page, page_url, admin_token)
    page.goto(f"{page_url}/#/knowledge/{collection_id}/sharing")
    expect(page.get_by_role("tab", name="Sharing")).to_have_attribute("aria-selected", "true")
    expect(page.locator("ul.shares")).to_contain_text("Not shared with anyone")
    assert_accessible(page)

    page.get_by_label("Name", exact=True).fill("nobody-here")  # the API's 422, at the form
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.locator("#share-error")).not_to_be_empty()
    page.get_by_label("Name", exact=True).fill("bob")
    page.get_by_role("button", name="Share", exact=True).click()
    expect(page.locator("#share-error")).to_be_empty()
    share = page.locator("li.share", has_text="bob")
    role = share.get_by_label("Role of Person bob")
    expect(role).to_be_focused()
    screenshot(page, "knowledge-sharing")
    mine = client.get("/api/v1/collections", headers=bob).json["items"]
    assert [(c["name"], c["role"]) for c in mine] == [("payroll", "reader")]

    role.select_option("editor")
    wait_for(
        lambda: client.get("/api/v1/collections", headers=bob).json["items"][0]["role"] == "editor"
    )
    share.get_by_role("button", name="Stop sharing with Person bob").click()
    page.locator("#confirm").get_by_role("button", name="Stop sharing").click()
    expect(share).to_have_count(0)
    assert client.get("/api/v1/collections", headers=bob).json["total"] == 0

    page.get_by_label("Every user can read it").check()
    wait_for(lambda: client.get("/api/v1/collections", headers=bob).json["total"] == 1)


@pytest.fixture
def sources_page(make_app):  # type: ignore[no-untyped-def]
    """The app with Atlassian consent set up (the fake), a worker, and a small website."""
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
    sources_page, browser_page, admin_token, client, admin
):
    base, site = sources_page
    links = ("valves.html", "pumps.html")
    site.pages["/docs/"] = SitePage(html("Handbook", "<p>The plant handbook.</p>", links))
    site.pages["/docs/valves.html"] = SitePage(html("Valves", "<p>Install the XR-7734 valve.</p>"))
    site.pages["/docs/pumps.html"] = SitePage(html("Pumps", "<p>Centrifugal pumps hum.</p>"))
    collection_id = create_collection(client, admin, "plant")
    page = browser_page
    sign_in(page, base, admin_token)
    page.goto(f"{base}/#/knowledge/{collection_id}")
    page.get_by_role("tab", name="Sources").click()
    assert page.url == f"{base}/#/knowledge/{collection_id}/sources"
    expect(page.locator("#atlassian-hint")).to_contain_text("not connected")
    assert_accessible(page)

    # Consent at (the fake) Atlassian; its callback sends the browser back to the app, which
    # opens the tab the consent started from, says so once and takes the message out of the address.
    page.get_by_role("button", name="Connect Atlassian").click()
    expect(page.locator("#connect-status")).to_have_text("Atlassian is connected.")
    assert page.url == f"{base}/#/knowledge/{collection_id}/sources"
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

    page.goto(f"{base}/#/knowledge/{collection_id}/sources")
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
    row = page.locator("#sources li.source", has_text="handbook")
    expect(row).to_contain_text(f"{site.url}/docs/")
    last_run = row.locator(".last-run")
    expect(last_run).to_have_text(
        "succeeded: 3 added, 0 updated, 0 deleted, 0 unchanged, 0 failed", timeout=60_000
    )
    screenshot(page, "knowledge-sources")
    page.get_by_role("tab", name="Documents").click()
    for title in ("Handbook", "Valves", "Pumps"):
        expect(_row(page, f"{title}.md")).to_have_attribute(
            "data-status", "indexed", timeout=60_000
        )

    page.get_by_role("tab", name="Sources").click()
    site.pages["/docs/pumps.html"] = SitePage(html("Pumps", "<p>Pumps now push crude oil.</p>"))
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

    row.get_by_role("button", name="Delete source handbook").click()
    expect(page.locator("#confirm")).to_contain_text(
        "Delete the source handbook and the documents it brought in?"
    )
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    expect(page.locator("#sources li.source")).to_have_count(0)
    expect(page.locator("#sources-error")).to_have_text("")
    page.get_by_role("tab", name="Documents").click()
    expect(page.locator("#panel-documents tr[data-document]")).to_have_count(0)


def _indexed_documents(client, admin, *documents: tuple[int, str, str, dict]) -> None:  # type: ignore[no-untyped-def]
    ids = [upload(client, admin, c, name, text, metadata) for c, name, text, metadata in documents]

    def all_indexed() -> bool:
        statuses = [client.get(f"/api/v1/documents/{i}", headers=admin).json["status"] for i in ids]
        return statuses == ["indexed"] * len(ids)

    wait_for(all_indexed, "the documents are indexed")


def test_search_with_modes_collections_and_filters_highlights_query_terms_only(
    page_url, browser_page, admin_token, client, admin
):
    handbook = create_collection(client, admin, "handbook")
    garage = create_collection(client, admin, "garage")
    _indexed_documents(
        client,
        admin,
        (
            handbook,
            "holidays.md",
            "Holidays are booked in the staff portal, two weeks ahead.",
            {"team": "hr"},
        ),
        (
            garage,
            "parking.txt",
            "Parking is free for the staff with a badge.",
            {"team": "facilities"},
        ),
    )
    page = browser_page
    sign_in(page, page_url, admin_token)
    page.get_by_role("link", name="Search").click()
    expect(page.get_by_label("Query")).to_be_focused()
    page.get_by_text("Filters").click()
    expect(page.get_by_label("garage")).to_be_visible()
    assert_accessible(page)

    page.get_by_label("Query").fill("how do I book the holidays with the portal")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-summary")).to_contain_text("(hybrid)")
    hit = page.locator("#hits li.hit").first
    expect(hit).to_contain_text("holidays.md")
    expect(hit.locator("mark").first).to_be_visible()
    marked = {text.lower() for text in hit.locator("mark").all_inner_texts()}
    assert marked == {"holidays", "portal"}, marked  # not "the", "with", "how", "do"
    assert_accessible(page)

    for mode, shown in (("semantic", "(semantic)"), ("full text", "(fulltext)")):
        page.get_by_label("Mode").select_option(label=mode)
        page.get_by_role("button", name="Search", exact=True).click()
        expect(page.locator("#search-summary")).to_contain_text(shown)
    page.get_by_label("Query").fill("staff")
    page.get_by_label("garage").check()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#hits li.hit")).to_have_count(1)
    expect(page.locator("#hits li.hit")).to_contain_text("parking.txt")
    page.get_by_label("garage").uncheck()

    # The filter: checked here first, then by the API; its errors at the form, cleared after.
    metadata_filter = page.get_by_label("Metadata filter")
    metadata_filter.fill('{"field": "team",')
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-error")).to_contain_text("not valid JSON")
    expect(metadata_filter).to_be_focused()
    metadata_filter.fill("[1]")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-error")).to_contain_text("must be a JSON object")
    metadata_filter.fill('{"field": "team", "op": "nope", "value": "hr"}')
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-error")).not_to_be_empty()
    metadata_filter.fill('{"field": "team", "value": "hr"}')
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-error")).to_be_empty()
    expect(page.locator("#hits li.hit")).to_have_count(1)

    # A hit opens its passage in the side panel; closing it goes back to the hit.
    opener = page.get_by_role("button", name="Open the passage from holidays.md")
    opener.click()
    panel = page.locator("#citation-panel")
    expect(panel.get_by_role("heading", name="holidays.md")).to_be_focused()
    expect(panel.locator(".passage-text")).to_contain_text("booked in the staff portal")
    expect(panel.locator("mark").first).to_have_text(re.compile("staff", re.I))
    assert_accessible(page)
    screenshot(page, "search")
    panel.get_by_role("button", name="Close the passage").click()
    expect(panel).to_be_hidden()
    expect(opener).to_be_focused()


def _processing(route: Route) -> None:
    """The documents as they are mid-way: one embedding (3 of 8 chunks), one failed."""
    listed = route.fetch().json()
    base = listed["items"][0]
    embedding = {
        **base,
        "id": base["id"] + 100,
        "filename": "a-rather-long-file-name-report-2024.pdf",
        "status": "embedding",
        "stage": "embedding",
        "chunks_total": 8,
        "chunks_embedded": 3,
    }
    failed = {
        **base,
        "id": base["id"] + 101,
        "filename": "broken.docx",
        "status": "failed",
        "stage": "extracting",
        "error": "cannot read broken.docx: not a zip file",
    }
    items = [embedding, failed, *listed["items"]]
    route.fulfill(json={**listed, "items": items, "total": len(items)})


def test_knowledge_and_search_fit_a_phone(page_url, phone_page, admin_token, client, admin):
    collection_id = create_collection(client, admin, "handbook")
    _indexed_documents(
        client, admin, (collection_id, "holidays.md", "Holidays are booked ahead.", {})
    )
    page = phone_page
    sign_in(page, page_url, admin_token)
    page.route(re.compile(r".*/api/v1/documents\?collection_id=.*"), _processing)
    page.goto(f"{page_url}/#/knowledge/{collection_id}")
    embedding = _row(page, "report-2024.pdf")
    expect(embedding.locator("progress")).to_have_attribute("value", "3")
    expect(embedding).to_contain_text("3 of 8 chunks")
    expect(_row(page, "broken.docx").locator(".doc-error")).to_have_text(
        "Failed while extracting: cannot read broken.docx: not a zip file"
    )
    expect(page.locator("#documents-status")).to_have_text("3 documents, 1 being processed.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)
    screenshot(page, "knowledge-phone")
    page.unroute_all()

    page.goto(f"{page_url}/#/knowledge")
    expect(page.locator("li.collection", has_text="handbook")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.goto(f"{page_url}/#/search")
    page.get_by_label("Query").fill("holidays")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#hits li.hit")).to_have_count(1)
    page.get_by_role("button", name="Open the passage from holidays.md").click()
    expect(page.locator("#citation-panel")).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)
