"""MCP servers for chats: admins register them (a streamable-HTTP address, and how postrag
authenticates there), every user reads them (never the header's value), and a discovery caches
their tools and prompts in Postgres.

A server's address must be public or listed in POSTRAG_MCP_HOSTS (checked here as written, and
again, resolved, at every connection). A static header's value is encrypted under
POSTRAG_SECRET_KEY, bound to its server's row. Changing a server's address or auth forgets its
tools and prompts until the next discovery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import httpx

from app.errors import NotFound, ValidationFailed
from app.providers import mcp_client
from app.providers.mcp_client import McpTarget
from app.providers.mcp_content import Catalog
from app.repositories import Conn, Row
from app.repositories import mcp_servers as server_repo
from app.services import connectors
from app.services.mcp_tools import Caller, McpDeps, header_where, reach, target
from app.services.secrets import Keyring
from app.settings import Settings

Auth = Literal["none", "static_header", "atlassian", "token_exchange"]
# Headers the transport sets itself, or that would change what the request means.
RESERVED_HEADERS = {
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "last-event-id",
    "mcp-protocol-version",
    "mcp-session-id",
    "te",
    "transfer-encoding",
    "upgrade",
}
_AUTH_FIELDS = ("header_name", "header_value", "exchange_audience", "exchange_scope")


def _invalid(field: str, msg: str) -> ValidationFailed:
    return ValidationFailed.on_field(field, msg, type="value_error", detail=f"{field}: {msg}")


def _check_url(url: str, auth: str, settings: Settings) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise _invalid("url", "not a URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise _invalid("url", "an MCP server's address is an http or https URL")
    if parsed.userinfo:
        raise _invalid("url", "put credentials in a static header, not in the URL")
    allowed = reach(settings)
    refusal = allowed.literal_refusal(url)
    if refusal is None and auth == "atlassian":
        refusal = allowed.token_refusal(url)
    if refusal is not None:
        raise _invalid("url", refusal)


def _check_auth(server: dict[str, Any], settings: Settings) -> None:
    """The fields `server["auth"]` needs are there, and only those."""
    auth = server["auth"]
    needed = {
        "static_header": ("header_name", "header_value"),
        "token_exchange": ("exchange_audience",),
    }.get(auth, ())
    for field in needed:
        if server.get(field) is None:
            raise _invalid(field, f"required with auth {auth}")
    allowed = {"static_header": ("header_name", "header_value")}.get(auth, ())
    if auth == "token_exchange":
        allowed = ("exchange_audience", "exchange_scope")
    for field in _AUTH_FIELDS:
        if field not in allowed and server.get(field) is not None:
            raise _invalid(field, f"not used with auth {auth}")
    if auth == "static_header" and server["header_name"].lower() in RESERVED_HEADERS:
        raise _invalid("header_name", "the transport sets this header itself")
    if auth == "token_exchange" and not (settings.oidc_issuer and settings.oidc_client):
        raise _invalid("auth", "token exchange needs an OpenID provider (POSTRAG_OIDC_ISSUER)")


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def _header(ring: Keyring, server_id: int, name: str, value: str) -> dict[str, Any]:
    """The columns of a static header, its value encrypted for this server's row only."""
    return {
        "header_name": name,
        "header_value": ring.encrypt(value, header_where(server_id)),
        "key_id": ring.current.id,
    }


def create(conn: Conn, settings: Settings, keyring: Keyring | None, fields: dict[str, Any]) -> Row:
    """Register a server (409 when the name is taken, 422 for an address or auth that cannot
    be used, 503 for a header without POSTRAG_SECRET_KEY)."""
    _check_url(fields["url"], fields["auth"], settings)
    _check_auth(fields, settings)
    plain = {k: v for k, v in fields.items() if k not in ("header_name", "header_value")}
    ring = connectors.require_keyring(keyring) if fields["auth"] == "static_header" else None
    with conn.transaction():
        if ring is None:
            return server_repo.insert(conn, plain)
        # The value is bound to the row's id, known once the row is there.
        row = server_repo.insert(conn, {**plain, "auth": "none"})
        header = _header(ring, row["id"], fields["header_name"], fields["header_value"])
        changed = server_repo.update(conn, row["id"], {"auth": "static_header", **header})
        return _found(changed, row["id"])


def _found(row: Row | None, server_id: int) -> Row:
    if row is None:
        raise NotFound(f"no MCP server {server_id}")
    return row


_KEPT = object()  # a stored header value the update leaves as it is


