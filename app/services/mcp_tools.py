"""Calling a registered MCP server for one user: where it is, and the credentials that user's
calls carry (none, the server's static header, the user's Atlassian connector token, or the
user's identity exchanged at the OpenID provider, RFC 8693).

`target()` does the database work (and the token exchange); the session it describes needs no
connection, so a caller may give its connection back before a slow tool runs:

    with mcp_client.session(mcp_tools.target(conn, deps, caller, server_id), hooks) as mcp:
        result = mcp.call_tool("create_issue", {"summary": "..."})
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.db import scope
from app.errors import Conflict, NotFound
from app.providers.mcp_client import McpTarget
from app.providers.oidc_login import OIDCLogin
from app.providers.source_reach import Reach
from app.repositories import Conn, Row
from app.repositories import mcp_servers as server_repo
from app.services import connectors
from app.services.secrets import Keyring
from app.settings import Settings

ATLASSIAN = "atlassian"  # the connector whose token `atlassian` servers get
HOSTS_SETTING = "POSTRAG_MCP_HOSTS"


@dataclass(frozen=True)
class McpDeps:
    """What calls to MCP servers need of the runtime."""

    settings: Settings
    keyring: Keyring | None
    oidc_login: OIDCLogin | None  # the OpenID client that exchanges tokens, when configured


@dataclass(frozen=True)
class Caller:
    """On whose behalf a server is called: the user, and the bearer JWT of the provider their
    request came with (what token exchange exchanges; None for API tokens and web sessions: a
    web session exchanges the provider's token kept from its sign-in)."""

    user_id: int
    subject_token: str | None = field(default=None, repr=False)
    web_session: bool = False


def reach(settings: Settings) -> Reach:
    """Where MCP servers may be: public addresses and POSTRAG_MCP_HOSTS."""
    return Reach.of(settings.mcp_hosts, HOSTS_SETTING)


def response_bytes(result_chars: int) -> int:
    """The cap on one response of a server: 4 MiB, or room for a result of `result_chars`
    characters sent twice (text and structured) in JSON's escapes, if more."""
    return max(4 * 1024 * 1024, 16 * result_chars)


def header_where(server_id: int) -> str:
    """What a server's encrypted header is bound to (it decrypts in no other row)."""
    return f"mcp_server:{server_id}:header"


def target(
    conn: Conn, deps: McpDeps, caller: Caller, server_id: int, *, enabled_only: bool = True
) -> McpTarget:
    """Server `server_id` as `caller` reaches it (404 unknown; 409 disabled, or when the
    caller has no credentials its auth needs)."""
    server = server_repo.get(conn, server_id)
    if server is None:
        raise NotFound(f"no MCP server {server_id}")
    if enabled_only and not server["enabled"]:
        raise Conflict(f"MCP server {server['name']} is disabled")
    settings = deps.settings
    return McpTarget(
        server["name"],
        server["url"],
        _headers(conn, deps, caller, server),
        reach(settings),
        settings.mcp_timeout_s,
        settings.mcp_result_chars,
        response_bytes(settings.mcp_result_chars),
    )


def _headers(conn: Conn, deps: McpDeps, caller: Caller, server: Row) -> dict[str, str]:
    auth, name = server["auth"], server["name"]
    if auth == "static_header":
        return _static_header(conn, deps, server["id"])
    if auth == "atlassian":
        refusal = reach(deps.settings).token_refusal(server["url"])  # settings may have changed
        if refusal is not None:
            raise Conflict(f"MCP server {name}: {refusal}")
        try:
            token, _ = connectors.access_token(
                conn, caller.user_id, ATLASSIAN, deps.keyring, deps.settings
            )
        except NotFound:
            raise Conflict(
                f"MCP server {name} acts with your Atlassian account: connect Atlassian first"
            ) from None
        return {"Authorization": f"Bearer {token}"}
    if auth == "token_exchange":
        return {"Authorization": f"Bearer {_exchanged(conn, deps, caller, server)}"}
    return {}


def _static_header(conn: Conn, deps: McpDeps, server_id: int) -> dict[str, str]:
    ring = connectors.require_keyring(deps.keyring)
    with scope.acting_as_owner(conn):  # the value is no request's to read (V2_17)
        secret = server_repo.header_secret(conn, server_id)
    if secret is None or secret["header_value"] is None:
        raise Conflict("the MCP server's header is not set")
    value = ring.decrypt(bytes(secret["header_value"]), secret["key_id"], header_where(server_id))
    return {secret["header_name"]: value}


def _exchanged(conn: Conn, deps: McpDeps, caller: Caller, server: Row) -> str:
    name = server["name"]
    login = deps.oidc_login
    if login is None:
        raise Conflict(
            f"MCP server {name} needs token exchange at an OpenID provider, and this server"
            " has none (POSTRAG_OIDC_ISSUER, POSTRAG_OIDC_AUDIENCE)"
        )
    subject = caller.subject_token
    if not subject and caller.web_session:  # the provider's token kept from the sign-in
        try:
            subject, _ = connectors.access_token(
                conn,
                caller.user_id,
                connectors.IDENTITY,
                deps.keyring,
                deps.settings,
                refresher=login.refresh,
            )
        except NotFound:
            raise Conflict(
                f"MCP server {name} acts with your identity at the OpenID provider, and postrag"
                " keeps no token of yours from it: sign out and in again on the web page"
            ) from None
    if not subject:
        raise Conflict(
            f"MCP server {name} acts with your identity at the OpenID provider: call with the"
            " provider's bearer JWT or from a web sign-in (an API token carries no token to"
            " exchange)"
        )
    return login.exchange(subject, server["exchange_audience"], server["exchange_scope"])
