"""Offline (extractive) answers quote the whole sentences that answer, from several sources."""

from __future__ import annotations

import re

import pytest

from app.services import sentences
from tests.helpers import ask, drain, new_chat, upload

# The answer lies past the first 700 characters of its passage; lines are wrapped mid-sentence,
# and abbreviations and decimals sit where a naive splitter would cut.
LICENCE = (
    "Terms of the licence\n\n"
    "The licensor grants e.g. a worldwide, royalty-free licence to use the work in any form.\n"
    "Copies may be made by hand, by machine, or by any other means the licensee has to hand.\n"
    "Fees of 3.5 per cent apply to bundles sold by Dr. Smith and Acme Inc. in the old region.\n"
    "The licensee may distribute modified copies when the changes are marked as such in each\n"
    "file that was changed, with the date of the change and the name of the person who made it.\n"
    "Notices of copyright in the work must be kept intact in every copy that is distributed.\n"
    "The licensor is not liable for damage caused by use of the work, except where law says so.\n"
    "Translations count as modified copies and follow the same rules as every other change.\n"
    "If any party files a patent infringement claim against a contributor, the licence of that\n"
    "party shall terminate on the date the claim is filed.\n"
)
POLICY = (
    "Patent policy\n\n"
    "Our office keeps a register of every patent held by the company and its subsidiaries.\n"
    "A patent infringement claim by a licensee ends all patent rights granted to that licensee.\n"
    "The register is reviewed each year by the legal team and published to all staff.\n"
)
QUESTION = "When does the licence terminate after a patent infringement claim?"
ANSWER = (
    "If any party files a patent infringement claim against a contributor, the licence of that"
    " party shall terminate on the date the claim is filed."
)
_QUOTE = re.compile(r"^> (.*) \[(\d+)\]$", re.MULTILINE)


def _collapsed(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def answer(app, client, admin, collection):
    texts = {
        upload(client, admin, collection, "licence.txt", LICENCE): LICENCE,
        upload(client, admin, collection, "policy.txt", POLICY): POLICY,
    }
    drain(app)
    response = ask(client, admin, new_chat(client, admin), QUESTION)
    assert response.status_code == 201, response.json
    assert response.json["model"] == "extractive"
    return response.json, texts


def test_the_answering_sentence_is_quoted_whole_past_700_characters(answer):
    body, _ = answer
    assert LICENCE.index("If any party") > 700  # beyond what the old answer quoted
    quotes = dict((text, n) for text, n in _QUOTE.findall(body["content"]))
    assert ANSWER in quotes
    assert "..." not in body["content"]


def test_every_quote_is_a_whole_sentence_of_its_document(answer):
    body, texts = answer
    quotes = _QUOTE.findall(body["content"])
    assert quotes
    for text, n in quotes:
        document = texts[body["citations"][int(n) - 1]["document_id"]]
        whole_lines = {_collapsed(line) for line in document.splitlines()}
        assert re.search(r"[.!?:;]$", text) or text in whole_lines, text
        assert text in _collapsed(document)
        assert text in {s.text for s in sentences.split(document)}  # not a piece of one


def test_two_sources_each_contribute_and_citations_cover_their_quotes(answer):
    body, texts = answer
    quotes = _QUOTE.findall(body["content"])
    cited = {c["filename"] for c in body["citations"] if c["cited"]}
    assert cited == {"licence.txt", "policy.txt"}
    for text, n in quotes:
        citation = body["citations"][int(n) - 1]
        document = texts[citation["document_id"]]
        assert text in _collapsed(document[citation["char_start"] : citation["char_end"]])
        line = re.search(rf"^\(\[{n}\] \S+, characters (.*)\)$", body["content"], re.MULTILINE)
        assert line is not None
        spans = [tuple(map(int, span.split("\u2013"))) for span in line.group(1).split(", ")]
        assert text in {_collapsed(document[a:b]) for a, b in spans}  # its own link
        assert all(citation["char_start"] <= a < b <= citation["char_end"] for a, b in spans)


def test_a_numbered_heading_is_never_quoted(app, client, admin, collection):
    terms = (
        "7. Payment.\n\nFees are paid each month in advance by bank transfer.\n\n"
        "8. Termination.\n\nThe licence terminates when the licensee files a patent claim.\n"
        "8.1 Termination notice\nA notice of termination is sent to the licensee in writing.\n"
    )
    upload(client, admin, collection, "terms.txt", terms)
    drain(app)
    response = ask(client, admin, new_chat(client, admin), "When does the licence terminate?")
    assert response.status_code == 201, response.json
    quoted = [text for text, _ in _QUOTE.findall(response.json["content"])]
    assert "The licence terminates when the licensee files a patent claim." in quoted
    assert not any("Termination" in text for text in quoted), quoted
