"""What extraction keeps of real-world documents: content and headings, not comments, menus,
contents pages or running headers."""

from __future__ import annotations

import io

from app.services import extraction
from app.services.chunking import chunk_document

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _blocks(data: bytes, content_type: str) -> list[tuple[tuple[str, ...], str]]:
    extracted = extraction.extract(data, content_type, "doc")
    for block in extracted.blocks:  # spans stay exact slices of the text
        assert extracted.text[block.start : block.end] == block.text
    return [(block.heading_path, block.text) for block in extracted.blocks]


def _chunks(data: bytes, content_type: str) -> list[tuple[tuple[str, ...], int | None, str]]:
    def words(text: str) -> list[tuple[int, int]]:
        spans, start = [], None
        for i, char in enumerate(text + " "):
            if char.isspace() and start is not None:
                spans.append((start, i))
                start = None
            elif not char.isspace() and start is None:
                start = i
        return spans

    extracted = extraction.extract(data, content_type, "doc")
    chunks = chunk_document(extracted, words, size=200, overlap=0)
    return [(c.heading_path, c.page, c.text) for c in chunks]


def test_markdown_drops_html_comments_and_tags_and_front_matter_is_no_heading():
    text = (
        "---\ntitle: Setup\ntags: [install]\n---\n"
        "<!-- markdownlint-disable MD013 -->\n"
        "# Setup\n\n"
        "Install the package.<!-- TODO: mention extras -->\n\n"
        "<!--\nCopyright notice\nspanning lines\n-->\n\n"
        '<p align="center"><img src="logo.png"> Fast <b>search</b></p>\n\n'
        "Keep `<!-- this -->` in code.\n"
    )
    blocks = _blocks(text.encode(), "text/markdown")
    assert blocks == [
        ((), "title: Setup\ntags: [install]"),
        (("Setup",), "Setup"),
        (("Setup",), "Install the package."),
        (("Setup",), "Fast search"),
        (("Setup",), "Keep `<!-- this -->` in code."),
    ]


def test_markdown_links_are_their_text_and_code_spans_stay_as_written():
    text = (
        "# See [the guide](https://example.org/guide)\n\n"
        "Read [the FAQ](https://example.org/faq) or [ask us][mail], "
        "![logo](logo.png) and `[not](a link)` stay.\n\n"
        "[mail]: mailto:help@example.org\n"
    )
    assert _blocks(text.encode(), "text/markdown") == [
        (("See the guide",), "See the guide"),
        (("See the guide",), "Read the FAQ or ask us, logo and `[not](a link)` stay."),
    ]


# An mdBook page as mdBook 0.4 renders it, shortened: a help dialog, the sidebar, a menu bar whose
# title is an <h1> on every page, then the chapter in <main>.
MDBOOK_PAGE = b"""<!DOCTYPE HTML><html lang="en"><head><meta charset="UTF-8">
<title>Ownership - The Book</title><script>const path_to_root = "";</script></head><body>
<div id="mdbook-help-container"><div id="mdbook-help-popup">
<h2 class="mdbook-help-title">Keyboard shortcuts</h2>
<div><p>Press <kbd>S</kbd> or <kbd>/</kbd> to search in the book</p>
<p>Press <kbd>?</kbd> to show this help</p></div></div></div>
<div id="body-container">
<nav id="sidebar" class="sidebar" aria-label="Table of contents">
<ol><li>Introduction</li></ol></nav>
<div id="page-wrapper" class="page-wrapper"><div class="page">
<div id="menu-bar" class="menu-bar sticky"><div class="left-buttons">
<ul id="theme-list" class="theme-popup" role="menu"><li role="none">
<button role="menuitem" class="theme" id="light">Light</button></li></ul></div>
<h1 class="menu-title">The Rust Programming Language</h1><div class="right-buttons"></div></div>
<div id="content" class="content"><main>
<h1 id="what-is-ownership"><a class="header" href="#what-is-ownership">What Is Ownership?</a></h1>
<p><em>Ownership</em> is a set of rules that govern how a Rust program manages memory.</p>
<!-- a comment the author left -->
<h2 id="rules"><a class="header" href="#rules">Ownership Rules</a></h2>
<ul><li>Each value in Rust has an <em>owner</em>.</li><li>There can only be one owner.</li></ul>
<pre><code class="language-rust">let s = "hello";
println!("{s}");</code></pre>
<table><tr><th>Type</th><th>Copy</th></tr><tr><td>i32</td><td>yes</td></tr></table>
</main><nav class="nav-wrapper" aria-label="Page navigation">
<a rel="prev" href="a.html">Prev</a></nav>
</div></div></div></div></body></html>"""


