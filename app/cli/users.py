"""`postrag users`: create a user (printing its first token) and list them."""

from __future__ import annotations

import click

from app.cli.common import with_conn


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="give the user the admin role")
def users_create(name: str, admin: bool) -> None:
    """Create a user and print its first API token (shown once)."""
    from app.services import users as user_service

    role = "admin" if admin else "user"
    user, token = with_conn(
        lambda conn, _: user_service.create(conn, name=name, role=role),
        arguments={"name": f"name {name!r}"},
    )
    click.echo(f"created user {user['name']!r} (id {user['id']}, {user['role']})", err=True)
    click.echo(token)


@users.command("list")
def users_list() -> None:
    """List users."""
    from app.services import users as user_service

    rows, _ = with_conn(lambda conn, _: user_service.list_page(conn, limit=10_000, offset=0))
    for row in rows:
        click.echo(f"{row['id']:>6}  {row['role']:5}  {row['name']}")
