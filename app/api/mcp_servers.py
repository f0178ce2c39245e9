"""MCP servers for chats (app/services/mcp_servers.py): admins POST, PATCH and DELETE
/api/v1/mcp-servers[/{id}] and POST .../{id}/refresh (discover its tools and prompts); every user
GETs them (never a header's value: only whether one is set)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import Blueprint, url_for
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.endpoint import bearer_jwt, changes_of, db, endpoint, principal, release_db
from app.api.schemas import Page, PageQuery
from app.repositories import Row
from app.runtime import runtime
from app.services import mcp_servers
from app.services.mcp_servers import Auth
from app.services.mcp_tools import Caller

bp = Blueprint("mcp_servers", __name__, url_prefix="/api/v1")

ServerName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,100}$")]
# One line of printable ASCII (or tabs): HTTP sends header values as ASCII.
HeaderValue = Annotated[
    str, StringConstraints(min_length=1, max_length=8000, pattern=r"^[\x20-\x7e\t]+$")
]
Audience = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Scope = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
_AUTH = (
    "none; static_header (header_name and header_value, stored encrypted); atlassian (the"
    " calling user's Atlassian connector token); token_exchange (the calling user's bearer JWT"
    " exchanged at the OpenID provider for exchange_audience, RFC 8693)"
)


class McpServer(BaseModel):
    id: int
    name: str = Field(description="prefixes its tools' names for the model and its commands")
    url: str = Field(description="its streamable HTTP endpoint")
    auth: Auth = Field(description=_AUTH)
    header_name: str | None
    header_set: bool = Field(description="whether a header value is stored (never shown)")
    exchange_audience: str | None
    exchange_scope: str | None
    enabled: bool
    tool_count: int
    prompt_count: int
    discovered_at: datetime | None = Field(description="when its tools were last discovered")
    discovery_error: str | None = Field(description="why the last discovery failed")
    created_at: datetime
    updated_at: datetime


class McpTool(BaseModel):
    name: str
    title: str | None
    description: str | None
    input_schema: dict[str, Any] = Field(description="JSON Schema of its arguments")
    discovered_at: datetime


class McpPromptArgument(BaseModel):
    name: str
    description: str | None
    required: bool


class McpPrompt(BaseModel):
    name: str
    title: str | None
    description: str | None
    arguments: list[McpPromptArgument]
    discovered_at: datetime


class McpServerDetail(McpServer):
    tools: list[McpTool]
    prompts: list[McpPrompt]


class McpDiscovery(McpServerDetail):
    skipped: list[str] = Field(description="tools and prompts left out, and why")


class McpServerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ServerName
    url: Url
    auth: Auth = Field("none", description=_AUTH)
    header_name: HeaderName | None = None
    header_value: HeaderValue | None = Field(None, description="stored encrypted, never shown")
    exchange_audience: Audience | None = Field(None, description="the token's audience")
    exchange_scope: Scope | None = Field(None, description="scopes asked for (space-separated)")
    enabled: bool = True


class McpServerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ServerName | None = None
    url: Url | None = None
    auth: Auth | None = Field(None, description="changing it clears the old kind's fields")
    header_name: HeaderName | None = None
    header_value: HeaderValue | None = Field(None, description="left out: the stored one stays")
    exchange_audience: Audience | None = None
    exchange_scope: Scope | None = Field(None, description="null: none")
    enabled: bool | None = Field(None, description="a disabled server's tools are not offered")


def _detail(found: tuple[Row, list[Row], list[Row]]) -> dict[str, Any]:
    row, tools, prompts = found
    return {**mcp_servers.shown(row, principal().is_admin), "tools": tools, "prompts": prompts}


@bp.post("/mcp-servers")
@endpoint(
    summary="Register an MCP server for chats (admin)",
    tag="mcp-servers",
    auth="admin",
    status=201,
    body=McpServerCreate,
    response=McpServer,
    errors=(409, 422, 503),
)
def create_server(body: McpServerCreate) -> tuple[McpServer, dict[str, str]]:
    rt = runtime()
    row = mcp_servers.create(db(), rt.settings, rt.keyring, body.model_dump())
    location = url_for("mcp_servers.get_server", server_id=row["id"])
    return McpServer(**row), {"Location": location}


@bp.get("/mcp-servers")
@endpoint(
    summary="The MCP servers chats may use",
    tag="mcp-servers",
    query=PageQuery,
    response=Page[McpServer],
)
def list_servers(query: PageQuery) -> Page[McpServer]:
    rows, total = mcp_servers.list_page(db(), limit=query.limit, offset=query.offset)
    admin = principal().is_admin
    items = [McpServer(**mcp_servers.shown(row, admin)) for row in rows]
    return Page[McpServer](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/mcp-servers/<int:server_id>")
@endpoint(
    summary="One MCP server, with the tools and prompts last discovered",
    tag="mcp-servers",
    response=McpServerDetail,
    errors=(404,),
)
def get_server(server_id: int) -> McpServerDetail:
    return McpServerDetail(**_detail(mcp_servers.get(db(), server_id)))


@bp.patch("/mcp-servers/<int:server_id>")
@endpoint(
    summary="Change an MCP server (admin); a new address or auth forgets its tools",
    tag="mcp-servers",
    auth="admin",
    body=McpServerUpdate,
    response=McpServer,
    errors=(404, 409, 422, 503),
)
def update_server(server_id: int, body: McpServerUpdate) -> McpServer:
    rt = runtime()
    changes = changes_of(body, nullable=("exchange_scope",))
    return McpServer(**mcp_servers.update(db(), rt.settings, rt.keyring, server_id, changes))


@bp.delete("/mcp-servers/<int:server_id>")
@endpoint(
    summary="Delete an MCP server and its tools (admin)",
    tag="mcp-servers",
    auth="admin",
    status=204,
    errors=(404,),
)
def delete_server(server_id: int) -> None:
    mcp_servers.delete(db(), server_id)


@bp.post("/mcp-servers/<int:server_id>/refresh")
@endpoint(
    summary="Discover an MCP server's tools and prompts now, with your credentials (admin)",
    tag="mcp-servers",
    auth="admin",
    response=McpDiscovery,
    errors=(403, 404, 409, 502, 503, 504),
)
def refresh_server(server_id: int) -> McpDiscovery:
    who = principal()
    caller = Caller(who.user_id, bearer_jwt(), who.session_id is not None)
    reached = mcp_servers.discovery_target(db(), runtime().mcp, caller, server_id)
    release_db()  # the server may take its time: no connection is held meanwhile
    found, catalog = mcp_servers.refresh(db, reached, server_id)
    return McpDiscovery(**_detail(found), skipped=list(catalog.skipped))
