"""An in-process Confluence Cloud on 127.0.0.1 speaking REST v2 (spaces by keys, pages per space
with `_links.next` cursors, a page with its storage body, labels, ancestors, space permission
assignments) and the v1 endpoints the reader needs (read restrictions, a user's groups, a group
by id).

`tokens` are the bearer tokens it accepts (401 otherwise); `fail_next` holds (path fragment,
status, headers, raw body) answers given once, to the next request whose path holds the fragment;
`requests` records each request's path and query.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.fakes import LoopbackServer, QuietHandler, send_json


@dataclass
class FakePage:
    id: str
    title: str
    space_key: str
    body: str = "<p>Hello</p>"
    version: int = 1
    status: str = "current"
    parent_id: str | None = None
    labels: list[str] = field(default_factory=list)
    read_users: list[str] = field(default_factory=list)  # account ids in its read restriction
    read_groups: list[tuple[str, str]] = field(default_factory=list)  # (id, name)


@dataclass
class FakeSpace:
    key: str
    id: str
    readers: list[tuple[str, str]] = field(default_factory=list)  # (principal type, id)


class FakeConfluence(LoopbackServer):
    def __init__(self) -> None:
        self.reset()
        self._lock = threading.Lock()
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with server._lock:
                    server.requests.append(self.path)
                    failure = server._failure(parts.path)
                if failure is not None:
                    status, headers, raw = failure
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                    return
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if bearer not in server.tokens:
                    send_json(self, 401, {"code": 401, "message": "Unauthorized"})
                    return
                send_json(self, *server.answer(parts.path, query))

        self.url = self._listen(Handler)

    def reset(self) -> None:
        """No spaces, pages, groups, failures or requests; the one token `token-1`."""
        self.spaces: dict[str, FakeSpace] = {}
        self.pages: dict[str, FakePage] = {}
        self.groups: dict[str, str] = {}  # id -> name
        self.members: dict[str, list[str]] = {}  # account id -> group ids
        self.tokens = {"token-1"}
        self.fail_next: list[tuple[str, int, dict[str, str], bytes]] = []
        self.requests: list[str] = []

    def add_space(self, key: str, readers: list[tuple[str, str]] | None = None) -> FakeSpace:
        space = FakeSpace(key, str(1000 + len(self.spaces)), list(readers or []))
        self.spaces[key] = space
        return space

    def add_page(self, page: FakePage) -> FakePage:
        self.pages[page.id] = page
        return page

    def _failure(self, path: str) -> tuple[int, dict[str, str], bytes] | None:
        for i, (fragment, status, headers, raw) in enumerate(self.fail_next):
            if fragment in path:
                del self.fail_next[i]
                return status, headers, raw
        return None

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        # Under the site's root, or under /ex/confluence/<cloud id> as through api.atlassian.com.
        segments = path.partition("/wiki/")[2].split("/")
        if segments[:2] == ["api", "v2"]:
            return self._v2(segments[2:], query)
        if segments[:2] == ["rest", "api"]:
            return self._v1(segments[2:], query)
        return 404, {"message": "no such endpoint"}

    def _v2(self, route: list[str], query: dict[str, str]) -> tuple[int, Any]:
        match route:
            case ["spaces"]:
                keys = query.get("keys", "").split(",")
                found = [self._space_json(s) for k, s in self.spaces.items() if k in keys]
                return self._paged(f"/wiki/api/v2/spaces?keys={query.get('keys')}", found, query)
            case ["spaces", space_id, "pages"]:
                space = self._space_by_id(space_id)
                if space is None:
                    return 404, {"errors": [{"status": 404, "code": "NOT_FOUND"}]}
                pages = [
                    self._page_json(p, body=False)
                    for p in self.pages.values()
                    if p.space_key == space.key and p.status == query.get("status", "current")
                ]
                return self._paged(f"/wiki/api/v2/spaces/{space_id}/pages", pages, query)
            case ["spaces", space_id, "permissions"]:
                space = self._space_by_id(space_id)
                if space is None:
                    return 404, {"errors": [{"status": 404, "code": "NOT_FOUND"}]}
                assignments = [
                    {
                        "id": str(i),
                        "principal": {"type": kind, "id": principal},
                        "operation": {"key": "read", "targetType": "space"},
                    }
                    for i, (kind, principal) in enumerate(space.readers)
                ]
                assignments.append(
                    {
                        "id": "x",
                        "principal": {"type": "user", "id": "admin-only"},
                        "operation": {"key": "administer", "targetType": "space"},
                    }
                )
                return self._paged(
                    f"/wiki/api/v2/spaces/{space_id}/permissions", assignments, query
                )
            case ["pages", page_id]:
                page = self.pages.get(page_id)
                if page is None:
                    return 404, {"errors": [{"status": 404, "code": "NOT_FOUND"}]}
                return 200, self._page_json(page, body=query.get("body-format") == "storage")
            case ["pages", page_id, "labels"]:
                labels = [
                    {"id": str(i), "name": name, "prefix": "global"}
                    for i, name in enumerate(self.pages[page_id].labels)
                ]
                return self._paged(f"/wiki/api/v2/pages/{page_id}/labels", labels, query)
            case ["pages", page_id, "ancestors"]:
                chain, parent = [], self.pages[page_id].parent_id
                while parent is not None:  # the API answers the top-most ancestor first
                    chain.insert(0, {"id": parent, "type": "page"})
                    parent = self.pages[parent].parent_id
                return self._paged(f"/wiki/api/v2/pages/{page_id}/ancestors", chain, query)
        return 404, {"errors": [{"status": 404, "code": "NOT_FOUND"}]}

    def _v1(self, route: list[str], query: dict[str, str]) -> tuple[int, Any]:
        start, limit = int(query.get("start", "0")), int(query.get("limit", "25"))
        match route:
            case ["content", page_id, "restriction", "byOperation", "read"]:
                page = self.pages.get(page_id)
                if page is None:
                    return 404, {"statusCode": 404, "message": "No content found"}
                users = [
                    {"type": "known", "accountId": a, "accountType": "atlassian"}
                    for a in page.read_users
                ]
                groups = [{"type": "group", "name": n, "id": i} for i, n in page.read_groups]
                return 200, {
                    "operation": "read",
                    "restrictions": {
                        "user": self._v1_slice(users, start, limit),
                        "group": self._v1_slice(groups, start, limit),
                    },
                    "_links": {"base": f"{self.url}/wiki", "context": "/wiki"},
                }
            case ["user", "memberof"]:
                ids = self.members.get(query.get("accountId", ""), [])
                groups = [{"type": "group", "name": self.groups[i], "id": i} for i in ids]
                return 200, self._v1_slice(groups, start, limit)
            case ["group", "by-id"]:
                group_id = query.get("id", "")
                if group_id not in self.groups:
                    return 404, {"statusCode": 404, "message": "No group found"}
                return 200, {"type": "group", "name": self.groups[group_id], "id": group_id}
        return 404, {"statusCode": 404, "message": "null for uri"}

    @staticmethod
    def _v1_slice(results: list[Any], start: int, limit: int) -> dict[str, Any]:
        page = results[start : start + limit]
        return {"results": page, "start": start, "limit": limit, "size": len(page)}

    def _paged(self, path: str, results: list[Any], query: dict[str, str]) -> tuple[int, Any]:
        """One page of a v2 list; the cursor is opaque (base64 of the offset), as Confluence's."""
        limit = int(query.get("limit", "25"))
        offset = int(base64.b64decode(query["cursor"]).decode()) if "cursor" in query else 0
        body: dict[str, Any] = {
            "results": results[offset : offset + limit],
            "_links": {"base": f"{self.url}/wiki"},
        }
        if offset + limit < len(results):
            cursor = base64.b64encode(str(offset + limit).encode()).decode()
            separator = "&" if "?" in path else "?"
            body["_links"]["next"] = (
                f"{path}{separator}{urlencode({'limit': limit, 'cursor': cursor})}"
            )
        return 200, body

    def _space_by_id(self, space_id: str) -> FakeSpace | None:
        return next((s for s in self.spaces.values() if s.id == space_id), None)

    def _space_json(self, space: FakeSpace) -> dict[str, Any]:
        return {
            "id": space.id,
            "key": space.key,
            "name": f"{space.key} space",
            "type": "global",
            "status": "current",
            "_links": {"webui": f"/spaces/{space.key}"},
        }

    def _page_json(self, page: FakePage, body: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": page.id,
            "status": page.status,
            "title": page.title,
            "spaceId": self.spaces[page.space_key].id,
            "parentId": page.parent_id,
            "parentType": "page" if page.parent_id else None,
            "authorId": "author-1",
            "ownerId": "author-1",
            "createdAt": "2026-01-02T03:04:05.000Z",
            "version": {
                "createdAt": "2026-02-03T04:05:06.000Z",
                "message": "",
                "number": page.version,
                "minorEdit": False,
                "authorId": f"editor-{page.version}",
            },
            "body": {},
            "_links": {
                "webui": f"/spaces/{page.space_key}/pages/{page.id}/{page.title.replace(' ', '+')}",
                "editui": f"/pages/resumedraft.action?draftId={page.id}",
                "tinyui": f"/x/{page.id}",
                "base": f"{self.url}/wiki",
            },
        }
        if body:
            found["body"] = {"storage": {"representation": "storage", "value": page.body}}
        return found
