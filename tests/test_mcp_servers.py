"""MCP servers for chats: the admin API, secrets never shown, discovery cached in Postgres."""

from __future__ import annotations

import mcp_types as types
import psycopg
import pytest

from app.db import scope
from app.errors import Conflict
from app.providers import mcp_content
from app.repositories import mcp_servers as server_repo
from app.runtime import Runtime
from app.services import mcp_servers, mcp_tools
from app.services.secrets import Keyring
from app.services.worker import connect
from app.settings import SettingsError
from app.storable import cleaned
from tests.helpers import closed_port_url, connections_held_at

KEY = "k1-" + "abcdefghijklmnopqrstuvwxyz0123456789"
SECRET = "header-secret-value-42"
TOOLS = {"add", "fail", "ask", "nag", "odd", "count", "wait", "big"}


@pytest.fixture
def api(make_app):
    app = make_app(secret_key=KEY, mcp_hosts=("127.0.0.1",), mcp_timeout_s=10)
    return app.test_client()


def register(api, headers, **fields):
    return api.post("/api/v1/mcp-servers", json=fields, headers=headers)


def registered(api, headers, **fields) -> dict:
    response = register(api, headers, **fields)
    assert response.status_code == 201, response.json
    return response.json


def _with_header(api, admin, url: str) -> dict:
    """Server `tickets` at `url`, called with the static header X-Api-Key: SECRET."""
    fields = {"auth": "static_header", "header_name": "X-Api-Key", "header_value": SECRET}
    return registered(api, admin, name="tickets", url=url, **fields)


def test_admins_register_servers_and_every_user_reads_them_but_not_the_secret(
    api, admin, new_user, fake_mcp, database_url
):
    bob = new_user("bob")
    body = registered(
        api,
        admin,
        name="tickets",
        url=fake_mcp.url,
        auth="static_header",
        header_name="X-Api-Key",
        header_value=SECRET,
    )
    assert body["header_name"] == "X-Api-Key" and body["header_set"] is True
    assert body["tool_count"] == 0 and body["discovered_at"] is None
    listed = api.get("/api/v1/mcp-servers", headers=bob)
    assert listed.status_code == 200 and listed.json["total"] == 1
    assert listed.json["items"][0]["name"] == "tickets"
    one = api.get(f"/api/v1/mcp-servers/{body['id']}", headers=bob)
    assert one.status_code == 200 and one.json["tools"] == []
    for response in (listed, one):
        assert SECRET not in response.get_data(as_text=True)
    with psycopg.connect(database_url) as conn:
        stored, key_id = conn.execute("SELECT header_value, key_id FROM mcp_servers").fetchone()
        assert SECRET.encode() not in bytes(stored) and key_id == Keyring(KEY).current.id
        # The app's role may not read the column at all, admin or not.
        scope.act_as(conn, api.get("/api/v1/me", headers=admin).json["id"])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT header_value FROM mcp_servers")


def test_users_see_no_url_query_and_no_discovery_error_only_admins_do(
    api, admin, new_user, fake_mcp
):
    bob = new_user("bob")
    down = closed_port_url() + "/mcp?api_key=s3cr3t-in-url"
    server = registered(api, admin, name="down", url=down)
    assert api.post(f"/api/v1/mcp-servers/{server['id']}/refresh", headers=admin).status_code >= 500
    path = f"/api/v1/mcp-servers/{server['id']}"
    seen = api.get(path, headers=admin).json
    assert seen["url"] == down and "cannot be reached" in seen["discovery_error"]
    for shown in (
        api.get(path, headers=bob).json,
        api.get("/api/v1/mcp-servers", headers=bob).json["items"][0],
    ):
        assert shown["url"] == down.split("?")[0]
        assert shown["discovery_error"] == "the last discovery failed (an admin sees why)"


