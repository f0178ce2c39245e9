"""Follow-ups in context: each chat turn searches with a standalone question (the model's rewrite,
or the offline rule), stored with the answer and sent in the `retrieval` event."""

from __future__ import annotations

import re
import time

import openai
import psycopg
import pytest

from app.runtime import Runtime
from app.services import followups
from tests.helpers import (
    SSE,
    ask,
    connections_held_at,
    drain,
    live_server,
    messages,
    new_chat,
    parse_sse,
    upload,
)

REFUNDS = (
    "Refund policy: a refund is paid back to the original card within two weeks after the"
    " returned item is received at our warehouse."
)
SHIPPING = (
    "Shipping: parcels leave within two days and arrive in three to five days; express"
    " delivery arrives the next day, and the days of delivery are shown online."
)
FIRST = "What is the refund policy?"
FOLLOW_UP = "How many days does it take?"


@pytest.fixture
def docs(app, client, admin, collection):
    upload(client, admin, collection, "refunds.txt", REFUNDS)
    upload(client, admin, collection, "shipping.txt", SHIPPING)
    drain(app)
    return collection


def _turns(client, admin, *questions):
    """The retrieval event of each question, asked in turn in one new chat; and the chat."""
    chat = new_chat(client, admin)
    found = []
    for question in questions:
        events = parse_sse(ask(client, admin, chat, question, extra=SSE).data)
        assert events[-1][0] == "done", events[-1]
        found.append(events[0][1])
    return found, chat


def test_the_rule_carries_the_earlier_questions_key_terms_to_a_short_follow_up():
    history = [
        {"role": "user", "content": "Which licence covers the parser?"},
        {"role": "assistant", "content": "The MIT licence [1]."},
        {"role": "user", "content": "What does the MIT licence say about warranty?"},
        {"role": "assistant", "content": "It disclaims it [2]."},
    ]
    ruled = followups.by_rule(history, "And what does the GPL say about that?")
    # the newest question's terms first, then the earlier ones'; the follow-up's own words stay
    assert ruled == "And what does the GPL say about that? mit licence warranty covers parser"
    standalone = "Which warehouse ships parcels to Canada by air freight?"
    assert followups.by_rule(history, standalone) == standalone  # no follow-up: as it is
    assert followups.by_rule([], "And that?") == "And that?"


@pytest.mark.parametrize(
    ("question", "follows"),
    [
        ("How does shipping work?", False),  # a new topic, though short
        ("When do patent licenses terminate?", False),
        ("How many days does it take?", True),  # refers back
        ("Are there exceptions?", True),
        ("What about shipping?", True),  # continues
        ("Also for gift cards?", True),
        ("Why?", True),  # names nothing of its own
        ("How much?", True),
    ],
)
def test_the_rule_carries_terms_only_to_a_question_that_leans_on_the_conversation(
    question, follows
):
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": "Two weeks."}]
    expected = f"{question} refund policy" if follows else question
    assert followups.by_rule(history, question) == expected


def test_a_cjk_question_counts_its_character_pairs_as_words():
    # Written without spaces, a new Chinese question is not one short "word" leaning on the
    # last question: its character pairs name its own subject.
    history = [
        {"role": "user", "content": "东京大学在哪里？"},
        {"role": "assistant", "content": "东京。"},
    ]
    question = "北京是哪个国家的首都？"
    assert followups.content_words(question)[:3] == ["北京", "京是", "是哪"]
    assert followups.by_rule(history, question) == question
    # a follow-up that refers back still carries the earlier question's pairs
    assert followups.by_rule(history, "And it?") == "And it? 东京 京大 大学 学在 在哪 哪里"


def test_offline_a_new_topic_after_a_question_is_searched_as_it_is(client, admin, docs):
    (_, new_topic), _ = _turns(client, admin, FIRST, "How does shipping work?")
    assert new_topic["query"] == "How does shipping work?"
    assert new_topic["sources"][0]["filename"] == "shipping.txt"


