"""Model registry: live state from the fake Ollama/OpenAI server, registration rules, defaults,
deletion rules, and pulls with SSE progress."""

from __future__ import annotations

import logging

import psycopg
import pytest

from app.providers import local_embedder
from tests.helpers import SSE, closed_port_url, drain, parse_sse


@pytest.fixture
def models_app(make_app, llm):  # type: ignore[no-untyped-def]
    """An app whose Ollama and OpenAI-compatible servers are the fake one."""
    return make_app(
        llm="ollama", ollama_url=llm.url, openai_base_url=f"{llm.url}/v1", llm_timeout_s=3
    )


@pytest.fixture
def api(models_app):  # type: ignore[no-untyped-def]
    return models_app.test_client()


def register(api, admin, **body):  # type: ignore[no-untyped-def]
    response = api.post("/api/v1/models", headers=admin, json=body)
    assert response.status_code == 201, response.json
    return response.json


def error_locs(response) -> list[list]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    return [e["loc"] for e in response.json["errors"]]


def test_list_shows_installed_and_missing_models(api, admin, new_user):
    chat = register(api, admin, provider="ollama", name="fake-chat", kind="chat")
    absent = register(api, admin, provider="ollama", name="not-pulled", kind="chat")
    embed = register(api, admin, provider="ollama", name="fake-embed", kind="embedding")
    served = register(api, admin, provider="openai", name="fake-chat", kind="chat")
    unserved = register(api, admin, provider="openai", name="gpt-nope", kind="chat")
    page = api.get("/api/v1/models", headers=new_user())  # any user may look
    assert page.status_code == 200
    live = {m["id"]: m["live"] for m in page.json["items"]}
    assert page.json["total"] == 5
    assert live[chat["id"]] == {
        "state": "installed",
        "context_length": 4096,
        "dimension": None,
        "capabilities": ["completion"],
        "detail": None,
    }
    assert live[absent["id"]]["state"] == "missing" and "pull" in live[absent["id"]]["detail"]
    assert live[embed["id"]]["dimension"] == 8 and live[embed["id"]]["capabilities"] == [
        "embedding"
    ]
    assert live[served["id"]]["state"] == "installed"
    assert live[unserved["id"]]["state"] == "missing"
    embeddings = api.get("/api/v1/models?kind=embedding", headers=admin).json
    assert [m["id"] for m in embeddings["items"]] == [embed["id"]]
    one = api.get(f"/api/v1/models/{chat['id']}", headers=admin)
    assert one.status_code == 200 and one.json["live"]["state"] == "installed"
    assert api.get("/api/v1/models/999999", headers=admin).status_code == 404


def test_providers_are_asked_once_per_request(api, admin, llm):
    for name in ("a", "b", "c"):
        register(api, admin, provider="ollama", name=name, kind="chat")
    llm.requests.clear()
    assert api.get("/api/v1/models", headers=admin).status_code == 200
    assert [path for path, _ in llm.requests] == ["/api/tags"]


def test_unreachable_provider_is_a_state_not_an_error(make_app, admin):
    app = make_app(llm="ollama", ollama_url=closed_port_url(), llm_timeout_s=3)
    api = app.test_client()
    model = register(api, admin, provider="ollama", name="llama3.2", kind="chat")
    assert model["context_length"] is None  # nothing could be discovered
    page = api.get("/api/v1/models", headers=admin)
    assert page.status_code == 200
    live = page.json["items"][0]["live"]
    assert live["state"] == "unreachable"
    assert "ollama" in live["detail"] and "cannot reach" in live["detail"]
    missing_dimension = api.post(
        "/api/v1/models",
        headers=admin,
        json={"provider": "ollama", "name": "nomic-embed-text", "kind": "embedding"},
    )
    assert error_locs(missing_dimension) == [["body", "dimension"]]


