"""EPUB to blocks: the chapters in reading (spine) order, each under its title from the table of
contents, with the chapter's number as the page for citations.

An EPUB is a zip of XHTML files: unpacked within the DOCX limits (a zip bomb is refused), its
package files read with defusedxml (no entity expansion), each chapter read by the HTML
extractor.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import Any
from urllib.parse import unquote, urldefrag

from app.services import extraction_html
from app.services.extraction import Block, UnreadableDocument
from app.services.extraction_docx import unpacked_archive

MAX_CHAPTERS = 5_000
_CONTAINER = "META-INF/container.xml"
_XHTML = {"application/xhtml+xml", "text/html"}


def blocks(data: bytes) -> list[Block]:
    """Each chapter's title, then its blocks under it (their own headings below the title)."""
    with zipfile.ZipFile(io.BytesIO(unpacked_archive(data, "EPUB"))) as book:
        package_path = _package_path(book)
        package = _xml(book, package_path)
        base = posixpath.dirname(package_path)
        manifest = {
            item.get("id"): item
            for item in package.iter()
            if _local(item.tag) == "item" and item.get("id")
        }
        spine = [
            manifest[ref.get("idref")]
            for ref in package.iter()
            if _local(ref.tag) == "itemref" and ref.get("idref") in manifest
        ]
        spine = [item for item in spine if item.get("media-type") in _XHTML]
        if len(spine) > MAX_CHAPTERS:
            raise UnreadableDocument(
                f"the EPUB has {len(spine)} chapters; the limit is {MAX_CHAPTERS}"
            )
        titles = _toc_titles(book, base, manifest.values())
        found: list[Block] = []
        for number, item in enumerate(spine, start=1):
            path = _joined(base, item.get("href", ""))
            chapter = extraction_html.whole_blocks(book.read(path))
            title = titles.get(path) or _first_heading(chapter) or f"Chapter {number}"
            found.append(Block(title, (title,), number))
            for block in chapter:
                inner = block.heading_path
                heading_path = inner if inner[:1] == (title,) else (title, *inner)
                if block.text != title or inner[:1] != (title,):
                    found.append(Block(block.text, heading_path, number))
        return found


def _package_path(book: zipfile.ZipFile) -> str:
    try:
        container = _xml(book, _CONTAINER)
    except KeyError:
        raise UnreadableDocument(f"the EPUB has no {_CONTAINER}") from None
    for rootfile in container.iter():
        if _local(rootfile.tag) == "rootfile" and rootfile.get("full-path"):
            return str(rootfile.get("full-path"))
    raise UnreadableDocument(f"the EPUB's {_CONTAINER} names no package file")


def _toc_titles(book: zipfile.ZipFile, base: str, items: Any) -> dict[str, str]:
    """Chapter file to its title: from the EPUB 3 navigation document, else the EPUB 2 NCX."""
    titles: dict[str, str] = {}
    for item in items:
        nav = "nav" in (item.get("properties") or "").split()
        ncx = item.get("media-type") == "application/x-dtbncx+xml"
        if not (nav or ncx):
            continue
        toc_path = _joined(base, item.get("href", ""))
        toc_base = posixpath.dirname(toc_path)
        for element in _xml(book, toc_path).iter():
            tag = _local(element.tag)
            if nav and tag == "a" and element.get("href"):
                target, label = element.get("href"), "".join(element.itertext())
            elif ncx and tag == "navPoint":
                content = next((e for e in element if _local(e.tag) == "content"), None)
                label_element = next((e for e in element if _local(e.tag) == "navLabel"), None)
                if content is None or label_element is None:
                    continue
                target, label = content.get("src", ""), "".join(label_element.itertext())
            else:
                continue
            titles.setdefault(_joined(toc_base, target), " ".join(label.split()))
        if titles:
            return titles
    return titles


def _first_heading(chapter: list[Block]) -> str:
    return next((block.heading_path[0] for block in chapter if block.heading_path), "")


def _joined(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(base, unquote(urldefrag(href).url)))


def _xml(book: zipfile.ZipFile, path: str) -> Any:
    from defusedxml import DefusedXmlException, ElementTree

    try:
        return ElementTree.fromstring(book.read(path))
    except DefusedXmlException:  # entities can expand a few bytes to gigabytes
        raise UnreadableDocument(
            f"the EPUB's {path} declares XML entities or a DTD, which postrag refuses"
        ) from None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""
