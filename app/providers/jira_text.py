"""Atlassian Document Format (Jira's rich text, JSON) as Markdown-ish clean text: headings with
`#`, lists, code blocks, tables as rows, mentions as @name, links as their text, cards as URLs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# Deeper than any editor produces; past it a node is flattened to its text, so a hostile
# document cannot exhaust the stack.
_MAX_DEPTH = 40
_INLINE_ATTR = {"emoji": ("text", "shortName"), "status": ("text",), "placeholder": ("text",)}
_CARDS = {"inlineCard", "blockCard", "embedCard"}
_INLINE = {"text", "hardBreak"}


def adf_to_text(document: Any, heading_offset: int = 0) -> str:
    """The text of an ADF document (a plain string passes through); headings are pushed down
    `heading_offset` levels so that they nest under the caller's own."""
    if isinstance(document, str):
        return document.strip()
    if not isinstance(document, dict):
        return ""
    return _Renderer(heading_offset).blocks(_children(document), 0).strip()


def plain_text(node: Any) -> str:
    """Every text a node holds, in order, without structure (iterative: no depth limit)."""
    parts: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, dict):
            continue
        if isinstance(current.get("text"), str):
            parts.append(current["text"])
        elif (inline := _inline_atom(current)) is not None:
            parts.append(inline)
        stack.extend(reversed(_children(current)))
    return "".join(parts)


class _Renderer:
    def __init__(self, heading_offset: int) -> None:
        self.heading_offset = heading_offset
        self.block_rules: dict[str, Callable[[dict[str, Any], int], str]] = {
            "paragraph": lambda node, depth: self.inline(node, depth),
            "heading": self.heading,
            "bulletList": self.bullet_list,
            "orderedList": self.ordered_list,
            "taskList": self.task_list,
            "decisionList": self.bullet_list,
            "codeBlock": self.code_block,
            "blockquote": self.blockquote,
            "rule": lambda node, depth: "---",
            "table": self.table,
            "expand": self.expand,
            "nestedExpand": self.expand,
        }

    def blocks(self, nodes: list[Any], depth: int) -> str:
        rendered = (self.block(node, depth + 1) for node in nodes if isinstance(node, dict))
        return "\n\n".join(text for text in rendered if text.strip())

    def block(self, node: dict[str, Any], depth: int) -> str:
        if depth > _MAX_DEPTH:
            return plain_text(node).strip()
        rule = self.block_rules.get(str(node.get("type")))
        if rule is not None:
            return rule(node, depth)
        if node.get("type") in _INLINE or _inline_atom(node) is not None:
            return self.inline_node(node, depth)
        # Panels, layouts, media wrappers and types this code has never seen: their content.
        return self.blocks(_children(node), depth)

    def inline(self, node: dict[str, Any], depth: int) -> str:
        return "".join(self.inline_node(child, depth + 1) for child in _children(node)).strip()

    def inline_node(self, node: Any, depth: int) -> str:
        if not isinstance(node, dict):
            return ""
        kind = node.get("type")
        if kind == "text":
            text = str(node.get("text", ""))
            marks = {mark.get("type") for mark in node.get("marks") or [] if isinstance(mark, dict)}
            return f"`{text}`" if "code" in marks else text
        if kind == "hardBreak":
            return "\n"
        if (atom := _inline_atom(node)) is not None:
            return atom
        return plain_text(node) if depth > _MAX_DEPTH else self.inline(node, depth)

    def heading(self, node: dict[str, Any], depth: int) -> str:
        level = _int(_attrs(node).get("level"), 1) + self.heading_offset
        return f"{'#' * min(6, max(1, level))} {self.inline(node, depth)}"

    def bullet_list(self, node: dict[str, Any], depth: int) -> str:
        return self.items(node, depth, lambda _: "- ")

    def ordered_list(self, node: dict[str, Any], depth: int) -> str:
        start = _int(_attrs(node).get("order"), 1)
        return self.items(node, depth, lambda index: f"{start + index}. ")

    def task_list(self, node: dict[str, Any], depth: int) -> str:
        def marker(index: int) -> str:
            done = _attrs(_children(node)[index]).get("state") == "DONE"
            return "- [x] " if done else "- [ ] "

        return self.items(node, depth, marker)

    def items(self, node: dict[str, Any], depth: int, marker: Callable[[int], str]) -> str:
        lines = []
        for index, item in enumerate(_children(node)):
            if not isinstance(item, dict):
                continue
            # A task or decision item holds inline content; a list item holds blocks.
            inline = item.get("type") in {"taskItem", "decisionItem"}
            body = self.inline(item, depth) if inline else self.blocks(_children(item), depth)
            prefix = marker(index)
            indented = body.replace("\n\n", "\n").replace("\n", "\n" + " " * len(prefix))
            lines.append(prefix + indented)
        return "\n".join(lines)

    def code_block(self, node: dict[str, Any], depth: int) -> str:
        language = str(_attrs(node).get("language") or "")
        return f"```{language}\n{plain_text(node)}\n```"

    def blockquote(self, node: dict[str, Any], depth: int) -> str:
        body = self.blocks(_children(node), depth)
        return "\n".join(f"> {line}".rstrip() for line in body.splitlines())

    def table(self, node: dict[str, Any], depth: int) -> str:
        rows = []
        for row in _children(node):
            cells = [
                self.blocks(_children(cell), depth).replace("\n", " ")
                for cell in _children(row)
                if isinstance(cell, dict)
            ]
            if any(cells):
                rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)

    def expand(self, node: dict[str, Any], depth: int) -> str:
        title = str(_attrs(node).get("title") or "").strip()
        body = self.blocks(_children(node), depth)
        return f"{title}\n\n{body}" if title else body


def _inline_atom(node: dict[str, Any]) -> str | None:
    """The text of an inline node that has no content of its own, else None."""
    kind, attrs = node.get("type"), _attrs(node)
    if kind == "mention":
        name = str(attrs.get("text") or attrs.get("id") or "")
        return name if name.startswith("@") else f"@{name}"
    if kind == "date":
        try:
            return (
                datetime.fromtimestamp(_int(attrs.get("timestamp"), 0) / 1000, UTC)
                .date()
                .isoformat()
            )
        except (OverflowError, OSError, ValueError):
            return ""
    if kind in _CARDS:
        return str(attrs.get("url", ""))
    for key in _INLINE_ATTR.get(str(kind), ()):
        if attrs.get(key):
            return str(attrs[key])
    return None


def _children(node: Any) -> list[Any]:
    content = node.get("content") if isinstance(node, dict) else None
    return content if isinstance(content, list) else []


def _attrs(node: Any) -> dict[str, Any]:
    attrs = node.get("attrs") if isinstance(node, dict) else None
    return attrs if isinstance(attrs, dict) else {}


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
