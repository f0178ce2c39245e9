"""The parser of each content type postrag reads (the types: extraction.FORMATS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from app.services import extraction
from app.services.extraction import FORMATS, IMAGE_TYPES, Block

if TYPE_CHECKING:
    from app.services.extraction_ocr import OcrLimits


def parsers(ocr: OcrLimits | None = None) -> dict[str, Callable[[bytes], list[Block]]]:
    from app.services import (  # each imports its library only when called
        extraction_data,
        extraction_docx,
        extraction_email,
        extraction_epub,
        extraction_html,
        extraction_ocr,
        extraction_pdf,
        extraction_sheets,
        extraction_slides,
    )

    limits = ocr or extraction_ocr.OcrLimits()
    return {
        "text/plain": extraction.plain_blocks,
        "text/markdown": extraction.markdown_blocks,
        "text/html": extraction_html.blocks,
        "application/pdf": lambda data: extraction_pdf.blocks(data, limits),
        FORMATS[".docx"]: extraction_docx.blocks,
        FORMATS[".pptx"]: extraction_slides.blocks,
        FORMATS[".xlsx"]: extraction_sheets.xlsx_blocks,
        FORMATS[".csv"]: extraction_sheets.csv_blocks,
        FORMATS[".epub"]: extraction_epub.blocks,
        FORMATS[".eml"]: extraction_email.blocks,
        FORMATS[".json"]: extraction_data.json_blocks,
        FORMATS[".yaml"]: extraction_data.yaml_blocks,
    } | {image: lambda data: extraction_ocr.image_blocks(data, limits) for image in IMAGE_TYPES}
