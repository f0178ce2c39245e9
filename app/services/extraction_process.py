"""Runs a document's extraction in a child process: stoppable, bounded in memory and time.

Parsing a file (pypdf, BeautifulSoup, python-docx) is pure Python that cannot be interrupted and
can take minutes and gigabytes for a 25 MB upload. In a child process it can be killed the
moment its job is cancelled, lost or stopped, or when it holds more memory than allowed (the
worker looks ten times a second while it waits; memory as resident set size, on Linux), and all
of its memory goes back to the system when it exits. The worker's own threads (the lease's
heartbeat) keep running meanwhile. Children are forked from a forkserver that has the parsers
loaded already, so each one starts in milliseconds. (A limit on the child's address space would
be simpler, but CPython out of memory may hang or fail in odd ways rather than answer.)
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

from app.errors import AppError
from app.services import extraction
from app.services.extraction import Extracted, UnreadableDocument
from app.services.extraction_ocr import OcrLimits

MB = 1024 * 1024
POLL_S = 0.1
# Imported once in the forkserver, so a child starts with them: each module and library a
# parser imports when first called (trafilatura alone takes 170 ms). OCR's (onnxruntime,
# OpenCV: hundreds of MB) is left to the child that needs it.
PRELOADED = (
    "app.services.extraction",
    "app.services.extraction_formats",
    "app.services.extraction_data",
    "app.services.extraction_docx",
    "app.services.extraction_email",
    "app.services.extraction_epub",
    "app.services.extraction_html",
    "app.services.extraction_pdf",
    "app.services.extraction_sheets",
    "app.services.extraction_slides",
    "charset_normalizer",
    "markdown_it",
    "bs4",
    "lxml.html",
    "trafilatura",
    "pypdf",
    "docx",
    "pptx",
    "openpyxl",
    "yaml",
    "defusedxml.ElementTree",
)


class ExtractionCrashed(RuntimeError):
    """The child died without an answer (killed from outside, say): worth another attempt."""


@cache
def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOADED))
    return context


def extract(
    data: bytes,
    content_type: str,
    filename: str,
    *,
    checkpoint: Callable[[], None],
    memory_mb: int,
    timeout_s: float,
    ocr: OcrLimits | None = None,
) -> Extracted:
    """extraction.extract in a child process; `checkpoint` runs while it works and may raise
    to stop it. UnreadableDocument also when the file needs more memory or time than allowed."""
    receiver, sender = _context().Pipe(duplex=False)
    child = _context().Process(
        target=_extract_and_send,
        args=(sender, data, content_type, filename, ocr),
        name="postrag-extraction",
        daemon=True,
    )
    child.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    name = filename or "the file"
    try:
        while not receiver.poll(POLL_S):
            checkpoint()
            if memory_mb > 0 and _resident_bytes(child.pid) > memory_mb * MB:
                raise UnreadableDocument(
                    f"reading {name} needs more than {memory_mb} MB of memory"
                    " (POSTRAG_EXTRACTION_MEMORY_MB); split it into smaller files"
                )
            if time.monotonic() > deadline:
                raise UnreadableDocument(
                    f"reading {name} took more than {timeout_s:.0f} s"
                    " (POSTRAG_EXTRACTION_TIMEOUT_S); split it into smaller files"
                )
        try:
            outcome, value = receiver.recv()
        except EOFError:
            child.join(5)
            raise ExtractionCrashed(
                f"the process reading {filename or 'the file'} ended without an answer"
                f" (exit code {child.exitcode})"
            ) from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    if outcome == "unreadable":
        raise UnreadableDocument(value)
    if outcome == "failed":
        raise ExtractionCrashed(value)
    assert isinstance(value, Extracted)
    return value


def _resident_bytes(pid: int | None) -> int:
    """The process's resident set size (0 where /proc does not tell, or once it has ended)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _extract_and_send(
    sender: Connection, data: bytes, content_type: str, filename: str, ocr: OcrLimits | None
) -> None:
    """In the child: extract, and send ("ok", Extracted), ("unreadable", why) or ("failed", why)."""
    # Ctrl-C reaches the whole process group: the worker decides (it gives the job back).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the forkserver holds is never garbage: the collector leaves it alone. Its first full
    # collection would otherwise walk (and copy, page by page) the whole inherited heap: 170 ms
    # of a 20 KB Markdown file's 190.
    gc.freeze()
    result: tuple[str, Any]
    try:
        result = ("ok", extraction.extract(data, content_type, filename, ocr))
    except AppError as exc:
        result = ("unreadable", exc.detail)
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which retries
        result = ("failed", f"reading {filename or 'the file'} failed: {exc!r}")
    sender.send(result)
    sender.close()
