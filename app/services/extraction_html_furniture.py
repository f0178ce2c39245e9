"""Which parts of an HTML page are menus or contents lists rather than content: elements whose
class names say so, and lists, tables and divisions whose text is nearly all link text, counted
as extraction_html's walk goes (one pass, whatever the page)."""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bs4 import Tag

# The class names documentation generators give their menus and contents lists: DocBook's toc,
# navheader and navfooter (and valgrind's nav tables), Sphinx's sphinxsidebar and related bars,
# Javadoc's topNav, subNav and bottomNav, and breadcrumb trails.
_NAV_CLASSES = {
    "toc",
    "nav",
    "navbar",
    "navheader",
    "navfooter",
    "sphinxsidebar",
    "related",
    "topnav",
    "subnav",
    "bottomnav",
    "breadcrumb",
    "breadcrumbs",
}
# Where link-dense text is a menu. Not a single cell, item or paragraph: in an API reference,
# the cell naming a function is one link.
_CONTAINERS = {"ul", "ol", "dl", "table", "div"}
_MIN_LINKS = 3
_MIN_LINK_SHARE = 0.75


class Furniture:
    """Counts text and link text as the walk enters and leaves elements, and keeps the entry
    spans of the elements it takes for furniture."""

    def __init__(self) -> None:
        self._chars = self._link_chars = self._links = self._open_links = 0
        self._at_entry: dict[int, tuple[int, int, int]] = {}
        self._spans: list[tuple[int, int]] = []
        self._starts: list[int] | None = None

    def enter(self, tag: Tag) -> None:
        if _is_link(tag):
            self._links += 1
            self._open_links += 1
        if tag.name in _CONTAINERS or _nav_class(tag):
            self._at_entry[id(tag)] = (self._chars, self._link_chars, self._links)

    def text(self, text: str) -> None:
        size = len("".join(text.split()))
        self._chars += size
        if self._open_links:
            self._link_chars += size

    def leave(self, tag: Tag, span: list[int]) -> None:
        if _is_link(tag):
            self._open_links -= 1
        counts = self._at_entry.pop(id(tag), None)
        if counts is None:
            return
        chars, link_chars = self._chars - counts[0], self._link_chars - counts[1]
        links = self._links - counts[2]
        if _nav_class(tag) or (links >= _MIN_LINKS and link_chars >= _MIN_LINK_SHARE * chars):
            self._spans.append((span[0], span[1]))

    def holds(self, entry: int) -> bool:
        """Whether the element entered `entry`-th is (inside) furniture; asked after the walk."""
        if self._starts is None:  # the outermost spans: the others lie inside them
            outermost: list[tuple[int, int]] = []
            for start, end in sorted(self._spans):
                if not outermost or start > outermost[-1][1]:
                    outermost.append((start, end))
            self._spans, self._starts = outermost, [start for start, _ in outermost]
        at = bisect_right(self._starts, entry) - 1
        return at >= 0 and entry <= self._spans[at][1]


def _is_link(tag: Tag) -> bool:
    return tag.name == "a" and tag.has_attr("href")


def _nav_class(tag: Tag) -> bool:
    return any(str(name).lower() in _NAV_CLASSES for name in tag.get_attribute_list("class"))
