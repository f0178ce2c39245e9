"""/v1: the OpenAI-compatible API, driven by the official `openai` package over real HTTP."""

from __future__ import annotations

import json

import numpy as np
import openai
import pytest

from app.providers import local_embedder


def test_models_lists_chat_embedding_and_extractive(sdk):
    ids = {m.id for m in sdk.models.list()}
    assert {"fake-chat", local_embedder.DEFAULT_MODEL, "extractive"} <= ids
    assert sdk.models.retrieve("extractive").owned_by == "postrag"
    with pytest.raises(openai.NotFoundError, match="no model"):
        sdk.models.retrieve("nope")


def test_embeddings_match_the_local_model_as_float_and_base64(sdk):
    texts = ["The quick brown fox", "Install the valve"]
    expected = local_embedder.LocalEmbedder().embed(texts)
    model = local_embedder.DEFAULT_MODEL
    as_base64 = sdk.embeddings.create(model=model, input=texts)  # the SDK's default encoding
    as_float = sdk.embeddings.create(model=model, input=texts, encoding_format="float")
    for answer in (as_base64, as_float):
        got = np.array([item.embedding for item in sorted(answer.data, key=lambda d: d.index)])
        assert got.shape == (2, local_embedder.DIMENSION)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert answer.usage.prompt_tokens > 0
    with pytest.raises(openai.NotFoundError, match="no embedding model"):
        sdk.embeddings.create(model="missing-embedder", input="x")
    with pytest.raises(openai.UnprocessableEntityError, match="dimensions"):
        sdk.embeddings.create(model=local_embedder.DEFAULT_MODEL, input="x", dimensions=12)


def test_chat_completion_plain_and_with_rag_citations(sdk, llm, docs):
    llm.reply = "Foxes are clever [1]."
    plain = sdk.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    assert plain.choices[0].message.content == "Foxes are clever [1]."
    assert plain.choices[0].finish_reason == "stop"
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == llm.usage
    assert plain.model_extra["citations"] == []
    sent = llm.chat_requests()[-1]["messages"]
    assert sent == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    grounded = sdk.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "Are foxes clever animals?"}],
        extra_body={"rag": {"collection_ids": [docs], "top_k": 2}},
    )
    citations = grounded.model_extra["citations"]
    assert citations[0]["filename"] == "fox.txt" and citations[0]["cited"] is True
    assert len(citations) <= 2
    assert "[1] fox.txt" in llm.chat_requests()[-1]["messages"][-1]["content"]


def test_streamed_completion_arrives_in_order_with_usage(sdk, llm, docs):
    llm.reply = "The valve goes in first [1] and then the pipeline is pressurised."
    stream = sdk.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "XR-7734 valve?"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"rag": {}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == llm.reply
    assert chunks[0].model_extra["citations"][0]["filename"] == "valve.txt"
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage.completion_tokens == llm.usage[1]


def test_extractive_model_and_errors_reach_the_sdk(sdk, llm, docs, client, new_user):
    answer = sdk.chat.completions.create(
        model="extractive",
        messages=[{"role": "user", "content": "XR-7734 valve"}],
        extra_body={"rag": {}},
    )
    assert "not a generated answer" in answer.choices[0].message.content
    assert "XR-7734" in answer.choices[0].message.content
    with pytest.raises(openai.NotFoundError, match="no chat model"):
        sdk.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    llm.fail_status = 503  # an upstream error is a bad gateway: 502, naming the provider
    with pytest.raises(openai.InternalServerError, match="ollama.*answered 503"):
        sdk.chat.completions.create(model="fake-chat", messages=[{"role": "user", "content": "x"}])
    llm.fail_status = None
    llm.reply = "one two three four five"
    llm.die_after = 2
    with pytest.raises(openai.APIError, match="mid-reply"):
        list(
            sdk.chat.completions.create(
                model="fake-chat", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_tokens_and_tenancy_apply(base_url, sdk, docs, new_user):
    with (
        openai.OpenAI(base_url=base_url, api_key="prg_wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.models.list()
    other = new_user()["Authorization"].removeprefix("Bearer ")
    with openai.OpenAI(base_url=base_url, api_key=other, max_retries=0) as sdk_other:
        with pytest.raises(openai.NotFoundError, match="no collection"):
            sdk_other.chat.completions.create(
                model="fake-chat",
                messages=[{"role": "user", "content": "foxes"}],
                extra_body={"rag": {"collection_ids": [docs]}},
            )
        grounded = sdk_other.chat.completions.create(
            model="fake-chat",
            messages=[{"role": "user", "content": "foxes forest clever"}],
            extra_body={"rag": {}},
        )
        assert grounded.model_extra["citations"] == []  # the admin's documents stay invisible


def test_a_malformed_upstream_stream_ends_with_an_error_chunk(sdk, llm):
    llm.reply = "one two three four"
    llm.malformed_after = 2
    stream = sdk.chat.completions.create(
        model="fake-chat", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError, match="malformed reply"):
        list(stream)


def test_a_stream_error_is_the_problem_a_json_answer_would_be(ollama_app, admin, llm):
    """The error chunk is the JSON answer's problem object; OpenAI's `error.code` carries the
    status there, since the stream itself answered 200."""
    llm.fail_status = 500
    client = ollama_app.test_client()
    body = {"model": "fake-chat", "messages": [{"role": "user", "content": "x"}]}
    answered = client.post("/v1/chat/completions", json=body, headers=admin)
    assert answered.status_code == 502
    streamed = client.post("/v1/chat/completions", json={**body, "stream": True}, headers=admin)
    assert streamed.status_code == 200
    lines = streamed.get_data(as_text=True).splitlines()
    chunk = json.loads([line for line in lines if line.startswith("data: {")][-1][6:])
    assert chunk.keys() == answered.json.keys() and "provider" in chunk
    assert chunk["error"].keys() == answered.json["error"].keys()
    assert chunk["error"]["code"] == 502 and answered.json["error"]["code"] is None
    differing = {key for key, value in answered.json.items() if chunk[key] != value}
    assert differing == {"request_id", "error"}
    assert chunk["error"]["message"] == answered.json["error"]["message"] == chunk["detail"]
