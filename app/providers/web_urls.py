"""The web source's addresses: normalised, in scope or not, and the crawl's frontier, which a
listing's cursor carries from one page of the listing to the next (and across a crash)."""

from __future__ import annotations

import base64
import json
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

from app.providers.source_items import SourceFailed

_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2000
_CURSOR_VERSION = 1


def normalised(url: str, base: str | None = None) -> str | None:
    """`url` (relative to `base`) as the crawl compares addresses: http(s) only, scheme and host
    in lowercase, no default port, no fragment, no dot segments, an empty path as "/"; None for
    anything else (mailto:, javascript:, credentials in the address, garbage)."""
    try:
        parts = urlsplit(urljoin(base, url.strip()) if base else url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = parts.hostname  # lowercase already
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path or "/"
    if "/." in path:  # urljoin resolves them in relative references only
        path = urlsplit(urljoin("http://h/", "." + path)).path
    found = urlunsplit((scheme, netloc, path, parts.query, ""))
    return found if len(found) <= MAX_URL_CHARS else None


def origin(url: str) -> str:
    """scheme://host[:port] of a normalised URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def folder(url: str) -> str:
    """The folder a normalised URL is in: its address up to the last "/" of its path."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path[: parts.path.rfind("/") + 1], "", ""))


class Scope:
    """The prefixes a source may read (string prefixes of normalised URLs), and the origins
    (scheme, host and port) they are on: no request ever goes elsewhere."""

    def __init__(self, prefixes: Iterable[str]) -> None:
        self.prefixes = tuple(sorted({p for p in map(normalised, prefixes) if p is not None}))
        self.origins = frozenset(origin(p) for p in self.prefixes)

    def allows(self, url: str) -> bool:
        return url.startswith(self.prefixes)

    def reaches(self, url: str) -> bool:
        return origin(url) in self.origins


# What a queued address is: a start URL (a page or a sitemap), a page found by a link, a
# sitemap named by a sitemap index, or a sitemap's entry (with its <lastmod>, maybe "").
START, PAGE, SITEMAP, ENTRY = "start", "page", "sitemap", "entry"


@dataclass(frozen=True)
class Queued:
    url: str
    depth: int
    kind: str
    lastmod: str = ""


@dataclass
class Frontier:
    """The crawl's state: the addresses queued (breadth-first), those ever queued, and the
    pages listed so far. `limit` bounds the addresses remembered, so the cursor stays small."""

    limit: int
    queue: deque[Queued] = field(default_factory=deque)
    seen: set[str] = field(default_factory=set)
    listed: set[str] = field(default_factory=set)

    def add(self, url: str, depth: int, kind: str, lastmod: str = "") -> None:
        if url not in self.seen and len(self.seen) < self.limit:
            self.seen.add(url)
            self.queue.append(Queued(url, depth, kind, lastmod))

    def cursor(self) -> str:
        state = {
            "v": _CURSOR_VERSION,
            "queue": [[q.url, q.depth, q.kind, q.lastmod] for q in self.queue],
            "seen": sorted(self.seen),
            "listed": sorted(self.listed),
        }
        packed = zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)
        return base64.urlsafe_b64encode(packed).decode()

    @classmethod
    def from_cursor(cls, cursor: str, limit: int) -> Frontier:
        try:
            state = json.loads(zlib.decompress(base64.urlsafe_b64decode(cursor)))
            if state["v"] != _CURSOR_VERSION:
                raise ValueError(state["v"])
            return cls(
                limit,
                deque(Queued(str(u), int(d), str(k), str(m)) for u, d, k, m in state["queue"]),
                set(map(str, state["seen"])),
                set(map(str, state["listed"])),
            )
        except (ValueError, TypeError, KeyError, zlib.error) as exc:
            raise SourceFailed(f"web source: the checkpoint cannot be read ({exc})") from None
