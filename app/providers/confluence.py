"""A SourceReader for Confluence Cloud (REST v2; v1 for read restrictions and groups): the pages
of some spaces, listed with their version numbers, fetched as clean text, and who may read them
(confluence_access).

The listing's cursor names the space and the API's own cursor within it, so a sync that stopped
resumes at the page of results where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.providers.confluence_access import ConfluenceAccess
from app.providers.confluence_api import NOT_FOUND, UNREADABLE, ConfluenceApi, next_cursor
from app.providers.confluence_text import storage_to_text
from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, Item, ItemGone, Listed, Listing, SourceFailed

_MAX_DEPTH = 200  # ancestors derived from the listing; deeper (or a cycle): the API is asked


@dataclass(frozen=True)
class ConfluenceOptions:
    page_limit: int = 100  # results per request (Confluence allows up to 250)


class ConfluenceReader:
    """The current pages of `spaces` (keys) on the site at `base_url`: `https://x.atlassian.net`
    or `https://api.atlassian.com/ex/confluence/<cloud id>`. Build one per sync run: it keeps the
    spaces, permissions and restrictions it has read."""

    def __init__(
        self,
        base_url: str,
        spaces: Sequence[str],
        http: SourceHttp,
        options: ConfluenceOptions | None = None,
    ) -> None:
        self._api = ConfluenceApi(base_url, http, (options or ConfluenceOptions()).page_limit)
        self._keys = tuple(dict.fromkeys(spaces))
        self._space_ids: dict[str, str] | None = None  # key -> id, read once per reader
        self._access = ConfluenceAccess(self._api)
        # page id -> (space id, parent page id) as this run's listing showed them
        self._listed: dict[str, tuple[str, str | None]] = {}

    def list_items(self, cursor: str | None) -> Listing:
        index, api_cursor = self._position(cursor)
        if index >= len(self._keys):
            return Listing((), None)
        space_id = self._spaces()[self._keys[index]]
        params: dict[str, Any] = {"limit": self._api.limit, "status": "current"}
        if api_cursor:
            params["cursor"] = api_cursor
        url = f"{self._api.v2}/spaces/{space_id}/pages"
        body = self._api.json(url, params)
        with self._api.shape(url):
            items = tuple(self._listed_page(page) for page in body["results"])
            following = next_cursor(body)
        if following is not None:
            return Listing(items, json.dumps({"space": self._keys[index], "cursor": following}))
        if index + 1 < len(self._keys):
            return Listing(items, json.dumps({"space": self._keys[index + 1], "cursor": None}))
        return Listing(items, None)

    def _listed_page(self, page: dict[str, Any]) -> Listed:
        parent = page.get("parentId", "?")  # not said: asked for, never taken as top-level
        if page.get("parentType", "page") not in ("page", None):
            parent = "?"  # under a folder or another kind: its chain is asked for, not derived
        self._listed[str(page["id"])] = (str(page["spaceId"]), None if not parent else str(parent))
        title = str(page.get("title") or "")
        return Listed(f"page:{page['id']}", str(page["version"]["number"]), title)

    def _known_place(self, page_id: str) -> tuple[str, list[str]] | None:
        """The page's space and ancestors (top-most first) from this run's listing, when it
        listed the page and every ancestor; else None, and the API is asked."""
        if page_id not in self._listed:
            return None
        space_id, parent = self._listed[page_id]
        chain: list[str] = []
        while parent is not None:
            if parent not in self._listed or len(chain) >= _MAX_DEPTH:
                return None
            chain.insert(0, parent)
            parent = self._listed[parent][1]
        return space_id, chain

    def _position(self, cursor: str | None) -> tuple[int, str | None]:
        """The space's index and the API's cursor in it; a space no longer configured starts the
        listing over (the sync counts each key once whatever it is told twice)."""
        if cursor is None:
            return 0, None
        try:
            position = json.loads(cursor)
            key, api_cursor = position["space"], position["cursor"]
        except (ValueError, TypeError, KeyError):
            raise ValueError("not a cursor of this Confluence listing") from None
        if key not in self._keys:
            return 0, None
        return self._keys.index(key), api_cursor

    def _spaces(self) -> dict[str, str]:
        """Space keys to ids; a configured space that is missing (or hidden from this account)
        fails the run rather than have the sync remove all its pages."""
        if self._space_ids is None:
            url = f"{self._api.v2}/spaces"
            found = self._api.all(url, {"keys": ",".join(self._keys)})
            with self._api.shape(url):
                ids = {str(space["key"]): str(space["id"]) for space in found or ()}
            missing = [key for key in self._keys if key not in ids]
            if missing:
                raise SourceFailed(
                    f"{self._api.http.name} has no space {', '.join(missing)} to read"
                )
            self._space_ids = ids
        return self._space_ids

    def fetch(self, key: str) -> Item:
        page_id = _page_id(key)
        url = f"{self._api.v2}/pages/{page_id}"
        page = self._api.json(url, {"body-format": "storage"}, absent=NOT_FOUND)
        if page is None:
            raise ItemGone(key)
        spaces = {space_id: space_key for space_key, space_id in self._spaces().items()}
        with self._api.shape(url):
            if page["status"] != "current" or str(page["spaceId"]) not in spaces:
                raise ItemGone(key)
            version, title = page["version"], str(page["title"])
            links = page.get("_links") or {}
            text = storage_to_text(str(page["body"]["storage"]["value"]))
            metadata = {
                "space": spaces[str(page["spaceId"])],
                "page_id": page_id,
                "version": int(version["number"]),
                "author_id": version.get("authorId") or page.get("authorId"),
                "created": page.get("createdAt"),
                "updated": version.get("createdAt"),
                "labels": self._labels(page_id),
                "parent_id": page.get("parentId"),
            }
            web = f"{str(links.get('base') or self._api.wiki).rstrip('/')}{links.get('webui', '')}"
        return Item(
            key=key,
            version=str(version["number"]),
            title=title,
            url=web,
            text=f"# {title}\n\n{text}" if text else f"# {title}",
            metadata=metadata,
        )

    def _labels(self, page_id: str) -> list[str]:
        """The page's labels; none when the token may not read them (they are optional)."""
        url = f"{self._api.v2}/pages/{page_id}/labels"
        labels = self._api.all(url, {}, absent=UNREADABLE)
        return [str(label["name"]) for label in labels or ()]

    def access(self, key: str) -> Access | None:
        """Who may read the page: its space's readers, narrowed by the page's read restrictions
        and those of every ancestor (Confluence's inherited view restrictions)."""
        page_id = _page_id(key)
        return self._access.of_page(page_id, self._known_place(page_id))


def _page_id(key: str) -> str:
    kind, _, page_id = key.partition(":")
    if kind != "page" or not page_id.isdigit():
        raise ValueError(f"not a Confluence page key: {key!r}")
    return page_id
