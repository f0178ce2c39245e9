"""The knowledge and search views in Chromium: collections, dropped files reaching `indexed`
with their errors on their rows, reindex, download, delete with a confirmation; sharing;
sources with the Atlassian connection; search with its modes, filters and highlights; a phone."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, Route, expect

from app.settings import OAuthClient
from tests.fake_atlassian import SITES, FakeAtlassian
from tests.fake_site import FakeSite, html
from tests.fake_site import Page as SitePage
from tests.helpers import create_collection, live_server, running_workers, upload, wait_for
from tests.web import assert_accessible, sign_in

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
    assert sorted(d["filename"] for d in listed["items"]) == ["blank.html", "holidays.md", "lunch.txt"]


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
    mine = client.get("/api/v1/collections", headers=bob).json["items"]
    assert [(c["name"], c["role"]) for c in mine] == [("payroll", "reader")]

    role.select_option("editor")
    wait_for(lambda: client.get("/api/v1/collections", headers=bob).json["items"][0]["role"] == "editor")
    share.get_by_role("button", name="Stop sharing with Person bob").click()
    page.locator("#confirm").get_by_role("button", name="Stop sharing").click()
    expect(share).to_have_count(0)
    assert client.get("/api/v1/collections", headers=bob).json["total"] == 0

    page.get_by_label("Every user can read it").check()
    wait_for(lambda: client.get("/api/v1/collections", headers=bob).json["total"] == 1)
