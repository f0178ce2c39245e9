"""What the web source reads in a page: its kind, title and links, its main content as text
with Markdown headings (app/services/extraction_html.py), and a sitemap's entries."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import httpx

from app.errors import AppError
from app.providers.web_urls import normalised
from app.services import extraction_html
from app.services.extraction import decode_text

log = logging.getLogger(__name__)
HTML_TYPES = {"text/html", "application/xhtml+xml"}
TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown"}
_MAX_TITLE = 500


def media_type(headers: httpx.Headers) -> str:
    return str(headers.get("Content-Type", "")).split(";")[0].strip().lower()


def charset(headers: httpx.Headers) -> str | None:
    for param in str(headers.get("Content-Type", "")).split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            return str(value).strip("\"' ")
    return None


@dataclass(frozen=True)
class Outline:
    """A page's title and the absolute, normalised addresses its links point at, in order."""

    title: str
    links: tuple[str, ...]


def outline(body: bytes, url: str, headers: httpx.Headers) -> Outline:
    """The title and links of an HTML page (`<base href>` honoured, rel=nofollow links not
    followed); a text page has no links and its first line as title."""
    if media_type(headers) not in HTML_TYPES:
        first = _text(body, headers).strip().split("\n", 1)[0]
        return Outline(first.lstrip("# ").strip()[:_MAX_TITLE], ())
    try:
        return _html_outline(body, url, headers)
    except Exception:  # noqa: BLE001 - a page the parser chokes on has no links to follow
        log.info("web source: %s cannot be parsed for links", url, exc_info=True)
        return Outline("", ())


def _html_outline(body: bytes, url: str, headers: httpx.Headers) -> Outline:
    from bs4 import BeautifulSoup

    _quiet_parser()
    soup = BeautifulSoup(body, "html.parser", from_encoding=charset(headers))
    base_tag = soup.find("base", href=True)
    base = normalised(str(base_tag["href"]), url) if base_tag is not None else None
    links: dict[str, None] = {}
    for anchor in soup.find_all("a", href=True):
        if "nofollow" in str(anchor.get("rel") or "").lower():
            continue
        found = normalised(str(anchor["href"]), base or url)
        if found is not None:
            links[found] = None
    title_tag = soup.find("title") or soup.find("h1")
    title = " ".join(title_tag.get_text(" ").split()) if title_tag is not None else ""
    return Outline(title[:_MAX_TITLE], tuple(links))


def main_text(body: bytes, headers: httpx.Headers) -> str:
    """The page's main content, its headings as Markdown (`#` per level); a text page as it is."""
    if media_type(headers) not in HTML_TYPES:
        return _text(body, headers).replace("\x00", "")
    _quiet_parser()
    try:
        found = extraction_html.blocks(_as_utf8(body, headers))
    except Exception:  # noqa: BLE001 - a page the extraction chokes on has no text to give
        log.info("web source: a page cannot be read as HTML", exc_info=True)
        return ""
    parts: list[str] = []
    path: tuple[str, ...] = ()
    for block in found:
        heading = block.heading_path != path and block.heading_path[-1:] == (block.text,)
        path = block.heading_path
        parts.append(f"{'#' * len(path)} {block.text}" if heading else block.text)
    return "\n\n".join(parts).replace("\x00", "").strip()


def _quiet_parser() -> None:
    """Pages that look like XML or like a bare address are still parsed as HTML, as browsers
    do: Beautiful Soup's warnings about them say nothing the crawl could act on."""
    from bs4 import MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning

    warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)
    warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)


def _as_utf8(body: bytes, headers: httpx.Headers) -> bytes:
    """The page in UTF-8 when its header names another charset (the extraction reads UTF-8,
    else the page's <meta charset> or a guess)."""
    declared = charset(headers)
    if declared is None or declared.lower().replace("_", "-") in {"utf-8", "utf8"}:
        return body
    try:
        return body.decode(declared).encode()
    except (LookupError, UnicodeDecodeError):
        return body


def _text(body: bytes, headers: httpx.Headers) -> str:
    declared = charset(headers)
    if declared:
        try:
            return body.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return decode_text(body)
    except AppError:  # binary after all
        return ""


@dataclass(frozen=True)
class Sitemap:
    pages: tuple[tuple[str, str], ...]  # (address, <lastmod> or "")
    sitemaps: tuple[str, ...]  # a sitemap index's sitemaps


def sitemap(body: bytes, url: str) -> Sitemap | None:
    """The entries of a sitemap (<urlset>) or a sitemap index (<sitemapindex>); None when `body`
    is neither. Entities are not expanded and nothing is fetched while parsing."""
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None
    kind = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if kind not in {"urlset", "sitemapindex"}:
        return None
    entries = []
    for entry in root:
        if not isinstance(entry.tag, str):
            continue
        fields = {
            etree.QName(child).localname: (child.text or "").strip()
            for child in entry
            if isinstance(child.tag, str)
        }
        found = normalised(fields.get("loc", ""), url)
        if found is not None:
            entries.append((found, fields.get("lastmod", "")[:100]))
    if kind == "sitemapindex":
        return Sitemap((), tuple(loc for loc, _ in entries))
    return Sitemap(tuple(entries), ())
