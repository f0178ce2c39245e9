"""The prompt's parts: reasoning split from streamed text, [n] markers, the token budget."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.errors import ValidationFailed
from app.providers import local_embedder
from app.repositories.search import Hit
from app.services import prompting

SOURCE = Hit(
    chunk_id=1,
    document_id=2,
    collection_id=3,
    filename="a.pdf",
    page=4,
    char_start=0,
    char_end=10,
    ordinal=0,
    score=0.5,
    text="Alpha beta gamma.",
    heading_path=[],
    semantic_rank=1,
    semantic_similarity=0.5,
    fulltext_rank=None,
    fulltext_score=None,
)


@pytest.mark.parametrize("cut", range(1, 40))
def test_reasoning_is_split_out_wherever_the_stream_cuts_the_tags(cut):
    text = "<think>plan the answer</think>The answer is 42."
    splitter = prompting.ThinkSplitter()
    answer, reasoning = "", ""
    for piece in (text[:cut], text[cut:]):
        a, r = splitter.feed(piece)
        answer, reasoning = answer + a, reasoning + r
    a, r = splitter.flush()
    assert (answer + a, reasoning + r) == ("The answer is 42.", "plan the answer")


def test_text_that_only_looks_like_a_tag_is_kept():
    splitter = prompting.ThinkSplitter()
    assert splitter.feed("a <b> and <thin") == ("a <b> and ", "")
    assert splitter.feed("g>") == ("<thing>", "")
    assert splitter.flush() == ("", "")


def test_citation_markers_in_range_are_found():
    answer = "See [1], [2, 3] and [3][1]; not [0], [7] or [x]."
    assert prompting.cited_numbers(answer, 3) == {1, 2, 3}
    cited = prompting.citations([SOURCE, SOURCE], "Only [2].")
    assert [(c.n, c.cited) for c in cited] == [(1, False), (2, True)]
    assert cited[0].filename == "a.pdf" and cited[0].page == 4


def test_sources_are_numbered_and_dropped_from_the_bottom_when_they_do_not_fit():
    big = replace(SOURCE, text="word " * 600)
    prompt = prompting.build_prompt(
        system_prompt="",
        sources=[SOURCE, big, SOURCE],
        history=[],
        question="Why?",
        context_tokens=1024,
        answer_tokens=256,
    )
    assert len(prompt.sources) == 1
    assert prompt.messages[0]["content"].startswith(prompting.DEFAULT_SYSTEM_PROMPT)
    assert prompt.messages[-1]["content"] == (
        "Sources:\n\n[1] a.pdf, page 4\nAlpha beta gamma.\n\nQuestion: Why?"
    )


def test_a_question_longer_than_the_context_is_422():
    with pytest.raises(ValidationFailed, match="too long"):
        prompting.build_prompt(
            system_prompt="",
            sources=[],
            history=[],
            question="word " * 2000,
            context_tokens=1024,
            answer_tokens=256,
        )


def test_extractive_answer_labels_itself_and_quotes_whole_sentences():
    sources = [SOURCE, replace(SOURCE, chunk_id=5, document_id=6, text="x " * 1000)]
    text = "".join(prompting.extractive_answer(sources, "alpha"))
    assert "not a generated answer" in text
    assert "> Alpha beta gamma. [1]" in text and "[2]" not in text  # no sentence in [2]
    assert "([1] a.pdf, page 4, characters 0\u201317)" in text
    assert "nothing to show" in "".join(prompting.extractive_answer([], "alpha"))


def test_extractive_answer_shows_passages_without_any_whole_sentence():
    text = "".join(prompting.extractive_answer([replace(SOURCE, text="x y z")], "x"))
    assert "these are the passages" in text and "> x y z [1]" in text


def test_history_alternates_and_ends_with_an_answer():
    history = [
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "B"},
        {"role": "user", "content": "c"},
    ]
    assert prompting.alternating(history) == [
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "B"},
    ]


def test_a_reply_closing_an_unopened_think_block_is_split():
    assert prompting.unopened_reasoning("plan</think> Answer") == ("Answer", "plan")
    assert prompting.unopened_reasoning("no tags [1]") == ("no tags [1]", "")


def test_long_words_are_charged_by_their_length_in_every_token_count():
    run = "x" * 4000  # WordPiece reads it as one [UNK]
    assert prompting.count_tokens(run) == 1000
    assert prompting.count_tokens(f"one {run} two") == 1002
    assert local_embedder.count_tokens(run) == len(local_embedder.token_spans(run)) == 1000
    assert prompting.count_tokens("A plain sentence.") == 4  # ordinary words: as they were


def test_whitespace_the_tokenizer_skips_still_counts():
    assert prompting.count_tokens("a" + " " * 6000 + "b") == 1001  # one per 6 characters


ODD_TEXTS = {
    "no spaces": "x" * 200_000,
    "whitespace": "word" + " " * 200_000 + "word",
    "control characters": "a\x01" * 100_000,
}


@pytest.mark.parametrize("odd", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_a_prompt_never_holds_more_characters_than_its_budget_allows(odd):
    """A 25 MB source went to the model as one token under an 8,192-token budget (issue 16)."""
    context, answer = 8192, 1024
    budget = int((context - answer) * prompting.SAFETY_MARGIN)
    prompt = prompting.build_prompt(
        system_prompt="",
        sources=[replace(SOURCE, text=odd), SOURCE],
        history=[{"role": "user", "content": odd}, {"role": "assistant", "content": odd}],
        question="What does it say?",
        context_tokens=context,
        answer_tokens=answer,
    )
    sent = sum(len(m["content"]) for m in prompt.messages)
    assert sent <= budget * prompting.CHARS_PER_TOKEN
    assert prompt.estimated_tokens <= budget
    assert [s.chunk_id for s in prompt.sources] == [1, 1]  # cut, not crowding the rest out
