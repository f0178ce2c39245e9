"""Calling postrag's MCP server as a client would: over HTTP with the SDK, tools called in turn."""

from __future__ import annotations

from typing import Any

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.helpers import bearer


def over_http(base_url: str, token: str) -> Client:
    http = create_mcp_http_client(headers=bearer(token))
    return Client(streamable_http_client(f"{base_url}/mcp", http_client=http))


def call(client: Client, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(run)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return dict(result.structured_content)
