"""Sources: a Confluence space, a Jira query or a website kept in sync with a collection.

A source is its owner's; the owner must be able to write its collection (its owner or an
editor). Creating one queues its first run; `sync_now` queues another (one at a time per
source); runs are kept as the source's history. Deleting a source deletes the documents it
brought in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from app.errors import Conflict, NotFound, ValidationFailed
from app.providers.source_reach import Reach
from app.providers.web_urls import normalised
from app.repositories import Conn, Row
from app.repositories import sources as source_repo
from app.services import collections, source_sync
from app.services.job_kinds import schedule_sources, sync_source
from app.services.tokens import Principal
from app.settings import Settings

Kind = Literal["confluence", "jira", "web"]
_URL = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ConfluenceConfig(_Config):
    base_url: _URL = Field(
        description="the site (https://x.atlassian.net) or"
        " https://api.atlassian.com/ex/confluence/<cloud id>; the API is under /wiki/api/v2/"
    )
    spaces: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_~-]{1,255}$")]] = Field(
        min_length=1, max_length=50, description="space keys"
    )


class JiraConfig(_Config):
    base_url: _URL = Field(description="the site or https://api.atlassian.com/ex/jira/<cloud id>")
    jql: str = Field(min_length=1, max_length=2000, description="which issues")


class WebConfig(_Config):
    urls: list[_URL] = Field(min_length=1, max_length=20, description="start pages or sitemaps")
    allowed_prefixes: list[_URL] = Field(
        default_factory=list,
        max_length=20,
        description="only URLs under these are fetched (default: the start pages' folders)",
    )
    max_depth: int = Field(2, ge=0, le=10)
    max_pages: int = Field(200, ge=1, le=10000)
    delay_s: float = Field(1.0, ge=0, le=60, description="between two requests to one host")


CONFIGS: dict[str, type[_Config]] = {
    "confluence": ConfluenceConfig,
    "jira": JiraConfig,
    "web": WebConfig,
}
CONNECTORS: dict[str, str | None] = {"confluence": "atlassian", "jira": "atlassian", "web": None}


def _invalid(kind: str, at: tuple[Any, ...], msg: str, type_: str) -> ValidationFailed:
    where = ".".join(map(str, at)) or "config"
    return ValidationFailed.on_field(
        "config", msg, type=type_, at=at, detail=f"invalid {kind} config at {where}: {msg}"
    )


def checked_config(kind: str, config: Any, settings: Settings) -> dict[str, Any]:
    """The config of a `kind` source, validated and with its defaults; 422 on `config`, also
    for an address sources may not reach, or where an Atlassian token may not go."""
    try:
        checked = CONFIGS[kind].model_validate(config).model_dump(mode="json")
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise _invalid(kind, tuple(first["loc"]), first["msg"], first["type"]) from None
    reach = Reach.of(settings.source_hosts)
    for at, url in _urls(checked):
        refusal = reach.literal_refusal(url)
        if refusal is None and CONNECTORS[kind] is not None:
            refusal = reach.token_refusal(url)
        if refusal is None and kind == "web" and normalised(url) is None:
            refusal = "not an address the crawler fetches (http or https, no user or password)"
        if refusal is not None:
            raise _invalid(kind, at, refusal, "value_error")
    return checked


def _urls(config: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    if "base_url" in config:
        yield ("base_url",), config["base_url"]
    for field in ("urls", "allowed_prefixes"):
        for i, url in enumerate(config.get(field, ())):
            yield (field, i), url


def create(
    conn: Conn,
    who: Principal,
    settings: Settings,
    *,
    kind: str,
    collection_id: int,
    name: str,
    config: Any,
    connector: str | None,
    schedule_minutes: int | None,
) -> Row:
    collections.get_writable(conn, who, collection_id)
    wanted = CONNECTORS[kind]
    if connector != wanted:
        msg = f"a {kind} source reads with " + (f"the {wanted!r} connector" if wanted else "none")
        raise ValidationFailed.on_field("connector", msg, type="value_error")
    checked = checked_config(kind, config, settings)
    with conn.transaction():
        source = source_repo.insert_source(
            conn,
            owner_id=who.user_id,
            collection_id=collection_id,
            kind=kind,
            connector=connector,
            name=name,
            config=checked,
            schedule_minutes=schedule_minutes,
        )
        _queue(conn, source, "created", settings)
        if schedule_minutes is not None:
            schedule_sources.ensure(conn)
    return source


def get(conn: Conn, who: Principal, source_id: int, *, lock: bool = False) -> Row:
    source = source_repo.get_source(conn, source_id, who.user_id, lock=lock)
    if source is None:
        raise NotFound(f"no source {source_id}")
    return source


def list_page(conn: Conn, who: Principal, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return source_repo.list_sources(conn, who.user_id, limit=limit, offset=offset)


def update(
    conn: Conn, who: Principal, source_id: int, changes: dict[str, Any], settings: Settings
) -> Row:
    """Rename, reconfigure, reschedule, pause or resume."""
    with conn.transaction():
        source = get(conn, who, source_id, lock=True)
        if "config" in changes:
            changes["config"] = checked_config(source["kind"], changes["config"], settings)
        if not changes:
            return source
        updated = source_repo.update_source(conn, source_id, changes)
        if updated["schedule_minutes"] is not None and not updated["paused"]:
            schedule_sources.ensure(conn)
        return updated


def delete(conn: Conn, who: Principal, source_id: int) -> None:
    """The source, its history and the documents it brought in."""
    with conn.transaction():
        get(conn, who, source_id, lock=True)
        source_sync.delete_documents(conn, source_repo.document_ids(conn, source_id))
        source_repo.delete_source(conn, source_id)


def sync_now(conn: Conn, who: Principal, source_id: int, settings: Settings) -> Row:
    """A run queued now (409 while one is queued or running)."""
    with conn.transaction():
        source = get(conn, who, source_id, lock=True)
        return _queue(conn, source, "manual", settings)


def runs_page(
    conn: Conn, who: Principal, source_id: int, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    get(conn, who, source_id)
    return source_repo.list_runs(conn, source_id, limit=limit, offset=offset)


def _queue(conn: Conn, source: Row, trigger: str, settings: Settings) -> Row:
    run = source_repo.insert_run(conn, source["id"], trigger)
    if run is None:
        raise Conflict(f"source {source['id']} has a run queued or running already")
    sync_source.enqueue(conn, run["id"], max_attempts=settings.job_max_attempts)
    return run
