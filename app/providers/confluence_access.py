"""Who may read a Confluence page: the space's read permission (v2), then every read restriction
(v1) on the page and its ancestors, each a level a reader must pass.

A user named in any restriction is checked exactly against every level (directly, or through the
groups Confluence says they belong to). A group is kept only when every level names it, so its
members pass everywhere through it. Members of a group who pass some level only through their own
name are not enumerated: they lose access (never the reverse). Space permissions granted through
a role are not read, with the same effect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.providers.confluence_api import UNREADABLE, ConfluenceApi
from app.providers.source_items import Access

# v2 names anonymous access to a space as a principal with this id.
_ANONYMOUS = "ANONYMOUS"


@dataclass(frozen=True)
class Level:
    everyone: bool = False
    users: frozenset[str] = frozenset()  # account ids
    # group key ("id:<id>", or "name:<name>" where Confluence gives no id) -> name ("" if unknown)
    groups: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def of_space(assignments: Iterable[Any]) -> Level:
        """The space's readers from v2 permission assignments (`read` on `space`)."""
        everyone, users, groups = False, set(), {}
        for assignment in assignments:
            operation, principal = assignment["operation"], assignment["principal"]
            if (operation["key"], operation["targetType"]) != ("read", "space"):
                continue
            kind, principal_id = principal["type"], str(principal["id"])
            if principal_id.upper() == _ANONYMOUS:
                everyone = True
            elif kind == "user":
                users.add(principal_id)
            elif kind == "group":
                groups[f"id:{principal_id}"] = ""
        return Level(everyone, frozenset(users), groups)

    @staticmethod
    def of_restriction(users: Iterable[Any], groups: Iterable[Any]) -> Level:
        """A v1 read restriction's users (by account id) and groups."""
        return Level(
            users=frozenset(str(user["accountId"]) for user in users),
            groups={_group_key(group): str(group["name"]) for group in groups},
        )

    @staticmethod
    def group_keys(groups: Iterable[Any]) -> frozenset[str]:
        """Every key a user's groups may be named by in a level."""
        keys = set()
        for group in groups:
            keys.add(f"name:{group['name']}")
            if group.get("id"):
                keys.add(f"id:{group['id']}")
        return frozenset(keys)


def _group_key(group: Any) -> str:
    return f"id:{group['id']}" if group.get("id") else f"name:{group['name']}"


def combine(
    space: Level,
    restricted: list[Level],
    groups_of: Callable[[str], frozenset[str] | None],
) -> Access | None:
    """The readers who pass the space and every restriction; None when a user's groups cannot
    be read (fail closed)."""
    levels = [space, *restricted]
    accounts = []
    for account in sorted(set().union(*(level.users for level in restricted))):
        passes = _passes(account, levels, groups_of)
        if passes is None:
            return None
        if passes:
            accounts.append(account)
    first = restricted[0]
    names = {
        name
        for key, name in first.groups.items()
        if all(level.everyone or key in level.groups for level in levels)
    }
    return Access(account_ids=tuple(accounts), groups=tuple(sorted(names)))


def _passes(
    account: str, levels: list[Level], groups_of: Callable[[str], frozenset[str] | None]
) -> bool | None:
    memberships: frozenset[str] | None = None
    for level in levels:
        if level.everyone or account in level.users:
            continue
        if memberships is None:
            memberships = groups_of(account)
            if memberships is None:
                return None
        if not memberships & level.groups.keys():
            return False
    return True


class ConfluenceAccess:
    """The readers of pages, keeping what pages share (their space's permissions, an ancestor's
    restriction, a group's name, a user's groups) for its life: one sync run."""

    def __init__(self, api: ConfluenceApi) -> None:
        self._api = api
        self._space_levels: dict[str, Level | None] = {}
        self._restrictions: dict[str, Level | None] = {}
        self._group_names: dict[str, str] = {}
        self._user_groups: dict[str, frozenset[str] | None] = {}

    def of_page(self, page_id: str, place: tuple[str, list[str]] | None = None) -> Access | None:
        """The page's readers; None when any of it cannot be read (fail closed). `place` is the
        page's space id and ancestors when the listing showed them (two requests fewer)."""
        if place is None:
            place = self._place(page_id)
            if place is None:
                return None
        space_id, ancestors = place
        space = self._space_level(space_id)
        if space is None:
            return None
        chain = [*ancestors, page_id]
        restricted = []
        for content_id in chain:
            level = self._restriction(content_id)
            if level is None:
                return None
            if level.users or level.groups:
                restricted.append(level)
        if not restricted:
            return self._space_access(space)
        return combine(space, restricted, self._groups_of)

    def _place(self, page_id: str) -> tuple[str, list[str]] | None:
        """The page's space id and ancestors (top-most first), asked of the API."""
        url = f"{self._api.v2}/pages/{page_id}"
        page = self._api.json(url, absent=UNREADABLE)
        ancestors = self._api.all(f"{url}/ancestors", {}, absent=UNREADABLE)
        if page is None or ancestors is None:
            return None
        with self._api.shape(url):
            return str(page["spaceId"]), [str(ancestor["id"]) for ancestor in ancestors]

    def _space_level(self, space_id: str) -> Level | None:
        if space_id not in self._space_levels:
            url = f"{self._api.v2}/spaces/{space_id}/permissions"
            found = self._api.all(url, {}, absent=UNREADABLE)
            with self._api.shape(url):
                self._space_levels[space_id] = None if found is None else Level.of_space(found)
        return self._space_levels[space_id]

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
            url = f"{self._api.v1}/group/by-id"
            group = self._api.json(url, {"id": group_id}, absent=UNREADABLE)
            if group is None:
                return None
            with self._api.shape(url):
                self._group_names[group_id] = str(group["name"])
        return self._group_names[group_id]

    def _restriction(self, content_id: str) -> Level | None:
        """The users and groups a content's read restriction names (none: not restricted)."""
        if content_id not in self._restrictions:
            url = f"{self._api.v1}/content/{content_id}/restriction/byOperation/read"
            bodies = self._api.v1_bodies(url, {}, UNREADABLE, _restricted_count)
            with self._api.shape(url):
                self._restrictions[content_id] = (
                    None
                    if bodies is None
                    else Level.of_restriction(
                        [user for body in bodies for user in _restricted(body, "user")],
                        [group for body in bodies for group in _restricted(body, "group")],
                    )
                )
        return self._restrictions[content_id]

    def _groups_of(self, account_id: str) -> frozenset[str] | None:
        """The keys of the groups a user belongs to."""
        if account_id not in self._user_groups:
            url = f"{self._api.v1}/user/memberof"
            params = {"accountId": account_id}
            bodies = self._api.v1_bodies(url, params, UNREADABLE, lambda b: len(b["results"]))
            with self._api.shape(url):
                self._user_groups[account_id] = (
                    None
                    if bodies is None
                    else Level.group_keys(group for body in bodies for group in body["results"])
                )
        return self._user_groups[account_id]


def _restricted(body: Any, kind: str) -> list[Any]:
    return list((body["restrictions"].get(kind) or {}).get("results") or [])


def _restricted_count(body: Any) -> int:
    return max(len(_restricted(body, "user")), len(_restricted(body, "group")))
