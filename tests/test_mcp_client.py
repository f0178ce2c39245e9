"""Calling MCP servers' tools: each kind of tool, limits, a server that is down, and each way of
authenticating (static header, the user's Atlassian token, RFC 8693 token exchange)."""

from __future__ import annotations

import time

import jwt
import pytest

from app.db import scope
from app.errors import Conflict, Forbidden
from app.providers import mcp_client
from app.providers.mcp_client import McpError, McpTarget, McpTimeout, McpUnavailable
from app.providers.mcp_content import Hooks, Reply
from app.providers.source_reach import Reach
from app.runtime import Runtime
from app.services import mcp_tools
from app.services.mcp_tools import Caller
from tests.helpers import bearer, closed_port_url

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
LOOPBACK = Reach.of(["127.0.0.1"], "POSTRAG_MCP_HOSTS")


def target(url: str, **limits) -> McpTarget:
    return McpTarget("tickets", url, {}, LOOPBACK, **{"timeout_s": 10.0, **limits})


def test_each_kind_of_tool_and_the_prompt_answer_through_one_session(fake_mcp):
    progress, questions = [], []

    def answer(question):
        questions.append(question)
        return Reply("accept", {"colour": "red"})

    hooks = Hooks(on_progress=progress.append, on_question=answer)
    with mcp_client.session(target(fake_mcp.url, result_chars=500), hooks) as session:
        assert {t.name for t in session.discover().tools} >= {"add", "fail", "ask", "count"}
        added = session.call_tool("add", {"a": 2, "b": 3})
        failed = session.call_tool("fail", {})
        asked = session.call_tool("ask", {})
        counted = session.call_tool("count", {"steps": 3})
        big = session.call_tool("big", {"size": 5000})
        prompt = session.get_prompt("summarise", {"topic": "invoices"})
    assert (added.text, added.is_error) == ("5", False)
    assert failed.is_error and "the ticket system is down" in failed.text
    assert asked.text == "the colour is red" and not asked.is_error
    assert [q.message for q in questions] == ["Which colour should the ticket be?"]
    assert set(questions[0].schema["properties"]) == {"colour"}
    assert counted.text == "counted to 3"
    assert [(p.progress, p.total, p.message) for p in progress] == [
        (1, 3, "step 1"),
        (2, 3, "step 2"),
        (3, 3, "step 3"),
    ]
    assert big.truncated and len(big.text) == 500 and big.text.endswith("was cut]")
    assert [(m.role, m.text) for m in prompt.messages] == [
        ("user", "Please summarise what we know about invoices.")
    ]


def test_progress_without_a_finite_number_is_dropped_or_has_no_total(fake_mcp):
    # The SDK writes NaN as null: the server's JSON is edited on the wire.
    fake_mcp.rewrite = {b'"progress":2,': b'"progress":NaN,', b'"total":3,': b'"total":1e999,'}
    progress = []
    with mcp_client.session(target(fake_mcp.url), Hooks(on_progress=progress.append)) as session:
        assert session.call_tool("count", {"steps": 3}).text == "counted to 3"
    assert [(p.progress, p.total, p.message) for p in progress] == [
        (1, None, "step 1"),
        (3, None, "step 3"),
    ]


def test_bad_arguments_and_unknown_tools_are_error_results_for_the_model(fake_mcp):
    with mcp_client.session(target(fake_mcp.url)) as session:
        bad = session.call_tool("add", {"a": "many"})
        unknown = session.call_tool("nope", {})
    assert bad.is_error and "validation error" in bad.text
    assert unknown.is_error and "nope" in unknown.text


def test_an_answer_past_the_byte_cap_fails_the_call_and_a_small_one_passes(fake_mcp):
    with mcp_client.session(target(fake_mcp.url, response_bytes=20_000)) as session:
        assert session.call_tool("big", {"size": 1000}).text == "x" * 1000
        with pytest.raises(McpError, match="sent an answer of more than 20000 bytes"):
            session.call_tool("big", {"size": 30_000})
    assert mcp_tools.response_bytes(20_000) == 4 * 1024 * 1024  # the default's cap
    assert set(fake_mcp.seen("accept-encoding")) == {"identity"}


def test_a_user_who_declines_is_told_to_the_tool(fake_mcp):
    hooks = Hooks(on_question=lambda question: Reply("decline"))
    with mcp_client.session(target(fake_mcp.url), hooks) as session:
        assert session.call_tool("ask", {}).text == "the user chose to decline"


def test_a_slow_tool_times_out_but_a_slow_user_does_not(fake_mcp):
    def slow_answer(question):
        time.sleep(1.5)  # longer than the call may take: the user's time is not counted
        return Reply("accept", {"colour": "blue"})

    with mcp_client.session(
        target(fake_mcp.url, timeout_s=1.0), Hooks(on_question=slow_answer)
    ) as s:
        with pytest.raises(McpTimeout, match="MCP server tickets: did not answer in time"):
            s.call_tool("wait", {"seconds": 3})
        assert s.call_tool("ask", {}).text == "the colour is blue"


def test_a_server_that_is_down_is_a_clear_error(fake_mcp):
    down = target(closed_port_url() + "/mcp")
    with pytest.raises(McpUnavailable) as raised, mcp_client.session(down):
        pass
    assert raised.value.detail == "MCP server tickets: cannot be reached"
    assert raised.value.status == 503


