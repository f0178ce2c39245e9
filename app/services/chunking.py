"""Structure-aware chunking: sections by heading and page, then paragraphs, sentences, tokens.

Sizes and overlap are counted in tokens of the embedding model's tokenizer (a long unknown word
costs a token per few characters, see app/providers/local_embedder.py), and a chunk also never
holds more than `max_chars` characters, whatever the text: a run without spaces or a stretch of
whitespace the tokenizer skips is cut like any other. A chunk never crosses a heading or a page
boundary, so its heading path and page are exact, and its span is the exact slice of the
extracted text it came from. Chunks come out one at a time and the tokenizer only ever sees a
slice of at most `max_chars`, so a document of any size is chunked in bounded memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from app.services.extraction import Block, Extracted

TokenSpans = Callable[[str], list[tuple[int, int]]]
# The hard cap on a chunk's characters, per token of its size: ~5 for prose, so only odd text
# (long runs, whitespace floods) reaches it.
CHARS_PER_TOKEN = 8
# Headings are repeated in every chunk under them (and read by the embedder): a pathological
# one-line "heading" of megabytes must not be.
HEADING_CHARS = 200
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
_NOT_SPACE = re.compile(r"\S")
_LAST_SPACE = re.compile(r"\s(?=\S*\Z)")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    token_count: int
    page: int | None
    char_start: int
    char_end: int
    heading_path: tuple[str, ...]
    ocr_confidence: float | None = None  # its page's or image's, when read by OCR


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class _Limits:
    size: int  # tokens per chunk
    overlap: int  # tokens carried into the next chunk
    max_chars: int  # characters per chunk


def chunk_document(
    doc: Extracted,
    token_spans: TokenSpans,
    size: int,
    overlap: int,
    max_chars: int | None = None,
) -> Iterator[Chunk]:
    """The document's chunks in order, each at most `size` tokens and `max_chars` characters
    (default: CHARS_PER_TOKEN per token)."""
    limits = _Limits(size, overlap, max_chars or size * CHARS_PER_TOKEN)
    ordinal = 0
    carried: list[_Piece] = []  # a lone heading waits for the section under it
    for section in _sections(doc.blocks):
        pieces = (p for block in section for p in _pieces(doc.text, block, token_spans, limits))
        first = section[0]
        if len(section) == 1 and first.heading_path and first.text == first.heading_path[-1]:
            carried += pieces
            continue
        for packed in _pack([*carried, *pieces] if carried else pieces, limits):
            yield _chunk(doc, ordinal, packed, first)
            ordinal += 1
        carried = []
    if carried:
        for packed in _pack(carried, limits):
            yield _chunk(doc, ordinal, packed, doc.blocks[-1])
            ordinal += 1


def _chunk(doc: Extracted, ordinal: int, pieces: list[_Piece], block: Block) -> Chunk:
    start, end = pieces[0].start, pieces[-1].end
    return Chunk(
        ordinal,
        doc.text[start:end],
        sum(p.tokens for p in pieces),
        block.page,
        start,
        end,
        tuple(heading[:HEADING_CHARS] for heading in block.heading_path),
        block.confidence,
    )


def _sections(blocks: list[Block]) -> Iterator[list[Block]]:
    section: list[Block] = []
    for block in blocks:
        if section and (section[0].heading_path, section[0].page) != (
            block.heading_path,
            block.page,
        ):
            yield section
            section = []
        section.append(block)
    if section:
        yield section


def _pieces(text: str, block: Block, token_spans: TokenSpans, limits: _Limits) -> Iterator[_Piece]:
    """The block's sentences, cut into slices of at most max_chars and token windows of at
    most `size`.

    Sentences, not whole paragraphs, are the units so that overlap can carry the last sentences
    of a chunk into the next one whatever the paragraph lengths.
    """
    for begin, end in _sentences(text, block.start, block.end):
        for s, e in _slices(text, begin, end, limits.max_chars):
            spans = token_spans(text[s:e])
            for i in range(0, len(spans), limits.size):
                window = spans[i : i + limits.size]
                start = s if i == 0 else s + window[0][0]
                stop = e if i + limits.size >= len(spans) else s + window[-1][1]
                yield _Piece(start, stop, len(window))


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    for match in _SENTENCE_END.finditer(text, start, end):
        yield start, match.start()
        start = match.end()
    yield start, end


def _slices(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Spans of at most max_chars covering text[start:end] but leading whitespace, cut at the
    last whitespace of each span when there is one in its second half."""
    while True:
        visible = _NOT_SPACE.search(text, start, end)
        if visible is None:
            return
        start = visible.start()
        if end - start <= max_chars:
            yield start, end
            return
        cut = start + max_chars
        space = _LAST_SPACE.search(text, start + max_chars // 2, cut)
        if space is not None:
            cut = space.start()
        yield start, cut
        start = cut


def _pack(pieces: Iterable[_Piece], limits: _Limits) -> Iterator[list[_Piece]]:
    """Greedy packing of pieces into chunks of at most `size` tokens and `max_chars` characters,
    overlapping by whole pieces."""
    current: list[_Piece] = []
    tokens = 0
    for piece in pieces:
        if current and (
            tokens + piece.tokens > limits.size or piece.end - current[0].start > limits.max_chars
        ):
            yield current
            tail: list[_Piece] = []
            carried = 0
            for previous in reversed(current):
                carried += previous.tokens
                if (
                    carried > limits.overlap
                    or carried + piece.tokens > limits.size
                    or piece.end - previous.start > limits.max_chars
                ):
                    break
                tail.insert(0, previous)
            current, tokens = tail, sum(p.tokens for p in tail)
        current.append(piece)
        tokens += piece.tokens
    if current:
        yield current
