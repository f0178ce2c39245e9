"""PDF to blocks: page text without contents pages, running headers and footers, under headings
from the document's outline (bookmarks) or, when it has none, from font sizes.

A few kilobytes of PDF can hold gigabytes of text or take hours of parsing: the limits are in
extraction.py (MAX_PDF_*, MAX_TEXT_CHARS) and are read at each call. Pages without a text layer
but with pictures (scans) are rendered by PDFium and read by OCR (extraction_ocr.py), within
its limits.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.services import extraction, extraction_ocr
from app.services.extraction import MB, Block, Headings, UnreadableDocument, paragraphs
from app.services.extraction_ocr import OcrLimits

if TYPE_CHECKING:
    from pypdf import PageObject, PdfReader

_EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be running ones
_RUNNING_PAGES = 2  # a running header or footer is on this many pages at least (a short chapter)
_LEADER = ".·…"
_HEADING_RATIO = 1.15  # a heading's font is this much larger than the body text's at least
_MAX_HEADING_CHARS = 150


@dataclass(frozen=True)
class _Page:
    number: int
    lines: list[str]
    fragments: list[tuple[str, float]]  # each piece of text (no whitespace), its font size
    confidence: float | None = None  # OCR's, for a page read from its picture


@dataclass(frozen=True)
class _Heading:
    page: int
    title: str
    path: tuple[str, ...]


def blocks(data: bytes, ocr: OcrLimits) -> list[Block]:
    """Paragraphs and headings page by page, each under its heading path."""
    reader = _open(data)
    pages = _without_furniture(_recognised(data, reader, _pages(reader), ocr))
    return _blocks(pages, _outline(reader) or _font_headings(pages))


def _open(data: bytes) -> PdfReader:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(io.BytesIO(data))
    # Many PDFs are encrypted with an empty user password (only to restrict editing).
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise UnreadableDocument("the PDF is encrypted with a password; upload it unprotected")
    if len(reader.pages) > extraction.MAX_PDF_PAGES:
        raise UnreadableDocument(
            f"the PDF has {len(reader.pages)} pages; the limit is {extraction.MAX_PDF_PAGES}"
        )
    return reader


def _pages(reader: PdfReader) -> list[_Page]:
    """Each page's lines and text pieces, within the limits on content and text."""
    pages: list[_Page] = []
    content_bytes = text_chars = 0
    for number, page in enumerate(reader.pages, start=1):
        content_bytes += len(_contents(page))
        if content_bytes > extraction.MAX_PDF_CONTENT_BYTES:
            raise UnreadableDocument(
                f"the PDF's pages hold more than {extraction.MAX_PDF_CONTENT_BYTES // MB} MB of"
                f" content (reached on page {number}); split it into smaller files"
            )
        text, fragments = _page_text(page)
        text_chars += len(text)
        if text_chars > extraction.MAX_TEXT_CHARS:
            raise UnreadableDocument(
                f"the PDF has more than {extraction.MAX_TEXT_CHARS} characters of text"
                f" (reached on page {number}); split it into smaller files"
            )
        pages.append(_Page(number, [line.strip() for line in text.split("\n")], fragments))
    return pages


def _recognised(data: bytes, reader: PdfReader, pages: list[_Page], ocr: OcrLimits) -> list[_Page]:
    """The pages, those with pictures but no text read by OCR instead."""
    scanned = [
        page.number for page in pages if not any(page.lines) and _has_pictures(reader, page.number)
    ]
    if not scanned:
        return pages
    if len(scanned) > ocr.max_pages:
        raise UnreadableDocument(
            f"the PDF has {len(scanned)} pages without a text layer; OCR reads at most"
            f" {ocr.max_pages} (POSTRAG_OCR_MAX_PAGES); split it into smaller files"
        )
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        for number in scanned:
            pixels = extraction_ocr.render_page(pdf, number - 1, ocr.max_pixels)
            found = extraction_ocr.recognise(pixels)
            pages[number - 1] = _Page(number, found.text.split("\n"), [], found.confidence)
    finally:
        pdf.close()
    return pages


def _has_pictures(reader: PdfReader, number: int) -> bool:
    """Whether the page draws an image or a form (which may hold one): a scan does."""
    resources = reader.pages[number - 1].get("/Resources")
    objects = resources.get_object().get("/XObject") if resources is not None else None
    return bool(objects) or b"BI" in _contents(reader.pages[number - 1])


def _contents(page: PageObject) -> bytes:
    contents = page.get_contents()
    return contents.get_data() if contents is not None else b""


