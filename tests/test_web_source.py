"""The web source's reader against a small in-process website (tests/fake_site.py): the crawl's
scope (prefixes, depth, page limit, robots.txt, other hosts), versions, resuming from a cursor,
main-content text, conditional fetches, the politeness delay, sitemaps and bad pages."""

from __future__ import annotations

import pytest

from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, ItemGone, Listed, SourceFailed
from app.providers.web_source import WebReader
from app.providers.web_urls import normalised
from tests.fake_site import FakeSite, Page, html, sitemap, sitemap_index

LM = "Sat, 05 Dec 2026 08:00:00 GMT"


@pytest.fixture
def sites():
    """The site under test and another host, which must never be asked anything."""
    with FakeSite() as site, FakeSite() as other:
        other.pages["/docs/c.html"] = Page(html("Other host", "<p>Elsewhere.</p>"))
        site.robots = "User-agent: *\nDisallow: /docs/private/\n"
        links = (
            "a.html",
            "/docs/b.html",
            "a.html#section",  # the same page as a.html
            "private/secret.html",
            "/outside/x.html",
            f"{other.url}/docs/c.html",
            "mailto:someone@example.com",
            "javascript:void(0)",
            "#top",
            "/docs/redirect-out",
            "/docs/missing.html",
            "/docs/report.pdf",
            "/docs/loop",
            "notes.txt",
        )
        index = "<p>Welcome to the valve handbook, the index of all our pages.</p>"
        site.pages["/docs/"] = Page(html("Handbook", index, links), etag='"i1"')
        site.pages["/docs/a.html"] = Page(
            html(
                "Valves",
                "<h2>Installing</h2><p>Install the XR-7734 valve before pressurising.</p>",
                ("deep/d1.html",),
            ),
            etag='"a1"',
        )
        site.pages["/docs/b.html"] = Page(
            html("Pumps", "<p>Pumps move water through the pipes.</p>"), last_modified=LM
        )
        site.pages["/docs/deep/d1.html"] = Page(
            html("Deep", "<p>Two links down.</p>", ("d2.html",))
        )
        site.pages["/docs/deep/d2.html"] = Page(html("Deeper", "<p>Three links down.</p>"))
        site.pages["/docs/private/secret.html"] = Page(html("Secret", "<p>Hidden.</p>"))
        site.pages["/outside/x.html"] = Page(html("Outside", "<p>Not in scope.</p>"))
        site.pages["/docs/report.pdf"] = Page(b"%PDF-1.4 ...", "application/pdf")
        site.pages["/docs/notes.txt"] = Page(b"Notes\n\nPlain text notes.", "text/plain")
        site.redirects["/docs/redirect-out"] = f"{other.url}/docs/c.html"
        site.redirects["/docs/loop"] = "/docs/loop2"
        site.redirects["/docs/loop2"] = "/docs/loop"
        yield site, other


def _reader(site: FakeSite, *, sleep=None, clock=None, **config) -> WebReader:
    config = {
        "urls": [f"{site.url}/docs/"],
        "allowed_prefixes": [],
        "max_depth": 2,
        "max_pages": 200,
        "delay_s": 0,
        **config,
    }
    options = {key: config.pop(key) for key in ("batch", "max_bytes") if key in config}
    if sleep is not None:
        options.update(sleep=sleep, clock=clock)
    return WebReader(config, SourceHttp("web"), **options)


def _listing(reader: WebReader, cursor: str | None = None) -> list[Listed]:
    items: list[Listed] = []
    while True:
        listing = reader.list_items(cursor)
        items.extend(listing.items)
        if listing.cursor is None:
            return items
        cursor = listing.cursor


def _keys(site: FakeSite, items: list[Listed]) -> list[str]:
    return [item.key.removeprefix(site.url) for item in items]


def test_the_crawl_stays_within_prefixes_depth_and_robots(sites):
    site, other = sites
    items = _listing(_reader(site))
    assert _keys(site, items) == [
        "/docs/",
        "/docs/a.html",
        "/docs/b.html",
        "/docs/notes.txt",
        "/docs/deep/d1.html",  # depth 2; d2.html is at depth 3
    ]
    assert items[1].title == "Valves"
    asked = set(site.paths())
    assert "/robots.txt" in asked and "/docs/missing.html" in asked
    assert not asked & {"/docs/private/secret.html", "/outside/x.html", "/docs/deep/d2.html"}
    assert site.paths().count("/robots.txt") == 1
    assert other.requests == []  # not even after the redirect that points there


