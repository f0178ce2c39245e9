"""Cheap checks of an upload, in the request, before it is stored: is it a file of its format?

Reading a file in full (app/services/extraction.py) can take minutes for a 25 MB upload, so it
happens in a worker, whose failure marks the document failed with the reason. Here only what a
bounded amount of work can tell: the file is not empty; text decodes (its first megabyte), has no
NUL characters and is not all whitespace; a PDF opens, is not locked with a password and has at
most MAX_PDF_PAGES pages; a DOCX, PPTX, XLSX or EPUB is a zip archive with its main part, whose
declared sizes are within the limits; a CSV's first line has at most MAX_SHEET_COLUMNS columns;
an e-mail parses and is within its limits of parts, attachments and nesting; an image's header
declares at most POSTRAG_OCR_MAX_PIXELS pixels (its pixels are not decoded). Each refusal is a
422 naming the problem.
"""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable

from app.errors import AppError
from app.services import (
    extraction,
    extraction_docx,
    extraction_email,
    extraction_ocr,
    extraction_sheets,
)
from app.services.extraction import FORMATS, IMAGE_TYPES, MAX_PDF_PAGES, MB, UnreadableDocument

TEXT_CHECK_BYTES = 1 * MB
_VISIBLE = re.compile(rb"\S")


def check(data: bytes, content_type: str, filename: str, max_pixels: int) -> None:
    """Raise UnreadableDocument (422) when the file is plainly not readable as `content_type`."""
    if not data:
        raise UnreadableDocument("the file is empty")
    checks: dict[str, Callable[[bytes], None]] = {
        "text/plain": _text,
        "text/markdown": _text,
        "text/html": _text,
        "application/pdf": _pdf,
        FORMATS[".docx"]: _archive("DOCX", "word/document.xml"),
        FORMATS[".pptx"]: _archive("PPTX", "ppt/presentation.xml"),
        FORMATS[".xlsx"]: _archive("XLSX", "xl/workbook.xml"),
        FORMATS[".epub"]: _archive("EPUB", "META-INF/container.xml"),
        FORMATS[".csv"]: _csv,
        FORMATS[".eml"]: _email,
        FORMATS[".json"]: _text,
        FORMATS[".yaml"]: _text,
    } | {image: lambda data: extraction_ocr.check_image(data, max_pixels) for image in IMAGE_TYPES}
    try:
        checks[content_type](data)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means the file is unreadable
        raise UnreadableDocument(f"cannot read {filename or 'the file'}: {exc}") from exc


def _text(data: bytes) -> None:
    if _VISIBLE.search(data) is None:
        raise UnreadableDocument("no text found in the file (it is all whitespace)")
    head = data[:TEXT_CHECK_BYTES]
    try:  # UTF-8, the common case; a character cut at the end of the head is no error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) == len(head))
    except UnicodeDecodeError:
        extraction.decode_text(head)  # another encoding, detected; NULs refused
        return
    if "\x00" in text:
        raise UnreadableDocument("the file looks binary (it contains NUL characters)")


def _pdf(data: bytes) -> None:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise UnreadableDocument("the PDF is encrypted with a password; upload it unprotected")
    pages = len(reader.pages)  # the page tree only: no page is parsed
    if pages > MAX_PDF_PAGES:
        raise UnreadableDocument(f"the PDF has {pages} pages; the limit is {MAX_PDF_PAGES}")


def _archive(kind: str, main_part: str) -> Callable[[bytes], None]:
    def check_archive(data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as packed:
            parts = extraction_docx.declared_parts(packed, kind)
        if main_part not in {part.filename for part in parts}:
            raise UnreadableDocument(f"the file is a zip archive but not a {kind} (no {main_part})")

    return check_archive


def _csv(data: bytes) -> None:
    _text(data)
    head = data[:TEXT_CHECK_BYTES]
    extraction_sheets.check_csv_head(head.decode("utf-8", errors="replace"))


def _email(data: bytes) -> None:
    extraction_email.parse(data)
