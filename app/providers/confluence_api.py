"""Confluence's REST answers as JSON: URLs under the site, v2 lists followed through
`_links.next`, v1 lists through `start`, and any other answer as SourceFailed naming the path
(never the token)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.providers.source_http import SourceHttp
from app.providers.source_items import SourceFailed

# A permissions API that is missing (404, 501) or refuses this token (401 after the refresh, 403,
# e.g. a scope not granted): the caller fails closed.
UNREADABLE = frozenset({401, 403, 404, 501})
NOT_FOUND = frozenset({404})


class ConfluenceApi:
    """GETs to one site (`base_url`), `limit` results per request."""

    def __init__(self, base_url: str, http: SourceHttp, limit: int) -> None:
        site = base_url.rstrip("/")
        self.wiki, self.v2, self.v1 = f"{site}/wiki", f"{site}/wiki/api/v2", f"{site}/wiki/rest/api"
        self.http, self.limit = http, limit

    def json(
        self, url: str, params: dict[str, Any] | None = None, absent: frozenset[int] = frozenset()
    ) -> Any:
        """The JSON of a 200; None for a status in `absent`; SourceFailed otherwise."""
        response = self.http.get(url, params)
        status, name, path = response.status_code, self.http.name, httpx.URL(url).path
        if status in absent:
            return None
        if status in (401, 403):
            raise SourceFailed(f"{name} refused {path} ({status})")
        if status != 200:
            raise SourceFailed(f"{name} answered {status} for {path}")
        try:
            return response.json()
        except ValueError:
            raise SourceFailed(f"{name} answered something that is not JSON for {path}") from None

    def all(
        self, url: str, params: dict[str, Any], absent: frozenset[int] = frozenset()
    ) -> list[Any] | None:
        """Every result of a v2 list, following `_links.next` to the end; None as `json`."""
        results: list[Any] = []
        cursor: str | None = None
        while True:
            page = {**params, "limit": self.limit, **({"cursor": cursor} if cursor else {})}
            body = self.json(url, page, absent)
            if body is None:
                return None
            with self.shape(url):
                results += body["results"]
                cursor = next_cursor(body)
            if cursor is None:
                return results

    def v1_bodies(
        self, url: str, params: dict[str, Any], absent: frozenset[int], size: Callable[[Any], int]
    ) -> list[Any] | None:
        """Every answer of a v1 list by `start`, until one holds fewer than `limit` results (as
        `size` counts them); None as `json`."""
        bodies: list[Any] = []
        start = 0
        while True:
            body = self.json(url, {**params, "start": start, "limit": self.limit}, absent)
            if body is None:
                return None
            bodies.append(body)
            with self.shape(url):
                if size(body) < self.limit:
                    return bodies
            start += self.limit

    @contextmanager
    def shape(self, url: str) -> Iterator[None]:
        """Fields missing or of the wrong type become SourceFailed naming the path."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError):
            name, path = self.http.name, httpx.URL(url).path
            raise SourceFailed(f"{name} answered an unexpected shape for {path}") from None


def next_cursor(body: Any) -> str | None:
    """The cursor in `_links.next` (a relative URL), None at the end of the list."""
    following = (body.get("_links") or {}).get("next")
    if not following:
        return None
    return parse_qs(urlsplit(str(following)).query)["cursor"][0]