def test_max_pages_and_depth_bound_the_crawl_breadth_first(sites):
    site, _ = sites
    assert _keys(site, _listing(_reader(site, max_pages=2))) == ["/docs/", "/docs/a.html"]
    assert _keys(site, _listing(_reader(site, max_depth=0))) == ["/docs/"]


def test_allowed_prefixes_replace_the_start_pages_folder(sites):
    site, _ = sites
    prefixes = [f"{site.url}/docs/", f"{site.url}/outside/"]
    items = _listing(_reader(site, allowed_prefixes=prefixes))
    assert "/outside/x.html" in _keys(site, items)


def test_a_start_page_outside_the_prefixes_or_failing_fails_the_run(sites):
    site, _ = sites
    site.statuses["/docs/"] = 500
    with pytest.raises(SourceFailed, match="answered 500"):
        _reader(site).list_items(None)
    with pytest.raises(SourceFailed, match="not a page"):
        _reader(site, urls=[f"{site.url}/docs/report.pdf"]).list_items(None)
    with pytest.raises(SourceFailed, match="robots.txt"):
        _reader(site, urls=[f"{site.url}/docs/private/secret.html"]).list_items(None)
    site.requests.clear()
    with pytest.raises(SourceFailed, match="outside the allowed prefixes"):
        _reader(site, allowed_prefixes=[f"{site.url}/docs/deep/"]).list_items(None)
    assert site.requests == []  # a start page outside the prefixes is not even asked for


def test_versions_stay_for_unchanged_pages_and_change_with_them(sites):
    site, _ = sites
    before = {item.key: item.version for item in _listing(_reader(site))}
    assert before == {item.key: item.version for item in _listing(_reader(site))}
    site.pages["/docs/b.html"] = Page(
        html("Pumps", "<p>Pumps now push oil.</p>"), last_modified="Sun, 06 Dec 2026 08:00:00 GMT"
    )
    site.pages["/docs/a.html"].etag = '"a2"'
    site.pages["/docs/deep/d1.html"].body = html("Deep", "<p>Edited, no validators.</p>")
    after = {item.key: item.version for item in _listing(_reader(site))}
    changed = {key.removeprefix(site.url) for key in before if before[key] != after[key]}
    assert changed == {"/docs/a.html", "/docs/b.html", "/docs/deep/d1.html"}


def test_a_listing_resumes_from_its_cursor_without_reading_pages_again(sites):
    site, _ = sites
    first = _reader(site, batch=2).list_items(None)
    assert _keys(site, list(first.items)) == ["/docs/", "/docs/a.html"]
    assert first.cursor is not None
    site.requests.clear()
    rest = _listing(_reader(site, batch=2), first.cursor)  # a new process, after a crash
    assert _keys(site, rest) == ["/docs/b.html", "/docs/notes.txt", "/docs/deep/d1.html"]
    assert not {"/docs/", "/docs/a.html"} & set(site.paths())


def test_fetch_gives_the_main_text_without_asking_twice_for_an_unchanged_page(sites):
    site, _ = sites
    reader = _reader(site, max_depth=1)
    listed = {item.key: item for item in reader.list_items(None).items}
    key = f"{site.url}/docs/a.html"
    item = reader.fetch(key)
    assert item.text.startswith("# Valves\n\n## Installing\n\nInstall the XR-7734 valve")
    assert "menu" not in item.text and "footer" not in item.text
    assert (item.title, item.url, item.version) == ("Valves", key, listed[key].version)
    assert item.metadata["etag"] == '"a1"' and item.metadata["url"] == key
    assert item.metadata["fetched_at"].endswith("+00:00")
    path, headers, status = site.requests[-1]
    assert (path, headers["If-None-Match"], status) == ("/docs/a.html", '"a1"', 304)
    assert reader.access(key) == Access(everyone=True)


