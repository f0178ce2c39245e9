"""The offline answer's quotes: the whole sentences of the best passages that answer the question.

The top passages are split into sentences (app/services/sentences.py); the complete ones are
scored by the local embedding model against the question in one batch, and picked by maximal
marginal relevance with at most PER_SOURCE from one source, so that several sources speak.
Each quote keeps its span in its document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from app.providers.embeddings import EmbeddingError
from app.providers.local_embedder import QUERIES, LocalEmbedder
from app.repositories.search import Hit
from app.services import sentences

MAX_PASSAGES = 5  # passages split into sentences
MAX_SENTENCES = 64  # sentences scored: the cost of one answer stays two embedding batches
QUOTES = 4
PER_SOURCE = 2
MMR_LAMBDA = 0.7  # relevance against redundancy with what is already quoted
# A sentence less than this share as close to the question as the best one is not an answer.
RELATIVE_FLOOR = 0.5
HEADING_WORDS = 6  # an unpunctuated line this short is a title, not an answer
_WORD = re.compile(r"\w{3,}")


@dataclass(frozen=True)
class Quote:
    n: int  # the source's number in the prompt, from 1
    text: str
    char_start: int  # the sentence's span in its document's extracted text
    char_end: int


def candidates(sources: list[Hit]) -> list[Quote]:
    """The complete sentences of the top passages, each once (chunks overlap), best source first."""
    found: list[Quote] = []
    seen: set[tuple[int, int]] = set()
    for n, source in enumerate(sources[:MAX_PASSAGES], 1):
        pieces = sentences.split(source.text)
        for i, piece in enumerate(pieces):
            if _heading(piece) or not sentences.complete(piece, i == 0, source.char_start == 0):
                continue  # a heading does not answer; a cut piece is never quoted
            start, end = source.char_start + piece.start, source.char_start + piece.end
            if (source.document_id, start) not in seen:
                seen.add((source.document_id, start))
                found.append(Quote(n, piece.text, start, end))
    return found[:MAX_SENTENCES]


def _heading(piece: sentences.Sentence) -> bool:
    titled = piece.ends_line and len(piece.text.split()) < HEADING_WORDS
    return (
        piece.text.startswith("#")
        or (titled and not sentences.terminal(piece.text))
        or sentences.numbered_heading(piece.text)
    )


def _relevance(question: str, quotes: list[Quote]) -> tuple[np.ndarray, np.ndarray]:
    """(similarity to the question, sentence vectors); words shared when the model is missing."""
    try:
        vectors = LocalEmbedder(QUERIES).embed([question, *(q.text for q in quotes)])
        return vectors[1:] @ vectors[0], vectors[1:]
    except EmbeddingError:
        asked = set(_WORD.findall(question.lower()))
        shared = [len(asked & set(_WORD.findall(q.text.lower()))) for q in quotes]
        return np.asarray(shared, dtype=np.float32), np.eye(len(quotes), dtype=np.float32)


def select(question: str, sources: list[Hit]) -> list[Quote]:
    """The quotes that answer, by source number then place in the document."""
    pool = candidates(sources)
    if not pool:
        return []
    relevance, vectors = _relevance(question, pool)
    floor = RELATIVE_FLOOR * float(relevance.max())
    chosen: list[int] = []
    per_source: dict[int, int] = {}
    while len(chosen) < min(QUOTES, len(pool)):
        best, best_score = -1, -np.inf
        for i, quote in enumerate(pool):
            if i in chosen or per_source.get(quote.n, 0) >= PER_SOURCE or relevance[i] < floor:
                continue
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            score = MMR_LAMBDA * float(relevance[i]) - (1 - MMR_LAMBDA) * redundancy
            if score > best_score:
                best, best_score = i, score
        if best < 0:
            break
        chosen.append(best)
        per_source[pool[best].n] = per_source.get(pool[best].n, 0) + 1
    return sorted((pool[i] for i in chosen), key=lambda q: (q.n, q.char_start))
