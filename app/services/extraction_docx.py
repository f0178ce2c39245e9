"""DOCX extraction within limits: a few kilobytes of DOCX can unpack to gigabytes (a zip bomb)
or keep python-docx busy for hours. The archive limits serve PPTX, XLSX and EPUB too."""

from __future__ import annotations

import io
import re
import zipfile
from typing import TYPE_CHECKING

from app.services.extraction import MB, Block, Headings, UnreadableDocument

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table

MAX_DOCX_UNPACKED_BYTES = 64 * MB  # all parts, images included
MAX_DOCX_XML_BYTES = 16 * MB
MAX_DOCX_PARTS = 10_000
MAX_DOCX_PARAGRAPHS = 100_000  # paragraphs and table cells
# How an XML part can begin, in any encoding the parser detects: a byte-order mark, or '<' or
# whitespace in UTF-8, UTF-16 or UCS-4 (a NUL first), or '<' in EBCDIC (L).
_XML_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_XML_FIRST_BYTES = b"<\x00\t\n\r L"


def _too_big(kind: str) -> UnreadableDocument:
    return UnreadableDocument(
        f"the {kind} unpacks to more than {MAX_DOCX_UNPACKED_BYTES // MB} MB, or more than"
        f" {MAX_DOCX_XML_BYTES // MB} MB of XML (a zip bomb?); split it into smaller files"
    )


def declared_parts(packed: zipfile.ZipFile, kind: str = "DOCX") -> list[zipfile.ZipInfo]:
    """The archive's parts, refused if too many or too big as declared (nothing unpacked)."""
    # A name may repeat; python-docx reads the last entry of each, and so do we.
    parts = list({part.filename: part for part in packed.infolist()}.values())
    if len(parts) > MAX_DOCX_PARTS:
        raise UnreadableDocument(
            f"the {kind} has {len(parts)} parts; the limit is {MAX_DOCX_PARTS}"
        )
    if sum(part.file_size for part in parts) > MAX_DOCX_UNPACKED_BYTES:
        raise _too_big(kind)
    return parts


def unpacked_archive(data: bytes, kind: str = "DOCX") -> bytes:
    """The archive (DOCX, PPTX, XLSX, EPUB) again, stored without compression, unpacked within
    the limits.

    python-docx (python-pptx, openpyxl) reads every part in one go and trusts the sizes the
    archive declares, so a zip bomb (or a part lying about its size) would unpack in full before
    anything could stop it.
    """
    too_big = _too_big(kind)
    stored = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as packed,
        zipfile.ZipFile(stored, "w", zipfile.ZIP_STORED) as unpacked,
    ):
        parts = declared_parts(packed, kind)
        budget, xml_budget = MAX_DOCX_UNPACKED_BYTES, MAX_DOCX_XML_BYTES
        for part in parts:
            with packed.open(part) as source:
                # zipfile stops at the declared size, whatever the compressed data holds.
                content = source.read(min(budget, part.file_size) + 1)
            budget -= len(content)
            # Parsed XML takes far more memory than its bytes: XML parts have a budget of their own.
            if content[:1] in _XML_FIRST_BYTES or content.startswith(_XML_BOMS):
                xml_budget -= len(content)
            if budget < 0 or xml_budget < 0:
                raise too_big
            unpacked.writestr(part.filename, content)
    return stored.getvalue()


def blocks(data: bytes) -> list[Block]:
    """Paragraphs and table rows in document order, under the headings they follow."""
    import docx
    from docx.table import Table

    document = docx.Document(io.BytesIO(unpacked_archive(data)))
    # Every paragraph and cell costs a few Python calls; count them in C before starting.
    items = int(document.element.body.xpath("count(.//w:p | .//w:tc)"))
    if items > MAX_DOCX_PARAGRAPHS:
        raise UnreadableDocument(
            f"the DOCX has {items} paragraphs and table cells; the limit is {MAX_DOCX_PARAGRAPHS}"
        )
    names = _docx_style_names(document)
    blocks: list[Block] = []
    headings = Headings()
    for item in document.iter_inner_content():  # paragraphs and tables in document order
        if isinstance(item, Table):
            blocks.extend(Block(row, headings.path, None) for row in _docx_table_rows(item))
            continue
        style_id = item._p.style  # Paragraph.style is the slow lookup _docx_style_names avoids
        style = names.get(style_id, "") if style_id else ""
        if style.lower().startswith("toc "):
            continue  # Word's table of contents ("toc 1", ..., "TOC Heading"): page numbers
        text = item.text.strip()
        level = _docx_heading_level(style)
        if level is not None and text:
            headings.enter(level, text)
        blocks.append(Block(text, headings.path, None))
    return blocks


def _docx_style_names(document: DocxDocument) -> dict[str, str]:
    """Style ids to names, read once from the XML.

    python-docx's Paragraph.style searches the styles anew for every paragraph, in Python, slowly
    enough that a document of short paragraphs took minutes.
    """
    from docx.oxml.ns import qn

    names = {}
    for style in document.styles.element.iterchildren(qn("w:style")):
        name = style.find(qn("w:name"))
        names[style.get(qn("w:styleId"), "")] = "" if name is None else name.get(qn("w:val"), "")
    return names


def _docx_table_rows(table: Table) -> list[str]:
    """Each row's cells as "a | b", each cell once (merged cells are not repeated).

    Read from the XML: python-docx's row.cells follows vertical merges upwards row by row, which
    takes quadratic time (and deep recursion) in a long merged column.
    """
    from docx.text.paragraph import Paragraph

    rows = []
    for tr in table._tbl.tr_lst:
        cells = (
            "\n".join(Paragraph(p, table).text for p in tc.p_lst).strip()
            for tc in tr.tc_lst
            if tc.vMerge != "continue"
        )
        rows.append(" | ".join(c for c in cells if c))
    return rows


def _docx_heading_level(style: str) -> int | None:
    """1 for Title, n for Heading n (styles.xml spells them title and heading n)."""
    if style.lower() == "title":
        return 1
    match = re.fullmatch(r"heading (\d)", style, re.IGNORECASE)
    return int(match.group(1)) if match else None