def test_offline_a_follow_up_finds_the_previous_turns_document(make_app, admin, docs):
    alone = make_app(chat_followups="off").test_client()
    (_, own_words), _ = _turns(alone, admin, FIRST, FOLLOW_UP)
    assert own_words["query"] == FOLLOW_UP
    assert own_words["sources"][0]["filename"] == "shipping.txt"  # its own words mislead it
    in_context = make_app().test_client()  # no language model: the rule
    (first, follow_up), chat = _turns(in_context, admin, FIRST, FOLLOW_UP)
    assert first["query"] == FIRST and first["sources"][0]["filename"] == "refunds.txt"
    assert follow_up["query"] == f"{FOLLOW_UP} refund policy"
    assert follow_up["sources"][0]["filename"] == "refunds.txt"
    assert follow_up["warnings"] == []
    stored = messages(in_context, admin, chat)
    assert [m["search_query"] for m in stored] == [None, FIRST, None, f"{FOLLOW_UP} refund policy"]


def test_offline_the_answer_to_a_follow_up_quotes_the_sentences_that_answer_it(client, admin, docs):
    chat = new_chat(client, admin)
    for question in (FIRST, FOLLOW_UP):
        answer = ask(client, admin, chat, question)
        assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["search_query"] == f"{FOLLOW_UP} refund policy"
    assert body["citations"][0]["filename"] == "refunds.txt"
    quoted = [n for _, n in re.findall(r"^> (.*) \[(\d+)\]$", body["content"], re.MULTILINE)]
    assert "1" in quoted, body["content"]  # the refund policy's sentence, not only shipping's


def _tokens_used(database_url):
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT sum(tokens) FROM llm_token_counters").fetchone()[0]


def _budgeted(make_app, llm):
    return make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=100_000
    )


def test_with_a_model_one_bounded_rewrite_is_the_query(make_app, admin, docs, llm, database_url):
    llm.reply = "About two weeks [1]."
    llm.rewrite = "How long does a refund take to be paid back?"
    client = _budgeted(make_app, llm).test_client()
    before = len(llm.chat_requests())
    (first, follow_up), chat = _turns(client, admin, FIRST, FOLLOW_UP)
    sent = llm.chat_requests()[before:]
    assert len(sent) == 3  # the first answer; the rewrite, then the second answer
    assert first["query"] == FIRST  # a first question is searched as it is, with no call
    rewrite = sent[1]
    assert rewrite["messages"][0] == {"role": "system", "content": followups.REWRITE_INSTRUCTIONS}
    asked = rewrite["messages"][1]["content"]
    assert f"User: {FIRST}" in asked and "Assistant: About two weeks [1]." in asked
    assert asked.endswith(f"Last question: {FOLLOW_UP}")
    assert rewrite["options"]["num_predict"] == followups.REWRITE_TOKENS
    assert rewrite["options"]["temperature"] == 0
    assert rewrite["options"]["num_ctx"] == sent[2]["options"]["num_ctx"]  # no model reload
    assert follow_up["query"] == llm.rewrite and follow_up["warnings"] == []
    assert follow_up["sources"][0]["filename"] == "refunds.txt"
    assert sent[2]["messages"][-1]["content"].endswith(f"Question: {FOLLOW_UP}")  # as asked
    stored = messages(client, admin, chat)[-1]
    assert stored["search_query"] == llm.rewrite
    assert (stored["prompt_tokens"], stored["completion_tokens"]) == llm.usage  # its own
    assert _tokens_used(database_url) == 3 * sum(llm.usage)  # the rewrite is in the budget


def test_the_rewrite_keeps_only_the_last_turns_and_its_first_clean_line(
    ollama_app, admin, docs, llm
):
    llm.rewrite = '<think>They mean refunds.</think>\nQuery: "refund duration"\nmore text'
    client = ollama_app.test_client()
    questions = [f"Question number {i} about parcels?" for i in range(5)]
    events, _ = _turns(client, admin, *questions, FOLLOW_UP)
    assert events[-1]["query"] == "refund duration"
    asked = llm.chat_requests()[-2]["messages"][1]["content"]
    kept = [q for q in questions if q in asked]
    assert kept == questions[-followups.REWRITE_TURNS :]