def test_html_book_page_yields_only_its_chapter():
    blocks = _blocks(MDBOOK_PAGE, "text/html")
    chapter, rules = ("What Is Ownership?",), ("What Is Ownership?", "Ownership Rules")
    assert blocks == [
        (chapter, "What Is Ownership?"),
        (chapter, "Ownership is a set of rules that govern how a Rust program manages memory."),
        (rules, "Ownership Rules"),
        (rules, "Each value in Rust has an owner."),
        (rules, "There can only be one owner."),
        (rules, 'let s = "hello";\nprintln!("{s}");'),
        (rules, "Type"),
        (rules, "Copy"),
        (rules, "i32"),
        (rules, "yes"),
    ]


def test_html_main_content_is_found_without_a_main_element():
    article = "".join(
        f"<p>Paragraph {n} explains how herons hunt fish in shallow water at dawn and dusk.</p>"
        for n in range(6)
    )
    page = (
        "<html><body><div class='top'><h1>Bird Watchers Club</h1>"
        "<div class='menu'><a href='/'>Home</a> <a href='/join'>Join us</a></div></div>"
        "<div class='wrapper'><div class='sidebar'><h3>Popular posts</h3><ul>"
        "<li><a href='/a'>Owls at night</a></li><li><a href='/b'>Gulls</a></li></ul></div>"
        f"<div class='post'><h2>Herons</h2>{article}<h3>Where to see them</h3>"
        "<p>Lakes and estuaries are the best places to watch herons.</p></div>"
        "</div><div class='bottom'>Copyright 2024 Bird Watchers Club. All rights reserved.</div>"
        "</body></html>"
    )
    blocks = _blocks(page.encode(), "text/html")
    assert blocks[0] == (("Herons",), "Herons")
    assert blocks[-1] == (
        ("Herons", "Where to see them"),
        "Lakes and estuaries are the best places to watch herons.",
    )
    assert len(blocks) == 9
    text = " ".join(text for _, text in blocks)
    assert "Bird Watchers Club" not in text and "Owls at night" not in text


def test_html_blocks_inside_blocks_keep_their_own_place_heading_and_lines():
    # An old-style page laid out in a table (libxslt's manual): the whole text is in one cell.
    page = b"""<html><body><table><tr><td><h1>The XSLT C library</h1></td></tr></table>
    <table><tr><td><h3 id="basics">Basics<a href="#basics">#</a></h3>
    <p>XSLT is a transformation language taking an input document and a stylesheet.</p>
    <dl><dt>xsltApplyStylesheet</dt><dd><p>Applies the stylesheet:</p>
    <pre>res = xsltApplyStylesheet(cur, doc, params);
    xmlFreeDoc(doc);</pre></dd></dl></td></tr></table></body></html>"""
    basics = ("The XSLT C library", "Basics")
    assert _blocks(page, "text/html") == [
        (basics[:1], "The XSLT C library"),
        (basics, "Basics"),
        (basics, "XSLT is a transformation language taking an input document and a stylesheet."),
        (basics, "xsltApplyStylesheet"),
        (basics, "Applies the stylesheet:"),
        (basics, "res = xsltApplyStylesheet(cur, doc, params);\n    xmlFreeDoc(doc);"),
    ]


# A chapter as DocBook's XSL renders it (valgrind's manual), shortened: a navigation table whose
# title cell names the book, the chapter's contents, the chapter, and a navigation footer.
DOCBOOK_PAGE = b"""<html><head><title>2. Using the core</title></head><body>
<div><table class="nav" summary="Navigation header"><tr>
<td><a accesskey="p" href="intro.html"><img src="prev.png" alt="Prev"></a></td>
<th>Valgrind User Manual</th></tr></table></div>
<div class="chapter"><div class="titlepage"><h1 class="title">2. Using the core</h1></div>
<div class="toc"><p><b>Table of Contents</b></p><dl class="toc">
<dt><a href="#started">2.1. Getting started</a></dt><dt><a href="#errors">2.2. Errors</a></dt>
</dl></div>
<p>This chapter describes the core's options, which every <a href="tools.html">tool</a> has.</p>
<div class="sect1"><h2 class="title" id="started">2.1. Getting started</h2>
<p>Compile your program with <code>-g</code> so that error messages show line numbers.</p>
<ul><li>Run <a href="memcheck.html">Memcheck</a> first.</li><li>Then read the log.</li>
<li>Fix the first error before the others.</li></ul></div></div>
<div><table class="nav" summary="Navigation footer"><tr>
<td><a href="intro.html">&lt;&lt; 1. Introduction</a></td><td><a href="index.html">Home</a></td>
</tr></table></div></body></html>"""


def test_html_docbook_navigation_and_contents_are_dropped_and_content_lists_kept():
    chapter = ("2. Using the core",)
    started = ("2. Using the core", "2.1. Getting started")
    assert _blocks(DOCBOOK_PAGE, "text/html") == [
        (chapter, "2. Using the core"),
        (chapter, "This chapter describes the core's options, which every tool has."),
        (started, "2.1. Getting started"),
        (started, "Compile your program with -g so that error messages show line numbers."),
        (started, "Run Memcheck first."),
        (started, "Then read the log."),
        (started, "Fix the first error before the others."),
    ]


