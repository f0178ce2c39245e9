"""/mcp: the MCP server (app/services/mcp_server.py) over streamable HTTP, inside the Flask app.

The SDK's transport is an ASGI app; this is a WSGI app served by gunicorn's threads. Rather than
a second server or an event loop shared across threads, each request is authenticated here as
any API request is (a bearer API token or identity-provider JWT, rate limited and accounted;
never the web page's cookie), then handed to a stateless session manager that answers in JSON,
run to completion on an event loop of this request's own thread: one JSON-RPC message in, one
answer out, no session to keep between requests (the 2026-07-28 protocol needs none; older
clients' `initialize` is answered each time). The tools run in the SDK's worker threads, each on
a pooled connection acting as the caller.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import anyio
from flask import Blueprint, Response, g, json, request
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from app.api.auth import own_url
from app.api.endpoint import authorize_bearer, release_db
from app.errors import NotFound, Unauthorized
from app.runtime import runtime
from app.services import mcp_server

bp = Blueprint("mcp", __name__)

MAX_BODY_BYTES = 256 * 1024  # a JSON-RPC message; a query is at most 4000 characters


# POST only: GET (a stream for server-initiated messages) and DELETE (ending a session) are 405,
# as the transport allows for a server with neither; a GET would otherwise hold a thread open.
@bp.post("/mcp")
def mcp_transport() -> Response:
    try:
        who = authorize_bearer(reads_only=True)  # the tools only read (ask, as /v1/chat does)
    except Unauthorized as exc:
        if runtime().settings.oidc_issuer:  # where an OAuth-only client learns whom to ask
            metadata = own_url("mcp.protected_resource")
            exc.headers["WWW-Authenticate"] = (
                f'Bearer realm="postrag", resource_metadata="{metadata}"'
            )
        raise
    release_db()  # each tool call takes a connection of its own, acting as the caller
    caller = mcp_server.Caller(runtime(), request.host_url.rstrip("/"), lambda _c: who, g.llm_usage)
    body = request.stream.read(MAX_BODY_BYTES + 1)  # one more: the SDK then answers 413
    with mcp_server.serving(caller):
        status, headers, payload = anyio.run(_exchange, _scope(), body)
    return Response(payload, status=status, headers=headers)


@bp.get("/.well-known/oauth-protected-resource")  # clients that ask at the root (older SDKs)
@bp.get("/.well-known/oauth-protected-resource/mcp")  # RFC 9728's place for /mcp: url_for's
def protected_resource() -> Response:
    """OAuth 2.0 Protected Resource Metadata (RFC 9728) of /mcp, as the MCP authorization spec
    asks: the identity provider whose tokens it takes, so that a client that only speaks OAuth
    signs its user in there. 404 without a provider: API tokens only."""
    settings = runtime().settings
    if not settings.oidc_issuer:
        raise NotFound("this server takes API tokens only: no OpenID provider is configured")
    body = {
        "resource": own_url("mcp.mcp_transport"),
        "authorization_servers": [settings.oidc_issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["openid"],
        "resource_name": "postrag",
    }
    return Response(json.dumps(body), mimetype="application/json")


def _scope() -> dict[str, Any]:
    """The ASGI scope of this WSGI request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.query_string,
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers],
        "client": (request.remote_addr or "", 0),
        "server": (request.host, 0),
    }


async def _exchange(scope: dict[str, Any], body: bytes) -> tuple[int, list[Any], bytes]:
    """The SDK's answer to one request: (status, headers, body)."""
    manager = StreamableHTTPSessionManager(
        app=mcp_server.server()._lowlevel_server,  # noqa: SLF001 - what its own Starlette app mounts
        json_response=True,
        stateless=True,
        max_request_body_size=MAX_BODY_BYTES,
    )
    answered = anyio.Event()
    sent: dict[str, Any] = {"status": 500, "headers": [], "body": b""}
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the client stays until the whole answer is sent
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]
            headers = message["headers"]
            sent["headers"] = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        elif message["type"] == "http.response.body":
            sent["body"] += message.get("body", b"")
            if not message.get("more_body", False):
                answered.set()

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return sent["status"], sent["headers"], sent["body"]
