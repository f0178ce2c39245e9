"""Uploading documents in five formats, end to end: upload -> indexed -> chunks that cite well."""

from __future__ import annotations

import io

import psycopg
import pytest

from tests.helpers import close_app, drain, post_document


def _indexed(client, headers, response):
    assert response.status_code == 202, response.json
    location = response.headers["Location"]
    assert response.json["status"] == "queued"
    return location


def _chunks(client, headers, location):
    page = client.get(f"{location}/chunks?limit=100", headers=headers).json
    return page["items"]


def _pdf_bytes() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    for number, text in (
        (1, "Photosynthesis turns light into chemical energy in plants."),
        (2, "Mitochondria are the powerhouse of the cell and make ATP."),
    ):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        pdf.multi_cell(0, 10, f"Page {number}. {text}")
    return bytes(pdf.output())


def _docx_bytes() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Gardening guide", level=1)
    document.add_paragraph("Water tomatoes in the morning.")
    document.add_heading("Pests", level=2)
    document.add_paragraph("Aphids dislike garlic spray.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_markdown_keeps_headings_and_exact_spans(app, client, admin, collection):
    text = (
        "# Cooking\n\nBoil the pasta for nine minutes.\n\n## Sauce\n\n"
        "Simmer tomatoes with basil and garlic.\n"
    )
    location = _indexed(
        client, admin, post_document(client, admin, collection, "recipe.md", text.encode())
    )
    assert drain(app) == 1
    doc = client.get(location, headers=admin).json
    assert doc["status"] == "indexed" and doc["stage"] == "indexed"
    assert doc["chunk_count"] == 2
    assert [h["status"] for h in doc["history"]] == [
        "queued",
        "extracting",
        "chunking",
        "embedding",
        "indexed",
    ]
    chunks = _chunks(client, admin, location)
    assert chunks[0]["heading_path"] == ["Cooking"]
    assert chunks[1]["heading_path"] == ["Cooking", "Sauce"]
    assert "Simmer tomatoes" in chunks[1]["text"]
    # Spans index the extracted text: blocks joined by blank lines.
    extracted = (
        "Cooking\n\nBoil the pasta for nine minutes.\n\nSauce\n\n"
        "Simmer tomatoes with basil and garlic."
    )
    assert chunks[0]["text"] == "Cooking\n\nBoil the pasta for nine minutes."
    assert chunks[1]["text"] == "Sauce\n\nSimmer tomatoes with basil and garlic."
    for chunk in chunks:
        assert extracted[chunk["char_start"] : chunk["char_end"]] == chunk["text"]
        assert chunk["token_count"] > 0
    assert chunks[1]["char_start"] == extracted.index("Sauce")


def test_html_drops_scripts_and_navigation(app, client, admin, collection):
    html = (
        b"<html><head><title>x</title><style>p{color:red}</style></head><body>"
        b"<nav>Home | About</nav><script>var secret = 1;</script>"
        b"<h1>Astronomy</h1><p>Jupiter has at least 95 moons.</p>"
        b"<h2>Stars</h2><p>The Sun is a G-type star.</p><footer>(c) site</footer></body></html>"
    )
    location = _indexed(client, admin, post_document(client, admin, collection, "space.html", html))
    drain(app)
    chunks = _chunks(client, admin, location)
    everything = " ".join(c["text"] for c in chunks)
    assert "Jupiter has at least 95 moons." in everything
    assert "secret" not in everything and "Home | About" not in everything
    assert "(c) site" not in everything
    assert ["Astronomy", "Stars"] in [c["heading_path"] for c in chunks]


def test_html_keeps_loose_text_and_header_titles(app, client, admin, collection):
    html = (
        b"<html><body><header><h1>Field notes</h1><nav>Menu</nav></header>"
        b"<div>Herons nest in <b>colonies</b>.</div><p>They eat fish.</p>"
        b"<div>Egrets are smaller.<!-- hidden note --></div></body></html>"
    )
    location = _indexed(client, admin, post_document(client, admin, collection, "birds.html", html))
    drain(app)
    chunks = _chunks(client, admin, location)
    assert len(chunks) == 1
    assert chunks[0]["text"] == (
        "Field notes\n\nHerons nest in colonies.\n\nThey eat fish.\n\nEgrets are smaller."
    )
    assert chunks[0]["heading_path"] == ["Field notes"]


def test_pdf_chunks_keep_their_page_numbers(app, client, admin, collection):
    location = _indexed(
        client, admin, post_document(client, admin, collection, "bio.pdf", _pdf_bytes())
    )
    drain(app)
    chunks = _chunks(client, admin, location)
    pages = {c["page"]: c["text"] for c in chunks}
    assert set(pages) == {1, 2}
    assert "Photosynthesis" in pages[1]
    assert "Mitochondria" in pages[2]


def test_docx_tables_stay_in_document_order(app, client, admin, collection):
    import docx

    document = docx.Document()
    document.add_heading("Prices", level=1)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "Apples", "3 EUR"
    document.add_heading("Shipping", level=1)
    document.add_paragraph("Ships in two days.")
    buffer = io.BytesIO()
    document.save(buffer)
    location = _indexed(
        client, admin, post_document(client, admin, collection, "t.docx", buffer.getvalue())
    )
    drain(app)
    by_path = {tuple(c["heading_path"]): c["text"] for c in _chunks(client, admin, location)}
    assert "Apples | 3 EUR" in by_path[("Prices",)]
    assert "Apples" not in by_path[("Shipping",)]


def test_docx_keeps_headings(app, client, admin, collection):
    location = _indexed(
        client, admin, post_document(client, admin, collection, "garden.docx", _docx_bytes())
    )
    drain(app)
    chunks = _chunks(client, admin, location)
    by_path = {tuple(c["heading_path"]): c["text"] for c in chunks}
    assert "Water tomatoes" in by_path[("Gardening guide",)]
    assert "garlic spray" in by_path[("Gardening guide", "Pests")]


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "utf-8-sig"])
def test_text_encodings_are_detected(app, client, admin, collection, encoding):
    text = ("Les crèmes brûlées françaises sont très appréciées à Noël. " * 3).strip()
    location = _indexed(
        client,
        admin,
        post_document(client, admin, collection, f"{encoding}.txt", text.encode(encoding)),
    )
    drain(app)
    assert _chunks(client, admin, location)[0]["text"] == text


