"""Wider context: each hit with the text of the chunks around it in its document, within a budget.

The neighbours are the previous and next chunks of the hit's document by place, nearest first,
one before then one after, while what each adds fits the token budget (chunks overlap: only the
text a neighbour adds is counted); a side stops growing at the first neighbour that does not
fit, or that is outside the hit's heading section (its heading path neither the hit's nor under
it). They are read on the searcher's connection, so row-level security applies as to the hits.
"""

from __future__ import annotations

from dataclasses import replace

from app.providers.local_embedder import count_tokens
from app.repositories import Conn, Row
from app.repositories import chunks as chunk_repo
from app.repositories.search import Context, Hit

MAX_TOKENS = 1000  # the largest budget a request may ask for
MAX_NEIGHBOURS = 4  # per side: bounds the rows read per hit whatever the budget
GAP = "\n\n"  # what stands between two chunks that do not touch (whitespace between blocks)


def widen(conn: Conn, hits: list[Hit], budget: int) -> list[Hit]:
    """The hits, each with its `context` when `budget` (tokens per hit) is above 0."""
    if budget <= 0 or not hits:
        return hits
    places = [(h.collection_id, h.document_id, h.ordinal) for h in hits]
    by_document: dict[int, dict[int, Row]] = {}
    for row in chunk_repo.neighbours(conn, places, MAX_NEIGHBOURS):
        by_document.setdefault(row["document_id"], {})[row["ordinal"]] = row
    return [
        replace(hit, context=_context(hit, by_document.get(hit.document_id, {}), budget))
        for hit in hits
    ]


def _context(hit: Hit, chunks: dict[int, Row], budget: int) -> Context:
    before, after = "", ""
    start, end, spent = hit.char_start, hit.char_end, 0
    growing = {-1: True, 1: True}
    for distance in range(1, MAX_NEIGHBOURS + 1):
        for side in (-1, 1):
            row = chunks.get(hit.ordinal + side * distance)
            if not growing[side] or row is None or not _in_section(row, hit.heading_path):
                growing[side] = False
                continue
            added = _added(row, start, end, side)
            cost = count_tokens(added)
            if spent + cost > budget:
                growing[side] = False
                continue
            spent += cost
            if side < 0:
                before, start = added + before, row["char_start"]
            else:
                after, end = after + added, row["char_end"]
    return Context(before + hit.text + after, start, end)


def _in_section(row: Row, section: list[str]) -> bool:
    """Whether the chunk is in the section of that heading path or in one under it."""
    path: list[str] = row["heading_path"]
    return path[: len(section)] == list(section)


def _added(row: Row, start: int, end: int, side: int) -> str:
    """The text a neighbour adds before `start` (side -1) or after `end` (side 1)."""
    text: str = row["text"]
    if side < 0:
        if row["char_end"] < start:
            return text + GAP
        return text[: max(0, start - row["char_start"])]
    if row["char_start"] > end:
        return GAP + text
    return text[max(0, end - row["char_start"]) :]