def test_html_menu_of_a_table_layout_is_dropped_but_a_page_of_links_is_kept():
    # libxslt's manual: the menus are link lists in the left cell of the layout table.
    menu = "".join(
        f"<table><tr><td><b>{title}</b></td></tr><tr><td><ul>"
        + "".join(f"<li><a href='{n}.html'>{title} entry {n}</a></li>" for n in range(5))
        + "</ul></td></tr></table>"
        for title in ("Main Menu", "Related links")
    )
    body = "".join(
        f"<p>Paragraph {n} explains how xsltApplyStylesheet transforms a parsed document.</p>"
        for n in range(4)
    )
    page = (
        f"<html><body><table><tr><td>{menu}</td><td><h2>Module transform</h2>{body}"
        "</td></tr></table></body></html>"
    )
    texts = [text for _, text in _blocks(page.encode(), "text/html")]
    assert texts[0] == "Module transform"
    assert len(texts) == 5
    assert not any("entry" in text or "Menu" in text for text in texts)
    index = f"<html><body><h1>Index</h1>{menu}</body></html>"
    texts = [text for _, text in _blocks(index.encode(), "text/html")]
    assert "Main Menu entry 0" in texts and "Related links entry 4" in texts


def _structured_pdf(*, outline: bool) -> bytes:
    """A handbook: a contents page with dot leaders, a running header and page-number footer
    on every page, and headings in a larger font (in the outline too when `outline`)."""
    from fpdf import FPDF

    class Handbook(FPDF):
        def header(self) -> None:
            self.set_font("helvetica", size=9)
            self.cell(0, 8, "ACME Safety Handbook - Internal", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("helvetica", size=9)
            self.cell(0, 8, f"Page {self.page_no()}")

    pdf = Handbook()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.cell(0, 8, "Contents", new_x="LMARGIN", new_y="NEXT")
    for title, page in (("Introduction", 2), ("Protective gear", 3), ("Gloves", 3)):
        pdf.cell(0, 8, f"{title} {'.' * 60} {page}", new_x="LMARGIN", new_y="NEXT")

    def heading(title: str, level: int, size: int) -> None:
        if outline:
            pdf.start_section(title, level=level)
        pdf.set_font("helvetica", style="B", size=size)
        pdf.cell(0, 10, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", size=11)

    pages = [
        [("Introduction", 0, 18), "Read this handbook before your first shift."],
        [
            ("Protective gear", 0, 18),
            "Wear a helmet in every workshop.",
            ("Gloves", 1, 14),
            "Cut-resistant gloves are stored beside each lathe.",
        ],
    ]
    for items in pages:
        pdf.add_page()
        for item in items:
            if isinstance(item, tuple):
                heading(*item)
            else:
                pdf.multi_cell(0, 8, item, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def test_pdf_drops_contents_pages_and_running_headers_and_keeps_headings():
    for outline in (True, False):
        chunks = _chunks(_structured_pdf(outline=outline), "application/pdf")
        assert chunks == [
            (("Introduction",), 2, "Introduction\n\nRead this handbook before your first shift."),
            (("Protective gear",), 3, "Protective gear\n\nWear a helmet in every workshop."),
            (
                ("Protective gear", "Gloves"),
                3,
                "Gloves\n\nCut-resistant gloves are stored beside each lathe.",
            ),
        ], f"outline={outline}"


def test_plain_text_underlined_headings_become_heading_paths():
    text = (
        "Release notes\n=============\n\nVersion 2 is faster.\n\n"
        "Upgrading\n---------\nRun the migration first.\n\nThen restart.\n"
    )
    assert _blocks(text.encode(), "text/plain") == [
        (("Release notes",), "Release notes"),
        (("Release notes",), "Version 2 is faster."),
        (("Release notes", "Upgrading"), "Upgrading"),
        (("Release notes", "Upgrading"), "Run the migration first."),
        (("Release notes", "Upgrading"), "Then restart."),
    ]


def test_docx_table_of_contents_is_dropped():
    import docx

    document = docx.Document()
    styles = document.styles
    toc = styles.add_style("toc 1", 1)  # Word's own name for its contents entries
    document.add_paragraph("Introduction\t1", style=toc)
    document.add_paragraph("Usage\t2", style=toc)
    document.add_heading("Introduction", level=1)
    document.add_paragraph("Hello.")
    buffer = io.BytesIO()
    document.save(buffer)
    assert _blocks(buffer.getvalue(), DOCX) == [
        (("Introduction",), "Introduction"),
        (("Introduction",), "Hello."),
    ]


def test_latin1_text_is_read_as_latin1_not_another_code_page():
    # A short Western text decodes cleanly in several code pages (Baltic, Central European).
    text = "Copyright (c) 1998 José Müller\n\nLes élèves ont préparé une crème brûlée.\n"
    data = text.encode("latin-1")
    assert extraction.detect_format("AUTHORS", None, data) == "text/plain"
    assert extraction.extract(data, "text/plain", "AUTHORS").text == text.strip()
