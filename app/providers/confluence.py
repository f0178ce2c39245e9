"""A SourceReader for Confluence Cloud (REST v2; v1 for read restrictions and groups): the pages
of some spaces, listed with their version numbers, fetched as clean text, and who may read them.

The listing's cursor names the space and the API's own cursor within it, so a sync that stopped
resumes at the page of results where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.providers.confluence_access import Level, combine
from app.providers.confluence_text import storage_to_text
from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, Item, ItemGone, Listed, Listing, SourceFailed

# A permissions API that is missing (404, 501) or refuses this token (401 after the refresh, 403,
# e.g. a scope not granted): nobody but the source's owner reads the page.
_UNREADABLE = frozenset({401, 403, 404, 501})
_NOT_FOUND = frozenset({404})


@dataclass(frozen=True)
class ConfluenceOptions:
    page_limit: int = 100  # results per request (Confluence allows up to 250)


class ConfluenceReader:
    """The current pages of `spaces` (keys) on the site at `base_url`: `https://x.atlassian.net`
    or `https://api.atlassian.com/ex/confluence/<cloud id>`."""

    def __init__(
        self,
        base_url: str,
        spaces: Sequence[str],
        http: SourceHttp,
        options: ConfluenceOptions | None = None,
    ) -> None:
        site = base_url.rstrip("/")
        self._wiki, self._api = f"{site}/wiki", f"{site}/wiki/api/v2"
        self._v1 = f"{site}/wiki/rest/api"
        self._keys = tuple(dict.fromkeys(spaces))
        self._http = http
        self._limit = (options or ConfluenceOptions()).page_limit
        self._space_ids: dict[str, str] | None = None  # key -> id, resolved once per reader
        self._group_names: dict[str, str] = {}
        self._user_groups: dict[str, frozenset[str] | None] = {}

    # --- listing ---------------------------------------------------------------------------

    def list_items(self, cursor: str | None) -> Listing:
        index, api_cursor = self._position(cursor)
        if index >= len(self._keys):
            return Listing((), None)
        space_id = self._spaces()[self._keys[index]]
        params: dict[str, Any] = {"limit": self._limit, "status": "current"}
        if api_cursor:
            params["cursor"] = api_cursor
        url = f"{self._api}/spaces/{space_id}/pages"
        body = self._json(url, params)
        with self._shape(url):
            items = tuple(
                Listed(f"page:{page['id']}", str(page["version"]["number"]), page.get("title", ""))
                for page in body["results"]
            )
            following = _next_cursor(body)
        if following is not None:
            return Listing(items, json.dumps({"space": self._keys[index], "cursor": following}))
        if index + 1 < len(self._keys):
            return Listing(items, json.dumps({"space": self._keys[index + 1], "cursor": None}))
        return Listing(items, None)

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
            url = f"{self._api}/spaces"
            found = self._all(url, {"keys": ",".join(self._keys), "limit": self._limit})
            with self._shape(url):
                ids = {str(space["key"]): str(space["id"]) for space in found or ()}
            missing = [key for key in self._keys if key not in ids]
            if missing:
                raise SourceFailed(f"{self._http.name} has no space {', '.join(missing)} to read")
            self._space_ids = ids
        return self._space_ids

    # --- fetching --------------------------------------------------------------------------

    def fetch(self, key: str) -> Item:
        page_id = _page_id(key)
        url = f"{self._api}/pages/{page_id}"
        page = self._json(url, {"body-format": "storage"}, absent=_NOT_FOUND)
        if page is None:
            raise ItemGone(key)
        spaces = {space_id: space_key for space_key, space_id in self._spaces().items()}
        with self._shape(url):
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
            web = f"{str(links.get('base') or self._wiki).rstrip('/')}{links.get('webui', '')}"
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
        url = f"{self._api}/pages/{page_id}/labels"
        labels = self._all(url, {"limit": self._limit}, absent=_UNREADABLE)
        return [str(label["name"]) for label in labels or ()]

    # --- access ----------------------------------------------------------------------------

    def access(self, key: str) -> Access | None:
        """Who may read the page: its space's readers, narrowed by the page's read restrictions
        and those of every ancestor (Confluence's inherited view restrictions)."""
        page_id = _page_id(key)
        url = f"{self._api}/pages/{page_id}"
        page = self._json(url, absent=_UNREADABLE)
        ancestors = self._all(f"{url}/ancestors", {"limit": self._limit}, absent=_UNREADABLE)
        if page is None or ancestors is None:
            return None
        with self._shape(url):
            space_id = str(page["spaceId"])
            chain = [str(ancestor["id"]) for ancestor in ancestors] + [page_id]
        space = self._space_level(space_id)
        restricted = []
        for content_id in chain:
            level = self._restriction(content_id)
            if level is None:
                return None
            if level.users or level.groups:
                restricted.append(level)
        if space is None:
            return None
        if not restricted:
            return self._space_access(space)
        return combine(space, restricted, self._groups_of)

    def _space_level(self, space_id: str) -> Level | None:
        url = f"{self._api}/spaces/{space_id}/permissions"
        found = self._all(url, {"limit": self._limit}, absent=_UNREADABLE)
        if found is None:
            return None
        with self._shape(url):
            return Level.of_space(found)

    def _space_access(self, space: Level) -> Access | None:
        """The space's readers, its groups named (v2 names a group by id only)."""
        if space.everyone:
            return Access(everyone=True)
        names = []
        for key in sorted(space.groups):
            name = self._group_name(key.removeprefix("id:"))
            if name is None:
                return None
            names.append(name)
        return Access(account_ids=tuple(sorted(space.users)), groups=tuple(sorted(names)))

    def _group_name(self, group_id: str) -> str | None:
        if group_id not in self._group_names:
            url = f"{self._v1}/group/by-id"
            group = self._json(url, {"id": group_id}, absent=_UNREADABLE)
            if group is None:
                return None
            with self._shape(url):
                self._group_names[group_id] = str(group["name"])
        return self._group_names[group_id]

    def _restriction(self, content_id: str) -> Level | None:
        """The users and groups a content's read restriction names (none: not restricted)."""
        url = f"{self._v1}/content/{content_id}/restriction/byOperation/read"
        users: list[Any] = []
        groups: list[Any] = []
        start = 0
        while True:
            body = self._json(url, {"start": start, "limit": self._limit}, absent=_UNREADABLE)
            if body is None:
                return None
            with self._shape(url):
                found = body["restrictions"]
                more_users = (found.get("user") or {}).get("results") or []
                more_groups = (found.get("group") or {}).get("results") or []
            users += more_users
            groups += more_groups
            if len(more_users) < self._limit and len(more_groups) < self._limit:
                break
            start += self._limit
        with self._shape(url):
            return Level.of_restriction(users, groups)

    def _groups_of(self, account_id: str) -> frozenset[str] | None:
        """The ids (names where a group has no id) of the groups a user belongs to."""
        if account_id not in self._user_groups:
            url = f"{self._v1}/user/memberof"
            groups: list[Any] = []
            start = 0
            while True:
                params = {"accountId": account_id, "start": start, "limit": self._limit}
                body = self._json(url, params, absent=_UNREADABLE)
                if body is None:
                    self._user_groups[account_id] = None
                    break
                with self._shape(url):
                    groups += body["results"]
                    if len(body["results"]) < self._limit:
                        self._user_groups[account_id] = Level.group_keys(groups)
                        break
                start += self._limit
        return self._user_groups[account_id]

    # --- HTTP ------------------------------------------------------------------------------

    def _json(
        self, url: str, params: dict[str, Any] | None = None, absent: frozenset[int] = frozenset()
    ) -> Any:
        """The JSON of a 200; None for a status in `absent`; SourceFailed otherwise."""
        response = self._http.get(url, params)
        status, name, path = response.status_code, self._http.name, httpx.URL(url).path
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

    def _all(
        self, url: str, params: dict[str, Any], absent: frozenset[int] = frozenset()
    ) -> list[Any] | None:
        """Every result of a v2 list, following `_links.next` to the end; None as `_json`."""
        results: list[Any] = []
        cursor: str | None = None
        while True:
            body = self._json(url, {**params, **({"cursor": cursor} if cursor else {})}, absent)
            if body is None:
                return None
            with self._shape(url):
                results += body["results"]
                cursor = _next_cursor(body)
            if cursor is None:
                return results

    @contextmanager
    def _shape(self, url: str) -> Iterator[None]:
        """Fields missing or of the wrong type become SourceFailed naming the path."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError):
            path = httpx.URL(url).path
            raise SourceFailed(
                f"{self._http.name} answered an unexpected shape for {path}"
            ) from None


def _next_cursor(body: Any) -> str | None:
    """The cursor in `_links.next` (a relative URL), None at the end of the list."""
    following = (body.get("_links") or {}).get("next")
    if not following:
        return None
    return parse_qs(urlsplit(str(following)).query)["cursor"][0]


def _page_id(key: str) -> str:
    kind, _, page_id = key.partition(":")
    if kind != "page" or not page_id.isdigit():
        raise ValueError(f"not a Confluence page key: {key!r}")
    return page_id