def test_local_embedder_is_installed(app, api, admin):
    drain(app)  # the worker registers the configured embedder and its space
    items = api.get("/api/v1/models", headers=admin).json["items"]
    local = next(m for m in items if m["provider"] == "local")
    assert local["name"] == local_embedder.DEFAULT_MODEL and local["kind"] == "embedding"
    assert local["live"]["state"] == "installed"
    assert local["live"]["dimension"] == local_embedder.DIMENSION


def test_register_fills_details_from_ollama(api, admin):
    response = api.post(
        "/api/v1/models",
        headers=admin,
        json={"provider": "ollama", "name": "fake-embed", "kind": "embedding"},
    )
    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"] == f"/api/v1/models/{body['id']}"
    assert (body["dimension"], body["context_length"]) == (8, 512)
    assert body["is_default"] is False and body["capabilities"] == {}
    given = register(
        api, admin, provider="ollama", name="fake-chat", kind="chat", context_length=1000
    )
    assert given["context_length"] == 1000  # what the admin says wins


CHAT = {"provider": "ollama", "name": "x", "kind": "chat"}
EMBED = {"provider": "ollama", "name": "fake-embed", "kind": "embedding"}
LOCAL = {"provider": "local", "name": local_embedder.MODEL_NAME, "kind": "embedding"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**EMBED, "provider": "openai"}, "dimension"),  # nothing to discover it from
        ({**CHAT, "provider": "openai", "dimension": 8}, "dimension"),
        ({**LOCAL, "kind": "chat"}, "provider"),
        ({**LOCAL, "name": "other-model"}, "name"),
        ({**LOCAL, "dimension": 768}, "dimension"),
        ({**EMBED, "kind": "chat"}, "kind"),  # Ollama says it embeds
        ({**EMBED, "dimension": 9}, "dimension"),  # Ollama says 8
        ({**CHAT, "provider": "vllm"}, "provider"),
        ({**CHAT, "name": " "}, "name"),
        ({**CHAT, "kind": "rerank"}, "kind"),
        ({**CHAT, "context_length": 0}, "context_length"),
        ({**CHAT, "capabilities": []}, "capabilities"),
        ({**CHAT, "is_default": None}, "is_default"),
    ],
)
def test_register_rejects_invalid_models_naming_the_field(api, admin, body, field):
    assert ["body", field] in error_locs(api.post("/api/v1/models", headers=admin, json=body))


def test_register_is_for_admins_and_names_are_unique_per_provider(api, admin, new_user):
    body = {"provider": "openai", "name": "gpt-x", "kind": "chat"}
    assert api.post("/api/v1/models", headers=new_user(), json=body).status_code == 403
    register(api, admin, **body)
    again = api.post("/api/v1/models", headers=admin, json=body)
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    register(api, admin, **{**body, "provider": "ollama"})  # another provider may have it


def defaults(api, admin, kind):  # type: ignore[no-untyped-def]
    items = api.get(f"/api/v1/models?kind={kind}", headers=admin).json["items"]
    return [m["id"] for m in items if m["is_default"]]


def test_choosing_a_default_keeps_one_per_kind(api, admin):
    first = register(api, admin, provider="openai", name="one", kind="chat", is_default=True)
    second = register(api, admin, provider="openai", name="two", kind="chat")
    embed = register(
        api, admin, provider="openai", name="e", kind="embedding", dimension=4, is_default=True
    )
    assert first["is_default"] and defaults(api, admin, "chat") == [first["id"]]
    patched = api.patch(f"/api/v1/models/{second['id']}", headers=admin, json={"is_default": True})
    assert patched.status_code == 200 and patched.json["is_default"] is True
    assert defaults(api, admin, "chat") == [second["id"]]
    assert defaults(api, admin, "embedding") == [embed["id"]]  # other kinds keep theirs
    third = register(api, admin, provider="openai", name="three", kind="chat", is_default=True)
    assert defaults(api, admin, "chat") == [third["id"]]
    again = api.patch(f"/api/v1/models/{third['id']}", headers=admin, json={"is_default": True})
    assert again.status_code == 200 and defaults(api, admin, "chat") == [third["id"]]


