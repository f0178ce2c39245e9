"""Slides, spreadsheets, CSV, EPUB, e-mail, JSON and YAML: from upload to a cited search hit,
with the slide, sheet or chapter as the page and the structure as the heading path."""

from __future__ import annotations

import json

import psycopg

from app.services import extraction
from tests.format_files import docx_bytes, eml_bytes, epub_bytes, pptx_bytes, xlsx_bytes
from tests.helpers import drain, post_document, search


def _indexed(app, client, admin, collection, name: str, data: bytes) -> dict:
    response = post_document(client, admin, collection, name, data)
    assert response.status_code == 202, response.json
    drain(app)
    document = client.get(response.headers["Location"], headers=admin).json
    assert document["status"] == "indexed", document
    return document


def _top_hit(client, admin, query: str) -> dict:
    response = search(client, admin, query=query, mode="fulltext")
    assert response.status_code == 200, response.json
    assert response.json["hits"], query
    return response.json["hits"][0]


def test_pptx_slides_are_pages_and_titles_are_headings(app, client, admin, collection):
    document = _indexed(app, client, admin, collection, "plan.pptx", pptx_bytes())
    assert document["content_type"] == extraction.FORMATS[".pptx"]
    hit = _top_hit(client, admin, "lighthouse retrofit")
    assert (hit["filename"], hit["page"], hit["heading_path"]) == ("plan.pptx", 2, ["Budget"])
    assert "The lighthouse retrofit costs forty thousand." in hit["text"]
    notes = _top_hit(client, admin, "grants")
    assert notes["page"] == 2 and "Notes: Ask finance about grants." in notes["text"]
    assert _top_hit(client, admin, "telemetry")["page"] == 1


def test_xlsx_rows_carry_their_header_and_sheet(app, client, admin, collection):
    _indexed(app, client, admin, collection, "stock.xlsx", xlsx_bytes())
    hit = _top_hit(client, admin, "marzipan")
    assert (hit["page"], hit["heading_path"]) == (2, ["Inventory"])
    assert "Item: marzipan | Count: 12 | Shelf: B4" in hit["text"]
    assert "Item: nutmeg | Count: 3" in hit["text"]  # the empty cell is left out
    staff = _top_hit(client, admin, "engineer")
    assert (staff["page"], staff["heading_path"]) == (1, ["Staff"])
    assert "Name: Ada | Role: engineer" in staff["text"]


def test_csv_rows_carry_their_header_in_every_chunk(app, client, admin, collection):
    rows = "".join(f"harbour{n},berth {n},{'ferry' if n == 150 else 'barge'}\n" for n in range(300))
    data = b"Port,Berth,Vessel\n" + rows.encode()
    document = _indexed(app, client, admin, collection, "berths.csv", data)
    assert document["content_type"] == "text/csv"
    chunks = client.get(f"/api/v1/documents/{document['id']}/chunks?limit=100", headers=admin)
    items = chunks.json["items"]
    assert len(items) > 1  # the rows fill several chunks, and every one says what its cells are
    for chunk in items:
        assert all(line.startswith("Port: ") for line in chunk["text"].split("\n\n"))
    hit = _top_hit(client, admin, "ferry")
    assert "Port: harbour150 | Berth: berth 150 | Vessel: ferry" in hit["text"]


def test_epub_chapters_follow_the_spine_with_their_toc_titles(app, client, admin, collection):
    _indexed(app, client, admin, collection, "tales.epub", epub_bytes())
    hit = _top_hit(client, admin, "squall mainsail")
    assert (hit["page"], hit["heading_path"]) == (2, ["The Storm"])
    first = _top_hit(client, admin, "schooner quay")
    assert (first["page"], first["heading_path"]) == (1, ["The Departure"])


def test_email_headers_become_metadata_and_attachments_documents(
    app, client, admin, collection, database_url
):
    attachments = [
        ("glazes.docx", extraction.FORMATS[".docx"], docx_bytes("Celadon glaze needs cone ten.")),
        ("tools.csv", "text/csv", b"Tool,Use\nsieve,slip\n"),
        ("photo.bin", "application/octet-stream", b"\x00\x01\x02" * 20),
    ]
    data = eml_bytes(attachments, html=True)
    response = post_document(client, admin, collection, "kiln.eml", data)
    assert response.status_code == 202, response.json
    email = response.json["metadata"]["email"]
    assert email["from"] == "Grace <grace@example.org>" and email["to"] == "team@example.org"
    assert (email["subject"], email["date"]) == ("Kiln schedule", "2026-12-01T09:30:00+00:00")
    assert email["attachments"] == ["glazes.docx", "tools.csv"]
    assert email["attachments_skipped"] == ["photo.bin"]
    assert drain(app) == 3
    hit = _top_hit(client, admin, "kiln Thursday")
    assert (hit["filename"], hit["heading_path"]) == ("kiln.eml", ["Kiln schedule"])
    glaze = _top_hit(client, admin, "celadon")
    assert glaze["filename"] == "glazes.docx"
    meta = client.get(f"/api/v1/documents/{glaze['document_id']}", headers=admin).json["metadata"]
    assert meta["email"]["attachment_of"] == "kiln.eml"
    assert "Tool: sieve | Use: slip" in _top_hit(client, admin, "sieve")["text"]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT filename, status FROM documents ORDER BY id").fetchall()
    assert stored == [("kiln.eml", "indexed"), ("glazes.docx", "indexed"), ("tools.csv", "indexed")]


