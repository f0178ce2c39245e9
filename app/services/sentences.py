"""Splitting a passage into sentences with their character spans, never in the middle of one.

A sentence ends at `.`, `!` or `?` (closing quotes and brackets kept) followed by a space and a
capital, digit, quote or bracket, unless the word before is a known abbreviation or an initial;
decimals (`3.5`) have no space after the point and are never cut, nor is a section's number
(`8.` opening a line). A blank line, a heading (`# ...`, or a numbered title such as
`8. Termination.`: see `numbered_heading`), a list item, or a line ending with a colon or a
sentence mark ends the current sentence too; a line wrapped in the middle of a sentence (as in
PDFs) does not.

`complete` tells whether a piece is whole: it ends with a sentence mark or at the end of a
line, and does not start in the middle of a sentence (a chunk's overlap often does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        "al approx art cf ch co corp dept dr e.g eg esp etc fig figs i.e ie inc jr ltd mr mrs ms"
        " no nos p pp para prof resp sec sr st vol vs",
    )
)
# A sentence mark, then closing quotes or brackets, then whitespace before what may start one.
_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-Ý])")
_WORD_BEFORE = re.compile(r"(\S+)$")
_BLOCK_START = re.compile(
    r"\s*(?:#{1,6}\s|[-*•]\s|\d{1,3}(?:[.)]|(?:\.\d{1,3})+\.?)\s|[A-Z][.)]\s)"
)
# "8. Termination." or "8.1 Patent claims": a section's number and a short title.
_NUMBERED = re.compile(r"\s*\d{1,3}(?:\.\d{1,3})*\.?\s+(\S.*?)\s*$")
_LABEL = re.compile(r"\d{1,3}(?:\.\d{1,3})*")
TITLE_WORDS = 5  # a numbered line this short, title-like, is a heading
_LINE_END = re.compile(r"[.!?…:;][\"'”’)\]]*\s*$")
_TERMINAL = re.compile(r"[.!?…:;][\"'”’)\]]*$")


@dataclass(frozen=True)
class Sentence:
    start: int  # span in the text given to `split`
    end: int
    text: str  # whitespace collapsed: lines wrapped inside a sentence joined by a space
    ends_line: bool  # ended by a line break (a heading, a list item, a line of its own)


def _abbreviated(text: str, mark: int) -> bool:
    """Whether the point at `mark` closes an abbreviation or an initial, not a sentence."""
    word = _WORD_BEFORE.search(text, 0, mark + 1)
    if word is None or text[mark] != ".":
        return False
    token = word.group(1).lstrip("(\"'“‘[").rstrip(".").lower()
    opens_line = not text[text.rfind("\n", 0, word.start()) + 1 : word.start()].strip()
    if opens_line and _LABEL.fullmatch(token):
        return True  # a section's number, "8. Termination."
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


def _lines(text: str) -> list[tuple[int, int]]:
    """Spans of the blocks that end a sentence at their end: paragraphs, headings, items."""
    blocks: list[tuple[int, int]] = []
    start = 0
    lines = text.split("\n")
    at = 0
    for i, line in enumerate(lines):
        end = at + len(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        closes = (
            not line.strip()
            or not following.strip()
            or line.lstrip().startswith("#")
            or numbered_heading(line)
            or _LINE_END.search(line) is not None
            or _BLOCK_START.match(following) is not None
        )
        if closes or i == len(lines) - 1:
            if text[start:end].strip():
                blocks.append((start, end))
            start = end + 1
        at = end + 1
    return blocks


def split(text: str) -> list[Sentence]:
    """The sentences of `text` in order, with their spans in `text`."""
    found: list[Sentence] = []
    for block_start, block_end in _lines(text):
        start = block_start
        for match in _END.finditer(text, block_start, block_end):
            if _abbreviated(text, match.start()):
                continue
            found.append(_sentence(text, start, match.end(), False))
            start = match.end()
        # The passage's last line may be cut by the chunker: only a real line break ends it.
        found.append(_sentence(text, start, block_end, block_end < len(text)))
    return [s for s in found if s.text]


def _sentence(text: str, start: int, end: int, ends_line: bool) -> Sentence:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    return Sentence(start + lead, end - trail, " ".join(piece.split()), ends_line)


def numbered_heading(text: str) -> bool:
    """Whether the text is a section's number and title: "8. Termination.", "8.1 Patent
    claims" (at most TITLE_WORDS words, and Title Case when it ends with a point)."""
    numbered = _NUMBERED.fullmatch(text)
    if numbered is None:
        return False
    title = numbered.group(1).split()
    if len(title) > TITLE_WORDS or title[-1][-1] in ",;:!?":
        return False
    return not terminal(title[-1]) or all(w[0].isupper() for w in title if len(w) > 3)


def terminal(text: str) -> bool:
    """Whether the text ends with a sentence mark (closing quotes or brackets aside)."""
    return _TERMINAL.search(text) is not None


def complete(sentence: Sentence, first: bool, starts_document: bool) -> bool:
    """Whether the sentence is whole: it ends with a mark or a line, and (when it opens a
    passage that does not open its document) it starts like a sentence."""
    if not (terminal(sentence.text) or sentence.ends_line):
        return False
    if first and not starts_document:
        head = sentence.text.lstrip("\"'“‘([#-*• ")
        return bool(head) and (head[0].isupper() or head[0].isdigit())
    return True
