"""Confluence storage format (XHTML with `ac:` macros and `ri:` resources) to clean text: headings
as Markdown, list items, table rows, fenced code; links as their text; images, attachments and
macro parameters dropped.

The walk is iterative (a stack), so a deeply nested page cannot exhaust Python's recursion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bs4 import Tag

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Blocks of their own, even inside another block (a list inside a list item splits it).
_BLOCKS = _HEADINGS | {"li", "tr", "pre", "ac:task"}
# Blocks when they stand alone, a space when inside one (a paragraph in a list item or a cell).
_SOFT_BLOCKS = {"p", "div", "blockquote", "table", "ul", "ol", "hr", "dl", "dt", "dd"}
_SKIPPED = {
    "script",
    "style",
    "ac:image",
    "ri:attachment",
    "ac:parameter",  # a macro's settings, not its content
    "ac:plain-text-body",  # the raw body of a macro other than code (an `html` macro, say)
    "ac:placeholder",
    "ac:emoticon",
    "ac:task-id",
    "ac:task-status",
    "ac:inline-comment-marker-ref",
}
_CODE_MACROS = {"code", "noformat"}
_LINES = {"li", "tr", "ac:task"}  # consecutive ones are lines of one block (a list, a table)


class _Writer:
    """The blocks written so far, and the blocks open around the walk's position with their text
    so far (innermost last)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[bool, str]] = []  # (a line of a list or table, text)
        self.open: list[tuple[Tag, str, list[str]]] = []
        self.loose: list[str] = []
        self.numbers: dict[int, int] = {}  # id of an <ol> -> its items so far

    def text(self, value: str) -> None:
        (self.open[-1][2] if self.open else self.loose).append(value)

    def enter(self, tag: Tag) -> None:
        if tag.name in _BLOCKS:
            self._split()
            self.open.append((tag, self._prefix(tag), []))
        elif tag.name in _SOFT_BLOCKS or tag.name == "br":
            if not self.open:
                self.flush()
            elif tag.name == "br" and self.open[-1][0].name == "pre":
                self.text("\n")
            else:
                self.text(" ")
        elif tag.name in {"td", "th"} and self.open and "".join(self.open[-1][2]).strip():
            self.text(" | ")

    def leave(self, tag: Tag) -> None:
        if self.open and tag is self.open[-1][0]:
            _, prefix, parts = self.open.pop()
            self._emit(prefix, parts, code=tag.name == "pre", line=tag.name in _LINES)
        elif tag.name in _SOFT_BLOCKS and not self.open:
            self.flush()

    def code(self, language: str, body: str) -> None:
        """A code macro's body, fenced, as a block of its own."""
        self._split()
        body = body.strip("\n")
        if body.strip():
            self.blocks.append((False, f"```{language}\n{body}\n```"))

    def flush(self) -> None:
        self._emit("", self.loose)
        self.loose = []

    def _split(self) -> None:
        """Writes the text before a nested block, so the outer block's rest follows it."""
        if self.open:
            tag, prefix, parts = self.open[-1]
            self._emit(prefix, parts, line=tag.name in _LINES)
            parts.clear()
        else:
            self.flush()

    def _emit(self, prefix: str, parts: list[str], code: bool = False, line: bool = False) -> None:
        raw = "".join(parts)
        if code:
            text = "\n".join(row.rstrip() for row in raw.split("\n")).strip("\n")
            if text.strip():
                self.blocks.append((False, f"```\n{text}\n```"))
            return
        text = " ".join(raw.split())
        if text:
            self.blocks.append((line, prefix + text))

    def _prefix(self, tag: Tag) -> str:
        if tag.name in _HEADINGS:
            return "#" * int(tag.name[1]) + " "
        if tag.name not in {"li", "ac:task"}:
            return ""
        depth = sum(1 for parent in tag.parents if parent.name in {"ul", "ol", "ac:task-list"})
        indent = "  " * max(depth - 1, 0)
        parent = tag.parent
        if parent is not None and parent.name == "ol":
            self.numbers[id(parent)] = self.numbers.get(id(parent), 0) + 1
            return f"{indent}{self.numbers[id(parent)]}. "
        return f"{indent}- "


def _link_text(link: Tag) -> str:
    """An `ac:link`'s text: its body, else the title of the page it names, else nothing (a link
    to a user or an attachment names no text worth keeping)."""
    body = link.find(["ac:link-body", "ac:plain-text-link-body"])
    if body is not None and body.get_text(strip=True):
        return str(body.get_text())
    page = link.find("ri:page")
    if page is not None:
        return str(page.get("ri:content-title") or "")
    return ""


def _macro_name(tag: Tag) -> str:
    return str(tag.get("ac:name") or "").lower()


def _code_macro(writer: _Writer, macro: Tag) -> None:
    language = ""
    for parameter in macro.find_all("ac:parameter", recursive=False):
        if str(parameter.get("ac:name") or "").lower() == "language":
            language = parameter.get_text(strip=True)
    body = macro.find("ac:plain-text-body", recursive=False)
    writer.code(language, body.get_text() if body is not None else "")


def storage_to_text(storage: str) -> str:
    """The clean text of a page's storage-format body."""
    from bs4 import BeautifulSoup, CData, Tag
    from bs4.element import NavigableString

    writer = _Writer()
    stack: list[tuple[Any, bool]] = [(BeautifulSoup(storage, "html.parser"), True)]
    while stack:
        node, entering = stack.pop()
        if not entering:
            writer.leave(node)
        elif isinstance(node, Tag):
            if node.name in _SKIPPED:
                continue
            if node.name == "ac:structured-macro" and _macro_name(node) in _CODE_MACROS:
                _code_macro(writer, node)
            elif node.name == "ac:link":
                writer.text(_link_text(node))
            elif node.name == "time" and node.get("datetime"):
                writer.text(str(node["datetime"]))
            else:
                writer.enter(node)
                stack.append((node, False))
                stack.extend((child, True) for child in reversed(node.contents))
        elif type(node) in (NavigableString, CData):  # not comments or processing instructions
            writer.text(str(node))
    writer.flush()
    joined = []
    for i, (line, text) in enumerate(writer.blocks):
        if i:
            joined.append("\n" if line and writer.blocks[i - 1][0] else "\n\n")
        joined.append(text)
    return "".join(joined)