def test_json_text_upload(app, client, admin, collection):
    response = client.post(
        "/api/v1/documents",
        headers=admin,
        json={
            "collection_id": collection,
            "title": "Note",
            "text": "Remember the milk.",
            "metadata": {"source": "api"},
        },
    )
    location = _indexed(client, admin, response)
    assert response.json["metadata"] == {"source": "api"}
    drain(app)
    doc = client.get(location, headers=admin).json
    assert doc["status"] == "indexed" and doc["title"] == "Note"


def test_json_text_is_plain_text_whatever_its_title(app, client, admin, collection):
    response = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "title": "page.html", "text": "<b>bold</b> claim"},
    )
    location = _indexed(client, admin, response)
    assert response.json["content_type"] == "text/plain"
    drain(app)
    assert _chunks(client, admin, location)[0]["text"] == "<b>bold</b> claim"


def test_text_files_of_any_name_are_read_as_text(app, client, admin, collection):
    cases = [
        ("LICENSE", None, b"MIT License\n\nPermission is hereby granted, free of charge.", "plain"),
        ("COPYING", "application/octet-stream", b"GNU GENERAL PUBLIC LICENSE\n", "plain"),
        ("settings.conf", "application/octet-stream", b'{"name": "postrag", "port": 80}', "plain"),
        ("notes.log", None, "caf\u00e9 opened at 08:00\n".encode("latin-1"), "plain"),
        ("index", None, b"<!DOCTYPE html><html><body><p>Welcome home.</p></body></html>", "html"),
    ]
    for name, declared, data, kind in cases:
        response = post_document(client, admin, collection, name, data, declared)
        assert response.status_code == 202, (name, response.json)
        assert response.json["content_type"] == f"text/{kind}", name
    assert drain(app) == len(cases)
    listed = client.get("/api/v1/documents", headers=admin).json["items"]
    assert {d["filename"]: d["status"] for d in listed} == {name: "indexed" for name, *_ in cases}


def test_odd_filenames_and_metadata_are_cleaned_or_rejected(
    app, client, admin, collection, database_url
):
    long_name = "x" * 600 + ".txt"
    response = post_document(client, admin, collection, long_name, b"Long name.")
    assert response.status_code == 202
    assert len(response.json["filename"]) == 200 and response.json["filename"].endswith(".txt")
    nul_name = post_document(client, admin, collection, "a\x00b/../../etc/pass.txt", b"Nul name.")
    assert nul_name.status_code == 202 and nul_name.json["filename"] == "pass.txt"
    bad_meta = post_document(
        client, admin, collection, "m.txt", b"Meta.", metadata='{"a": "\\u0000"}'
    )
    assert bad_meta.status_code == 422
    surrogate = post_document(
        client, admin, collection, "s.txt", b"Sur.", metadata='{"a": "\\ud800"}'
    )
    assert surrogate.status_code == 422
    nested = post_document(
        client,
        admin,
        collection,
        "n.txt",
        b"Nest.",
        metadata='{"a":' * 5_000 + "1" + "}" * 5_000,
    )
    assert nested.status_code == 422
    json_meta = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "text": "x", "metadata": {"k\u0000": 1}},
    )
    assert json_meta.status_code == 422


