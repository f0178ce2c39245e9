"""The sentence splitter of extractive answers: where a sentence ends and where it does not."""

from __future__ import annotations

import pytest

from app.services import sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith paid 3.5 per cent, e.g. to J. Doe. Then he left.", 2),
        ("A line wrapped\nin the middle of a sentence ends here. Next one!", 2),
        ("# Heading\nBody text without a mark\n- item one\n- item two", 4),
        ('He said "Stop." Then (they) ran? Yes.', 3),
        ("First paragraph\n\nSecond paragraph.", 2),
    ],
)
def test_sentences_end_where_they_should(text, expected):
    found = sentences.split(text)
    assert len(found) == expected, [s.text for s in found]
    for sentence in found:  # spans point at the sentence, whitespace aside
        assert " ".join(text[sentence.start : sentence.end].split()) == sentence.text


def test_a_piece_cut_by_the_passage_edge_is_not_complete():
    first, middle, last = sentences.split("of the claim. The licence ends. And then the")
    assert not sentences.complete(first, True, False)  # starts mid-sentence
    assert sentences.complete(first, True, True)  # unless the passage opens the document
    assert sentences.complete(middle, False, False)
    assert not sentences.complete(last, False, False)  # the chunk ends mid-sentence


def test_a_numbered_title_is_a_heading_of_its_own():
    text = (
        "8. Termination.\n"
        "The licence ends when a claim is filed.\n"
        "8.1 Patent claims\n"
        "A patent claim ends the licence at once.\n"
        "1. Copy the file.\n"
    )
    found = [(s.text, sentences.numbered_heading(s.text)) for s in sentences.split(text)]
    assert found == [
        ("8. Termination.", True),  # not "8." and "Termination."
        ("The licence ends when a claim is filed.", False),
        ("8.1 Patent claims", True),  # not run into the next line
        ("A patent claim ends the licence at once.", False),
        ("1. Copy the file.", False),  # a step, not a title
    ]
