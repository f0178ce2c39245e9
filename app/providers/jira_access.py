"""Who may browse a Jira issue: the BROWSE_PROJECTS grants of its project's permission scheme
(groups, users, project roles, everyone), narrowed by the issue's security level when it has one.
Anything that cannot be read (403, 404, an answer of the wrong shape) fails closed: None."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from app.providers.source_http import SourceHttp
from app.providers.source_items import Access, SourceFailed

# What a scope-less OAuth token, a non-admin user or a missing API answers.
_CANNOT_SAY = {400, 401, 403, 404}
_EVERYONE = {"anyone", "applicationrole"}  # applicationRole: whoever may use Jira at all
# The issue's fields its access depends on (the listing asks for them too).
ACCESS_FIELDS = "project,security,reporter,assignee"
# Per-issue holders, resolved against the issue's own reporter and assignee.
_RELATIVE = {"reporter", "assignee"}


class _Unknown(Exception):
    """A permission the API would not tell: the issue's access is unknown (fail closed)."""


@dataclass(frozen=True)
class _Grant:
    everyone: bool = False
    account_ids: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    relative: frozenset[str] = frozenset()  # "reporter", "assignee"

    def union(self, other: _Grant) -> _Grant:
        return _Grant(
            self.everyone or other.everyone,
            self.account_ids | other.account_ids,
            self.groups | other.groups,
            self.relative | other.relative,
        )

    def for_issue(self, people: Mapping[str, str]) -> _Grant:
        accounts = {people[role] for role in self.relative if people.get(role)}
        return _Grant(self.everyone, self.account_ids | accounts, self.groups)

    def intersect(self, other: _Grant) -> _Grant:
        """Who is in both. Group membership is not read, so a user granted by name on one side
        and only through a group on the other is left out: narrower, never wider."""
        if self.everyone or other.everyone:
            return other if self.everyone else self
        return _Grant(False, self.account_ids & other.account_ids, self.groups & other.groups)