def test_patch_changes_only_mutable_fields(api, admin, new_user):
    model = register(api, admin, provider="openai", name="m", kind="chat")
    path = f"/api/v1/models/{model['id']}"
    changed = api.patch(
        path, headers=admin, json={"context_length": 8192, "capabilities": {"tools": True}}
    )
    assert changed.status_code == 200
    assert changed.json["context_length"] == 8192 and changed.json["capabilities"] == {
        "tools": True
    }
    assert changed.json["name"] == "m" and changed.json["is_default"] is False
    for field, value in (("provider", "ollama"), ("name", "n"), ("kind", "embedding")):
        refused = api.patch(path, headers=admin, json={field: value})
        assert error_locs(refused) == [["body", field]]
        assert "register another model" in refused.json["errors"][0]["msg"]
    assert error_locs(api.patch(path, headers=admin, json={"is_default": None})) == [
        ["body", "is_default"]
    ]
    assert api.patch(path, headers=new_user(), json={"context_length": 1}).status_code == 403
    assert api.patch("/api/v1/models/999999", headers=admin, json={}).status_code == 404


def test_delete_falls_back_in_preferences(api, admin, new_user):
    model = register(api, admin, provider="openai", name="m", kind="chat")
    bob = new_user()
    chosen = api.patch("/api/v1/me/preferences", headers=bob, json={"chat_model_id": model["id"]})
    assert chosen.status_code == 200 and chosen.json["chat_model"] == "m"
    path = f"/api/v1/models/{model['id']}"
    assert api.delete(path, headers=bob).status_code == 403
    assert api.delete(path, headers=admin).status_code == 204
    assert api.get(path, headers=admin).status_code == 404
    assert api.delete(path, headers=admin).status_code == 404
    prefs = api.get("/api/v1/me/preferences", headers=bob).json
    assert prefs["chat_model_id"] is None and prefs["chat_model"] is None


def test_deleting_the_embedder_in_use_is_409(app, api, admin, database_url):
    drain(app)
    local = next(
        m
        for m in api.get("/api/v1/models", headers=admin).json["items"]
        if m["provider"] == "local"
    )
    response = api.delete(f"/api/v1/models/{local['id']}", headers=admin)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "embedding space" in response.json["detail"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM llm_models WHERE id = %s", (local["id"],)
        ).fetchone() == (1,)


def test_pull_streams_progress_then_done(api, admin, llm):
    model = register(api, admin, provider="ollama", name="new-model", kind="chat")
    assert model["live"]["state"] == "missing"
    response = api.post(f"/api/v1/models/{model['id']}/pull", headers={**admin, **SSE})
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    events = parse_sse(response.data)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"progress"}
    statuses = [data["status"] for kind, data in events if kind == "progress"]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    percents = [data["percent"] for kind, data in events if kind == "progress" and data["total"]]
    assert percents == [0, 50, 100]
    byte_progress = next(data for _, data in events if data.get("digest"))
    assert byte_progress["digest"] == "sha256:abc123" and byte_progress["total"] == 1000
    done = events[-1][1]["model"]
    assert done["id"] == model["id"] and done["live"]["state"] == "installed"
    assert done["live"]["context_length"] == 2048
    after = api.get(f"/api/v1/models/{model['id']}", headers=admin).json
    assert after["live"]["state"] == "installed"
    assert ("/api/pull", {"model": "new-model", "stream": True}) in llm.requests


def test_failing_pull_ends_with_an_error_event(api, admin):
    model = register(api, admin, provider="ollama", name="missing-model", kind="chat")
    response = api.post(f"/api/v1/models/{model['id']}/pull?stream=true", headers=admin)
    assert response.status_code == 200
    events = parse_sse(response.data)
    assert [kind for kind, _ in events] == ["progress", "error"]
    problem = events[-1][1]
    assert problem["status"] == 502 and problem["provider"] == "ollama"
    assert "file does not exist" in problem["detail"] and problem["title"]
    after = api.get(f"/api/v1/models/{model['id']}", headers=admin).json
    assert after["live"]["state"] == "missing"


