"""Turns uploaded bytes (text, Markdown, HTML, PDF, DOCX, PPTX, XLSX, CSV, EPUB, e-mail, JSON,
YAML, PNG and JPEG images) into text blocks with structure.

Each block keeps its heading path and page; the document's text is the blocks joined by blank
lines, and every block knows its character span in that text, so chunks can cite exact spans.
Parsing is left to well-kept libraries: charset-normalizer, markdown-it-py, BeautifulSoup,
trafilatura, pypdf, python-docx, python-pptx, openpyxl, PyYAML and the standard library's csv
and email (each format in an extraction_*.py module of its own); images and PDF pages without a
text layer are read by OCR (extraction_ocr.py).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from app.errors import AppError, UnsupportedMediaType, ValidationFailed

if TYPE_CHECKING:
    from markdown_it.token import Token

    from app.services.extraction_ocr import OcrLimits

FORMATS = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".csv": "text/csv",
    ".epub": "application/epub+zip",
    ".eml": "message/rfc822",
    ".json": "application/json",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
IMAGE_TYPES = {"image/png", "image/jpeg"}
_MAGIC = {
    b"%PDF-": FORMATS[".pdf"],
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}
_BY_CONTENT_TYPE = {v: v for v in FORMATS.values()} | {
    "text/x-markdown": "text/markdown",
    "application/x-yaml": "application/yaml",
    "text/yaml": "application/yaml",
}
SUPPORTED = (
    "PDF, DOCX, PPTX, XLSX, CSV, EPUB, e-mail (.eml), HTML, Markdown, JSON, YAML, text"
    " and PNG or JPEG images"
)
# Text, but markup or drawing instructions rather than anything to read: refused, not indexed.
_NOT_PROSE = {".svg", ".rtf", ".ps", ".eps"}
SNIFF_BYTES = 64 * 1024
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32's begin with these too
# Control characters that do not occur in text (tab, line breaks, form feed and the escape of
# coloured logs do).
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
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
    confidence: float | None = None  # OCR's, for text read from a picture


@dataclass
class Extracted:
    text: str
    blocks: list[Block] = field(default_factory=list)


def detect_format(filename: str, declared: str | None, data: bytes) -> str:
    """The content type postrag will parse the file as: from its magic bytes, extension or
    declared type, else plain text (or HTML) when its bytes are text: LICENSE, .json, .csv, ..."""
    for magic, content_type in _MAGIC.items():
        if data.startswith(magic):
            return content_type
    suffix = PurePath(filename).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    base = (declared or "").split(";")[0].strip().lower()
    if base in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[base]
    if not base.isprintable() or " " in base:  # a tampered export line, say
        raise UnsupportedMediaType(f"the declared type {base!r} is not a media type")
    text = None if suffix in _NOT_PROSE else sniff_text(data)
    if text is not None:
        start = text.lstrip()[:20].lower()
        return "text/html" if start.startswith(("<!doctype html", "<html")) else "text/plain"
    why = f"{suffix} is markup, not text to read" if suffix in _NOT_PROSE else "binary"
    raise UnsupportedMediaType(f"not a supported format ({why}): postrag reads {SUPPORTED}")


def sniff_text(data: bytes) -> str | None:
    """The start of `data` decoded, if it is text: UTF-8 or an encoding charset-normalizer
    recognises, without NULs and with hardly any other control characters."""
    sample = data[:SNIFF_BYTES]
    if b"\x00" in sample and not sample.startswith(_UTF16_BOMS):
        return None  # charset-normalizer finds some encoding for nearly anything
    try:  # a multi-byte character cut at the end of the sample is no reason to refuse
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(
            sample, final=len(data) <= SNIFF_BYTES
        )
    except UnicodeDecodeError:
        guessed = _guess_decoded(sample)
        if guessed is None:
            return None
        text = guessed
    if "\x00" in text or len(_BINARY_CONTROLS.findall(text)) * 100 > len(text):
        return None
    return text


def extract(
    data: bytes, content_type: str, filename: str = "", ocr: OcrLimits | None = None
) -> Extracted:
    """The blocks of a document; UnreadableDocument when it holds no text."""
    if not data:
        raise UnreadableDocument("the file is empty")
    try:
        from app.services.extraction_formats import parsers  # they build on Block

        blocks = parsers(ocr)[content_type](data)
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
        end = offset + len(text)
        placed.append(Block(text, block.heading_path, block.page, offset, end, block.confidence))
        parts.append(text)
        offset += len(text)
    if not placed:
        raise UnreadableDocument(f"no text found in {filename or 'the file'}")
    return Extracted(text=BLOCK_SEPARATOR.join(parts), blocks=placed)


class Headings:
    """The headings above the current position: a heading closes those at its level or below."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        self._open = [h for h in self._open if h[0] < level] + [(level, title)]

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self._open)


