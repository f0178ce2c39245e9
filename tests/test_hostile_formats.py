"""Hostile slides, spreadsheets, books and e-mails: zip bombs, a million columns or rows, entity
bombs, a thousand attachments, messages nested a thousand deep. Refused at upload with a 4xx and
nothing stored, or failed by the worker with the reason, in bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import psycopg
import pytest

from app.services import extraction, extraction_sheets
from tests.format_files import eml_bytes, epub_bytes, pptx_bytes, xlsx_bytes
from tests.helpers import drain, post_document

PADDING_BYTES = 80 * 1024 * 1024  # more than the 64 MB an archive may unpack to


def _left_behind(database_url) -> tuple[list[str], int]:
    """(the stored documents' names, the number of jobs): ([], 0) after a refusal."""
    with psycopg.connect(database_url) as conn:
        names = [row[0] for row in conn.execute("SELECT filename FROM documents")]
        jobs = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert jobs is not None
    return names, jobs[0]


def _bomb(archive: bytes, part_name: str) -> bytes:
    """`archive` with `part_name` followed by PADDING_BYTES of whitespace: a small file."""
    source = zipfile.ZipFile(io.BytesIO(archive))
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info in source.infolist():
            if info.filename != part_name:
                bomb.writestr(info.filename, source.read(info))
                continue
            with bomb.open(info.filename, "w", force_zip64=True) as part:
                part.write(source.read(info))
                padding = b" " * (1024 * 1024)
                for _ in range(PADDING_BYTES // len(padding)):
                    part.write(padding)
    return packed.getvalue()


BOMBS = [
    ("deck.pptx", pptx_bytes, "ppt/presentation.xml"),
    ("book.xlsx", xlsx_bytes, "xl/workbook.xml"),
    ("novel.epub", epub_bytes, "OEBPS/content.opf"),
]


@pytest.mark.parametrize(("name", "build", "part"), BOMBS)
def test_zip_bombs_are_refused_at_upload_and_in_bounded_memory(
    client, admin, collection, database_url, name, build, part
):
    bomb = _bomb(build(), part)
    assert len(bomb) < 2 * 1024 * 1024
    response = post_document(client, admin, collection, name, bomb)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert "zip bomb" in response.json["detail"]
    assert _left_behind(database_url) == ([], 0)
    content_type = extraction.detect_format(name, None, bomb)
    tracemalloc.start()
    try:
        with pytest.raises(extraction.UnreadableDocument, match="zip bomb"):
            extraction.extract(bomb, content_type, name)
        assert tracemalloc.get_traced_memory()[1] < 32 * 1024 * 1024
    finally:
        tracemalloc.stop()


def test_csv_with_a_million_empty_columns_is_refused_at_upload(
    client, admin, collection, database_url
):
    data = b"," * 999_999 + b"\nsomething,to read\n"
    response = post_document(client, admin, collection, "wide.csv", data)
    assert response.status_code == 422, response.json
    assert "1000000 columns; the limit is 16384" in response.json["detail"]
    assert _left_behind(database_url) == ([], 0)


def test_rows_wider_or_longer_than_the_limits_are_refused_in_extraction(monkeypatch):
    monkeypatch.setattr(extraction_sheets, "MAX_SHEET_COLUMNS", 10)
    wide = b"a,b\n" + b"x" + b"," * 20 + b"\n"  # the first line is fine, the second is not
    with pytest.raises(extraction.UnreadableDocument, match="row 2 has 21 columns"):
        extraction.extract(wide, "text/csv", "wide.csv")
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "start"
    workbook.active["A1000000"] = "a million rows down"
    buffer = io.BytesIO()
    workbook.save(buffer)
    monkeypatch.setattr(extraction_sheets, "MAX_SHEET_ROWS", 1000)
    xlsx = extraction.FORMATS[".xlsx"]
    with pytest.raises(extraction.UnreadableDocument, match="more than 1000 rows"):
        extraction.extract(buffer.getvalue(), xlsx, "tall.xlsx")
    monkeypatch.setattr(extraction_sheets, "MAX_SHEET_CELLS", 4)
    with pytest.raises(extraction.UnreadableDocument, match="more than 4 cells"):
        extraction.extract(xlsx_bytes(), xlsx, "cells.xlsx")


def test_an_epub_entity_bomb_fails_in_the_worker_with_the_reason(app, client, admin, collection):
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<container><rootfiles><rootfile full-path='&lol2;'/></rootfiles></container>"
    )
    response = post_document(client, admin, collection, "lolz.epub", epub_bytes(laughs))
    assert response.status_code == 202, response.json
    assert drain(app) == 1
    document = client.get(response.headers["Location"], headers=admin).json
    assert (document["status"], document["stage"]) == ("failed", "extracting"), document
    assert "content.opf" not in document["error"]  # refused at the container, the first file
    assert "META-INF/container.xml declares XML entities" in document["error"]


def test_an_email_with_a_thousand_attachments_is_refused_at_upload(
    client, admin, collection, database_url
):
    attachments = [(f"note{n}.txt", "text/plain", b"hello %d" % n) for n in range(1000)]
    response = post_document(client, admin, collection, "flood.eml", eml_bytes(attachments))
    assert response.status_code == 422, response.json
    assert "more than 200 parts or 20 attachments" in response.json["detail"]
    assert _left_behind(database_url) == ([], 0)


@pytest.mark.parametrize("depth", [3, 1000])
def test_an_email_nested_too_deeply_is_refused_at_upload(
    client, admin, collection, database_url, depth
):
    message = b"Subject: the core\n\nHello from the inside.\n"
    for level in range(depth):
        message = b"Subject: level %d\nContent-Type: message/rfc822\n\n" % level + message
    response = post_document(client, admin, collection, "nested.eml", message)
    assert response.status_code == 422, response.json
    assert "nested too deeply" in response.json["detail"]
    assert _left_behind(database_url) == ([], 0)


def test_an_email_whose_header_the_parser_cannot_take_apart_is_a_422_not_a_500(
    client, admin, collection, database_url
):
    # The standard library parses an address header by recursion: thousands of nested
    # comments run it out of stack (RecursionError) when the header is read.
    nested = b"(" * 3000 + b")" * 3000
    message = b"From: " + nested + b"\nSubject: deep\n\nHello.\n"
    response = post_document(client, admin, collection, "deep.eml", message)
    assert response.status_code in (201, 202, 422), response.json
    if response.status_code == 422:
        assert "cannot read deep.eml" in response.json["detail"]
        assert _left_behind(database_url) == ([], 0)


def test_an_attached_message_becomes_a_document_but_not_its_own_attachments(
    app, client, admin, collection
):
    from email.message import EmailMessage

    inner = EmailMessage()
    inner["Subject"] = "Minutes"
    inner.set_content("The quarry meeting moved to Friday.")
    inner.add_attachment(
        b"Agenda: gravel prices.", maintype="text", subtype="plain", filename="agenda.txt"
    )
    outer = EmailMessage()
    outer["Subject"] = "Fwd: Minutes"
    outer.set_content("See the forwarded message.")
    outer.add_attachment(inner)
    response = post_document(client, admin, collection, "forward.eml", outer.as_bytes())
    assert response.status_code == 202, response.json
    assert response.json["metadata"]["email"]["attachments"] == ["Minutes.eml"]
    assert drain(app) == 2
    listed = client.get("/api/v1/documents", headers=admin).json["items"]
    assert {d["filename"]: d["status"] for d in listed} == {
        "forward.eml": "indexed",
        "Minutes.eml": "indexed",
    }


def test_json_that_would_pretty_print_past_the_text_limit_is_kept_as_written(monkeypatch):
    monkeypatch.setattr(extraction, "MAX_TEXT_CHARS", 10_000)
    # Indentation grows with depth: 200 characters here would be 40,000 indented.
    deep = "[" * 100 + "1" + "]" * 100
    extracted = extraction.extract(deep.encode(), "application/json", "deep.json")
    assert extracted.text == deep
    small = extraction.extract(b'{"a": [1]}', "application/json", "small.json")
    assert small.text == '{\n  "a": [\n    1\n  ]\n}'


def test_spreadsheet_text_is_bounded_with_its_repeated_column_names(monkeypatch):
    monkeypatch.setattr(extraction, "MAX_TEXT_CHARS", 10_000)
    header = ",".join("x" * 500 for _ in range(5))  # names are cut to 100 characters
    rows = "".join("1,2,3,4,5\n" for _ in range(15))  # 15 rows of 5 x 100-character names
    data = f"{header}\n{rows}".encode()
    assert len(extraction.extract(data, "text/csv", "ok.csv").text) < 10_000
    with pytest.raises(extraction.UnreadableDocument, match="more than 10000 characters"):
        extraction.extract(data + rows.encode(), "text/csv", "long.csv")
