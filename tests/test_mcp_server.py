"""postrag as an MCP server: the official SDK's client over /mcp (streamable HTTP) and over
stdio (`postrag mcp`), acting as the user its bearer names, under row-level security."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.helpers import (
    POSTRAG,
    admin_token_in,
    bearer,
    create_collection,
    drain,
    live_server,
    run,
    upload,
)
from tests.mcp_calls import call, over_http, structured

TOOLS = {"search", "fetch", "list_collections", "ask"}
PAYROLL = (
    "Payroll runs on the 25th of every month. Overtime is paid in the following month's"
    " payroll.\n\nExpense reports must be filed within thirty days, with the receipts attached."
)
SECRET = "The zeppelin hangar access code rotates every Tuesday; only Bob's team knows it."


@pytest.fixture(scope="module")
def corpus(module_app, module_settings):  # type: ignore[no-untyped-def]
    """Alice with a collection of one document, Bob with his own; both indexed."""
    client = module_app.test_client()
    admin = bearer(admin_token_in(module_settings.data_dir))

    def new_user(name: str) -> dict[str, str]:
        response = client.post("/api/v1/users", json={"name": name, "role": "user"}, headers=admin)
        assert response.status_code == 201, response.json
        return bearer(response.json["token"])

    alice, bob = new_user("alice"), new_user("bob")
    alice_docs = create_collection(client, alice, "handbook")
    bob_docs = create_collection(client, bob, "hangar")
    handbook = upload(client, alice, alice_docs, "handbook.txt", PAYROLL)
    hangar = upload(client, bob, bob_docs, "hangar.txt", SECRET)
    drain(module_app)
    bob_chunk = client.get(f"/api/v1/documents/{hangar}/chunks", headers=bob).json["items"][0]
    return SimpleNamespace(
        alice=alice["Authorization"].split()[1],
        bob=bob["Authorization"].split()[1],
        alice_collection=alice_docs,
        bob_collection=bob_docs,
        handbook=handbook,
        hangar=hangar,
        bob_chunk=bob_chunk["id"],
    )


@pytest.fixture(scope="module")
def base_url(module_app):  # type: ignore[no-untyped-def]
    with live_server(module_app) as url:
        yield url


def over_stdio(settings, *args: str, token: str | None = None) -> Client:  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATABASE_URL": settings.database_url, "POSTRAG_LLM": "none"}
    env |= {"POSTRAG_DATA_DIR": str(settings.data_dir)}
    if token is not None:
        env["POSTRAG_MCP_TOKEN"] = token
    return Client(StdioServerParameters(command=POSTRAG, args=["mcp", *args], env=env))


def error_text(result: Any) -> str:
    assert result.is_error
    return str(result.content[0].text)


def every_tool(client: Client, corpus) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Each tool called once as Alice, after listing them."""

    async def run_all() -> dict[str, Any]:
        async with client:
            found = {
                "tools": {t.name: t for t in (await client.list_tools()).tools},
                "search": await client.call_tool("search", {"query": "when is overtime paid"}),
                "collections": await client.call_tool("list_collections", {}),
                "document": await client.call_tool("fetch", {"id": f"document:{corpus.handbook}"}),
                "ask": await client.call_tool("ask", {"question": "When does payroll run?"}),
            }
            hit = structured(found["search"])["results"][0]
            found["chunk"] = await client.call_tool("fetch", {"id": hit["id"]})
            found["protocol"] = client.protocol_version
            return found

    return anyio.run(run_all)