def decode_text(data: bytes) -> str:
    """Bytes to text, detecting the encoding (UTF-8 with or without BOM, UTF-16, Latin-1, ...)."""
    try:  # valid UTF-8 is by far the most common case, and unambiguous
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        guessed = _guess_decoded(data)
        if guessed is None:
            raise UnreadableDocument("the file is not text in any known encoding") from None
        text = guessed
    if "\x00" in text:
        raise UnreadableDocument("the file looks binary (it contains NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def _guess_decoded(data: bytes) -> str | None:
    """The bytes decoded in the encoding charset-normalizer finds likeliest, except that among
    decodings as clean as its pick, Windows-1252 wins (the web reads Latin-1 so): short Western
    text decodes cleanly in many code pages, and its pick ("José" as "Josķ") is then arbitrary."""
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    if any(m.chaos <= best.chaos and "cp1252" in m.could_be_from_charset for m in matches):
        return data.decode("cp1252")
    return str(best)


def paragraphs(
    text: str,
    heading_path: tuple[str, ...] = (),
    page: int | None = None,
    confidence: float | None = None,
) -> list[Block]:
    """Blocks of the text between blank lines."""
    return [
        Block(p, heading_path, page, confidence=confidence)
        for p in _BLANK_LINES.split(text)
        if p.strip()
    ]


# A line of one repeated punctuation character: under (and maybe over) a heading in plain text,
# as in reStructuredText and Markdown's setext headings.
_RULE = re.compile(r"""([=\-~^*+#"'`:._])\1{2,}""")


def plain_blocks(data: bytes) -> list[Block]:
    """Paragraphs, under the underlined headings they follow (levels in order of first use of
    each underline style, as reStructuredText does)."""
    blocks: list[Block] = []
    headings = Headings()
    styles: list[tuple[str, bool]] = []
    for paragraph in _BLANK_LINES.split(decode_text(data)):
        lines = paragraph.strip("\n").split("\n")
        heading = _underlined(lines)
        if heading is not None:
            title, style, used = heading
            if style not in styles:
                styles.append(style)
            headings.enter(styles.index(style) + 1, title)
            blocks.append(Block(title, headings.path, None))
            lines = lines[used:]
        blocks.extend(paragraphs("\n".join(lines), headings.path))
    return blocks


def _underlined(lines: list[str]) -> tuple[str, tuple[str, bool], int] | None:
    """(title, (underline character, overlined?), lines used) if the lines start with a heading."""
    rules = [_RULE.fullmatch(line.strip()) for line in lines[:3]]
    if len(lines) >= 3 and rules[0] and rules[2] and lines[0].strip() == lines[2].strip():
        title, style, used = lines[1].strip(), (rules[0].group(1), True), 3
    elif len(lines) >= 2 and rules[1] and not rules[0]:
        title, style, used = lines[0].strip(), (rules[1].group(1), False), 2
    else:
        return None
    if not 0 < len(title) <= 120 or not any(c.isalnum() for c in title):
        return None
    return title, style, used


# YAML front matter (Jekyll, Hugo, Docusaurus, ...): between lines of ---, first in the file.
_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?)\n---[ \t]*(?:\n|$)", re.DOTALL)


def markdown_blocks(data: bytes) -> list[Block]:
    """Blocks under Markdown's headings; HTML comments dropped, raw HTML as its text, front
    matter a paragraph of its own (CommonMark would read it as a heading over everything)."""
    from markdown_it import MarkdownIt

    from app.services import extraction_html

    text = decode_text(data)
    blocks: list[Block] = []
    front = _FRONT_MATTER.match(text)
    if front:
        blocks.append(Block(front.group(1), (), None))
        text = text[front.end() :]
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings = Headings()
    level: int | None = None
    for token in tokens:
        if token.type == "heading_open":
            level = int(token.tag[1])
        elif token.type == "inline":
            text = _inline_text(token.children or [])
            if level is not None and text.strip():
                headings.enter(level, text.strip())
            level = None
            blocks.append(Block(text, headings.path, None))
        elif token.type in {"fence", "code_block"}:
            blocks.append(Block(token.content, headings.path, None))
        elif token.type == "html_block":
            texts = extraction_html.fragment_texts(token.content)
            blocks.extend(Block(text, headings.path, None) for text in texts)
    return blocks


def _inline_text(children: list[Token]) -> str:
    """A paragraph's or heading's text as written, except that links are their text, images their
    alt text, and inline HTML (tags, comments) is left out: the text between tags is a token of
    its own."""
    parts = []
    for child in children:
        if child.type == "code_inline":
            parts.append(child.markup + child.content + child.markup)
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append("\n")
        elif child.type in {"text", "image"}:
            parts.append(child.content)
        elif child.type.endswith(("_open", "_close")) and not child.type.startswith("link"):
            parts.append(child.markup)  # emphasis as written
    return "".join(parts)
