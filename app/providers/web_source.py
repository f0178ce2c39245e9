"""A website as a source: pages found from start URLs or sitemaps, breadth-first through their
links, within the allowed prefixes, robots.txt and a pause between requests honoured.

Listing a website means reading its pages (their links are the listing), so `list_items` reads
a batch of queued pages, lists them with their version (ETag, else Last-Modified, else a hash
of the body) and returns the crawl's frontier as the cursor. The bodies of the batch are kept
for the `fetch` calls that follow, which then only ask whether the page changed meanwhile (a
conditional GET), so a page is not downloaded twice in a run. A sitemap's entry with <lastmod>
is listed with that date as its version, without being read: its links are not followed.

A start URL that cannot be read fails the run (a site that is down lists nothing, and a
complete listing of nothing would remove every page). Any other page that cannot be read (4xx,
5xx, not HTML or text, over the size cap, a redirect out of scope or in a loop, disallowed by
robots.txt) is left out with a log line, so its document goes at the end of the run; a host
that cannot be reached at all fails the run.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.providers.source_http import Body, SourceHttp
from app.providers.source_items import Access, Item, ItemGone, Listed, Listing, SourceFailed
from app.providers.web_hosts import Hosts
from app.providers.web_pages import HTML_TYPES, TEXT_TYPES, main_text, media_type, outline
from app.providers.web_pages import sitemap as read_sitemap
from app.providers.web_urls import (
    ENTRY,
    PAGE,
    SITEMAP,
    START,
    Frontier,
    Queued,
    Scope,
    folder,
    normalised,
)

log = logging.getLogger(__name__)
_ACCEPT = "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,*/*;q=0.1"
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class _Page:
    url: str  # where it was found after redirects
    body: Body
    fetched_at: str

    @property
    def version(self) -> str:
        etag, modified = self.body.headers.get("ETag"), self.body.headers.get("Last-Modified")
        if etag:
            return f"etag:{etag}"
        if modified:
            return f"modified:{modified}"
        return f"sha256:{hashlib.sha256(self.body.content).hexdigest()}"


class _Skipped(Exception):
    """A page the crawl leaves out; the message says why."""


class WebReader:
    """The SourceReader of one website source (`config` as WebConfig checked it)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        http: SourceHttp,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        batch: int = 20,
        max_bytes: int = 5_000_000,
        cache_bytes: int = 50_000_000,
    ) -> None:
        self._starts = [url for url in map(normalised, config["urls"]) if url is not None]
        self._scope = Scope(config.get("allowed_prefixes") or map(folder, self._starts))
        self._max_depth, self._max_pages = int(config["max_depth"]), int(config["max_pages"])
        self._hosts = Hosts(http, self._scope, float(config["delay_s"]), sleep=sleep, clock=clock)
        self._batch, self._max_bytes, self._cache_bytes = batch, max_bytes, cache_bytes
        self._pages: dict[str, _Page] = {}  # the last batch's bodies, for its fetches
        self._versions: dict[str, str] = {}  # the last batch's versions as listed

    def list_items(self, cursor: str | None) -> Listing:
        frontier = self._frontier(cursor)
        self._pages.clear()
        self._versions.clear()
        items: list[Listed] = []
        while frontier.queue and len(items) < self._batch:
            if len(frontier.listed) >= self._max_pages:
                frontier.queue.clear()
                break
            listed = self._visit(frontier, frontier.queue.popleft())
            if listed is not None:
                frontier.listed.add(listed.key)
                self._versions[listed.key] = listed.version
                items.append(listed)
        return Listing(tuple(items), frontier.cursor() if frontier.queue else None)

    def fetch(self, key: str) -> Item:
        url = normalised(key)
        if url is None or self._refusal(url):
            raise ItemGone(key)
        kept, listed = self._pages.pop(url, None), self._versions.get(url)
        page = self._current(url, kept)
        text = main_text(page.body.content, page.body.headers)
        if not text:
            raise ItemGone(key)
        # Unchanged since listed, or listed from a sitemap's <lastmod>: the version listed, so
        # that the next run finds it unchanged.
        keep_listed = listed is not None and (page is kept or listed.startswith("lastmod:"))
        return Item(
            key=key,
            version=listed if keep_listed and listed else page.version,
            title=outline(page.body.content, page.url, page.body.headers).title or page.url,
            url=page.url,
            text=text,
            metadata={
                "url": page.url,
                "fetched_at": page.fetched_at,
                "last_modified": page.body.headers.get("Last-Modified", ""),
                "etag": page.body.headers.get("ETag", ""),
            },
        )

    def _current(self, url: str, kept: _Page | None) -> _Page:
        """The page as it is now: `kept` when it did not change since listed (or when there
        is nothing to ask with), else downloaded; ItemGone when it cannot be read."""
        conditional = _conditional(kept.body) if kept is not None else {}
        if kept is not None and not conditional:
            return kept
        try:
            page = self._download(url, conditional)
        except _Skipped as exc:
            log.info("web source: %s left out: %s", url, exc)
            raise ItemGone(url) from None
        if page.body.status_code == 304 and kept is not None:
            return kept
        if page.body.status_code != 200 or media_type(page.body.headers) not in _READABLE:
            raise ItemGone(url)
        return page

    def access(self, key: str) -> Access:
        return Access(everyone=True)  # what the crawler reads, anyone on the web may

    def _frontier(self, cursor: str | None) -> Frontier:
        limit = max(1000, 5 * self._max_pages)
        if cursor is not None:
            return Frontier.from_cursor(cursor, limit)
        if not self._starts:  # a listing of nothing would remove every page
            raise SourceFailed("web source: none of its start URLs is an address it can fetch")
        frontier = Frontier(limit)
        for url in self._starts:
            frontier.add(url, 0, START)
        return frontier

    def _visit(self, frontier: Frontier, queued: Queued) -> Listed | None:
        """The page at `queued` as listed, its links queued; None when it is left out."""
        try:
            return self._read(frontier, queued)
        except _Skipped as exc:
            if queued.kind == START:
                raise SourceFailed(f"web source: the start page {queued.url} {exc}") from None
            log.info("web source: %s left out: %s", queued.url, exc)
            return None

    def _read(self, frontier: Frontier, queued: Queued) -> Listed | None:
        url = queued.url
        if url in frontier.listed:
            return None
        refusal = self._refusal(url)
        if refusal:
            raise _Skipped(f"is {refusal}")
        if queued.kind == ENTRY and queued.lastmod:
            return Listed(url, f"lastmod:{queued.lastmod}")
        page = self._download(url)
        if page.body.status_code != 200:
            raise _Skipped(f"answered {page.body.status_code}")
        if queued.kind in (START, SITEMAP):
            found = read_sitemap(page.body.content, page.url)
            if found is not None:
                for sitemap_url in found.sitemaps:
                    frontier.add(sitemap_url, queued.depth, SITEMAP)
                for entry_url, lastmod in found.pages:
                    frontier.add(entry_url, self._max_depth, ENTRY, lastmod)
                return None
        if media_type(page.body.headers) not in _READABLE:
            raise _Skipped(f"is {media_type(page.body.headers) or 'of no type'}, not a page")
        if page.url in frontier.listed:
            return None
        frontier.seen.add(page.url)
        found_outline = outline(page.body.content, page.url, page.body.headers)
        if queued.depth < self._max_depth and queued.kind in (START, PAGE):
            for link in found_outline.links:
                if self._scope.allows(link):
                    frontier.add(link, queued.depth + 1, PAGE)
        self._keep(page)
        return Listed(page.url, page.version, found_outline.title)

    def _download(self, url: str, headers: Mapping[str, str] | None = None) -> _Page:
        """The answer at `url`, redirects within the scope followed; _Skipped for a body over
        the cap or a redirect out of scope, disallowed, in a loop or too long."""
        for _ in range(_MAX_REDIRECTS + 1):
            body = self._hosts.get(url, self._max_bytes, {"Accept": _ACCEPT, **(headers or {})})
            location = body.headers.get("Location")
            if body.status_code not in _REDIRECTS or not location:
                if not body.complete:
                    raise _Skipped(f"is larger than {self._max_bytes} bytes")
                return _Page(url, body, datetime.now(UTC).isoformat(timespec="seconds"))
            target = normalised(location, url)
            if target is None:
                raise _Skipped("redirects to an address that is not http(s)")
            refusal = self._refusal(target)
            if refusal:
                raise _Skipped(f"redirects to {target}, {refusal}")
            url = target
        raise _Skipped(f"redirects more than {_MAX_REDIRECTS} times")

    def _refusal(self, url: str) -> str | None:
        """Why the source may not read `url`, if it may not."""
        if not self._scope.allows(url):
            return "outside the allowed prefixes"
        if not self._hosts.allowed(url):
            return "disallowed by robots.txt"
        return None

    def _keep(self, page: _Page) -> None:
        """Keeps the page's body for its fetch, while the batch's bodies fit in the cache."""
        used = sum(len(kept.body.content) for kept in self._pages.values())
        if used + len(page.body.content) <= self._cache_bytes:
            self._pages[page.url] = page


_READABLE = HTML_TYPES | TEXT_TYPES


def _conditional(body: Body) -> dict[str, str]:
    """Headers asking for the page only if it changed since `body` was read."""
    headers = {}
    if etag := body.headers.get("ETag"):
        headers["If-None-Match"] = etag
    if modified := body.headers.get("Last-Modified"):
        headers["If-Modified-Since"] = modified
    return headers