def _page_text(page: PageObject) -> tuple[str, list[tuple[str, float]]]:
    fragments: list[tuple[str, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: Any, size: float) -> None:
        # The size as drawn: the font's size scaled by the text and transformation matrices.
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        if key := _key(text):
            fragments.append((key, round(size * scale, 1)))

    return page.extract_text(visitor_text=visit) or "", fragments


def _key(text: str) -> str:
    return "".join(text.split())


def _without_furniture(pages: list[_Page]) -> list[_Page]:
    """The pages without running headers, footers and page numbers, contents pages emptied;
    the pages as they were if that would leave no text at all."""
    running = _running_lines(pages)
    cleaned = []
    for page in pages:
        lines = _trimmed(page.lines, running)
        kept = [] if _is_contents(lines) else lines
        cleaned.append(_Page(page.number, kept, page.fragments, page.confidence))
    return cleaned if any(any(page.lines) for page in cleaned) else pages


def _edge_key(line: str) -> str:
    """A line as it repeats from page to page: any number may change ("Page 7 of 90")."""
    return "".join("#" if c.isdigit() else c for c in " ".join(line.split()).casefold())


def _running_lines(pages: list[_Page]) -> set[str]:
    """Lines (as edge keys) at the top or bottom of many pages."""
    counts: Counter[str] = Counter()
    for page in pages:
        text = [line for line in page.lines if line]
        counts.update({_edge_key(line) for line in text[:_EDGE_LINES] + text[-_EDGE_LINES:]})
    return {key for key, count in counts.items() if count >= _RUNNING_PAGES}


def _trimmed(lines: list[str], running: set[str]) -> list[str]:
    start, end = 0, len(lines)
    for _ in range(_EDGE_LINES):
        while start < end and not lines[start]:
            start += 1
        if start == end or _edge_key(lines[start]) not in running:
            break
        start += 1
    for _ in range(_EDGE_LINES):
        while end > start and not lines[end - 1]:
            end -= 1
        if end == start or _edge_key(lines[end - 1]) not in running:
            break
        end -= 1
    return lines[start:end]


def _is_contents(lines: list[str]) -> bool:
    """A table of contents: mostly lines of a title, a dot leader and a page number."""
    text = [line for line in lines if line]
    entries = sum(1 for line in text if _is_contents_entry(line))
    return entries >= 3 and entries * 2 >= len(text)


def _is_contents_entry(line: str) -> bool:
    # No regular expression: a backtracking one is quadratic in a long line of dots.
    title = line.rstrip("0123456789ivxlcdmIVXLCDM")
    if len(title) == len(line):
        return False  # no page number
    leader = title[len(title.rstrip(" " + _LEADER)) :]
    return sum(c in _LEADER for c in leader) >= 4 and len(leader) < len(title)


def _outline(reader: PdfReader) -> list[_Heading]:
    """The outline's entries with their pages and paths, in page order."""
    found: list[_Heading] = []
    try:  # pypdf limits the outline's depth and size; beyond them, or if damaged: no outline
        stack: list[tuple[Any, tuple[str, ...]]] = [(iter(reader.outline), ())]
        path: tuple[str, ...] = ()
        while stack:
            entries, parents = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
            elif isinstance(entry, list):  # the entries under the one before
                stack.append((iter(entry), path))
            else:
                title = " ".join(str(entry.title or "").split())
                path = (*parents, title)
                page = reader.get_destination_page_number(entry)
                if title and page is not None:
                    found.append(_Heading(page + 1, title, path))
    except Exception:  # noqa: BLE001
        return []
    return sorted(found, key=lambda heading: heading.page)


def _font_headings(pages: list[_Page]) -> list[_Heading]:
    """Lines set larger than the body text (the size most text has), a level per size."""
    chars: Counter[float] = Counter()
    for page in pages:
        for key, size in page.fragments:
            chars[size] += len(key)
    if not chars:
        return []
    body = chars.most_common(1)[0][0]
    larger = sorted((size for size in chars if size >= body * _HEADING_RATIO), reverse=True)
    levels = {size: min(level, 6) for level, size in enumerate(larger, start=1)}
    headings = Headings()
    found = []
    for page in pages:
        sizes = dict(page.fragments)
        for line in page.lines:
            level = levels.get(sizes.get(_key(line), 0.0))
            if level and len(line) <= _MAX_HEADING_CHARS and any(c.isalpha() for c in line):
                headings.enter(level, line)
                found.append(_Heading(page.number, line, headings.path))
    return found


def _blocks(pages: list[_Page], headings: list[_Heading]) -> list[Block]:
    """Paragraphs between the heading lines; a heading not found in its page's text applies
    from the top of that page."""
    by_page: dict[int, list[_Heading]] = {}
    for heading in headings:
        by_page.setdefault(heading.page, []).append(heading)
    found: list[Block] = []
    path: tuple[str, ...] = ()
    for page in pages:
        on_page = by_page.get(page.number, [])
        keys = {_key(line) for line in page.lines}
        for heading in on_page:
            if _key(heading.title) not in keys:
                path = heading.path
        titled = {_key(heading.title): heading for heading in reversed(on_page)}
        text: list[str] = []
        for line in page.lines:
            found_heading = titled.pop(_key(line), None) if line else None
            if found_heading is None:
                text.append(line)
                continue
            found.extend(paragraphs("\n".join(text), path, page.number, page.confidence))
            text, path = [], found_heading.path
            found.append(Block(line, path, page.number, confidence=page.confidence))
        found.extend(paragraphs("\n".join(text), path, page.number, page.confidence))
    return found