def test_pull_from_an_unreachable_ollama_ends_with_an_error_event(make_app, admin):
    api = make_app(llm="ollama", ollama_url=closed_port_url(), llm_timeout_s=3).test_client()
    model = register(api, admin, provider="ollama", name="llama3.2", kind="chat")
    events = parse_sse(
        api.post(f"/api/v1/models/{model['id']}/pull", headers={**admin, **SSE}).data
    )
    assert [kind for kind, _ in events] == ["error"]
    assert events[0][1]["status"] == 503


def test_pull_without_sse_waits_and_answers_json(api, admin):
    model = register(api, admin, provider="ollama", name="waited", kind="chat")
    response = api.post(f"/api/v1/models/{model['id']}/pull", headers=admin)
    assert response.status_code == 200, response.json
    assert response.json["live"]["state"] == "installed"
    failing = register(api, admin, provider="ollama", name="missing-too", kind="chat")
    failed = api.post(f"/api/v1/models/{failing['id']}/pull", headers=admin)
    assert failed.status_code == 502 and failed.mimetype == "application/problem+json"
    assert failed.json["provider"] == "ollama"


def test_only_admins_pull_and_only_ollama_models(api, admin, new_user):
    ollama = register(api, admin, provider="ollama", name="p", kind="chat")
    openai = register(api, admin, provider="openai", name="p", kind="chat")
    assert api.post(f"/api/v1/models/{ollama['id']}/pull", headers=new_user()).status_code == 403
    refused = api.post(f"/api/v1/models/{openai['id']}/pull", headers=admin)
    assert refused.status_code == 422 and refused.json["errors"][0]["loc"] == ["path", "model_id"]
    assert api.post("/api/v1/models/999999/pull", headers=admin).status_code == 404


def test_the_configured_models_are_registered_as_defaults(make_app, app, admin, llm):
    first = make_app(llm="ollama", ollama_url=llm.url, chat_model="other-chat")
    make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")  # the last start wins
    drain(app)  # the worker registers the embedder and its space
    listed = first.test_client().get("/api/v1/models", headers=admin).json["items"]
    defaults = {(m["kind"], m["name"]) for m in listed if m["is_default"]}
    assert defaults == {("chat", "fake-chat"), ("embedding", local_embedder.DEFAULT_MODEL)}
    assert {m["name"] for m in listed} >= {"fake-chat", "other-chat"}
    by_name = {m["name"]: m for m in listed}
    assert by_name["fake-chat"]["live"]["state"] == "installed"
    assert by_name["other-chat"]["live"]["state"] == "missing"


def test_a_default_made_by_the_configuration_ends_with_it_but_an_admins_stays(
    make_app, app, admin, llm, caplog
):
    make_app(llm="ollama", ollama_url=llm.url, chat_model="fake-chat")
    caplog.set_level(logging.INFO, logger="app")
    plain = make_app(llm="auto", ollama_url=closed_port_url())  # no Ollama, no chat model
    assert "chats answer extractively" in caplog.text
    client = plain.test_client()
    chat = client.post("/api/v1/chats", json={}, headers=admin).json["id"]
    answer = client.post(f"/api/v1/chats/{chat}/messages", json={"content": "Hi"}, headers=admin)
    assert answer.status_code == 201, answer.json
    assert answer.json["model"] == "extractive"
    listed = client.get("/api/v1/models?kind=chat", headers=admin).json["items"]
    assert [m["name"] for m in listed] == ["fake-chat"] and not listed[0]["is_default"]
    # An admin's choice outlives the configuration; the log names it.
    chosen = register(client, admin, provider="openai", name="mine", kind="chat", is_default=True)
    caplog.clear()
    again = make_app(llm="none")
    assert "openai/mine, the default chat model (an admin chose it)" in caplog.text
    listed = again.test_client().get("/api/v1/models?kind=chat", headers=admin).json["items"]
    assert [m["id"] for m in listed if m["is_default"]] == [chosen["id"]]