def test_fetch_reads_a_page_that_changed_since_listed_and_a_page_gone_is_gone(sites):
    site, _ = sites
    reader = _reader(site, max_depth=1)
    listed = {item.key: item for item in reader.list_items(None).items}
    site.pages["/docs/b.html"] = Page(
        html("Pumps", "<p>Pumps now push oil.</p>"), last_modified="Sun, 06 Dec 2026 08:00:00 GMT"
    )
    item = reader.fetch(f"{site.url}/docs/b.html")
    assert "push oil" in item.text and item.version != listed[item.key].version
    del site.pages["/docs/a.html"]
    with pytest.raises(ItemGone):
        reader.fetch(f"{site.url}/docs/a.html")
    site.statuses["/docs/"] = 410
    with pytest.raises(ItemGone):
        reader.fetch(f"{site.url}/docs/")
    for key in (f"{site.url}/outside/x.html", f"{site.url}/docs/private/secret.html", "junk"):
        with pytest.raises(ItemGone):
            reader.fetch(key)


def test_requests_to_one_host_wait_the_delay(sites):
    site, _ = sites
    now, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    reader = _reader(site, sleep=sleep, clock=lambda: now[0], delay_s=5, max_depth=1)
    _listing(reader)
    assert len(site.requests) > 3
    assert sleeps == [5.0] * (len(site.requests) - 1)  # none before the first


def test_a_sitemap_lists_its_pages_with_lastmod_as_version(sites):
    site, other = sites
    site.pages["/docs/sitemap.xml"] = Page(
        sitemap_index(f"{site.url}/docs/pages.xml", f"{other.url}/docs/map.xml"),
        "application/xml",
    )
    site.pages["/docs/pages.xml"] = Page(
        sitemap(
            (f"{site.url}/docs/a.html", "2026-11-01"),
            (f"{site.url}/docs/b.html", ""),
            (f"{site.url}/docs/private/secret.html", "2026-11-02"),
            (f"{other.url}/docs/c.html", "2026-11-03"),
        ),
        "text/xml",
    )
    reader = _reader(site, urls=[f"{site.url}/docs/sitemap.xml"])
    items = {item.key.removeprefix(site.url): item for item in _listing(reader)}
    assert set(items) == {"/docs/a.html", "/docs/b.html"}  # their links are not followed
    assert items["/docs/a.html"].version == "lastmod:2026-11-01"
    assert items["/docs/b.html"].version == f"modified:{LM}"
    assert "/docs/a.html" not in site.paths()  # listed from the sitemap alone
    item = reader.fetch(f"{site.url}/docs/a.html")
    assert item.version == "lastmod:2026-11-01" and "XR-7734" in item.text
    assert other.requests == []


def test_odd_pages_are_left_out_or_read_without_failing(sites):
    site, _ = sites
    site.pages["/docs/"].body = html(
        "Handbook",
        "<p>Index.</p>",
        (
            "huge.html",
            "latin.html",
            "odd.html",
            "xml.html",
            "bogus.html",
            "http://[broken/",
            "ftp://x/y",
        ),
    )
    site.pages["/docs/xml.html"] = Page(b'<?xml version="1.0"?><doc><p>Some XML.</p></doc>')
    site.pages["/docs/bogus.html"] = Page(
        html("Bogus", "<p>An unknown charset.</p>"), "text/html; charset=x-bogus"
    )
    site.pages["/docs/huge.html"] = Page(html("Huge", "<p>" + "word " * 2000 + "</p>"))
    site.pages["/docs/latin.html"] = Page(
        html("Caf\u00e9", "<p>Un caf\u00e9 cr\u00e8me, s'il vous pla\u00eet.</p>")
        .decode()
        .encode("latin-1"),
        "text/html; charset=iso-8859-1",
    )
    site.pages["/docs/odd.html"] = Page(b"\x00\xff<html><<<a href='::'>", "text/html")
    reader = _reader(site, max_depth=1, max_bytes=5000)
    keys = _keys(site, _listing(reader))
    assert "/docs/latin.html" in keys and "/docs/huge.html" not in keys
    assert "caf\u00e9 cr\u00e8me" in reader.fetch(f"{site.url}/docs/latin.html").text
    assert "unknown charset" in reader.fetch(f"{site.url}/docs/bogus.html").text
    assert "Some XML." in reader.fetch(f"{site.url}/docs/xml.html").text
    assert "\x00" not in reader.fetch(f"{site.url}/docs/odd.html").text  # PostgreSQL refuses NUL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80/a/../b?q=1#frag", "http://example.com/b?q=1"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("mailto:a@example.com", None),
        ("javascript:alert(1)", None),
        ("https://user:pw@example.com/", None),
        ("https://[::1", None),
    ],
)
def test_addresses_are_normalised(url, expected):
    assert normalised(url) == expected
