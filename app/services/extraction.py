"""Turns uploaded bytes (text, Markdown, HTML, PDF, DOCX) into text blocks with structure.

Each block keeps its heading path and page; the document's text is the blocks joined by blank
lines, and every block knows its character span in that text, so chunks can cite exact spans.
Parsing is left to well-kept libraries: charset-normalizer, markdown-it-py, BeautifulSoup,
pypdf and python-docx.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from app.errors import AppError, UnsupportedMediaType, ValidationFailed

FORMATS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_BY_CONTENT_TYPE = {v: v for v in FORMATS.values()} | {"text/x-markdown": "text/markdown"}
BLOCK_SEPARATOR = "\n\n"
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
MB = 1024 * 1024
# Limits on what a small file may make the parsers do: a few kilobytes of PDF can hold gigabytes
# of text or take hours of parsing, and uploads are parsed in the request (DOCX limits: in
# extraction_docx.py).
MAX_PDF_PAGES = 5_000
MAX_PDF_CONTENT_BYTES = 16 * MB  # decoded page content streams, summed over the pages
MAX_TEXT_CHARS = 32 * MB


class UnreadableDocument(ValidationFailed):
    """The file is empty, damaged or has no text (422)."""


@dataclass(frozen=True)
class Block:
    """A paragraph, heading, list item or table row; a heading's path ends with itself."""

    text: str
    heading_path: tuple[str, ...]
    page: int | None
    start: int = 0
    end: int = 0


@dataclass
class Extracted:
    text: str
    blocks: list[Block] = field(default_factory=list)


def detect_format(filename: str, declared: str | None, data: bytes) -> str:
    """The content type postrag will parse the file as, from its extension, type or magic bytes."""
    if data.startswith(b"%PDF-"):
        return FORMATS[".pdf"]
    suffix = PurePath(filename).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    base = (declared or "").split(";")[0].strip().lower()
    if base in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[base]
    supported = ", ".join(sorted(FORMATS))
    raise UnsupportedMediaType(
        f"cannot ingest {filename!r} ({base or 'unknown type'}): supported are {supported}"
    )


def extract(data: bytes, content_type: str, filename: str = "") -> Extracted:
    """The blocks of a document; UnreadableDocument when it holds no text."""
    if not data:
        raise UnreadableDocument("the file is empty")
    from app.services import extraction_docx  # it builds on this module's Block

    parsers = {
        "text/plain": _plain,
        "text/markdown": _markdown,
        "text/html": _html,
        "application/pdf": _pdf,
        FORMATS[".docx"]: extraction_docx.blocks,
    }
    try:
        blocks = parsers[content_type](data)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means the file is unreadable
        raise UnreadableDocument(f"cannot read {filename or 'the file'}: {exc}") from exc
    return _assemble(blocks, filename)


def _assemble(blocks: list[Block], filename: str) -> Extracted:
    parts: list[str] = []
    placed: list[Block] = []
    offset = 0
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if parts:
            offset += len(BLOCK_SEPARATOR)
        placed.append(Block(text, block.heading_path, block.page, offset, offset + len(text)))
        parts.append(text)
        offset += len(text)
    if not placed:
        raise UnreadableDocument(f"no text found in {filename or 'the file'}")
    return Extracted(text=BLOCK_SEPARATOR.join(parts), blocks=placed)


def decode_text(data: bytes) -> str:
    """Bytes to text, detecting the encoding (UTF-8 with or without BOM, UTF-16, Latin-1, ...)."""
    from charset_normalizer import from_bytes

    try:  # valid UTF-8 is by far the most common case, and unambiguous
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        best = from_bytes(data).best()
        if best is None:
            raise UnreadableDocument("the file is not text in any known encoding") from None
        text = str(best)
    if "\x00" in text:
        raise UnreadableDocument("the file looks binary (it contains NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _paragraphs(
    text: str, heading_path: tuple[str, ...] = (), page: int | None = None
) -> list[Block]:
    return [Block(p, heading_path, page) for p in _BLANK_LINES.split(text) if p.strip()]


def _plain(data: bytes) -> list[Block]:
    return _paragraphs(decode_text(data))


def _markdown(data: bytes) -> list[Block]:
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(decode_text(data))
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    pending_heading: int | None = None
    for token in tokens:
        if token.type == "heading_open":
            pending_heading = int(token.tag[1])
        elif token.type == "inline" and pending_heading is not None:
            headings = [h for h in headings if h[0] < pending_heading]
            headings.append((pending_heading, token.content))
            blocks.append(Block(token.content, tuple(h[1] for h in headings), None))
            pending_heading = None
        elif token.type == "inline" or token.type in {"fence", "code_block", "html_block"}:
            blocks.append(Block(token.content, tuple(h[1] for h in headings), None))
    return blocks


_HTML_DROP = [
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
]
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BLOCKS = _HTML_HEADINGS | {
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


_HTML_BREAKS = {
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
    "body",
}


def _html(data: bytes) -> list[Block]:
    from bs4 import BeautifulSoup, NavigableString, Tag

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.body or soup
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    loose: list[str] = []  # text outside block elements, e.g. straight in a <div>

    def path() -> tuple[str, ...]:
        return tuple(h[1] for h in headings)

    def flush() -> None:
        text = " ".join("".join(loose).split())
        if text:
            blocks.append(Block(text, path(), None))
        loose.clear()

    for node in root.descendants:  # document order
        if isinstance(node, Tag):
            if node.name in _HTML_BREAKS:
                flush()
            if (
                node.name not in _HTML_BLOCKS
                or node.find_parent(list(_HTML_BLOCKS - _HTML_HEADINGS)) is not None
            ):
                continue  # not a block, or its text belongs to the enclosing block
            flush()
            text = " ".join(node.get_text(" ").split())
            if node.name in _HTML_HEADINGS:
                level = int(node.name[1])
                headings = [h for h in headings if h[0] < level] + [(level, text)]
            blocks.append(Block(text, path(), None))
        elif type(node) is NavigableString and node.find_parent(list(_HTML_BLOCKS)) is None:
            loose.append(str(node))  # comments, doctypes and CDATA are subclasses: skipped
    flush()
    return blocks


def _pdf(data: bytes) -> list[Block]:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(io.BytesIO(data))
    # Many PDFs are encrypted with an empty user password (only to restrict editing).
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise UnreadableDocument("the PDF is encrypted with a password; upload it unprotected")
    if len(reader.pages) > MAX_PDF_PAGES:
        raise UnreadableDocument(
            f"the PDF has {len(reader.pages)} pages; the limit is {MAX_PDF_PAGES}"
        )
    blocks: list[Block] = []
    content_bytes = text_chars = 0
    for number, page in enumerate(reader.pages, start=1):
        contents = page.get_contents()
        content_bytes += len(contents.get_data()) if contents is not None else 0
        if content_bytes > MAX_PDF_CONTENT_BYTES:
            raise UnreadableDocument(
                f"the PDF's pages hold more than {MAX_PDF_CONTENT_BYTES // MB} MB of content"
                f" (reached on page {number}); split it into smaller files"
            )
        text = page.extract_text() or ""
        text_chars += len(text)
        if text_chars > MAX_TEXT_CHARS:
            raise UnreadableDocument(
                f"the PDF has more than {MAX_TEXT_CHARS} characters of text"
                f" (reached on page {number}); split it into smaller files"
            )
        blocks.extend(_paragraphs(text, page=number))
    return blocks
