"""HTML to blocks: the page's main content, in document order, under its headings.

The main content is the page's <main> element when it has one. trafilatura then tells which
text is content rather than menus, sidebars or dialogs, and the blocks are read from the page
itself: everything inside the smallest element that holds all of that text, so headings, lists,
tables and code keep their place (trafilatura's own output drops some headings and repeats).
The walk is iterative and linear, whatever the nesting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

from app.services.extraction import Block, Headings
from app.services.extraction_html_furniture import Furniture

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

_SKIPPED_TAGS = {
    "head",
    "script",
    "style",
    "nav",
    "footer",
    "aside",
    "noscript",
    "template",
    "form",
    "svg",
    "iframe",
    "button",
    "dialog",
    "menu",
    "select",
    "textarea",
    "object",
    "canvas",
}
# ARIA roles of page furniture rather than content.
_SKIPPED_ROLES = {
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "dialog",
    "alertdialog",
    "menu",
    "menubar",
    "search",
    "toolbar",
    "tablist",
    "tooltip",
}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {
    "p",
    "li",
    "pre",
    "blockquote",
    "td",
    "th",
    "dt",
    "dd",
    "figcaption",
    "caption",
}
_BREAKS = {
    "div",
    "section",
    "article",
    "main",
    "header",
    "br",
    "hr",
    "table",
    "tr",
    "ul",
    "ol",
    "dl",
    "figure",
    "details",
    "summary",
    "address",
    "body",
}


# Zero-width characters, as in the anchor links of some documentation generators.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_PERMALINKS = "¶§🔗"
_PERMALINK_SIGNS = {"#", *_PERMALINKS}
# Menus and contents lists are dropped unless what is left is less than a tenth of them.
_MIN_LEFT_BY_DROPPED = 10


@dataclass(frozen=True)
class _Item:
    level: int | None  # a heading's level
    text: str
    element: Tag  # the block's element; for loose text, the element holding it


class _Walk:
    """The items under a root, and each element's span of entry numbers (its own, then its last
    descendant's), which tell in constant time whether one element is inside another."""

    def __init__(self, root: Tag) -> None:
        self.items: list[_Item] = []
        self.spans: dict[int, list[int]] = {}
        self.furniture = Furniture()
        # The blocks open around the position, innermost last, each with its text so far: a
        # block inside another (a paragraph in a list item or in a layout table's cell) is one
        # of its own, and splits the outer one's text around it.
        self._open: list[tuple[Tag, list[str]]] = []
        self._loose: list[str] = []
        self._loose_parent: Any = None
        self._run(root)

    def contains(self, outer: Any, inner: Tag) -> bool:
        span, at = self.spans.get(id(outer)), self.spans[id(inner)][0]
        return span is not None and span[0] <= at <= span[1]

    def common_ancestor(self, first: Tag, other: Tag) -> Tag:
        """The innermost element holding both (the root at most: it holds all that was walked)."""
        return next(node for node in chain([first], first.parents) if self.contains(node, other))

    def _run(self, root: Tag) -> None:
        from bs4 import CData, Tag
        from bs4.element import NavigableString

        entered = 0
        stack: list[tuple[Any, bool]] = [(root, True)]
        while stack:
            node, entering = stack.pop()
            if not entering:
                self.spans[id(node)][1] = entered
                self.furniture.leave(node, self.spans[id(node)])
                self._leave(node)
            elif isinstance(node, Tag):
                if _skipped(node):
                    continue
                entered += 1
                self.spans[id(node)] = [entered, entered]
                self.furniture.enter(node)
                self._enter(node)
                stack.append((node, False))
                stack.extend((child, True) for child in reversed(node.contents))
            elif type(node) in (NavigableString, CData):  # not comments, doctypes, ...
                self.furniture.text(node)
                if self._open:
                    self._open[-1][1].append(str(node))
                else:
                    if self._loose_parent is None:
                        self._loose_parent = node.parent
                    self._loose.append(str(node))
        self._flush()

    def _enter(self, tag: Tag) -> None:
        if tag.name in _BLOCKS:
            if self._open:
                self._emit(*self._open[-1])
                self._open[-1][1].clear()
            else:
                self._flush()
            self._open.append((tag, []))
        elif self._open and tag.name in _BREAKS:
            inner, parts = self._open[-1]
            parts.append("\n" if inner.name == "pre" and tag.name == "br" else " ")
        elif tag.name in _BREAKS:
            self._flush()

    def _leave(self, tag: Tag) -> None:
        if self._open and tag is self._open[-1][0]:
            self._emit(*self._open.pop())
        elif not self._open and tag.name in _BREAKS:
            self._flush()

    def _emit(self, tag: Tag, parts: list[str]) -> None:
        raw = "".join(parts)
        if tag.name == "pre":  # code keeps its lines
            text = "\n".join(line.rstrip() for line in raw.split("\n")).strip("\n")
        else:
            text = " ".join(raw.translate(_INVISIBLE).split())
        level = int(tag.name[1]) if tag.name in _HEADINGS else None
        if level is not None:  # the permalink signs documentation generators add
            text = text.rstrip(_PERMALINKS).rstrip()
        if text.strip():
            self.items.append(_Item(level, text, tag))

    def _flush(self) -> None:
        text = " ".join("".join(self._loose).split())
        if text:
            self.items.append(_Item(None, text, self._loose_parent))
        self._loose, self._loose_parent = [], None


