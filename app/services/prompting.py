"""Building the model's prompt: numbered sources, history within a token budget, and the pieces
that read the answer back (reasoning blocks apart, [n] markers to citations, extractive answers).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from app.errors import ValidationFailed
from app.providers import local_embedder
from app.repositories.search import Hit
from app.services import extractive

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
RAG_INSTRUCTIONS = (
    "The user's message comes with numbered sources from their documents. Use them when they are"
    " relevant, and cite every source you use by its number in square brackets, like [1] or"
    " [2][3]. If the sources do not contain the answer, say so, then answer from general"
    " knowledge if you can. Never cite a source you did not use."
)
SAFETY_MARGIN = 0.9  # our tokenizer is not the model's: leave room for the difference
# Never fewer tokens than one per this many characters: whitespace and control characters that
# our tokenizer skips still reach the model, so no prompt holds more characters than this many
# per token of its budget, whatever the text.
CHARS_PER_TOKEN = 6
# A source longer than any chunk postrag makes (one stored by an older version) is cut here
# rather than crowding every other source out of the prompt.
SOURCE_CHARS = 4000
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
EXTRACTIVE_MODEL = "extractive"
EXTRACTIVE_PASSAGES = 3
EXTRACTIVE_INTRO = (
    "No language model is configured, so this is not a generated answer: these are the"
    " %s of your documents that best match your question.\n"
)


def count_tokens(text: str) -> int:
    """Tokens in `text` by the bundled MiniLM tokenizer (close to, not exactly, the model's),
    long unknown words charged by their length, and at least one per CHARS_PER_TOKEN characters."""
    if not text:
        return 0
    return max(local_embedder.count_tokens(text), -(-len(text) // CHARS_PER_TOKEN))


@dataclass
class Prompt:
    messages: list[dict[str, str]]
    sources: list[Hit]  # the sources given to the model, numbered from 1
    history_messages: int  # how many earlier messages fitted in the budget
    estimated_tokens: int
    # What the extractive answer quotes sentences for: the standalone query that found the
    # sources (a follow-up's own words, "how many days does it take?", name no subject).
    quotes_for: str = ""


def source_label(source: Hit) -> str:
    page = f", page {source.page}" if source.page is not None else ""
    return f"{source.filename}{page}"


def _source_text(source: Hit) -> str:
    """The passage, or its wider context (bounded by its own token budget) when it has one."""
    if source.context is not None:
        return source.context.text
    text = source.text
    return text if len(text) <= SOURCE_CHARS else text[:SOURCE_CHARS] + " ..."


def _user_turn(question: str, sources: list[Hit]) -> str:
    if not sources:
        return question
    blocks = [f"[{i}] {source_label(s)}\n{_source_text(s)}" for i, s in enumerate(sources, 1)]
    return "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"


def build_prompt(
    *,
    system_prompt: str,
    sources: list[Hit],
    history: list[dict[str, str]],
    question: str,
    context_tokens: int,
    answer_tokens: int,
    search_query: str | None = None,
) -> Prompt:
    """System, history (newest first, as much as fits) and the question with its sources.

    Sources are dropped from the lowest-ranked while they do not fit; history fills what is left.
    `history` is oldest first, each {"role", "content"} with reasoning already removed.
    `search_query` is what found the sources (the question when None).
    """
    budget = int((context_tokens - answer_tokens) * SAFETY_MARGIN)
    system = system_prompt.strip() or DEFAULT_SYSTEM_PROMPT
    sources = list(sources)
    while True:
        full_system = f"{system}\n\n{RAG_INSTRUCTIONS}" if sources else system
        user = _user_turn(question, sources)
        used = count_tokens(full_system) + count_tokens(user) + 8
        if used <= budget or not sources:
            break
        sources.pop()
    if used > budget:
        raise ValidationFailed.on_field(
            "content",
            "too long",
            type="too_long",
            detail=f"the message is too long for the model's context ({used} of {budget} tokens)",
        )
    kept: list[dict[str, str]] = []
    for message in reversed(history):
        cost = count_tokens(message["content"]) + 4
        if used + cost > budget:
            break
        kept.append({"role": message["role"], "content": message["content"]})
        used += cost
    kept.reverse()
    while kept and kept[0]["role"] != "user":  # a history opening with an answer confuses models
        kept.pop(0)
    messages = [
        {"role": "system", "content": full_system},
        *kept,
        {"role": "user", "content": user},
    ]
    return Prompt(messages, sources, len(kept), used, search_query or question)


def alternating(history: list[dict[str, str]]) -> list[dict[str, str]]:
    """History whose roles alternate and that ends with an answer, as strict chat templates need.

    A question left without an answer (stopped before any text) gives way to the next one.
    """
    kept: list[dict[str, str]] = []
    for message in history:
        if kept and kept[-1]["role"] == message["role"]:
            kept[-1] = message
        else:
            kept.append(message)
    if kept and kept[-1]["role"] == "user":
        kept.pop()
    return kept


def unopened_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning) of a reply whose <think> was opened by the prompt's template."""
    if _THINK_CLOSE in text and _THINK_OPEN not in text:
        reasoning, _, answer = text.partition(_THINK_CLOSE)
        return answer.lstrip(), reasoning.strip()
    return text, ""


def cited_numbers(answer: str, source_count: int) -> set[int]:
    """The source numbers the answer cites as [n] or [n, m] (out-of-range numbers ignored)."""
    found: set[int] = set()
    for match in _CITATION.finditer(answer):
        for part in match.group(1).split(","):
            n = int(part)
            if 1 <= n <= source_count:
                found.add(n)
    return found


@dataclass(frozen=True)
class Citation:
    """Source number `n` of an answer: where its passage is, and whether the answer cites it."""

    n: int
    chunk_id: int
    document_id: int
    collection_id: int
    filename: str
    page: int | None
    char_start: int
    char_end: int
    score: float
    cited: bool

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def citations(sources: list[Hit], answer: str) -> list[Citation]:
    """Per message: each source given to the model, and whether the answer cites it."""
    cited = cited_numbers(answer, len(sources))
    located = [f.name for f in fields(Citation) if f.name not in ("n", "cited")]
    return [
        Citation(n=i, cited=i in cited, **{name: getattr(s, name) for name in located})
        for i, s in enumerate(sources, 1)
    ]


@dataclass
class ThinkSplitter:
    """Separates <think>...</think> blocks from streamed answer text, tags split across pieces."""

    in_think: bool = False
    _held: str = field(default="")

    def feed(self, text: str) -> tuple[str, str]:
        """(answer text, reasoning text) that can be released after this piece."""
        data = self._held + text
        self._held = ""
        answer: list[str] = []
        reasoning: list[str] = []
        while data:
            tag = _THINK_CLOSE if self.in_think else _THINK_OPEN
            at = data.find(tag)
            if at >= 0:
                (reasoning if self.in_think else answer).append(data[:at])
                data = data[at + len(tag) :]
                self.in_think = not self.in_think
                continue
            keep = _partial_suffix(data, tag)  # maybe the start of a tag: wait for more
            (reasoning if self.in_think else answer).append(data[: len(data) - keep])
            self._held = data[len(data) - keep :]
            break
        return "".join(answer), "".join(reasoning)

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return ("", held) if self.in_think else (held, "")


def _partial_suffix(data: str, tag: str) -> int:
    for size in range(min(len(tag) - 1, len(data)), 0, -1):
        if tag.startswith(data[-size:]):
            return size
    return 0


def extractive_answer(sources: list[Hit], question: str) -> list[str]:
    """The pieces of an answer quoting the sentences that answer, labelled as not generated.

    Each quote is a whole sentence with its [n] and its span in the document; the sources'
    spans are narrowed in place to what is quoted of them, so their citations point there.
    """
    if not sources:
        return [
            "No language model is configured, and no passage in your documents matches this"
            " question, so there is nothing to show. (This is not a generated answer.)"
        ]
    quotes = extractive.select(question, sources)
    if not quotes:  # no whole sentence in the passages (a table, a list of words): show them
        return [EXTRACTIVE_INTRO % "passages"] + [
            f"\n> {' '.join(s.text.split())} [{i}]\n\n({source_label(s)})\n"
            for i, s in enumerate(sources[:EXTRACTIVE_PASSAGES], 1)
        ]
    pieces = [EXTRACTIVE_INTRO % "sentences"]
    for n in sorted({q.n for q in quotes}):
        mine = [q for q in quotes if q.n == n]
        pieces.extend(f"\n> {q.text} [{n}]\n" for q in mine)
        spans = ", ".join(f"{q.char_start}\u2013{q.char_end}" for q in mine)
        pieces.append(f"\n([{n}] {source_label(sources[n - 1])}, characters {spans})\n")
        sources[n - 1] = replace(
            sources[n - 1], char_start=mine[0].char_start, char_end=mine[-1].char_end
        )
    return pieces
