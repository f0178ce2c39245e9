"""Jira Cloud (REST v3) as a source: the issues a JQL query finds, each as text with its
description and comments, and who may browse it (app/providers/jira_access.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from app.providers.jira_access import ACCESS_FIELDS, JiraAccess, dict_of, list_of
from app.providers.jira_text import adf_to_text
from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, Item, ItemGone, Listed, Listing, SourceFailed

_ISSUE_FIELDS = (
    "summary,description,status,issuetype,priority,labels,reporter,assignee,created,updated,"
    "project,comment"
)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_QUOTED = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")


def ordered_jql(jql: str) -> str:
    """`jql` ordered by issue key, so that pages follow one stable order; the query's own ORDER
    BY (outside quoted strings) is replaced."""
    masked = _QUOTED.sub(lambda match: "_" * len(match.group()), jql)
    found = _ORDER_BY.search(masked)
    condition = (jql[: found.start()] if found else jql).strip()
    return f"{condition} ORDER BY key ASC" if condition else "ORDER BY key ASC"


class JiraReader:
    """The SourceReader of one Jira source: `base_url` is the site or
    `https://api.atlassian.com/ex/jira/<cloud id>`; links go to `site_url` when given."""

    def __init__(
        self,
        base_url: str,
        jql: str,
        http: SourceHttp,
        *,
        page_size: int = 100,
        site_url: str | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._api = f"{self._base}/rest/api/3"
        self._jql = ordered_jql(jql)
        self._http, self._page_size = http, page_size
        self._site = site_url.rstrip("/") if site_url else None
        self._access = JiraAccess(self._api, http)
        self._listed_fields: dict[str, dict[str, Any]] = {}  # issue id -> ACCESS_FIELDS, listed

    def list_items(self, cursor: str | None) -> Listing:
        params = {
            "jql": self._jql,
            "fields": f"updated,summary,{ACCESS_FIELDS}",
            "maxResults": self._page_size,
        }
        if cursor:
            params["nextPageToken"] = cursor
        page = dict_of(self._content("search/jql", params, "the search"))
        if page is None or not isinstance(page.get("issues"), list):
            raise SourceFailed(f"{self._http.name} answered a search without issues")
        items = tuple(self._listed(issue) for issue in page["issues"])
        token = page.get("nextPageToken")
        if page.get("isLast") is True or (token is None and page.get("isLast") is None):
            return Listing(items, None)
        # A listing cut short would make the sync delete every issue after the cut.
        if not isinstance(token, str) or not token or token == cursor:
            raise SourceFailed(f"{self._http.name} answered a search page without a next page")
        return Listing(items, token)

    def fetch(self, key: str) -> Item:
        issue_id = _issue_id(key)
        issue = dict_of(
            self._content(f"issue/{issue_id}", {"fields": _ISSUE_FIELDS}, "the issue", gone=True)
        )
        fields = dict_of(issue.get("fields")) if issue else None
        if issue is None or fields is None or not isinstance(issue.get("key"), str):
            raise SourceFailed(f"{self._http.name} answered an issue without key or fields")
        comments = self._comments(issue_id, dict_of(fields.get("comment")) or {})
        title = f"{issue['key']}: {fields.get('summary') or ''}".strip()
        return Item(
            key=key,
            version=str(fields.get("updated") or ""),
            title=title,
            url=f"{self._site_url()}/browse/{issue['key']}",
            text=_issue_text(title, fields, comments),
            metadata=_metadata(issue["key"], fields),
        )

    def access(self, key: str) -> Access | None:
        issue_id = _issue_id(key)
        return self._access.access(issue_id, self._listed_fields.get(issue_id))

    def _listed(self, issue: Any) -> Listed:
        fields = dict_of(issue.get("fields")) if isinstance(issue, dict) else None
        if fields is None or not isinstance(issue.get("id"), str | int):
            raise SourceFailed(f"{self._http.name} answered a search with a malformed issue")
        title = f"{issue.get('key', '')}: {fields.get('summary') or ''}".strip()
        if "project" in fields:  # the fields came (as an issue's own GET would bring them)
            self._listed_fields[str(issue["id"])] = fields
        return Listed(f"issue:{issue['id']}", str(fields.get("updated") or ""), title)

    def _comments(self, issue_id: str, embedded: dict[str, Any]) -> list[dict[str, Any]]:
        """Every comment, oldest first: the embedded ones, or all pages when they are fewer
        than the issue has."""
        comments = [c for c in list_of(embedded.get("comments")) if isinstance(c, dict)]
        total = embedded.get("total")
        if not isinstance(total, int) or total <= len(comments):
            return comments
        comments = []
        while len(comments) < total:
            params = {"startAt": len(comments), "maxResults": self._page_size, "orderBy": "created"}
            page = dict_of(
                self._content(f"issue/{issue_id}/comment", params, "the comments", gone=True)
            )
            found = [c for c in list_of((page or {}).get("comments")) if isinstance(c, dict)]
            if not found:  # deleted meanwhile: what there is
                break
            comments.extend(found)
        return comments

    def _content(self, path: str, params: Mapping[str, Any], what: str, gone: bool = False) -> Any:
        """The JSON answer of a content request; ItemGone for a 404 when `gone`, else
        SourceFailed saying what Jira did."""
        name = self._http.name
        response = self._http.get(f"{self._api}/{path}", params)
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise SourceFailed(f"{name} answered something that is not JSON") from None
        if response.status_code == 404 and gone:
            raise ItemGone(path)
        if response.status_code in {401, 403}:
            raise SourceFailed(f"{name} refused {what} ({response.status_code})")
        if response.status_code == 400:
            raise SourceFailed(f"{name} rejected {what}: {_error_messages(response)}")
        raise SourceFailed(f"{name} answered {response.status_code} for {what}")

    def _site_url(self) -> str:
        """Where people open issues: through api.atlassian.com/ex/jira/<cloud id>, the site
        serverInfo names."""
        if self._site is None:
            self._site = self._base
            if httpx.URL(self._base).path.startswith("/ex/jira/"):
                info = dict_of(self._content("serverInfo", {}, "the server info")) or {}
                base_url = info.get("baseUrl")
                if isinstance(base_url, str) and base_url.startswith(("https://", "http://")):
                    self._site = base_url.rstrip("/")
        return self._site


def _issue_id(key: str) -> str:
    kind, _, issue_id = key.partition(":")
    if kind != "issue" or not issue_id.isdigit():
        raise ItemGone(key)  # not one of this reader's keys: nothing to read
    return quote(issue_id)


def _issue_text(title: str, fields: dict[str, Any], comments: list[dict[str, Any]]) -> str:
    facts = [
        f"{label}: {_name(fields.get(field))}"
        for label, field in (("Status", "status"), ("Type", "issuetype"), ("Priority", "priority"))
        if _name(fields.get(field))
    ]
    parts = [f"# {title}", " | ".join(facts), adf_to_text(fields.get("description"), 1)]
    if comments:
        parts.append("## Comments")
    for comment in comments:
        author = _name(comment.get("author"), "displayName") or "Unknown"
        parts.append(f"### {author}, {comment.get('created', '')}".rstrip(", "))
        parts.append(adf_to_text(comment.get("body"), 3))
    return "\n\n".join(part for part in parts if part) + "\n"


def _metadata(issue_key: str, fields: dict[str, Any]) -> dict[str, Any]:
    reporter, assignee = dict_of(fields.get("reporter")), dict_of(fields.get("assignee"))
    return {
        "project": _name(fields.get("project"), "key"),
        "issue_key": issue_key,
        "status": _name(fields.get("status")),
        "issue_type": _name(fields.get("issuetype")),
        "priority": _name(fields.get("priority")),
        "labels": [label for label in list_of(fields.get("labels")) if isinstance(label, str)],
        "reporter_account_id": _name(reporter, "accountId"),
        "reporter": _name(reporter, "displayName"),
        "assignee_account_id": _name(assignee, "accountId"),
        "assignee": _name(assignee, "displayName"),
        "created": str(fields.get("created") or ""),
        "updated": str(fields.get("updated") or ""),
    }


def _name(value: Any, attribute: str = "name") -> str:
    found = value.get(attribute) if isinstance(value, dict) else None
    return found if isinstance(found, str) else ""


def _error_messages(response: httpx.Response) -> str:
    """Jira's own words from a 400 ({"errorMessages": [...], "errors": {...}}), shortened."""
    try:
        body = response.json()
    except ValueError:
        return "no reason given"
    body = body if isinstance(body, dict) else {}
    errors = dict_of(body.get("errors")) or {}
    messages = [m for m in list_of(body.get("errorMessages")) if isinstance(m, str)]
    messages += [str(m) for m in errors.values()]
    return "; ".join(messages)[:500] or "no reason given"
