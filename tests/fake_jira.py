"""An in-process Jira Cloud (REST v3) on 127.0.0.1: enhanced JQL search with nextPageToken,
issues with ADF descriptions and paged comments, permission schemes, project roles and issue
security level members, behind a bearer token.

`fail_next` answers the next requests with (status, headers, raw body) instead; `denied` path
prefixes (after /rest/api/3/) answer 403; `requests` records (path, query) of every request.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import LoopbackServer, QuietHandler, send_json, send_raw

API = "/rest/api/3/"
_NOT_FOUND = {
    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
    "errors": {},
}


def adf(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def para(*inline: dict[str, Any] | str) -> dict[str, Any]:
    content = [{"type": "text", "text": n} if isinstance(n, str) else n for n in inline]
    return {"type": "paragraph", "content": content}


def user(account_id: str, name: str) -> dict[str, Any]:
    return {
        "accountId": account_id,
        "displayName": name,
        "active": True,
        "accountType": "atlassian",
    }


class FakeJira(LoopbackServer):
    def __init__(self, token: str = "at-1") -> None:
        self.tokens = {token}
        self.issues: dict[str, dict[str, Any]] = {}  # id -> the issue with all its fields
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.embedded_comments = 2  # Jira embeds only the first comments in the issue
        # project -> (permission scheme id, [(permission, holder)])
        self.schemes: dict[str, tuple[int, list[tuple[str, dict[str, Any]]]]] = {}
        self.roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.level_members: dict[str, list[dict[str, Any]]] = {}  # level id -> holders
        self.page_cap = 50  # Jira answers at most this many members per page, whatever is asked
        self.denied: set[str] = set()
        self.fail_next: list[tuple[int, dict[str, str], bytes]] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                # Served as a site and as api.atlassian.com serves it: /ex/jira/<cloud id>/...
                url = url._replace(path=re.sub(r"^/ex/jira/[^/]+", "", url.path))
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                server.requests.append((url.path, query))
                if self.headers.get("Authorization", "") not in {
                    f"Bearer {t}" for t in server.tokens
                }:
                    send_json(self, 401, {"code": 401, "message": "Unauthorized"})
                elif server.fail_next:
                    send_raw(self, *server.fail_next.pop(0))
                elif any(url.path.startswith(API + prefix) for prefix in server.denied):
                    send_json(self, 403, {"errorMessages": ["You do not have permission."]})
                else:
                    send_json(self, *server.answer(url.path.removeprefix(API), query))

        self.url = self._listen(Handler)

    def add_issue(self, issue_id: str, key: str, summary: str, **fields: Any) -> None:
        comments = fields.pop("comments", [])
        self.comments[issue_id] = [
            {"id": str(10000 + n), "self": f"{self.url}{API}issue/{issue_id}/comment/{n}", **c}
            for n, c in enumerate(comments)
        ]
        self.issues[issue_id] = {
            "id": issue_id,
            "key": key,
            "self": f"{self.url}{API}issue/{issue_id}",
            "fields": {
                "summary": summary,
                "updated": "2026-11-02T10:00:00.000+0000",
                "created": "2026-11-01T09:00:00.000+0000",
                "project": {"id": "10000", "key": key.split("-")[0], "name": "Engineering"},
                "description": None,
                "labels": [],
                **fields,
            },
        }

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        routes = (
            (r"search/jql", self._search),
            (r"issue/(\d+)", self._issue),
            (r"issue/(\d+)/comment", self._comment_page),
            (r"project/([^/]+)/permissionscheme", self._project_scheme),
            (r"permissionscheme/(\d+)", self._scheme),
            (r"project/([^/]+)/role/(\d+)", self._role),
            (r"issuesecurityschemes/level/member", self._level_members),
            (r"serverInfo", lambda q: (200, {"baseUrl": "https://acme.atlassian.net"})),
        )
        for pattern, route in routes:
            if match := re.fullmatch(pattern, path):
                return route(query, *match.groups())  # type: ignore[operator]
        return 404, {"errorMessages": ["Not found"], "errors": {}}

    def _search(self, query: dict[str, str]) -> tuple[int, Any]:
        jql = query.get("jql", "")
        condition = re.split(r"\s+ORDER BY\s+", jql)[0]
        for field in re.findall(r"(\w+)\s*=", condition):
            if field not in {"project", "status"}:
                message = (
                    f"Field '{field}' does not exist or you do not have permission to view it."
                )
                return 400, {"errorMessages": [message], "errors": {}}
        project = re.search(r"project\s*=\s*(\w+)", condition)
        found = sorted(
            (
                i
                for i in self.issues.values()
                if not project or i["key"].startswith(project[1] + "-")
            ),
            key=lambda issue: (issue["key"].split("-")[0], int(issue["key"].split("-")[1])),
        )
        token = query.get("nextPageToken")
        start = int(base64.b64decode(token).decode().removeprefix("offset:")) if token else 0
        size = int(query.get("maxResults", "50"))
        wanted = query.get("fields", "").split(",")
        page = [
            {**issue, "fields": {k: v for k, v in issue["fields"].items() if k in wanted}}
            for issue in found[start : start + size]
        ]
        body: dict[str, Any] = {"issues": page, "isLast": start + size >= len(found)}
        if not body["isLast"]:  # as Jira does, the last page has no nextPageToken at all
            body["nextPageToken"] = base64.b64encode(f"offset:{start + size}".encode()).decode()
        return 200, body

    def _issue(self, query: dict[str, str], issue_id: str) -> tuple[int, Any]:
        if issue_id not in self.issues:
            return 404, _NOT_FOUND
        issue = self.issues[issue_id]
        wanted = query.get("fields", "").split(",")
        fields = {k: v for k, v in issue["fields"].items() if k in wanted}
        if "comment" in wanted:
            comments = self.comments[issue_id]
            fields["comment"] = {
                "comments": comments[: self.embedded_comments],
                "maxResults": self.embedded_comments,
                "total": len(comments),
                "startAt": 0,
            }
        return 200, {**issue, "fields": fields}

    def _comment_page(self, query: dict[str, str], issue_id: str) -> tuple[int, Any]:
        if issue_id not in self.issues:
            return 404, _NOT_FOUND
        start, size = int(query.get("startAt", "0")), int(query.get("maxResults", "50"))
        comments = self.comments[issue_id]
        page = comments[start : start + size]
        return 200, {"startAt": start, "maxResults": size, "total": len(comments), "comments": page}

    def _project_scheme(self, query: dict[str, str], project: str) -> tuple[int, Any]:
        if project not in self.schemes:
            return 404, {"errorMessages": [f"No project could be found with key '{project}'."]}
        scheme_id = self.schemes[project][0]
        return 200, {
            "id": scheme_id,
            "self": f"{self.url}{API}permissionscheme/{scheme_id}",
            "name": f"{project} permission scheme",
        }

    def _scheme(self, query: dict[str, str], scheme_id: str) -> tuple[int, Any]:
        for number, grants in self.schemes.values():
            if str(number) == scheme_id:
                body: dict[str, Any] = {"id": number, "name": "scheme", "expand": "permissions"}
                if "permissions" in query.get("expand", ""):
                    body["permissions"] = [
                        {"id": 10100 + n, "holder": holder, "permission": permission}
                        for n, (permission, holder) in enumerate(grants)
                    ]
                return 200, body
        return 404, {"errorMessages": ["The permission scheme does not exist."]}

    def _role(self, query: dict[str, str], project: str, role_id: str) -> tuple[int, Any]:
        if (project, role_id) not in self.roles:
            return 404, {"errorMessages": ["Role not found"]}
        return 200, {
            "id": int(role_id),
            "name": "Developers",
            "actors": self.roles[project, role_id],
        }

    def _level_members(self, query: dict[str, str]) -> tuple[int, Any]:
        members = self.level_members.get(query.get("levelId", ""), [])
        start = int(query.get("startAt", "0"))
        size = min(self.page_cap, int(query.get("maxResults", "50")))
        values = [
            {
                "id": str(n),
                "issueSecurityLevelId": query["levelId"],
                "issueSecuritySchemeId": "1",
                "holder": holder,
            }
            for n, holder in enumerate(members[start : start + size])
        ]
        body = {"startAt": start, "maxResults": size, "total": len(members), "values": values}
        return 200, {**body, "isLast": start + size >= len(members)}