def _hangs(messages):
    time.sleep(3)
    return "too late"


def _breaks(messages):
    raise RuntimeError("the fake model crashed")


@pytest.mark.parametrize(
    ("rewrite", "reason"),
    [("   \n", "empty"), (_breaks, "ollama"), (_hangs, "no rewrite within 0.3 s")],
    ids=["empty", "broken", "slow"],
)
def test_a_rewrite_that_fails_falls_back_to_the_rule_with_a_warning(
    make_app, admin, docs, llm, rewrite, reason
):
    app = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_rewrite_timeout_s=0.3
    )
    llm.rewrite = rewrite
    client = app.test_client()
    (_, follow_up), chat = _turns(client, admin, FIRST, FOLLOW_UP)
    assert follow_up["query"] == f"{FOLLOW_UP} refund policy"
    assert follow_up["sources"][0]["filename"] == "refunds.txt"
    (warning,) = follow_up["warnings"]
    assert "could not rewrite" in warning and reason in warning
    stored = messages(client, admin, chat)[-1]
    assert stored["status"] == "complete" and stored["search_query"] == follow_up["query"]


def test_a_late_rewrite_is_hung_up_on(make_app, admin, docs, llm):
    app = make_app(
        llm="ollama",
        ollama_url=llm.url,
        chat_model="fake-chat",
        chat_rewrite_timeout_s=0.3,
        llm_timeout_s=60,
    )
    llm.rewrite_stall_s = 30  # headers, then nothing
    (_, follow_up), _ = _turns(app.test_client(), admin, FIRST, FOLLOW_UP)
    assert "no rewrite within 0.3 s" in follow_up["warnings"][0]
    assert llm.aborted.wait(10)  # its connection closed, long before the model's next piece


def test_the_rule_setting_never_asks_the_model(make_app, admin, docs, llm):
    app = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat", chat_followups="rule")
    before = len(llm.chat_requests())
    (_, follow_up), _ = _turns(app.test_client(), admin, FIRST, FOLLOW_UP)
    assert len(llm.chat_requests()) == before + 2  # the two answers only
    assert follow_up["query"] == f"{FOLLOW_UP} refund policy"


def test_v1_with_rag_rewrites_a_multi_message_request(
    make_app, admin_token, docs, llm, database_url
):
    llm.reply = "Two weeks [1]."
    llm.rewrite = "How long does a refund take to be paid back?"
    with (
        live_server(_budgeted(make_app, llm)) as base,
        openai.OpenAI(base_url=f"{base}/v1", api_key=admin_token, max_retries=0) as sdk,
    ):
        answer = sdk.chat.completions.create(
            model="fake-chat",
            messages=[
                {"role": "user", "content": FIRST},
                {"role": "assistant", "content": "Refunds go back to your card [1]."},
                {"role": "user", "content": FOLLOW_UP},
            ],
            extra_body={"rag": {"collection_ids": [docs], "top_k": 1}},
        )
    rewrite, sent = llm.chat_requests()[-2:]
    assert rewrite["messages"][0]["content"] == followups.REWRITE_INSTRUCTIONS
    assert rewrite["messages"][1]["content"].endswith(f"Last question: {FOLLOW_UP}")
    assert [c["filename"] for c in answer.model_extra["citations"]] == ["refunds.txt"]
    assert "[1] refunds.txt" in sent["messages"][-1]["content"]
    assert answer.usage.total_tokens == sum(llm.usage)  # the answer's own
    assert _tokens_used(database_url) == 2 * sum(llm.usage)  # the rewrite is in the budget