def test_reindex_while_processing_is_409(app, client, admin, collection):
    location = _indexed(
        client, admin, post_document(client, admin, collection, "busy.txt", b"Busy.")
    )
    response = client.post(f"{location}/reindex", headers=admin)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    replace_now = client.post(
        "/api/v1/documents?replace=true",
        headers=admin,
        content_type="multipart/form-data",
        data={"collection_id": str(collection), "file": (io.BytesIO(b"Busy."), "busy.txt")},
    )
    assert replace_now.status_code == 409
    assert drain(app) == 1
    history = [h["status"] for h in client.get(location, headers=admin).json["history"]]
    assert history == ["queued", "extracting", "chunking", "embedding", "indexed"]


def test_same_bytes_are_not_processed_twice_unless_replaced(app, client, admin, collection):
    first = post_document(client, admin, collection, "a.txt", b"Unique content here.")
    _indexed(client, admin, first)
    drain(app)
    again = post_document(client, admin, collection, "renamed.txt", b"Unique content here.")
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"] and again.json["status"] == "indexed"
    assert drain(app) == 0
    replaced = client.post(
        "/api/v1/documents?replace=true",
        headers=admin,
        data={
            "collection_id": str(collection),
            "file": (io.BytesIO(b"Unique content here."), "a.txt"),
        },
        content_type="multipart/form-data",
    )
    assert replaced.status_code == 202 and replaced.json["id"] == first.json["id"]
    assert drain(app) == 1


def test_content_returns_the_original_bytes(app, client, admin, collection):
    data = _pdf_bytes()
    location = _indexed(client, admin, post_document(client, admin, collection, "orig.pdf", data))
    response = client.get(f"{location}/content", headers=admin)
    assert response.status_code == 200
    assert response.data == data
    assert response.mimetype == "application/pdf"
    assert "orig.pdf" in response.headers["Content-Disposition"]


def test_delete_takes_chunks_and_vectors(app, client, admin, collection, database_url):
    location = _indexed(
        client, admin, post_document(client, admin, collection, "gone.txt", b"Bye.")
    )
    drain(app)
    assert client.delete(location, headers=admin).status_code == 204
    assert client.get(location, headers=admin).status_code == 404
    with psycopg.connect(database_url) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM document_chunks), (SELECT count(*) FROM chunk_embeddings)"
        ).fetchone()
    assert counts == (0, 0)


def test_list_filters_by_collection_and_status(app, client, admin, collection):
    other = client.post("/api/v1/collections", json={"name": "other"}, headers=admin).json["id"]
    post_document(client, admin, collection, "one.txt", b"One.")
    post_document(client, admin, other, "two.txt", b"Two.")
    drain(app)
    post_document(client, admin, collection, "three.txt", b"Three.")
    mine = client.get(f"/api/v1/documents?collection_id={collection}", headers=admin).json
    assert mine["total"] == 2
    queued = client.get("/api/v1/documents?status=queued", headers=admin).json
    assert [d["filename"] for d in queued["items"]] == ["three.txt"]
    bad = client.get("/api/v1/documents?status=lost", headers=admin)
    assert bad.status_code == 422


def _nothing_stored(database_url):
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM jobs)"
        ).fetchone() == (0, 0)


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("virus.exe", b"MZ\x90\x00binary", 415),
        ("firmware", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56, 415),
        ("LICENSE", b"\x1f\x8b\x08\x00" + bytes(range(256)), 415),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h9"/></svg>', 415),
        ("empty.txt", b"", 422),
        ("broken.pdf", b"%PDF-1.7 this is not really a pdf", 422),
        ("blank.md", b"   \n\n  \n", 422),
        ("binary.txt", b"\x00\x01\x02\x00" * 50, 422),
        ("fake.docx", b"PK\x03\x04 not a zip", 422),
    ],
)
def test_bad_files_are_rejected_and_nothing_is_stored(
    client, admin, collection, database_url, name, data, status
):
    response = post_document(client, admin, collection, name, data)
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert _nothing_stored(database_url)


def test_an_upload_is_never_read_in_full_in_the_request(client, admin, collection, monkeypatch):
    """A 0.8 MB, 4,999-page PDF took 54 s inside the upload request (issue 16): reading the
    whole file is the worker's job; the request only takes a cheap look at it."""
    from app.services import extraction

    def read_in_full(*args, **kwargs):
        raise AssertionError("the whole file was read in the request")

    monkeypatch.setattr(extraction, "extract", read_in_full)
    files = {
        "guide.pdf": _pdf_bytes(),
        "guide.docx": _docx_bytes(),
        "page.html": b"<html><body><p>Hello.</p></body></html>",
        "notes.md": b"# Notes\n\nSome text.",
    }
    for name, data in files.items():
        assert post_document(client, admin, collection, name, data).status_code == 202, name


