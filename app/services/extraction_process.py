"""Runs a document's extraction in a child process: stoppable, bounded in memory and time.

Parsing a file (pypdf, BeautifulSoup, python-docx) is pure Python that cannot be interrupted and
can take minutes and gigabytes for a 25 MB upload. In a child process it can be killed the
moment its job is cancelled, lost or stopped (the worker checks twice a second while it waits),
its address space is capped, and all of its memory goes back to the system when it exits. The
worker's own threads (the lease's heartbeat) keep running meanwhile. Children are forked from a
forkserver that has the parsers loaded already, so each one starts in milliseconds.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from functools import cache
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any

from app.errors import AppError
from app.services import extraction
from app.services.extraction import Extracted, UnreadableDocument

MB = 1024 * 1024
POLL_S = 0.5


class ExtractionCrashed(RuntimeError):
    """The child died without an answer (killed from outside, say): worth another attempt."""


@cache
def _context() -> ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["app.services.extraction", "app.services.extraction_docx"])
    return context


def extract(
    data: bytes,
    content_type: str,
    filename: str,
    *,
    checkpoint: Callable[[], None],
    memory_mb: int,
    timeout_s: float,
) -> Extracted:
    """extraction.extract in a child process; `checkpoint` runs while it works and may raise
    to stop it. UnreadableDocument also when the file needs more memory or time than allowed."""
    receiver, sender = _context().Pipe(duplex=False)
    child = _context().Process(
        target=_extract_and_send,
        args=(sender, data, content_type, filename, memory_mb),
        name="postrag-extraction",
        daemon=True,
    )
    child.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    try:
        while not receiver.poll(POLL_S):
            checkpoint()
            if time.monotonic() > deadline:
                raise UnreadableDocument(
                    f"reading {filename or 'the file'} took more than {timeout_s:.0f} s"
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


def _extract_and_send(
    sender: Connection, data: bytes, content_type: str, filename: str, memory_mb: int
) -> None:
    """In the child: extract, and send ("ok", Extracted), ("unreadable", why) or ("failed", why)."""
    if memory_mb > 0:
        limit = memory_mb * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    too_big = (
        f"reading {filename or 'the file'} needs more than {memory_mb} MB of memory"
        " (POSTRAG_EXTRACTION_MEMORY_MB); split it into smaller files"
    )
    result: tuple[str, Any]
    try:
        result = ("ok", extraction.extract(data, content_type, filename))
    except MemoryError:
        result = ("unreadable", too_big)
    except AppError as exc:  # a parser's MemoryError arrives wrapped as an unreadable file
        result = ("unreadable", too_big if isinstance(exc.__cause__, MemoryError) else exc.detail)
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which retries
        result = ("failed", f"reading {filename or 'the file'} failed: {exc!r}")
    sender.send(result)
    sender.close()
