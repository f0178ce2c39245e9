"""Small files in the formats of issue 23, built by the tests with the libraries that write them."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage


def docx_bytes(text: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation

    presentation = Presentation()
    layout = presentation.slide_layouts[1]  # a title and a body
    slides = [
        ("Roadmap", "Ship the harbour crane telemetry in spring.", ""),
        ("Budget", "The lighthouse retrofit costs forty thousand.", "Ask finance about grants."),
    ]
    for title, body, notes in slides:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    first = workbook.active
    first.title = "Staff"
    first.append(["Name", "Role"])
    first.append(["Ada", "engineer"])
    second = workbook.create_sheet("Inventory")
    second.append(["Item", "Count", "Shelf"])
    second.append(["marzipan", 12, "B4"])
    second.append(["nutmeg", 3, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


_CONTAINER = b"""<?xml version="1.0"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>
</rootfiles></container>"""
_PACKAGE = b"""<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Sea tales</dc:title></metadata>
<manifest>
<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
<item id="c2" href="text/two.xhtml" media-type="application/xhtml+xml"/>
<item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/>
</manifest>
<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>"""
_NAV = b"""<?xml version="1.0"?>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><body>
<nav epub:type="toc"><ol><li><a href="text/one.xhtml">The Departure</a></li>
<li><a href="text/two.xhtml#start">The Storm</a></li></ol></nav></body></html>"""


def _chapter(text: str) -> bytes:
    return (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title>'
        f"</head><body><p>{text}</p></body></html>"
    ).encode()


def epub_bytes(container: bytes = _CONTAINER) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("mimetype", "application/epub+zip", zipfile.ZIP_STORED)
        book.writestr("META-INF/container.xml", container)
        book.writestr("OEBPS/content.opf", _PACKAGE)
        book.writestr("OEBPS/nav.xhtml", _NAV)
        book.writestr("OEBPS/text/one.xhtml", _chapter("The schooner left the quay at dawn."))
        book.writestr("OEBPS/text/two.xhtml", _chapter("A squall tore the mainsail apart."))
    return buffer.getvalue()


def eml_bytes(attachments: list[tuple[str, str, bytes]] = (), html: bool = False) -> bytes:  # type: ignore[assignment]
    message = EmailMessage()
    message["From"] = "Grace <grace@example.org>"
    message["To"] = "team@example.org"
    message["Subject"] = "Kiln schedule"
    message["Date"] = "Tue, 01 Dec 2026 09:30:00 +0000"
    body = "The pottery kiln fires on Thursday.\n\nBring the glazed bowls."
    message.set_content(body)
    if html:
        message.add_alternative(f"<html><body><p>{body}</p></body></html>", subtype="html")
    for name, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()