HISTORY = [
    {"role": "user", "content": FIRST},
    {"role": "assistant", "content": "Refunds go back to your card [1]."},
    {"role": "user", "content": FOLLOW_UP},
]


def test_v1_over_the_budget_asks_the_model_nothing(make_app, admin, docs, llm, database_url):
    app = make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat", llm_tokens_per_day=1)
    client = app.test_client()
    first = {"model": "fake-chat", "messages": HISTORY[:1]}
    assert client.post("/v1/chat/completions", json=first, headers=admin).status_code == 200
    before = len(llm.chat_requests())
    body = {"model": "fake-chat+rag", "messages": HISTORY}
    over = client.post("/v1/chat/completions", json=body, headers=admin)
    assert over.status_code == 429, over.json
    assert len(llm.chat_requests()) == before  # no rewrite either
    assert _tokens_used(database_url) == sum(llm.usage)


def test_v1_counts_the_rewrite_of_a_follow_up_whose_answer_failed(
    make_app, admin, docs, llm, database_url
):
    llm.reply = _breaks
    client = _budgeted(make_app, llm).test_client()
    body = {"model": "fake-chat+rag", "messages": HISTORY}
    failed = client.post("/v1/chat/completions", json=body, headers=admin)
    assert failed.status_code >= 500, failed.json
    assert _tokens_used(database_url) == sum(llm.usage)  # the rewrite's
    with psycopg.connect(database_url) as conn:
        held = conn.execute("SELECT sum(reserved) FROM llm_token_counters").fetchone()[0]
    assert held == 0


@pytest.mark.parametrize("model, rag", [("fake-chat+rag", None), ("fake-chat", {"top_k": 1})])
def test_v1_holds_no_connection_while_the_model_rewrites(ollama_app, admin, docs, llm, model, rag):
    llm.rewrite = "How long does a refund take to be paid back?"
    body = {
        "model": model,
        "messages": [
            {"role": "user", "content": FIRST},
            {"role": "assistant", "content": "Refunds go back to your card [1]."},
            {"role": "user", "content": FOLLOW_UP},
        ],
    }
    if rag is not None:
        body["rag"] = rag
    pool = Runtime.of(ollama_app).pool
    with connections_held_at(llm, pool) as held:
        answer = ollama_app.test_client().post("/v1/chat/completions", json=body, headers=admin)
    assert answer.status_code == 200, answer.json
    assert answer.json["choices"][0]["message"]["content"] == llm.reply
    rewrite = llm.chat_requests()[-2]
    assert rewrite["messages"][0]["content"] == followups.REWRITE_INSTRUCTIONS
    assert len(held) == 2 and max(held) == 0, held  # the rewrite, then the answer


@pytest.mark.parametrize(
    ("rewrite", "query"),
    [
        ("fox\x00valve\x1b refund", "fox valve refund"),
        ("\x00\ud800\x07", f"{FOLLOW_UP} refund policy"),
    ],
    ids=["kept", "nothing-left"],
)
def test_control_characters_in_the_rewrite_are_dropped(
    ollama_app, admin, docs, llm, rewrite, query
):
    llm.rewrite = rewrite
    client = ollama_app.test_client()
    (_, follow_up), chat = _turns(client, admin, FIRST, FOLLOW_UP)
    assert follow_up["query"] == query
    assert (follow_up["warnings"] == []) == (query != f"{FOLLOW_UP} refund policy")
    assert messages(client, admin, chat)[-1]["search_query"] == query


def test_v1_a_rewrite_with_control_characters_is_searched_without_them(
    ollama_app, admin, docs, llm
):
    llm.rewrite = "fox\x00valve"
    history = [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": "Refunds go back to your card [1]."},
        {"role": "user", "content": FOLLOW_UP},
    ]
    body = {"model": "fake-chat+rag", "messages": history}
    answer = ollama_app.test_client().post("/v1/chat/completions", json=body, headers=admin)
    assert answer.status_code == 200, answer.json
    assert answer.json["choices"][0]["message"]["content"] == llm.reply
