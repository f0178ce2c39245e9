"""`postrag sources`: list, add, sync, pause, resume, show the runs of and delete a user's
sources."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from app.cli.common import with_user

if TYPE_CHECKING:
    from app.repositories import Conn, Row
    from app.services.tokens import Principal
    from app.settings import Settings

_USER = click.option(
    "--user", "user_name", default="admin", show_default=True, help="whose sources"
)


@click.group()
def sources() -> None:
    """Confluence spaces, Jira queries and websites kept in sync with a collection."""


@sources.command("list")
@_USER
def sources_list(user_name: str) -> None:
    """The user's sources, one per line: id, kind, collection, name, schedule."""
    from app.services import sources as source_service

    def work(conn: Conn, settings: Settings, who: Principal) -> list[Row]:
        return source_service.list_page(conn, who, limit=1000, offset=0)[0]

    for row in with_user(user_name, work):
        every = f"every {row['schedule_minutes']} min" if row["schedule_minutes"] else "on demand"
        paused = ", paused" if row["paused"] else ""
        click.echo(
            f"{row['id']}\t{row['kind']}\tcollection {row['collection_id']}\t{row['name']}"
            f"\t{every}{paused}"
        )


@sources.command("add")
@click.argument("kind", type=click.Choice(["confluence", "jira", "web"]))
@click.option("--collection", "collection_id", type=int, required=True, help="collection id")
@click.option("--name", required=True, help="the source's name (unique per user)")
@click.option("--config", "config_text", required=True, help="its config, as a JSON object")
@click.option("--schedule", type=int, default=None, help="minutes between syncs (15 or more)")
@_USER
def sources_add(
    kind: str,
    collection_id: int,
    name: str,
    config_text: str,
    schedule: int | None,
    user_name: str,
) -> None:
    """Add a source (a Confluence or Jira one reads with the user's Atlassian connection) and
    queue its first sync; prints its id."""
    from app.services import sources as source_service

    try:
        config: Any = json.loads(config_text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--config") from None
    connector = source_service.CONNECTORS[kind]

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        return source_service.create(
            conn,
            who,
            settings,
            kind=kind,
            collection_id=collection_id,
            name=name,
            config=config,
            connector=connector,
            schedule_minutes=schedule,
        )

    arguments = {"config": "--config", "schedule_minutes": "--schedule", "name": "--name"}
    row = with_user(user_name, work, arguments=arguments)
    click.echo(row["id"])
    click.echo("its first sync is queued: `postrag serve` or `postrag worker` runs it", err=True)


@sources.command("sync")
@click.argument("source_id", type=int)
@_USER
def sources_sync(source_id: int, user_name: str) -> None:
    """Queue a sync of a source now; prints the run's id."""
    from app.services import sources as source_service

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        return source_service.sync_now(conn, who, source_id, settings)

    click.echo(with_user(user_name, work)["id"])


def _set_paused(source_id: int, paused: bool, user_name: str) -> None:
    from app.services import sources as source_service

    def work(conn: Conn, settings: Settings, who: Principal) -> Row:
        return source_service.update(conn, who, source_id, {"paused": paused}, settings)

    with_user(user_name, work)
    click.echo(f"source {source_id} {'paused' if paused else 'resumed'}", err=True)


@sources.command("pause")
@click.argument("source_id", type=int)
@_USER
def sources_pause(source_id: int, user_name: str) -> None:
    """Stop a source's scheduled syncs (a sync asked for still runs)."""
    _set_paused(source_id, True, user_name)


@sources.command("resume")
@click.argument("source_id", type=int)
@_USER
def sources_resume(source_id: int, user_name: str) -> None:
    """Resume a paused source's scheduled syncs."""
    _set_paused(source_id, False, user_name)


@sources.command("runs")
@click.argument("source_id", type=int)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@_USER
def sources_runs(source_id: int, limit: int, user_name: str) -> None:
    """A source's latest runs: id, state, counts and error."""
    from app.services import sources as source_service

    def work(conn: Conn, settings: Settings, who: Principal) -> list[Row]:
        return source_service.runs_page(conn, who, source_id, limit=limit, offset=0)[0]

    for run in with_user(user_name, work):
        counts = ", ".join(
            f"{name} {run[name]}" for name in ("added", "updated", "deleted", "unchanged", "failed")
        )
        error = f"\t{run['error']}" if run["error"] else ""
        click.echo(f"{run['id']}\t{run['state']}\t{counts}{error}")


@sources.command("delete")
@click.argument("source_id", type=int)
@click.option("--yes", is_flag=True, help="do not ask")
@_USER
def sources_delete(source_id: int, yes: bool, user_name: str) -> None:
    """Delete a source and the documents it brought in."""
    from app.services import sources as source_service

    if not yes:
        click.confirm(f"delete source {source_id} and its documents?", abort=True)

    def work(conn: Conn, settings: Settings, who: Principal) -> None:
        source_service.delete(conn, who, source_id)

    with_user(user_name, work)
    click.echo(f"deleted source {source_id}", err=True)