def _skipped(tag: Tag) -> bool:
    """Page furniture, or hidden."""
    style = str(tag.get("style") or "").replace(" ", "").lower()
    return (
        tag.name in _SKIPPED_TAGS
        or str(tag.get("role") or "").lower() in _SKIPPED_ROLES
        or tag.has_attr("hidden")
        or str(tag.get("aria-hidden") or "").lower() == "true"
        or "display:none" in style
        or _is_permalink(tag)
    )


def _is_permalink(tag: Tag) -> bool:
    """A link to its own heading or paragraph, shown as a sign: Node.js' "#", Sphinx's "¶"."""
    return (
        tag.name == "a"
        and str(tag.get("href") or "").startswith("#")
        and tag.get_text(strip=True) in _PERMALINK_SIGNS
    )


def blocks(data: bytes) -> list[Block]:
    """The blocks of the page's main content, with their heading paths."""
    from bs4 import BeautifulSoup

    try:  # valid UTF-8 is unambiguous; otherwise the page's <meta charset> or a guess
        markup: str | bytes = data.decode("utf-8")
    except UnicodeDecodeError:
        markup = data
    soup = BeautifulSoup(markup, "html.parser")
    walk = _Walk(_main_element(soup) or soup.body or soup)
    return _under_headings(_without_furniture(walk, _main_content(walk, _content_keys(markup))))


def whole_blocks(data: bytes) -> list[Block]:
    """The blocks of the whole body, with their heading paths: for an e-book's chapter or an
    e-mail, all content, where telling content from menus would only drop short chapters'
    headings."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    return _under_headings(_Walk(soup.body or soup).items)


def _under_headings(items: list[_Item]) -> list[Block]:
    headings = Headings()
    found = []
    for item in items:
        if item.level is not None and item.text:
            headings.enter(item.level, item.text)
        found.append(Block(item.text, headings.path, None))
    return found


def fragment_texts(markup: str) -> list[str]:
    """The texts of an HTML fragment's blocks (as in Markdown), all of them, in order."""
    from bs4 import BeautifulSoup

    return [item.text for item in _Walk(BeautifulSoup(markup, "html.parser")).items]


def _main_element(soup: BeautifulSoup) -> Tag | None:
    """The page's <main> (or role=main), which the HTML standard says holds its content."""
    found = soup.find(
        lambda tag: (tag.name == "main" or tag.get("role") == "main") and not _skipped(tag)
    )
    return found if found is not None and found.get_text(strip=True) else None


def _main_content(walk: _Walk, keys: tuple[set[str], set[str]] | None) -> list[_Item]:
    """The items inside the smallest element holding every paragraph trafilatura kept, and the
    heading just before it if trafilatura kept that too (an article's title above its body)."""
    if keys is None:
        return walk.items
    texts, headings = keys
    matched = [item for item in walk.items if item.level is None and _key(item.text) in texts]
    if not matched:
        return walk.items
    container = walk.common_ancestor(matched[0].element, matched[-1].element)
    before = None
    for item in walk.items:
        if walk.contains(container, item.element):
            break
        before = item if item.level is not None else before
    if before is not None and _key(before.text) in headings:
        container = walk.common_ancestor(container, before.element)
    return [item for item in walk.items if walk.contains(container, item.element)]


def _without_furniture(walk: _Walk, items: list[_Item]) -> list[_Item]:
    """The items outside menus and contents lists, unless hardly anything but headings is left: a
    page that is an index of links (Texinfo's, a book's contents) is its own content."""
    kept, dropped = [], 0
    for item in items:
        if walk.furniture.holds(walk.spans[id(item.element)][0]):
            dropped += len(item.text)
        else:
            kept.append(item)
    left = sum(len(item.text) for item in kept if item.level is None)
    return kept if left * _MIN_LEFT_BY_DROPPED >= dropped else items


def _key(text: str) -> str:
    return "".join(text.split())


def _content_keys(markup: str | bytes) -> tuple[set[str], set[str]] | None:
    """The texts (whitespace removed) of what trafilatura takes for the page's main content:
    paragraphs, list items, cells, code, and apart, headings."""
    import trafilatura
    from lxml import html as lxml_html

    try:
        content = trafilatura.extract(
            markup,
            output_format="html",
            fast=True,
            favor_recall=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            deduplicate=False,
            config=_trafilatura_config(),
        )
    except Exception:  # noqa: BLE001 - without its hint the whole page is read
        return None
    if not content:
        return None
    texts: set[str] = set()
    headings: set[str] = set()
    for element in lxml_html.fromstring(content).iter():
        if isinstance(element.tag, str):
            found = headings if element.tag in _HEADINGS else texts
            found.add(_key(element.text_content()))
    return texts, headings


@cache
def _trafilatura_config() -> Any:
    from trafilatura.settings import use_config

    # It logs errors for pages it finds nothing in (a bare fragment, say): only a missing hint.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    config = use_config()
    # Short pages have main content too: what trafilatura keeps only points at the container.
    config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
    config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
    return config