def check_alice_sees_her_handbook(found: dict[str, Any], corpus, base_url: str) -> None:  # type: ignore[no-untyped-def]
    assert set(found["tools"]) == TOOLS
    assert found["tools"]["search"].input_schema["properties"]["query"]["maxLength"] == 4000
    hits = structured(found["search"])["results"]
    assert [h["document_id"] for h in hits] == [corpus.handbook]
    assert "Overtime" in hits[0]["text"] and hits[0]["filename"] == "handbook.txt"
    assert hits[0]["url"] == f"{base_url}/api/v1/chunks/{hits[0]['chunk_id']}"
    assert (hits[0]["char_start"], hits[0]["char_end"]) == (0, len(PAYROLL))
    listed = structured(found["collections"])
    assert [c["name"] for c in listed["collections"]] == ["handbook"] and listed["total"] == 1
    document = structured(found["document"])
    assert document["text"] == PAYROLL and document["truncated"] is False
    assert structured(found["chunk"])["text"] == hits[0]["text"]
    answer = structured(found["ask"])
    assert answer["model"] == "extractive" and "25th" in answer["answer"]
    assert answer["citations"][0]["cited"] and answer["citations"][0]["url"] == hits[0]["url"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_client_lists_and_calls_every_tool(base_url, corpus, module_app, mode):  # type: ignore[no-untyped-def]
    http = create_mcp_http_client(headers=bearer(corpus.alice))
    client = Client(streamable_http_client(f"{base_url}/mcp", http_client=http), mode=mode)
    found = every_tool(client, corpus)
    check_alice_sees_her_handbook(found, corpus, base_url)
    # auto: the stateless 2026-07-28 protocol; legacy: the initialize handshake's
    assert (found["protocol"] == "2026-07-28") == (mode == "auto"), found["protocol"]
    # The citation URL answers the passage to its reader, and nobody else.
    url = structured(found["search"])["results"][0]["url"].removeprefix(base_url)
    api = module_app.test_client()
    assert api.get(url, headers=bearer(corpus.alice)).json["text"].startswith("Payroll")
    assert api.get(url, headers=bearer(corpus.bob)).status_code == 404


def test_mcp_requests_are_accounted_to_the_token(base_url, corpus, module_settings):  # type: ignore[no-untyped-def]
    call(over_http(base_url, corpus.bob), ("list_collections", {}))
    with psycopg.connect(module_settings.database_url) as conn:
        routes = conn.execute(
            "SELECT DISTINCT u.route, u.status FROM api_usage u JOIN users ON users.id = u.user_id"
            " WHERE users.name = 'bob' AND u.route = '/mcp'"
        ).fetchall()
    assert routes == [("/mcp", 200)]


def test_another_users_ids_answer_as_missing_ones(base_url, corpus):  # type: ignore[no-untyped-def]
    missing = 9_000_000
    pairs = [
        ("fetch", {"id": f"chunk:{corpus.bob_chunk}"}, {"id": f"chunk:{missing}"}),
        ("fetch", {"id": f"document:{corpus.hangar}"}, {"id": f"document:{missing}"}),
        ("search", {"query": "code", "collection_ids": [corpus.bob_collection]}, None),
        ("ask", {"question": "code?", "collection_ids": [corpus.bob_collection]}, None),
    ]
    calls = []
    for name, theirs, absent in pairs:
        absent = absent or {**theirs, "collection_ids": [missing]}
        calls += [(name, theirs), (name, absent)]
    calls.append(("search", {"query": "zeppelin hangar access code"}))
    *refused, search = call(over_http(base_url, corpus.alice), *calls)
    for theirs, absent in zip(refused[::2], refused[1::2], strict=True):
        own_id = re.sub(r"\d{6,}|\b\d+\b", "N", error_text(theirs))
        assert own_id == re.sub(r"\d{6,}|\b\d+\b", "N", error_text(absent))
        assert "zeppelin" not in error_text(theirs).lower()
    assert re.search(r"no (chunk|document|collection) \d+", error_text(refused[0]))
    assert structured(search)["results"] == []


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("search", {"query": ""}),
        ("search", {"query": "x" * 4001}),
        ("search", {"query": "payroll", "top_k": 0}),
        ("search", {"query": "payroll", "top_k": "many"}),
        ("search", {"query": "payroll", "mode": "psychic"}),
        ("search", {"query": "payroll", "collection_ids": ["one"]}),
        ("search", {}),
        ("fetch", {"id": "chunk:abc"}),
        ("fetch", {"id": "file:1"}),
        ("fetch", {"id": "chunk:99999999999999999999999"}),
        ("list_collections", {"limit": 1000}),
        ("list_collections", {"offset": 2**31}),
        ("ask", {"question": "   "}),
    ],
)
def test_bad_arguments_are_tool_errors(base_url, corpus, tool, arguments):  # type: ignore[no-untyped-def]
    (result,) = call(over_http(base_url, corpus.alice), (tool, arguments))
    assert result.is_error
    assert "Error executing tool" in error_text(result)


def raw_call(base_url: str, headers: dict[str, str], body: Any) -> httpx.Response:
    """One JSON-RPC message POSTed as is."""
    accept = {"Accept": "application/json, text/event-stream"}
    return httpx.post(f"{base_url}/mcp", json=body, headers={**accept, **headers}, timeout=30)


