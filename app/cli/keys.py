"""`postrag keys`: a new POSTRAG_SECRET_KEY, and re-encrypting connector tokens and MCP servers'
headers with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from app.cli.common import with_conn

if TYPE_CHECKING:
    from app.repositories import Conn
    from app.settings import Settings


@click.group()
def keys() -> None:
    """Manage POSTRAG_SECRET_KEY, the key that encrypts connector tokens and MCP headers."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random secret for POSTRAG_SECRET_KEY."""
    from app.services.secrets import generate_secret

    click.echo(generate_secret())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every connector token and MCP server header with POSTRAG_SECRET_KEY.

    Set POSTRAG_SECRET_KEY to the new secret and POSTRAG_OLD_SECRET_KEYS to the old one(s)
    (comma-separated) first; once this has run, the old ones can go.
    """
    from app.services import connectors, mcp_servers
    from app.services.secrets import Keyring

    def rotate(conn: Conn, settings: Settings) -> tuple[int, int]:
        ring = Keyring.from_settings(settings)
        return connectors.rotate(conn, ring), mcp_servers.rotate(conn, ring)

    tokens, headers = with_conn(rotate)
    click.echo(
        f"re-encrypted {tokens} connector token row(s) and {headers} MCP server header(s)"
        " with the current key",
        err=True,
    )