def test_an_address_that_is_not_allowed_is_never_reached(fake_mcp):
    unlisted = McpTarget("tickets", fake_mcp.url, reach=Reach(setting="POSTRAG_MCP_HOSTS"))
    with (
        pytest.raises(mcp_client.McpError, match="POSTRAG_MCP_HOSTS"),
        mcp_client.session(unlisted),
    ):
        pass
    assert fake_mcp.headers == []


# Each way of authenticating, through the registry and the service, as a user would call.


@pytest.fixture
def keyed_app(make_app):
    return make_app(secret_key=KEY, mcp_hosts=("127.0.0.1",), mcp_timeout_s=10)


def _server(api, admin, url: str, **auth) -> int:
    response = api.post(
        "/api/v1/mcp-servers", json={"name": "tickets", "url": url, **auth}, headers=admin
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


def _call(app, caller: Caller, server_id: int, tool: str = "add"):
    rt = Runtime.of(app)
    with scope.user_connection(rt.pool, caller.user_id) as conn:
        reached = mcp_tools.target(conn, rt.mcp, caller, server_id)
    with mcp_client.session(reached) as session:
        return session.call_tool(tool, {"a": 1, "b": 1})


def _user(api, headers) -> int:
    return api.get("/api/v1/me", headers=headers).json["id"]


def test_a_static_header_reaches_the_server_for_every_user(keyed_app, admin, new_user, fake_mcp):
    api = keyed_app.test_client()
    fake_mcp.required = ("X-Api-Key", "k-123")
    server = _server(
        api,
        admin,
        fake_mcp.url,
        auth="static_header",
        header_name="X-Api-Key",
        header_value="k-123",
    )
    bob = _user(api, new_user("bob"))
    assert _call(keyed_app, Caller(bob), server).text == "2"
    assert set(fake_mcp.seen("x-api-key")) == {"k-123"}
    api.patch(f"/api/v1/mcp-servers/{server}", json={"header_value": "wrong"}, headers=admin)
    with pytest.raises(
        mcp_client.McpError, match=r"refused the credentials postrag sent \(HTTP 401\)"
    ):
        _call(keyed_app, Caller(bob), server)


def test_the_users_atlassian_token_reaches_the_server(keyed_app, admin, new_user, fake_mcp):
    api = keyed_app.test_client()
    server = _server(api, admin, fake_mcp.url, auth="atlassian")
    bob_headers = new_user("bob")
    grant = {"access_token": "atl-bob", "expires_in": 3600, "token_type": "Bearer"}
    assert (
        api.put("/api/v1/connectors/atlassian", json=grant, headers=bob_headers).status_code == 200
    )
    assert _call(keyed_app, Caller(_user(api, bob_headers)), server).text == "2"
    assert set(fake_mcp.seen("authorization")) == {"Bearer atl-bob"}
    carol = _user(api, new_user("carol"))  # never connected Atlassian
    with pytest.raises(Conflict, match="connect Atlassian first"):
        _call(keyed_app, Caller(carol), server)


@pytest.fixture
def oidc_app(make_app, provider):
    provider.client_secret = "client-s3cret"
    return make_app(
        secret_key=KEY,
        mcp_hosts=("127.0.0.1",),
        oidc_issuer=provider.issuer,
        oidc_audience="postrag",
        oidc_client_secret="client-s3cret",
        oidc_admin_claim="realm_access.roles",
    )


def test_token_exchange_sends_the_users_exchanged_token(oidc_app, admin, provider, fake_mcp):
    api = oidc_app.test_client()
    fields = {
        "auth": "token_exchange",
        "exchange_audience": "tickets-mcp",
        "exchange_scope": "tickets:write",
    }
    server = _server(api, admin, fake_mcp.url, **fields)
    subject = provider.token(sub="alice-1", preferred_username="alice")
    alice = _user(api, bearer(subject))
    assert _call(oidc_app, Caller(alice, subject), server).text == "2"
    assert provider.exchanges[-1]["subject_token"] == subject
    sent = fake_mcp.seen("authorization")[-1].removeprefix("Bearer ")
    claims = jwt.decode(sent, options={"verify_signature": False})
    assert claims["aud"] == "tickets-mcp" and claims["sub"] == "alice-1"
    assert claims["scope"] == "tickets:write" and claims["act"] == {"sub": "postrag"}
    assert sent != subject
    with pytest.raises(Conflict, match="call with the provider's bearer JWT"):
        _call(oidc_app, Caller(alice), server)  # an API token or a web session: nothing to exchange
    provider.exchange_refused.add("tickets-mcp")
    with pytest.raises(
        Forbidden, match=r"refused to exchange your token for tickets-mcp \(invalid_target\)"
    ):
        _call(oidc_app, Caller(alice, subject), server)


def test_an_admin_signed_in_with_a_jwt_discovers_with_the_exchanged_token(
    oidc_app, admin, provider, fake_mcp
):
    api = oidc_app.test_client()
    server = _server(
        api, admin, fake_mcp.url, auth="token_exchange", exchange_audience="tickets-mcp"
    )
    boss = bearer(provider.token(sub="boss-1", realm_access={"roles": ["postrag-admin"]}))
    refreshed = api.post(f"/api/v1/mcp-servers/{server}/refresh", headers=boss)
    assert refreshed.status_code == 200, refreshed.json
    assert refreshed.json["tool_count"] == 8
    sent = fake_mcp.seen("authorization")[-1].removeprefix("Bearer ")
    assert jwt.decode(sent, options={"verify_signature": False})["sub"] == "boss-1"
    with_api_token = api.post(f"/api/v1/mcp-servers/{server}/refresh", headers=admin)
    assert with_api_token.status_code == 409