class JiraAccess:
    """Reads and caches (per project, per security level, for one reader's life) the grants."""

    def __init__(self, api: str, http: SourceHttp) -> None:
        self._api, self._http = api, http
        self._browse: dict[str, _Grant | None] = {}
        self._levels: dict[tuple[str, str], _Grant | None] = {}
        self._roles: dict[tuple[str, str], _Grant] = {}

    def access(self, issue_id: str, fields: Mapping[str, Any] | None = None) -> Access | None:
        """Who may browse the issue; `fields` (ACCESS_FIELDS), when the listing brought them,
        spare a request."""
        try:
            return self._access(issue_id, fields)
        except _Unknown:
            return None

    def _access(self, issue_id: str, fields: Mapping[str, Any] | None) -> Access | None:
        if fields is None:
            issue = self._json(f"issue/{issue_id}", {"fields": ACCESS_FIELDS})
            fields = dict_of(issue.get("fields")) or {}
        project = (dict_of(fields.get("project")) or {}).get("key")
        if not isinstance(project, str):
            return None
        people = {role: _account(fields.get(role)) for role in _RELATIVE}
        browse = self._cached(self._browse, project, lambda: self._browse_grant(project))
        if browse is None:
            return None
        grant = browse.for_issue(people)
        security = dict_of(fields.get("security"))
        if security is not None:
            level_id = str(security.get("id", ""))
            level = self._cached(
                self._levels, (project, level_id), lambda: self._level_grant(project, level_id)
            )
            if level is None:
                return None
            grant = grant.intersect(level.for_issue(people))
        if grant.everyone:
            return Access(everyone=True)
        return Access(
            account_ids=tuple(sorted(grant.account_ids)), groups=tuple(sorted(grant.groups))
        )

    def _cached(
        self, cache: dict[Any, _Grant | None], key: Any, read: Callable[[], _Grant]
    ) -> _Grant | None:
        if key not in cache:
            try:
                cache[key] = read()
            except _Unknown:
                cache[key] = None
        return cache[key]

    def _browse_grant(self, project: str) -> _Grant:
        project_path = quote(project, safe="")
        scheme = self._json(f"project/{project_path}/permissionscheme", {})
        scheme_id = quote(str(scheme.get("id", "")), safe="")
        details = self._json(f"permissionscheme/{scheme_id}", {"expand": "permissions"})
        holders = [
            dict_of(grant.get("holder")) or {}
            for grant in _dicts(details.get("permissions"))
            if grant.get("permission") == "BROWSE_PROJECTS"
        ]
        return self._holders(project, holders)

    def _level_grant(self, project: str, level_id: str) -> _Grant:
        if not level_id.isdigit():
            raise _Unknown(level_id)
        holders: list[dict[str, Any]] = []
        while True:  # a page of members after another, until isLast
            params = {"levelId": level_id, "startAt": len(holders), "maxResults": 100}
            page = self._json("issuesecurityschemes/level/member", params)
            members = _dicts(page.get("values"))
            holders += [dict_of(member.get("holder")) or {} for member in members]
            if page.get("isLast") is not False or not members:
                return self._holders(project, holders)

    def _holders(self, project: str, holders: Iterable[dict[str, Any]]) -> _Grant:
        grant = _Grant()
        for holder in holders:
            grant = grant.union(self._holder(project, holder))
        return grant

    def _holder(self, project: str, holder: dict[str, Any]) -> _Grant:
        """One permission holder (types as Jira names them); unknown types grant nobody."""
        kind = str(holder.get("type", "")).lower()
        parameter = str(holder.get("parameter") or "")
        if kind in _EVERYONE:
            return _Grant(everyone=True)
        if kind == "group":
            name = (dict_of(holder.get("group")) or {}).get("name") or parameter
            return _Grant(groups=frozenset({str(name)} if name else ()))
        if kind == "user":
            account = _account(holder.get("user")) or parameter
            return _Grant(account_ids=frozenset({account} if account else ()))
        if kind == "projectrole":
            return self._role(project, parameter)
        if kind in _RELATIVE:
            return _Grant(relative=frozenset({kind}))
        return _Grant()

    def _role(self, project: str, role_id: str) -> _Grant:
        if not role_id.isdigit():
            raise _Unknown(role_id)
        if (project, role_id) not in self._roles:
            role = self._json(f"project/{quote(project, safe='')}/role/{role_id}", {})
            accounts, groups = set(), set()
            for actor in _dicts(role.get("actors")):
                if actor.get("type") == "atlassian-user-role-actor":
                    accounts.add(_account(actor.get("actorUser")))
                elif actor.get("type") == "atlassian-group-role-actor":
                    group = dict_of(actor.get("actorGroup")) or {}
                    groups.add(str(group.get("name") or actor.get("name") or ""))
            self._roles[project, role_id] = _Grant(
                account_ids=frozenset(accounts - {""}), groups=frozenset(groups - {""})
            )
        return self._roles[project, role_id]

    def _json(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A permission API's JSON object; _Unknown when it cannot or will not say, and
        SourceFailed when Jira fails (5xx): a passing outage must not hide an issue for good."""
        response = self._http.get(f"{self._api}/{path}", params)
        if response.status_code in _CANNOT_SAY:
            raise _Unknown(path)
        if response.status_code != 200:
            raise SourceFailed(f"{self._http.name} answered {response.status_code} for access")
        try:
            body = dict_of(response.json())
        except ValueError:
            body = None
        if body is None:
            raise _Unknown(path)
        return body


def dict_of(value: Any) -> dict[str, Any] | None:
    """`value` when it is a JSON object, else None (answers are checked, never trusted)."""
    return value if isinstance(value, dict) else None


def list_of(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in list_of(value) if isinstance(item, dict)]


def _account(user: Any) -> str:
    account = user.get("accountId") if isinstance(user, dict) else None
    return account if isinstance(account, str) else ""
