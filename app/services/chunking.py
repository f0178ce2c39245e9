"""Structure-aware chunking: sections by heading and page, then paragraphs, sentences, tokens.

Sizes and overlap are counted in tokens of the embedding model's tokenizer. A chunk never
crosses a heading or a page boundary, so its heading path and page are exact, and its span is
the exact slice of the extracted text it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from app.services.extraction import Block, Extracted

TokenSpans = Callable[[str], list[tuple[int, int]]]
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    token_count: int
    page: int | None
    char_start: int
    char_end: int
    heading_path: tuple[str, ...]


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int
    tokens: int


def chunk_document(doc: Extracted, token_spans: TokenSpans, size: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    carried: list[_Piece] = []  # a lone heading waits for the section under it
    for section in _sections(doc.blocks):
        pieces = carried + [p for block in section for p in _pieces(block, token_spans, size)]
        carried = []
        first = section[0]
        if len(section) == 1 and first.heading_path and first.text == first.heading_path[-1]:
            carried = pieces
            continue
        for start, end in _pack(pieces, size, overlap):
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    len(chunks),
                    text,
                    len(token_spans(text)),
                    first.page,
                    start,
                    end,
                    first.heading_path,
                )
            )
    if carried:
        start, end = carried[0].start, carried[-1].end
        text = doc.text[start:end]
        last = doc.blocks[-1]
        chunks.append(
            Chunk(
                len(chunks), text, len(token_spans(text)), last.page, start, end, last.heading_path
            )
        )
    return chunks


def _sections(blocks: list[Block]) -> list[list[Block]]:
    sections: list[list[Block]] = []
    for block in blocks:
        if sections and (sections[-1][0].heading_path, sections[-1][0].page) == (
            block.heading_path,
            block.page,
        ):
            sections[-1].append(block)
        else:
            sections.append([block])
    return sections


def _pieces(block: Block, token_spans: TokenSpans, size: int) -> list[_Piece]:
    """The block's sentences (token windows for a sentence longer than a chunk).

    Sentences, not whole paragraphs, are the units so that overlap can carry the last sentences
    of a chunk into the next one whatever the paragraph lengths.
    """
    pieces: list[_Piece] = []
    offset = 0
    for sentence in _SENTENCE_END.split(block.text):
        begin = block.text.index(sentence, offset)
        offset = begin + len(sentence)
        spans = [(s + begin, e + begin) for s, e in token_spans(sentence)]
        if not spans:
            continue
        for i in range(0, len(spans), size):
            window = spans[i : i + size]
            start = block.start + (begin if i == 0 else window[0][0])
            end = block.start + (offset if i + size >= len(spans) else window[-1][1])
            pieces.append(_Piece(start, end, len(window)))
    return pieces


def _pack(pieces: list[_Piece], size: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of pieces into spans of at most `size` tokens, overlapping by whole pieces."""
    spans: list[tuple[int, int]] = []
    current: list[_Piece] = []
    for piece in pieces:
        if current and sum(p.tokens for p in current) + piece.tokens > size:
            spans.append((current[0].start, current[-1].end))
            tail: list[_Piece] = []
            for previous in reversed(current):
                carried = sum(p.tokens for p in tail) + previous.tokens
                if carried > overlap or carried + piece.tokens > size:
                    break
                tail.insert(0, previous)
            current = tail
        current.append(piece)
    if current:
        spans.append((current[0].start, current[-1].end))
    return spans
