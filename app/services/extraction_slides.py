"""PowerPoint (PPTX) to blocks: each slide's title as its heading, its text, tables and
speaker notes under it, and the slide's number as the page, for citations."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from app.services.extraction import Block, UnreadableDocument
from app.services.extraction_docx import unpacked_archive

if TYPE_CHECKING:
    from pptx.shapes.base import BaseShape
    from pptx.slide import Slide

MAX_SLIDES = 5_000
MAX_SHAPES = 200_000  # over the whole presentation, groups' members included


def blocks(data: bytes) -> list[Block]:
    """The slides in order: title, then shapes' text top to bottom, then notes."""
    from pptx import Presentation

    presentation = Presentation(io.BytesIO(unpacked_archive(data, "PPTX")))
    slides = list(presentation.slides)
    if len(slides) > MAX_SLIDES:
        raise UnreadableDocument(f"the PPTX has {len(slides)} slides; the limit is {MAX_SLIDES}")
    found: list[Block] = []
    shapes_left = MAX_SHAPES
    for number, slide in enumerate(slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        path = (title,) if title else (f"Slide {number}",)
        found.append(Block(path[0], path, number))
        for text in _shape_texts(slide, title_shape):
            shapes_left -= 1
            if shapes_left < 0:
                raise UnreadableDocument(f"the PPTX has more than {MAX_SHAPES} shapes")
            found.append(Block(text, path, number))
        notes = _notes(slide)
        if notes:
            found.append(Block(f"Notes: {notes}", path, number))
    return found


def _shape_texts(slide: Slide, title_shape: BaseShape | None) -> Iterator[str]:
    """Texts of the slide's shapes (groups opened, iteratively), top to bottom, left to right."""
    shapes = sorted(slide.shapes, key=_position)
    stack = list(reversed(shapes))
    while stack:
        shape = stack.pop()
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        members = getattr(shape, "shapes", None)  # a group shape
        if members is not None:
            stack.extend(reversed(sorted(members, key=_position)))
        elif getattr(shape, "has_table", False):
            for row in shape.table.rows:  # type: ignore[attr-defined]
                cells = (" ".join(cell.text.split()) for cell in row.cells)
                yield " | ".join(cell for cell in cells if cell)
        elif shape.has_text_frame:
            for paragraph in shape.text_frame.paragraphs:  # type: ignore[attr-defined]
                yield paragraph.text
        else:
            yield ""


def _position(shape: BaseShape) -> tuple[int, int]:
    return (shape.top or 0, shape.left or 0)


def _notes(slide: Slide) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return "" if frame is None else frame.text.strip()