def test_only_admins_change_servers(api, admin, new_user, fake_mcp):
    bob = new_user("bob")
    assert register(api, bob, name="mine", url=fake_mcp.url).status_code == 403
    server = registered(api, admin, name="tickets", url=fake_mcp.url)
    path = f"/api/v1/mcp-servers/{server['id']}"
    assert api.patch(path, json={"enabled": False}, headers=bob).status_code == 403
    assert api.post(f"{path}/refresh", headers=bob).status_code == 403
    assert api.delete(path, headers=bob).status_code == 403
    assert api.delete(path, headers=admin).status_code == 204
    assert api.get(path, headers=bob).status_code == 404
    assert api.get("/api/v1/mcp-servers/999999", headers=admin).json["status"] == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"url": "ftp://127.0.0.1/mcp"}, "url"),
        ({"url": "http://[::1/mcp"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/mcp"}, "url"),
        ({"url": "http://10.1.2.3/mcp"}, "url"),  # private and not in POSTRAG_MCP_HOSTS
        ({"url": "http://localhost/mcp"}, "url"),
        ({"auth": "static_header", "header_name": "X-Key"}, "header_value"),
        ({"auth": "static_header", "header_name": "Host", "header_value": "x"}, "header_name"),
        (
            {"auth": "static_header", "header_name": "X-Key", "header_value": "a\r\nb"},
            "header_value",
        ),
        ({"auth": "static_header", "header_name": "X-Key", "header_value": "clé"}, "header_value"),
        ({"header_name": "X-Key", "header_value": "x"}, "header_name"),  # auth none
        ({"auth": "token_exchange", "exchange_audience": "tickets"}, "auth"),  # no OIDC here
        ({"auth": "token_exchange"}, "exchange_audience"),
        ({"auth": "atlassian", "url": "https://tools.example.com/mcp"}, "url"),
        ({"auth": "magic"}, "auth"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_registrations_that_cannot_work_are_refused_naming_the_field(api, admin, fields, field):
    response = register(
        api, admin, **{"name": "tickets", "url": "http://127.0.0.1:1/mcp", **fields}
    )
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in response.json["errors"][0]["loc"], response.json


def test_a_taken_name_is_a_conflict_and_pages_are_bounded(api, admin, fake_mcp):
    for name in ("a", "b", "c"):
        registered(api, admin, name=name, url=fake_mcp.url)
    assert register(api, admin, name="b", url=fake_mcp.url).status_code == 409
    page = api.get("/api/v1/mcp-servers?limit=2&offset=1", headers=admin).json
    assert [s["name"] for s in page["items"]] == ["b", "c"] and page["total"] == 3
    assert api.get("/api/v1/mcp-servers?limit=0", headers=admin).status_code == 422


def test_refresh_discovers_tools_and_prompts_and_keeps_them_in_postgres(
    api, admin, new_user, fake_mcp, database_url
):
    server = registered(api, admin, name="tickets", url=fake_mcp.url)
    refreshed = api.post(f"/api/v1/mcp-servers/{server['id']}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.json
    body = refreshed.json
    assert {t["name"] for t in body["tools"]} == TOOLS and body["skipped"] == []
    add = next(t for t in body["tools"] if t["name"] == "add")
    assert add["description"] == "Add two whole numbers."
    assert set(add["input_schema"]["properties"]) == {"a", "b"}
    assert body["prompts"] == [
        {
            "name": "summarise",
            "title": None,
            "description": "Summarise a topic.",
            "arguments": [{"name": "topic", "description": None, "required": True}],
            "discovered_at": body["prompts"][0]["discovered_at"],
        }
    ]
    assert body["tool_count"] == len(TOOLS) and body["prompt_count"] == 1 and body["discovered_at"]
    with psycopg.connect(database_url) as conn:
        names = conn.execute("SELECT name FROM mcp_server_tools ORDER BY name").fetchall()
    assert {n for (n,) in names} == TOOLS
    seen_by_bob = api.get(f"/api/v1/mcp-servers/{server['id']}", headers=new_user("bob")).json
    assert {t["name"] for t in seen_by_bob["tools"]} == TOOLS


def test_a_catalog_with_unstorable_text_long_or_repeated_names_is_stored_cleaned(
    api, admin, database_url
):
    server = registered(api, admin, name="odd", url="http://127.0.0.1:1/mcp")
    schema = {"type": "object", "properties": {"q\x00": {"description": "bad \ud800"}}}
    tools = [
        types.Tool(name="find", description="Finds \x00 things \udc80", input_schema=schema),
        types.Tool(name="find", description="again, on the next page", input_schema={}),
        types.Tool(name="x" * 129, input_schema={}),
        types.Tool(name="nul\x00name", input_schema={}),
    ]
    prompts = [types.Prompt(name="brief", title="T\x00"), types.Prompt(name="brief")]
    catalog = mcp_content.catalog(tools, prompts)
    rt = Runtime.of(api.application)
    with rt.pool.connection() as conn, scope.acting_as_owner(conn), conn.transaction():
        server_repo.replace_catalog(
            conn, server["id"], [vars(t) for t in catalog.tools], [vars(p) for p in catalog.prompts]
        )
    assert [t.name for t in catalog.tools] == ["find"] and len(catalog.skipped) == 4
    assert "listed more than once" in catalog.skipped[0]
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT description, input_schema FROM mcp_server_tools").fetchall()
        titles = conn.execute("SELECT title FROM mcp_server_prompts").fetchall()
    assert stored == [("Finds \ufffd things \ufffd", cleaned(schema))]
    assert titles == [("T\ufffd",)]
    result = types.CallToolResult(content=[types.TextContent(type="text", text="a\x00b\ud800")])
    assert mcp_content.tool_result(result, 100).text == "a\ufffdb\ufffd"


def test_a_tool_whose_schema_has_a_nan_or_an_infinity_is_skipped(api, admin, fake_mcp):
    # The SDK writes NaN as null: the server's JSON is edited on the wire.
    a, b = b'"title":"A","type":"integer"', b'"title":"B","type":"integer"'
    fake_mcp.rewrite = {a: a + b',"maximum":NaN', b: b + b',"minimum":-1e999'}
    server = registered(api, admin, name="tickets", url=fake_mcp.url)
    refreshed = api.post(f"/api/v1/mcp-servers/{server['id']}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.json
    assert {t["name"] for t in refreshed.json["tools"]} == TOOLS - {"add"}
    assert refreshed.json["skipped"] == ["tool add: its input schema has a NaN or an infinity"]
    assert refreshed.json["discovery_error"] is None


def test_a_refresh_holds_no_connection_while_the_server_answers(api, admin, fake_mcp):
    server = registered(api, admin, name="tickets", url=fake_mcp.url)
    pool = Runtime.of(api.application).pool
    with connections_held_at(fake_mcp, pool) as held:
        refreshed = api.post(f"/api/v1/mcp-servers/{server['id']}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.json
    assert held and max(held) == 0, held


def test_a_server_that_is_down_fails_the_refresh_quickly_and_keeps_its_tools(api, admin, fake_mcp):
    server = registered(api, admin, name="tickets", url=fake_mcp.url)
    path = f"/api/v1/mcp-servers/{server['id']}"
    assert api.post(f"{path}/refresh", headers=admin).status_code == 200
    down = registered(api, admin, name="down", url=closed_port_url() + "/mcp")
    failed = api.post(f"/api/v1/mcp-servers/{down['id']}/refresh", headers=admin)
    assert failed.status_code == 503, failed.json
    assert failed.json["detail"] == "MCP server down: cannot be reached"
    assert failed.json["mcp_server"] == "down"
    assert api.get(f"/api/v1/mcp-servers/{down['id']}", headers=admin).json["discovery_error"]
    kept = api.get(path, headers=admin).json
    assert kept["tool_count"] == len(TOOLS) and kept["discovery_error"] is None


def test_changing_the_address_or_auth_forgets_the_tools_and_clears_the_old_auth(
    api, admin, fake_mcp
):
    server = _with_header(api, admin, fake_mcp.url)
    path = f"/api/v1/mcp-servers/{server['id']}"
    assert api.post(f"{path}/refresh", headers=admin).status_code == 200
    renamed = api.patch(path, json={"name": "jira", "header_name": "X-Key"}, headers=admin)
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["header_set"] is True and renamed.json["tool_count"] == len(TOOLS)
    assert renamed.json["header_name"] == "X-Key"
    # The stored secret stays with its host: another path there keeps it, another host needs
    # it sent again (an admin cannot redirect a secret they do not know).
    same_host = api.patch(path, json={"url": fake_mcp.url + "/v2"}, headers=admin)
    assert same_host.status_code == 200 and same_host.json["header_set"] is True
    elsewhere = "https://mcp.example.com/mcp"
    moved = api.patch(path, json={"url": elsewhere}, headers=admin)
    assert moved.status_code == 422 and moved.json["errors"][0]["loc"] == ["body", "header_value"]
    assert api.get(path, headers=admin).json["url"] == fake_mcp.url + "/v2"  # nothing changed
    moved = api.patch(path, json={"url": elsewhere, "header_value": "new"}, headers=admin)
    assert moved.status_code == 200 and moved.json["header_set"] is True
    plain = api.patch(path, json={"auth": "none"}, headers=admin).json
    assert plain["header_set"] is False and plain["header_name"] is None
    assert plain["tool_count"] == 0 and plain["discovered_at"] is None
    half = api.patch(path, json={"auth": "static_header", "header_name": "X-Key"}, headers=admin)
    assert half.status_code == 422 and "header_value" in half.json["errors"][0]["loc"]
    nulled = api.patch(path, json={"url": None}, headers=admin)
    assert nulled.status_code == 422


def test_rotating_the_key_re_encrypts_headers_which_still_reach_the_server(
    api, admin, make_app, fake_mcp, database_url
):
    new_key = "k2-" + "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"
    server = _with_header(api, admin, fake_mcp.url)
    with pytest.raises(SettingsError, match="MCP server headers are encrypted with key"):
        make_app(secret_key=new_key)  # the old key is needed to read the stored header
    with connect(database_url) as conn:
        assert mcp_servers.rotate(conn, Keyring(new_key, (KEY,))) == 1
        assert mcp_servers.rotate(conn, Keyring(new_key)) == 0
    rotated = make_app(secret_key=new_key, mcp_hosts=("127.0.0.1",)).test_client()
    fake_mcp.required = ("X-Api-Key", SECRET)
    refreshed = rotated.post(f"/api/v1/mcp-servers/{server['id']}/refresh", headers=admin)
    assert refreshed.status_code == 200, refreshed.json
    assert set(fake_mcp.seen("x-api-key")) == {SECRET}


def test_an_atlassian_token_goes_only_where_the_settings_allow_at_each_call(
    make_app, admin, database_url
):
    """A server saved while its host was listed in POSTRAG_MCP_HOSTS gets no Atlassian token
    once the host is no longer listed: the check is made again at every call."""
    listed = make_app(secret_key=KEY, mcp_hosts=("tools.example.com",)).test_client()
    server = registered(
        listed, admin, name="jira", url="https://tools.example.com/mcp", auth="atlassian"
    )
    grant = {"access_token": "atlassian-token", "expires_in": 3600}
    assert listed.put("/api/v1/connectors/atlassian", json=grant, headers=admin).status_code == 200
    unlisted = make_app(secret_key=KEY)
    rt = Runtime.of(unlisted)
    admin_id = unlisted.test_client().get("/api/v1/me", headers=admin).json["id"]
    caller = mcp_tools.Caller(admin_id)
    with (
        rt.pool.connection() as conn,
        scope.acting_as(conn, admin_id),
        pytest.raises(Conflict, match="not Atlassian's cloud"),
    ):
        mcp_tools.target(conn, rt.mcp, caller, server["id"])
    rt_listed = Runtime.of(make_app(secret_key=KEY, mcp_hosts=("tools.example.com",)))
    with rt_listed.pool.connection() as conn, scope.acting_as(conn, admin_id):
        reached = mcp_tools.target(conn, rt_listed.mcp, caller, server["id"])
    assert reached.headers == {"Authorization": "Bearer atlassian-token"}


def test_schemas_too_large_alone_or_in_all_are_left_out_and_named():
    def tool(name: str, kib: int) -> types.Tool:
        schema = {"type": "object", "description": "x" * (kib * 1024)}
        return types.Tool(name=name, description="Big.", input_schema=schema)

    big = [tool("huge", 70)] + [tool(f"t{i}", 60) for i in range(10)]
    found = mcp_content.catalog(big, [])
    assert [t.name for t in found.tools] == [f"t{i}" for i in range(8)]  # 8 x 60 KiB fit 512
    assert found.skipped[0] == "tool huge: its input schema exceeds 65536 bytes"
    assert list(found.skipped[1:]) == [
        f"tool t{i}: the input schemas exceed 524288 bytes" for i in (8, 9)
    ]