def test_malformed_messages_get_json_rpc_errors(base_url, corpus):  # type: ignore[no-untyped-def]
    alice = bearer(corpus.alice)
    unknown_tool = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "rm"}}
    no_method = {"jsonrpc": "2.0", "id": 2, "method": "tools/explode"}
    for body in (unknown_tool, no_method):
        response = raw_call(base_url, alice, body)
        assert response.status_code < 500, response.text
        answer = response.json()
        assert "error" in answer or answer["result"]["isError"], answer
    garbage = httpx.post(
        f"{base_url}/mcp",
        content=b"{not json",
        headers={
            **alice,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700
    oversized = raw_call(base_url, alice, {"jsonrpc": "2.0", "id": 3, "method": "x" * 300_000})
    assert oversized.status_code == 413
    # No stream for server-initiated messages, no session to end: answered at once.
    for method in ("GET", "DELETE"):
        assert httpx.request(method, f"{base_url}/mcp", headers=alice).status_code == 405


def test_an_invalid_or_missing_token_is_401(base_url):  # type: ignore[no-untyped-def]
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in (bearer("prg_nope_nope"), bearer("not-a-token"), {}):
        response = raw_call(base_url, headers, ping)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "resource_metadata" not in response.headers["WWW-Authenticate"]  # tokens only
    assert httpx.get(f"{base_url}/.well-known/oauth-protected-resource/mcp").status_code == 404


def test_the_web_sessions_cookie_never_signs_in(base_url, module_settings, corpus):  # type: ignore[no-untyped-def]
    secret = secrets.token_urlsafe(32)
    with psycopg.connect(module_settings.database_url) as conn:
        conn.execute(
            "INSERT INTO web_sessions (secret_hash, user_id, expires_at)"
            " SELECT %s, id, now() + interval '1 hour' FROM users WHERE name = 'alice'",
            (hashlib.sha256(secret.encode()).digest(),),
        )
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    cookie = {"Cookie": f"postrag_session={secret}"}
    for authorization in ("", "Basic YWxpY2U6eA==", "Bearer"):
        response = raw_call(base_url, {**cookie, "Authorization": authorization}, ping)
        assert response.status_code == 401, (authorization, response.text)


def test_stdio_server_acts_as_the_tokens_user(module_settings, corpus):  # type: ignore[no-untyped-def]
    base = "https://postrag.example"
    client = over_stdio(module_settings, "--base-url", base, token=corpus.alice)
    found = every_tool(client, corpus)
    check_alice_sees_her_handbook(found, corpus, base)


def test_stdio_server_for_a_named_user(module_settings, corpus):  # type: ignore[no-untyped-def]
    client = over_stdio(module_settings, "--user", "bob")
    mine, theirs = call(
        client,
        ("search", {"query": "zeppelin hangar"}),
        ("fetch", {"id": f"document:{corpus.handbook}"}),
    )
    assert [h["document_id"] for h in structured(mine)["results"]] == [corpus.hangar]
    assert error_text(theirs).endswith(f"no document {corpus.handbook}")


def test_stdio_refuses_to_start_with_a_bad_token_or_user(module_settings, corpus):  # type: ignore[no-untyped-def]
    env = {**os.environ, "DATABASE_URL": module_settings.database_url, "POSTRAG_LLM": "none"}
    env |= {"POSTRAG_DATA_DIR": str(module_settings.data_dir)}
    bad = run("mcp", "--token", "prg_nope_nope", env=env)
    assert bad.returncode == 1 and "invalid token" in bad.stderr and bad.stdout == ""
    nobody = run("mcp", "--user", "nobody", env=env)
    assert nobody.returncode == 2 and "no user 'nobody'" in nobody.stderr and nobody.stdout == ""
    neither = run("mcp", env={k: v for k, v in env.items() if k != "POSTRAG_MCP_TOKEN"})
    assert neither.returncode == 2 and "--token" in neither.stderr


def test_ask_answers_with_the_chat_model_and_counts_its_tokens(
    ollama_app, llm, client, admin, admin_token, collection, settings
):  # type: ignore[no-untyped-def]
    document = upload(client, admin, collection, "handbook.txt", PAYROLL)
    drain(ollama_app)
    llm.reply = "Payroll runs on the 25th [1]."
    with live_server(ollama_app) as url:
        (result,) = call(over_http(url, admin_token), ("ask", {"question": "When is payroll?"}))
    answer = structured(result)
    assert answer["answer"] == llm.reply and answer["model"] == "fake-chat"
    assert [(c["document_id"], c["cited"]) for c in answer["citations"]] == [(document, True)]
    asked = [body for path, body in llm.requests if path == "/api/chat"]
    assert "Overtime is paid" in asked[0]["messages"][-1]["content"]  # the passage, as a source
    with psycopg.connect(settings.database_url) as conn:
        counted = conn.execute(
            "SELECT prompt_tokens, completion_tokens FROM api_usage"
            " WHERE route = '/mcp' AND prompt_tokens IS NOT NULL"
        ).fetchall()
    assert counted == [llm.usage]


def test_an_identity_providers_jwt_is_a_bearer_and_the_web_cookie_is_not(make_app, provider):  # type: ignore[no-untyped-def]
    oidc_app = make_app(oidc_issuer=provider.issuer, oidc_audience="postrag")
    jwt = provider.token(sub="s-carol", preferred_username="carol")
    with live_server(oidc_app) as url:
        (listed,) = call(over_http(url, jwt), ("list_collections", {}))
    assert structured(listed) == {"collections": [], "total": 0}
    browser = oidc_app.test_client()
    signed_in = browser.get(
        httpx.get(browser.get("/auth/login").headers["Location"]).headers["Location"]
    )
    assert signed_in.status_code in (302, 303) and browser.get("/auth/session").status_code == 200
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    refused = browser.post(
        "/mcp", json=ping, headers={"Accept": "application/json, text/event-stream"}
    )
    assert refused.status_code == 401
    # An OAuth-only MCP client learns from the 401 where its user signs in (RFC 9728).
    challenge = refused.headers["WWW-Authenticate"]
    metadata_url = "http://localhost/.well-known/oauth-protected-resource/mcp"
    assert f'resource_metadata="{metadata_url}"' in challenge
    for path in (
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ):
        metadata = browser.get(path)
        assert metadata.status_code == 200 and metadata.json == {
            "resource": "http://localhost/mcp",
            "authorization_servers": [provider.issuer],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["openid"],
            "resource_name": "postrag",
        }
