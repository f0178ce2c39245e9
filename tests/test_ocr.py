"""Images and scanned PDF pages read by OCR (RapidOCR, its models inside its wheel): found by
search with their page, confidence kept in the chunks' metadata, bounded in pages and pixels."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import psycopg
import pytest

from app.services import extraction
from app.services.extraction_ocr import OcrLimits
from tests.helpers import drain, post_document, search

SCANNED = "Walruses polish their tusks nightly."
TYPED = "Typed page about zebra herds."


def _picture(text: str) -> bytes:
    """A PNG of `text` drawn in black on white, as a scanner would give it."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (900, 260), 255)
    ImageDraw.Draw(image).text((40, 100), text, fill=0, font=ImageFont.load_default(size=40))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _pdf(*pages: str | bytes) -> bytes:
    """A PDF with a page per argument: text typed on it, or a PNG drawn over it (a scan)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=14)
    for page in pages:
        pdf.add_page()
        if isinstance(page, str):
            pdf.cell(text=page)
        else:
            pdf.image(io.BytesIO(page), x=10, y=10, w=180)
    return bytes(pdf.output())


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds a few bytes of pixels: a decompression bomb's
    header, which would take width x height x 3 bytes if decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _chunks(client, headers, response) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 202, response.json
    location = response.headers["Location"]
    document = client.get(location, headers=headers).json
    assert document["status"] == "indexed", document
    return client.get(f"{location}/chunks?limit=100", headers=headers).json["items"]


def test_a_png_is_read_by_ocr_and_found_by_search(app, client, admin, collection):
    response = post_document(client, admin, collection, "scan.png", _picture(SCANNED))
    assert response.status_code == 202, response.json
    assert drain(app) == 1
    [chunk] = _chunks(client, admin, response)
    assert chunk["text"] == SCANNED and chunk["page"] is None
    assert 0.8 < chunk["metadata"]["ocr_confidence"] <= 1
    hits = search(client, admin, query="walruses tusks", mode="fulltext").json["hits"]
    assert [(hit["filename"], hit["text"]) for hit in hits] == [("scan.png", SCANNED)]


def test_a_pdf_with_typed_and_scanned_pages_gets_both_with_their_pages(
    app, client, admin, collection
):
    data = _pdf(TYPED, _picture(SCANNED))
    response = post_document(client, admin, collection, "mixed.pdf", data)
    assert drain(app) == 1
    chunks = _chunks(client, admin, response)
    assert [(c["page"], c["text"]) for c in chunks] == [(1, TYPED), (2, SCANNED)]
    assert chunks[0]["metadata"] == {}
    assert 0.8 < chunks[1]["metadata"]["ocr_confidence"] <= 1
    hits = search(client, admin, query="walruses polish", mode="fulltext").json["hits"]
    assert [(hit["filename"], hit["page"]) for hit in hits] == [("mixed.pdf", 2)]


def test_a_huge_png_is_refused_at_upload_from_its_header(client, admin, collection, database_url):
    huge = _png_header(50_000, 50_000)  # 7.5 GB of pixels if decoded
    tracemalloc.start()
    try:
        response = post_document(client, admin, collection, "huge.png", huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert "POSTRAG_OCR_MAX_PIXELS" in response.json["detail"]
    assert peak < 20 * 1024 * 1024
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)


def test_an_image_over_the_pixel_setting_is_refused_with_its_size(make_app, admin, collection):
    client = make_app(ocr_max_pixels=1_000_000).test_client()
    response = post_document(client, admin, collection, "big.png", _png_header(1001, 1000))
    assert response.status_code == 422, response.json
    assert "is 1001 x 1000 pixels; OCR reads at most 1000000" in response.json["detail"]
    ok = post_document(client, admin, collection, "fits.png", _png_header(1000, 1000))
    assert ok.status_code == 202, ok.json


def test_the_worker_refuses_a_huge_image_too_without_decoding_it():
    """A stored file read again (after a change of the setting, say) is checked the same way."""
    with pytest.raises(extraction.UnreadableDocument, match="POSTRAG_OCR_MAX_PIXELS"):
        extraction.extract(_png_header(50_000, 50_000), "image/png", "huge.png")


def test_scanned_pages_over_the_page_bound_fail_the_pdf_clearly():
    scan = _picture(SCANNED)
    data = _pdf(TYPED, scan, scan)
    with pytest.raises(extraction.UnreadableDocument, match="2 pages without a text layer"):
        extraction.extract(data, "application/pdf", "scans.pdf", OcrLimits(max_pages=1))
    typed_only = extraction.extract(_pdf(TYPED), "application/pdf", "typed.pdf", OcrLimits(0))
    assert typed_only.text == TYPED


def test_images_are_detected_by_their_bytes():
    png = _picture("x")
    assert extraction.detect_format("scan", None, png) == "image/png"
    assert extraction.detect_format("photo.JPG", None, b"\xff\xd8\xff\xe0") == "image/jpeg"
