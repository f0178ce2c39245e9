"""What a source's client (Confluence, Jira, a website) hands the sync: pages of listed items with
their versions, an item's text and metadata, and who may read it at the source.

The sync (issue 19) lists everything, fetches only what is new or changed (by `version`), and
removes what the complete listing no longer names. Access is read separately, so that a
permission-only pass needs no fetch and no embedding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.errors import BadGateway


@dataclass(frozen=True)
class Listed:
    key: str  # unique and stable within the source: "page:98765", "issue:10042", a URL
    version: str  # changes whenever the content does: a page's version number, Jira's `updated`
    title: str = ""


@dataclass(frozen=True)
class Listing:
    items: tuple[Listed, ...]
    cursor: str | None  # pass it back for the next page; None once the listing is complete


@dataclass(frozen=True)
class Access:
    """Who may read an item at its source, named as the source knows them; the sync maps them
    to postrag users (by the account linked to them) and groups (by name). Never by email:
    an email a provider hands out is not proof of who reads it."""

    everyone: bool = False  # whoever may read the collection
    account_ids: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Item:
    key: str
    version: str
    title: str
    url: str  # where a citation links back to
    text: str  # clean text; headings as Markdown (`# Title`, `## Section`)
    metadata: Mapping[str, Any] = field(default_factory=dict)  # space, labels, author, updated


class ItemGone(Exception):
    """The item was deleted, archived or moved out of scope after it was listed."""


class SourceFailed(BadGateway):
    """The source refused (401/403 after a refresh), failed (5xx) or answered garbage; the
    message says which, never a token."""


class SourceReader(Protocol):
    def list_items(self, cursor: str | None) -> Listing: ...

    def fetch(self, key: str) -> Item: ...  # ItemGone when it disappeared meanwhile

    # None when the source cannot say (no permissions API, 404, refused): fail closed, the
    # source's owner alone reads the item.
    def access(self, key: str) -> Access | None: ...
