"""/v1's retrieval variants (`<model>+rag`): retrieval for clients that only speak OpenAI, driven
by the official `openai` package over real HTTP."""

from __future__ import annotations

import openai
import pytest

from app.settings import Settings, SettingsError
from tests.helpers import create_collection, drain, live_server, upload


def test_models_list_a_retrieval_variant_of_each_chat_model(sdk):
    ids = {m.id for m in sdk.models.list()}
    assert {"fake-chat", "fake-chat+rag", "extractive", "extractive+rag"} <= ids
    embedding_variants = {i for i in ids if i.endswith("+rag")} - {"fake-chat+rag"}
    assert embedding_variants == {"extractive+rag"}  # chat models only, not the embedder
    assert sdk.models.retrieve("fake-chat+rag").owned_by == "ollama"


def test_a_rag_model_answers_with_its_model_over_the_users_documents(sdk, llm, docs):
    llm.reply = "Foxes are clever [1]."
    answer = sdk.chat.completions.create(
        model="fake-chat+rag", messages=[{"role": "user", "content": "Are foxes clever animals?"}]
    )
    assert answer.model == "fake-chat"
    assert answer.choices[0].message.content == "Foxes are clever [1]."
    citations = answer.model_extra["citations"]
    assert citations[0]["filename"] == "fox.txt" and citations[0]["cited"] is True
    request = llm.chat_requests()[-1]
    assert request["model"] == "fake-chat"
    assert "[1] fox.txt" in request["messages"][-1]["content"]


def test_a_streamed_rag_model_answer_cites_its_passage(sdk, llm, docs):
    llm.reply = "Install the valve first [1]."
    stream = sdk.chat.completions.create(
        model="fake-chat+rag",
        messages=[{"role": "user", "content": "XR-7734 valve?"}],
        stream=True,
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == llm.reply
    assert {c.model for c in chunks} == {"fake-chat"}
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    cited = [c for c in final.model_extra["citations"] if c["cited"]]
    assert [c["filename"] for c in cited] == ["valve.txt"]


def test_a_rag_model_searches_with_the_users_preferences(sdk, llm, client, admin, docs):
    response = client.patch("/api/v1/me/preferences", json={"top_k": 1}, headers=admin)
    assert response.status_code == 200, response.json
    llm.reply = "Yes [1]."
    answer = sdk.chat.completions.create(
        model="fake-chat+rag",
        messages=[{"role": "user", "content": "fox valve pipeline forest clever"}],
    )
    assert len(answer.model_extra["citations"]) == 1


def test_a_rag_model_sees_only_the_callers_collections(app, base_url, client, llm, docs, new_user):
    other = new_user()
    mine = create_collection(client, other, "mine")
    upload(client, other, mine, "badger.txt", "Badgers dig setts in the forest; foxes visit.")
    drain(app)
    llm.reply = "Noted [1]."
    token = other["Authorization"].removeprefix("Bearer ")
    with openai.OpenAI(base_url=base_url, api_key=token, max_retries=0) as sdk_other:
        answer = sdk_other.chat.completions.create(
            model="fake-chat+rag",
            messages=[{"role": "user", "content": "foxes forest clever animals"}],
        )
    assert {c["filename"] for c in answer.model_extra["citations"]} == {"badger.txt"}
    assert "fox.txt" not in llm.chat_requests()[-1]["messages"][-1]["content"]


def test_an_unknown_base_model_is_the_unknown_model_error(sdk):
    with pytest.raises(openai.NotFoundError, match="no chat model 'gpt-9'"):
        sdk.chat.completions.create(model="gpt-9+rag", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError, match="no chat model"):
        sdk.chat.completions.create(model="+rag", messages=[{"role": "user", "content": "x"}])


def test_the_suffix_is_a_setting(make_app, llm, admin_token, tmp_path):
    suffixed = make_app(
        llm="ollama", ollama_url=llm.url, chat_model="fake-chat", rag_model_suffix=":docs"
    )
    with (
        live_server(suffixed) as base,
        openai.OpenAI(base_url=f"{base}/v1", api_key=admin_token, max_retries=0) as sdk,
    ):
        ids = {m.id for m in sdk.models.list()}
    assert "fake-chat:docs" in ids and "fake-chat+rag" not in ids
    env = {"POSTRAG_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).rag_model_suffix == "+rag"
    for bad in ("with space", "a/b", "x" * 21):
        with pytest.raises(SettingsError, match="POSTRAG_RAG_MODEL_SUFFIX"):
            Settings.from_env({**env, "POSTRAG_RAG_MODEL_SUFFIX": bad})