def test_a_text_without_spaces_is_cut_into_bounded_chunks(app, client, admin, collection):
    """24 MB without a space became one 25 MB chunk with token_count 1 (issue 16)."""
    run = "0123456789abcdef" * 1250  # 20,000 characters, one "word"
    location = _indexed(
        client,
        admin,
        client.post(
            "/api/v1/documents",
            json={"collection_id": collection, "title": "run", "text": f"Start. {run} End."},
            headers=admin,
        ),
    )
    drain(app)
    chunks = _chunks(client, admin, location)
    assert len(chunks) > 10
    assert all(len(c["text"]) <= 200 * 8 and c["token_count"] <= 200 for c in chunks)
    assert sum(c["token_count"] for c in chunks) >= len(run) // 4
    assert chunks[0]["text"].startswith("Start.") and chunks[-1]["text"].endswith("End.")


def test_too_large_is_413(settings, admin, database_url):
    from dataclasses import replace

    from app import create_app

    small = create_app(replace(settings, max_upload_bytes=1024))
    try:
        client = small.test_client()
        coll = client.post("/api/v1/collections", json={"name": "c"}, headers=admin).json["id"]
        # Over the setting, under the request limit: refused by the service.
        response = post_document(client, admin, coll, "big.txt", b"a" * 1025)
        assert response.status_code == 413
        assert response.mimetype == "application/problem+json"
        assert "limit is 1024" in response.json["detail"]
        # Far over: refused while the request is read.
        huge = client.post(
            "/api/v1/documents",
            headers=admin,
            data=b"a" * (2 * 1024 * 1024 + 10),
            content_type="multipart/form-data; boundary=xyz",
        )
        assert huge.status_code == 413
        assert huge.mimetype == "application/problem+json"
    finally:
        close_app(small)
    assert _nothing_stored(database_url)


def test_unknown_collection_and_bad_fields(client, admin, collection, database_url):
    assert post_document(client, admin, 999999, "a.txt", b"x").status_code == 404
    missing_file = client.post(
        "/api/v1/documents",
        headers=admin,
        data={"collection_id": str(collection)},
        content_type="multipart/form-data",
    )
    assert missing_file.status_code == 422
    bad_meta = post_document(client, admin, collection, "a.txt", b"x", metadata="[1, 2]")
    assert bad_meta.status_code == 422
    plain = client.post("/api/v1/documents", headers=admin, data=b"x", content_type="text/plain")
    assert plain.status_code == 415
    assert _nothing_stored(database_url)


def test_other_users_documents_are_invisible(app, client, admin, collection, new_user):
    location = _indexed(
        client, admin, post_document(client, admin, collection, "private.txt", b"Mine.")
    )
    drain(app)
    doc_id = location.rsplit("/", 1)[1]
    bob = new_user()
    for path in (location, f"{location}/chunks", f"{location}/content"):
        assert client.get(path, headers=bob).status_code == 404, path
    assert client.delete(location, headers=bob).status_code == 404
    assert client.post(f"{location}/reindex", headers=bob).status_code == 404
    assert client.get("/api/v1/documents", headers=bob).json["total"] == 0
    assert post_document(client, bob, collection, "x.txt", b"intruder").status_code == 404
    assert client.get(f"/api/v1/documents/{doc_id}", headers=admin).status_code == 200


def test_reindex_processes_again(app, client, admin, collection):
    location = _indexed(client, admin, post_document(client, admin, collection, "r.txt", b"Again."))
    drain(app)
    response = client.post(f"{location}/reindex", headers=admin)
    assert response.status_code == 202 and response.json["status"] == "queued"
    assert drain(app) == 1
    history = [h["status"] for h in client.get(location, headers=admin).json["history"]]
    assert history.count("indexed") == 2


def _download_disposition(client, admin, collection, title: str, text: str) -> str:
    """The Content-Disposition of a JSON-text document titled `title`, downloaded."""
    created = client.post(
        "/api/v1/documents",
        json={"collection_id": collection, "title": title, "text": text},
        headers=admin,
    )
    assert created.status_code == 202, created.json
    response = client.get(f"/api/v1/documents/{created.json['id']}/content", headers=admin)
    assert response.status_code == 200
    return str(response.headers["Content-Disposition"])


def test_content_download_header_has_no_control_characters(client, admin, collection):
    disposition = _download_disposition(client, admin, collection, "bad\x1fname\x7f", "hello")
    assert disposition.startswith("attachment")
    assert not any(ord(c) < 32 or ord(c) == 127 for c in disposition)
    disposition = _download_disposition(client, admin, collection, "报告 \U0008eaf5", "other")
    disposition.encode("ascii")  # what every server can send
    assert "filename*=UTF-8''" in disposition and "%E6%8A%A5%E5%91%8A" in disposition
