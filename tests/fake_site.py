"""A small in-process website on 127.0.0.1: pages with ETag or Last-Modified and 304 answers to
conditional requests, redirects, robots.txt, sitemaps, statuses on demand.

`pages` maps a path (with its query) to a Page; `redirects` a path to its Location; `statuses`
a path to the status it answers with an empty body; `requests` records (path, headers, status)
of every request. Anything else is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes import LoopbackServer, QuietHandler, send_raw


@dataclass
class Page:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None


def html(title: str, main: str, links: tuple[str, ...] = ()) -> bytes:
    """A page with a menu of `links` and a footer around its main content (`main`, HTML)."""
    menu = "".join(f'<li><a href="{href}">Link {i}</a></li>' for i, href in enumerate(links))
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f"<nav><ul><li>Home menu entry</li>{menu}</ul></nav>"
        f"<main><h1>{title}</h1>{main}</main>"
        "<footer><p>Copyright footer of the example company, all rights reserved.</p></footer>"
        "</body></html>"
    ).encode()


def sitemap(*entries: tuple[str, str]) -> bytes:
    """A <urlset> of (loc, lastmod or "")."""
    urls = "".join(
        f"<url><loc>{loc}</loc>{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}</url>"
        for loc, lastmod in entries
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'
    ).encode()


def sitemap_index(*locs: str) -> bytes:
    maps = "".join(f"<sitemap><loc>{loc}</loc></sitemap>" for loc in locs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>'
    ).encode()


class FakeSite(LoopbackServer):
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        self.redirects: dict[str, str] = {}
        self.statuses: dict[str, int] = {}
        self.robots: str | None = None  # None: /robots.txt is a 404
        self.requests: list[tuple[str, dict[str, str], int]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                status, headers, body = server.answer(self.path, self.headers)
                server.requests.append((self.path, dict(self.headers), status))
                send_raw(self, status, headers, body)

        self.url = self._listen(Handler)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def answer(self, path: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
        if path == "/robots.txt" and self.robots is not None:
            return 200, {"Content-Type": "text/plain"}, self.robots.encode()
        if path in self.redirects:
            return 302, {"Location": self.redirects[path]}, b""
        if path in self.statuses:
            return self.statuses[path], {"Content-Type": "text/html"}, b""
        page = self.pages.get(path)
        if page is None:
            return 404, {"Content-Type": "text/html"}, b"<html><body>Not found</body></html>"
        validators = {"Content-Type": page.content_type}
        if page.etag:
            validators["ETag"] = page.etag
        if page.last_modified:
            validators["Last-Modified"] = page.last_modified
        # If-None-Match, when sent, decides alone (RFC 9110, 13.2.2).
        if headers.get("If-None-Match") is not None:
            unchanged = headers.get("If-None-Match") == page.etag
        else:
            unchanged = page.last_modified is not None and (
                headers.get("If-Modified-Since") == page.last_modified
            )
        if unchanged:
            return 304, validators, b""
        return 200, validators, page.body
