"""`postrag mcp`: the MCP tools over stdio for desktop clients, acting as one user.

stdout carries the protocol only: logs go to stderr, and while the database and models start,
fd 1 points at stderr too, so that nothing started then (an embedded PostgreSQL) can write into
the protocol's stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from app.cli.common import app_error, fail, load_settings

if TYPE_CHECKING:
    from app.repositories import Conn
    from app.runtime import Runtime
    from app.services.tokens import Principal


@click.command("mcp")
@click.option(
    "--token",
    envvar="POSTRAG_MCP_TOKEN",
    help="the API token of the user to act as (or POSTRAG_MCP_TOKEN); checked at start and at"
    " every call",
)
@click.option("--user", "user_name", help="act as this user without a token (local admin use)")
@click.option(
    "--base-url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="where `postrag serve` answers: citation links point there",
)
def mcp_command(token: str | None, user_name: str | None, base_url: str) -> None:
    """Serve postrag's MCP tools (search, fetch, list_collections, ask) over stdio."""
    if (token is None) == (user_name is None):
        raise click.UsageError("give either --token (or POSTRAG_MCP_TOKEN) or --user")
    import anyio

    from app.services import mcp_server

    with _stdout_to_stderr():
        runtime = _open_runtime()
    try:
        identify = _identity(token, user_name)
        _check(runtime, identify)
        caller = mcp_server.Caller(runtime, base_url.rstrip("/"), identify, {})
        with mcp_server.serving(caller):
            anyio.run(mcp_server.server().run_stdio_async)
    finally:
        runtime.close()


def _open_runtime() -> Runtime:
    from app import prepare_database, resolve_llm
    from app.runtime import Runtime

    try:
        settings = prepare_database(load_settings())
        return Runtime.open(settings, resolve_llm(settings))
    except (click.ClickException, click.Abort):
        raise
    except Exception as exc:  # noqa: BLE001 - shown to the operator as a clean error
        fail(exc)


def _identity(token: str | None, user_name: str | None) -> Callable[[Conn], Principal]:
    from app.services import tokens, users

    if token is not None:
        return lambda conn: tokens.authenticate_token(conn, token)
    assert user_name is not None
    return lambda conn: users.acting_principal(conn, user_name)


def _check(runtime: Runtime, identify: Callable[[Conn], Principal]) -> None:
    """Refuse to start for a bad token or an unknown user."""
    from app.db import scope
    from app.errors import AppError

    with runtime.pool.connection() as conn, scope.acting_as_owner(conn):
        try:
            identify(conn)
        except AppError as exc:
            raise app_error(exc) from None


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """fd 1 on stderr for the block (processes started in it keep it so)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