def test_json_is_pretty_printed_and_yaml_kept_as_written(app, client, admin, collection):
    value = {"service": {"name": "tidegauge", "ports": [8080, 8081]}}
    document = _indexed(app, client, admin, collection, "config.json", json.dumps(value).encode())
    assert document["content_type"] == "application/json"
    hit = _top_hit(client, admin, "tidegauge")
    assert hit["text"] == json.dumps(value, indent=2)
    yaml_text = "# deployment\nreplicas: 3\nimage: saltmarsh/api:2.1\n"
    document = _indexed(app, client, admin, collection, "deploy.yaml", yaml_text.encode())
    assert document["content_type"] == "application/yaml"
    assert _top_hit(client, admin, "replicas")["text"] == yaml_text.strip()


def test_invalid_json_and_yaml_fail_with_the_reason(app, client, admin, collection):
    for name, data, reason in [
        ("broken.json", b'{"a": [1, 2}', "not valid JSON"),
        ("broken.yaml", b"a: [1, 2\nb: {", "not valid YAML"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ]:
        response = post_document(client, admin, collection, name, data)
        assert response.status_code == 202, response.json
        drain(app)
        document = client.get(response.headers["Location"], headers=admin).json
        assert document["status"] == "failed" and reason in document["error"], document


def test_epub2_titles_come_from_the_ncx_and_untitled_chapters_from_their_heading():
    import io
    import zipfile

    package = b"""<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0"><manifest>
<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
<item id="a" href="a%20one.html" media-type="application/xhtml+xml"/>
<item id="b" href="b.html" media-type="application/xhtml+xml"/>
<item id="css" href="style.css" media-type="text/css"/>
</manifest><spine toc="ncx"><itemref idref="a"/><itemref idref="css"/><itemref idref="b"/>
</spine></package>"""
    ncx = b"""<?xml version="1.0"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>
<navPoint id="p1"><navLabel><text>Harbour Lights</text></navLabel><content src="a%20one.html"/>
</navPoint></navMap></ncx>"""
    container = (
        b'<?xml version="1.0"?><container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
        b'<rootfiles><rootfile full-path="book.opf"/></rootfiles></container>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("META-INF/container.xml", container)
        book.writestr("book.opf", package)
        book.writestr("toc.ncx", ncx)
        book.writestr("a one.html", b"<html><body><p>Beacons blink at dusk.</p></body></html>")
        book.writestr(
            "b.html",
            b"<html><body><h1>Low Tide</h1><h2>Mud</h2><p>Crabs dig burrows.</p></body></html>",
        )
        book.writestr("style.css", b"p { color: red }")
    extracted = extraction.extract(buffer.getvalue(), "application/epub+zip", "book.epub")
    assert [(b.page, b.heading_path, b.text) for b in extracted.blocks] == [
        (1, ("Harbour Lights",), "Harbour Lights"),
        (1, ("Harbour Lights",), "Beacons blink at dusk."),
        (2, ("Low Tide",), "Low Tide"),
        (2, ("Low Tide", "Mud"), "Mud"),
        (2, ("Low Tide", "Mud"), "Crabs dig burrows."),
    ]


def test_pptx_tables_and_grouped_shapes_are_read_in_place():
    import io

    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])  # blank: no title
    table = slide.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1)).table
    for row, cells in enumerate([("Port", "Depth"), ("Oban", "12 m")]):
        for column, text in enumerate(cells):
            table.cell(row, column).text = text
    group = slide.shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1))
    box.text_frame.text = "Soundings from the survey"
    buffer = io.BytesIO()
    presentation.save(buffer)
    extracted = extraction.extract(buffer.getvalue(), extraction.FORMATS[".pptx"], "s.pptx")
    assert [(b.page, b.heading_path, b.text) for b in extracted.blocks] == [
        (1, ("Slide 1",), "Slide 1"),
        (1, ("Slide 1",), "Soundings from the survey"),
        (1, ("Slide 1",), "Port | Depth"),
        (1, ("Slide 1",), "Oban | 12 m"),
    ]


def test_an_html_only_email_body_is_read_with_its_headings():
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Tide tables"
    message["From"] = "harbourmaster@example.org"
    message.set_content(
        "<html><head><style>p {}</style></head><body><h2>Spring tides</h2>"
        "<p>High water at 06:12.</p></body></html>",
        subtype="html",
    )
    extracted = extraction.extract(message.as_bytes(), "message/rfc822", "tides.eml")
    assert [(b.heading_path, b.text) for b in extracted.blocks] == [
        (("Tide tables",), "Tide tables"),
        (("Tide tables",), "From: harbourmaster@example.org"),
        (("Tide tables", "Spring tides"), "Spring tides"),
        (("Tide tables", "Spring tides"), "High water at 06:12."),
    ]
