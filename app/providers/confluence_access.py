"""Who may read a Confluence page: the space's read permission, then every read restriction on the
page and its ancestors, each a level a reader must pass.

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
