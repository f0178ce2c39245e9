"""Text from pictures: images, and PDF pages without a text layer, read by OCR (RapidOCR's
PP-OCR models, shipped inside the rapidocr-onnxruntime wheel: nothing is downloaded).

OCR is the costliest thing extraction does (seconds a page on one core), so it is bounded: at
most OcrLimits.max_pages pages of a PDF are recognised and no picture of more than
OcrLimits.max_pixels is decoded or rendered (an image's size is read from its header first).
Each page's mean recognition confidence goes with its blocks into the chunks' metadata.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from app.services.extraction import Block, UnreadableDocument, paragraphs

if TYPE_CHECKING:
    import numpy as np

# RapidOCR scales a picture down to this many pixels on its longer side before detection:
# rendering a PDF page larger would only cost time and memory.
_LONGER_SIDE = 2000
_POINTS_PER_INCH = 72
_MAX_DPI = 300


@dataclass(frozen=True)
class OcrLimits:
    """POSTRAG_OCR_MAX_PAGES and POSTRAG_OCR_MAX_PIXELS (app/settings.py has the defaults)."""

    max_pages: int = 20
    max_pixels: int = 40_000_000


@dataclass(frozen=True)
class Recognised:
    text: str  # the lines read, top to bottom
    confidence: float | None  # their mean confidence, None when nothing was read


def check_image(data: bytes, max_pixels: int) -> None:
    """UnreadableDocument unless the image's header declares at most `max_pixels` (the pixels
    themselves are not decoded)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
    except Image.DecompressionBombError:  # over Pillow's own limit, far above any scan's
        raise _too_large("has far more pixels", max_pixels) from None
    except OSError as exc:
        raise UnreadableDocument(f"not an image that can be read: {exc}") from exc
    if width * height > max_pixels:
        raise _too_large(f"is {width} x {height} pixels", max_pixels)


def _too_large(size: str, max_pixels: int) -> UnreadableDocument:
    return UnreadableDocument(
        f"the image {size}; OCR reads at most {max_pixels} (POSTRAG_OCR_MAX_PIXELS)"
    )


def image_blocks(data: bytes, limits: OcrLimits) -> list[Block]:
    """The image's text as one paragraph per block of lines, with its confidence."""
    import numpy as np
    from PIL import Image

    check_image(data, limits.max_pixels)
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (_LONGER_SIDE, _LONGER_SIDE))  # a JPEG decodes smaller at once
        picture = image.convert("RGB")
    picture.thumbnail((_LONGER_SIDE, _LONGER_SIDE))  # RapidOCR would scale it down anyway
    pixels = np.asarray(picture)
    found = recognise(pixels)
    return paragraphs(found.text, confidence=found.confidence)


def render_page(pdf: Any, index: int, max_pixels: int) -> np.ndarray:
    """Page `index` of a pypdfium2 document as RGB pixels, at most 300 dpi, `_LONGER_SIDE` on
    its longer side and `max_pixels` in all."""
    import numpy as np

    page = pdf[index]
    try:
        width, height = page.get_size()  # in points
        scale = min(_MAX_DPI / _POINTS_PER_INCH, _LONGER_SIDE / max(width, height, 1.0))
        scale = min(scale, (max_pixels / max(width * height, 1.0)) ** 0.5)
        bitmap = page.render(scale=scale, grayscale=False)
        try:
            return np.array(bitmap.to_numpy()[:, :, :3][:, :, ::-1])  # BGR(A) to RGB
        finally:
            bitmap.close()
    finally:
        page.close()


def recognise(pixels: np.ndarray) -> Recognised:
    """The text RapidOCR reads in an RGB picture, lines in reading order."""
    found, _ = _engine()(pixels, use_cls=False)
    lines = [(box, text, float(score)) for box, text, score in found or [] if text.strip()]
    if not lines:
        return Recognised("", None)
    lines.sort(key=lambda line: (line[0][0][1], line[0][0][0]))
    confidence = sum(score for _, _, score in lines) / len(lines)
    return Recognised("\n".join(text for _, text, _ in lines), round(confidence, 4))


@cache
def _engine() -> Any:
    """RapidOCR with its three onnxruntime sessions on one thread, spinning off, as the
    embedder's (app/providers/local_embedder.py): the cores are shared with PostgreSQL."""
    import onnxruntime as ort

    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # its wheel is for Python < 3.13 (pyproject.toml)
        raise UnreadableDocument(
            "OCR is not installed here: rapidocr-onnxruntime installs on Python 3.11 and 3.12"
        ) from exc

    engine = RapidOCR()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The arena would keep the largest page's buffers for good (RapidOCR turns it off too).
    options.enable_cpu_mem_arena = False
    for wrapper in (engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session):
        path = wrapper.session._model_path
        wrapper.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return engine