def update(
    conn: Conn, settings: Settings, keyring: Keyring | None, server_id: int, changes: dict[str, Any]
) -> Row:
    """Change a server. When its auth changes, the fields of the old one are cleared; when it
    stays, a field left out keeps its stored value (the header's value too, unless the server
    moves to another origin: then it must be sent again)."""
    with conn.transaction():
        current = _found(server_repo.get(conn, server_id, lock=True), server_id)
        now = {**current, **changes}  # the server's fields once changed
        auth, url = str(now["auth"]), str(now["url"])
        same = auth == current["auth"]
        wanted = {f: current.get(f) for f in _AUTH_FIELDS if same}
        if same and current["header_set"]:
            # The stored secret goes to the server it was given for: a move to another origin
            # needs it sent again (else an admin could redirect it without knowing it).
            moved = _origin(url) != _origin(str(current["url"]))
            wanted["header_value"] = None if moved else _KEPT
            if moved and "header_value" not in changes:
                msg = "the server moves to another host: send its header_value again"
                raise _invalid("header_value", msg)
        wanted.update({k: v for k, v in changes.items() if k in _AUTH_FIELDS}, auth=auth)
        _check_url(url, auth, settings)
        _check_auth(wanted, settings)
        row = {k: v for k, v in changes.items() if k in ("name", "url", "enabled")}
        row.update(
            auth=auth,
            exchange_audience=wanted.get("exchange_audience"),
            exchange_scope=wanted.get("exchange_scope"),
            header_name=wanted.get("header_name"),
        )
        if auth != "static_header":
            row.update(header_value=None, key_id=None)
        elif wanted["header_value"] is not _KEPT:
            ring = connectors.require_keyring(keyring)
            name, value = str(wanted["header_name"]), str(wanted["header_value"])
            row.update(_header(ring, server_id, name, value))
        server_repo.update(conn, server_id, row)
        if url != current["url"] or not same:
            server_repo.forget_catalog(conn, server_id)
        return _found(server_repo.get(conn, server_id), server_id)


def shown(row: Row, admin: bool) -> Row:
    """A server as a reader sees it: admins whole; other users without the URL's query (where
    API keys hide) and without why its discovery failed (it may name internal addresses)."""
    if admin:
        return row
    url = httpx.URL(str(row["url"])).copy_with(query=None, fragment=None)
    failed = row["discovery_error"] is not None
    error = "the last discovery failed (an admin sees why)" if failed else None
    return {**row, "url": str(url), "discovery_error": error}


def list_page(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return server_repo.list_page(conn, limit=limit, offset=offset)


def get(conn: Conn, server_id: int) -> tuple[Row, list[Row], list[Row]]:
    """A server with its cached tools and prompts."""
    row = _found(server_repo.get(conn, server_id), server_id)
    return row, server_repo.tools(conn, server_id), server_repo.prompts(conn, server_id)


def delete(conn: Conn, server_id: int) -> None:
    with conn.transaction():
        if not server_repo.delete(conn, server_id):
            raise NotFound(f"no MCP server {server_id}")


def discovery_target(conn: Conn, deps: McpDeps, caller: Caller, server_id: int) -> McpTarget:
    """Where a refresh of the server goes, with `caller`'s credentials (even when disabled)."""
    return target(conn, deps, caller, server_id, enabled_only=False)


def refresh(
    conn_of: Callable[[], Conn], reached: McpTarget, server_id: int
) -> tuple[tuple[Row, list[Row], list[Row]], Catalog]:
    """Discover the server's tools and prompts at `reached` and cache them; a failure is
    recorded on the server (its cached catalog stays) and raised. No connection is held while
    the server answers: `conn_of` gives one after."""
    try:
        with mcp_client.session(reached) as mcp:
            catalog = mcp.discover()
    except mcp_client.McpError as exc:
        conn = conn_of()
        with conn.transaction():
            server_repo.record_discovery(conn, server_id, exc.detail[:2000])
        raise
    conn = conn_of()
    with conn.transaction():
        tools = [vars(t) for t in catalog.tools]
        prompts = [vars(p) for p in catalog.prompts]
        server_repo.replace_catalog(conn, server_id, tools, prompts)
        server_repo.record_discovery(conn, server_id, None)
    return get(conn, server_id), catalog


def rotate(conn: Conn, keyring: Keyring) -> int:
    """Re-encrypt every static header under the current key (as the tables' owner: `postrag
    keys rotate`); how many changed."""
    with conn.transaction():
        rows = server_repo.all_secret(conn, not_key=keyring.current.id)
        for row in rows:
            where = header_where(row["id"])
            value = keyring.decrypt(bytes(row["header_value"]), row["key_id"], where)
            server_repo.reencrypt(
                conn, row["id"], keyring.encrypt(value, where), keyring.current.id
            )
    return len(rows)
