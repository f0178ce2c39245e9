"""How far an ingestion of many files is: each file's stage and chunks, and the time left.

The time left is the chunks left divided by the chunks embedded per second so far. Chunks left
are known for the files already chunked (total minus embedded); for the files not chunked yet
they are guessed from their size, at the chunks per byte of the files chunked so far. Until a
file is chunked and some chunks are embedded there is no estimate. Reading a file (extraction,
OCR) counts as time only through the rate, so a folder of scans is estimated on the low side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DONE = ("indexed", "failed")
RUNNING = ("extracting", "chunking", "embedding")


@dataclass(frozen=True)
class FileProgress:
    name: str
    stage: str  # queued | extracting | chunking | embedding | indexed | failed
    chunks_embedded: int
    chunks_total: int | None  # None until the file is chunked
    size_bytes: int
    workers: tuple[str, ...] = ()  # ids of the workers running its jobs now

    @property
    def done(self) -> bool:
        return self.stage in DONE


@dataclass(frozen=True)
class FolderProgress:
    files_total: int  # every file given (and e-mail attachments found so far)
    files_done: int  # indexed, failed, unchanged or skipped
    files: tuple[FileProgress, ...]  # those processed by workers, done or not
    chunks_per_s: float | None = None
    seconds_left: float | None = None

    @property
    def chunks_embedded(self) -> int:
        return sum(f.chunks_embedded for f in self.files)

    @property
    def chunks_known(self) -> int:
        """Chunks of the files chunked so far (more come from the files not chunked yet)."""
        return sum(f.chunks_total or 0 for f in self.files if f.stage != "failed")


class Estimator:
    """The rate since the first chunks were seen embedded, and the time left at that rate."""

    def __init__(self) -> None:
        self._start: tuple[float, int] | None = None  # (when, chunks embedded then)

    def rate(self, embedded: int, now: float) -> float | None:
        """Chunks per second since the first observation of an embedded chunk."""
        if self._start is None:
            if embedded > 0:
                self._start = (now, embedded)
            return None
        since, before = self._start
        if now - since < 1.0 or embedded <= before:
            return None
        return (embedded - before) / (now - since)

    def estimate(self, folder: FolderProgress, now: float) -> FolderProgress:
        """`folder` with its rate and time left, when they can be told."""
        rate = self.rate(folder.chunks_embedded, now)
        left = chunks_left(folder.files)
        if rate is None or left is None:
            return FolderProgress(folder.files_total, folder.files_done, folder.files, rate)
        return FolderProgress(
            folder.files_total, folder.files_done, folder.files, rate, left / rate
        )


def chunks_left(files: Sequence[FileProgress]) -> float | None:
    """Chunks still to embed: counted where known, guessed from bytes elsewhere; None when no
    file was chunked yet (and some are not)."""
    chunked = [f for f in files if f.chunks_total is not None and f.stage != "failed"]
    waiting = [f for f in files if f.chunks_total is None and not f.done]
    left = sum(max((f.chunks_total or 0) - f.chunks_embedded, 0) for f in chunked if not f.done)
    if not waiting:
        return float(left)
    chunked_bytes = sum(f.size_bytes for f in chunked)
    if not chunked_bytes:
        return None
    per_byte = sum(f.chunks_total or 0 for f in chunked) / chunked_bytes
    return left + per_byte * sum(f.size_bytes for f in waiting)
