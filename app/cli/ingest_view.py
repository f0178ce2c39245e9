"""What `postrag ingest` shows while it runs: a bar for the folder and a line per file at work
(on a terminal), or plain lines when a stage changes (in a log, or with CI=true)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from app.services.ingest_progress import RUNNING, FileProgress, FolderProgress

PLAIN_EVERY_S = 5.0  # a file's chunks (and the folder's line) in plain lines, at most this often


def use_bars() -> bool:
    """Bars on a terminal; plain lines in a pipe or a log, and under CI (CI=true)."""
    return sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("true", "1")


def duration(seconds: float) -> str:
    minutes, second = divmod(round(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02}:{second:02}" if hours else f"{minute}:{second:02}"


def folder_line(folder: FolderProgress) -> str:
    """Files done, chunks embedded of those known (+: more to come), rate and time left."""
    more = "+" if any(f.chunks_total is None and not f.done for f in folder.files) else ""
    line = f"{folder.files_done}/{folder.files_total} files,"
    line += f" chunks {folder.chunks_embedded}/{folder.chunks_known}{more}"
    if folder.chunks_per_s is not None:
        line += f", {folder.chunks_per_s:.1f} chunks/s"
    left = "?" if folder.seconds_left is None else duration(folder.seconds_left)
    return f"{line}, ETA {left}"


def file_line(file: FileProgress, label: Callable[[str], str]) -> str:
    line = f"{file.name}: {file.stage}"
    if file.chunks_total is not None:
        line += f", chunks {file.chunks_embedded}/{file.chunks_total}"
    if file.workers:
        line += f" ({', '.join(label(w) for w in file.workers)})"
    return line


class PlainView:
    """A line when a file changes stage (its chunks every PLAIN_EVERY_S seconds), and then the
    folder's line."""

    def __init__(self, label: Callable[[str], str]) -> None:
        self.label = label
        self.shown: dict[str, tuple[str, float]] = {}  # name -> (line, when)
        self.folder_shown = ("", 0.0)

    def __call__(self, folder: FolderProgress) -> None:
        now = time.monotonic()
        changed = False
        for file in folder.files:
            line = file_line(file, self.label)
            last, when = self.shown.get(file.name, ("", 0.0))
            stage_changed = not last.startswith(f"{file.name}: {file.stage}")
            if line != last and (stage_changed or now - when >= PLAIN_EVERY_S):
                click.echo(line, err=True)
                self.shown[file.name] = (line, now)
                changed = True
        line = folder_line(folder)
        last, when = self.folder_shown
        if line != last and (changed or now - when >= PLAIN_EVERY_S):
            click.echo(line, err=True)
            self.folder_shown = (line, now)

    def close(self) -> None:
        pass


class BarView:
    """The folder's bar (files done, chunks, rate, ETA) and one line per file at work below."""

    def __init__(self, label: Callable[[str], str], lines: int) -> None:
        from tqdm import tqdm

        self.label = label
        # Its own time left (from files per second) would contradict ours (from chunks).
        form = "{l_bar}{bar}| {n_fmt}/{total_fmt} files [{elapsed}{postfix}]"
        self.bar: Any = tqdm(unit="file", position=0, bar_format=form)
        self.lines: list[Any] = [
            tqdm(bar_format="{desc}", position=i, leave=False) for i in range(1, lines + 1)
        ]

    def __call__(self, folder: FolderProgress) -> None:
        self.bar.total = folder.files_total
        self.bar.set_postfix_str(folder_line(folder).partition(", ")[2], refresh=False)
        self.bar.update(folder.files_done - self.bar.n)
        at_work = [f for f in folder.files if f.stage in RUNNING]
        for number, line in enumerate(self.lines):
            shown = file_line(at_work[number], self.label) if number < len(at_work) else ""
            line.set_description_str(shown)

    def close(self) -> None:
        for line in self.lines:
            line.close()
        self.bar.close()
