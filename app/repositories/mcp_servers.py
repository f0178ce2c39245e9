"""SQL for MCP servers, their encrypted header and the tools and prompts they were found to offer.

The header's value is read only by `header_secret`, as the tables' owner: postrag_app may not
select that column (V2_17).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from psycopg import sql

from app.repositories import Conn, Row, returned
from app.strict_json import jsonb

_COLUMNS = (
    "id, name, url, auth, header_name, key_id IS NOT NULL AS header_set, exchange_audience,"
    " exchange_scope, enabled, discovered_at, discovery_error, created_at, updated_at"
)
_COUNTS = (
    "(SELECT count(*) FROM mcp_server_tools t WHERE t.server_id = s.id) AS tool_count,"
    " (SELECT count(*) FROM mcp_server_prompts p WHERE p.server_id = s.id) AS prompt_count"
)
# What create and update may set (the service says which, validated).
WRITABLE = (
    "name",
    "url",
    "auth",
    "header_name",
    "header_value",
    "key_id",
    "exchange_audience",
    "exchange_scope",
    "enabled",
)


def insert(conn: Conn, fields: Mapping[str, Any]) -> Row:
    names = [n for n in WRITABLE if n in fields]
    query = sql.SQL("INSERT INTO mcp_servers ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(map(sql.Placeholder, names)),
    )
    new_id = returned(conn.execute(query, {n: fields[n] for n in names}).fetchone())["id"]
    return returned(get(conn, new_id))


def update(conn: Conn, server_id: int, changes: Mapping[str, Any]) -> Row | None:
    names = [n for n in WRITABLE if n in changes]
    if names:
        query = sql.SQL("UPDATE mcp_servers SET {} WHERE id = %(id)s RETURNING id").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(n)) for n in names
            )
        )
        row = conn.execute(query, {"id": server_id, **{n: changes[n] for n in names}}).fetchone()
        if row is None:
            return None
    return get(conn, server_id)


def get(conn: Conn, server_id: int, *, lock: bool = False) -> Row | None:
    return conn.execute(
        f"SELECT {_COLUMNS}, {_COUNTS} FROM mcp_servers s WHERE id = %(id)s"
        + (" FOR UPDATE" if lock else ""),
        {"id": server_id},
    ).fetchone()


def get_by_name(conn: Conn, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {_COLUMNS}, {_COUNTS} FROM mcp_servers s WHERE name = %(name)s", {"name": name}
    ).fetchone()


def list_page(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = conn.execute(
        f"SELECT {_COLUMNS}, {_COUNTS} FROM mcp_servers s ORDER BY name"
        " LIMIT %(limit)s OFFSET %(offset)s",
        {"limit": limit, "offset": offset},
    ).fetchall()
    total = returned(conn.execute("SELECT count(*) AS n FROM mcp_servers").fetchone())
    return rows, total["n"]


def delete(conn: Conn, server_id: int) -> bool:
    row = conn.execute(
        "DELETE FROM mcp_servers WHERE id = %(id)s RETURNING id", {"id": server_id}
    ).fetchone()
    return row is not None


def header_secret(conn: Conn, server_id: int) -> Row | None:
    """The header's name, encrypted value and key (as the tables' owner only)."""
    return conn.execute(
        "SELECT header_name, header_value, key_id FROM mcp_servers WHERE id = %(id)s",
        {"id": server_id},
    ).fetchone()


def tools(conn: Conn, server_id: int) -> list[Row]:
    return conn.execute(
        "SELECT name, title, description, input_schema, discovered_at FROM mcp_server_tools"
        " WHERE server_id = %(id)s ORDER BY name",
        {"id": server_id},
    ).fetchall()


def prompts(conn: Conn, server_id: int) -> list[Row]:
    return conn.execute(
        "SELECT name, title, description, arguments, discovered_at FROM mcp_server_prompts"
        " WHERE server_id = %(id)s ORDER BY name",
        {"id": server_id},
    ).fetchall()


def replace_catalog(
    conn: Conn,
    server_id: int,
    tools: Iterable[Mapping[str, Any]],
    prompts: Iterable[Mapping[str, Any]],
) -> None:
    """The server's tools and prompts become these (the discovery's time on each)."""
    conn.execute("DELETE FROM mcp_server_tools WHERE server_id = %(id)s", {"id": server_id})
    conn.execute("DELETE FROM mcp_server_prompts WHERE server_id = %(id)s", {"id": server_id})
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO mcp_server_tools (server_id, name, title, description, input_schema)"
            " VALUES (%(id)s, %(name)s, %(title)s, %(description)s, %(input_schema)s)",
            [{**t, "id": server_id, "input_schema": jsonb(t["input_schema"])} for t in tools],
        )
        cur.executemany(
            "INSERT INTO mcp_server_prompts (server_id, name, title, description, arguments)"
            " VALUES (%(id)s, %(name)s, %(title)s, %(description)s, %(arguments)s)",
            [{**p, "id": server_id, "arguments": jsonb(list(p["arguments"]))} for p in prompts],
        )


def forget_catalog(conn: Conn, server_id: int) -> None:
    """No tools or prompts known any more (the server's address or credentials changed)."""
    replace_catalog(conn, server_id, (), ())
    conn.execute(
        "UPDATE mcp_servers SET discovered_at = NULL, discovery_error = NULL WHERE id = %(id)s",
        {"id": server_id},
    )


def record_discovery(conn: Conn, server_id: int, error: str | None) -> None:
    """A discovery succeeded (`error` None: the catalog is of now) or failed (the catalog is
    kept, with why the last try failed)."""
    conn.execute(
        "UPDATE mcp_servers SET discovery_error = %(error)s::text,"
        " discovered_at = CASE WHEN %(error)s::text IS NULL THEN now() ELSE discovered_at END"
        " WHERE id = %(id)s",
        {"id": server_id, "error": error},
    )


def key_ids(conn: Conn) -> dict[str, int]:
    """How many headers each key encrypted (as the tables' owner)."""
    rows = conn.execute(
        "SELECT key_id, count(*) AS n FROM mcp_servers WHERE key_id IS NOT NULL GROUP BY key_id"
    ).fetchall()
    return {r["key_id"]: int(r["n"]) for r in rows}


def all_secret(conn: Conn, *, not_key: str) -> list[Row]:
    """Every header not encrypted with `not_key`, locked for re-encryption (as the owner)."""
    return conn.execute(
        "SELECT id, header_value, key_id FROM mcp_servers"
        " WHERE key_id IS NOT NULL AND key_id <> %(key)s ORDER BY id FOR UPDATE",
        {"key": not_key},
    ).fetchall()


def reencrypt(conn: Conn, server_id: int, header_value: bytes, key_id: str) -> None:
    conn.execute(
        "UPDATE mcp_servers SET header_value = %(value)s, key_id = %(key_id)s WHERE id = %(id)s",
        {"id": server_id, "value": header_value, "key_id": key_id},
    )


def enabled_among(conn: Conn, server_ids: list[int]) -> list[Row]:
    """The servers of `server_ids` that are registered and enabled (id, name), by name."""
    return conn.execute(
        "SELECT id, name FROM mcp_servers WHERE id = ANY(%(ids)s) AND enabled ORDER BY name",
        {"ids": server_ids},
    ).fetchall()


def enabled_tools(conn: Conn, server_ids: list[int]) -> list[Row]:
    """The cached tools of the enabled servers of `server_ids`, with their server's id and name."""
    return conn.execute(
        "SELECT s.id AS server_id, s.name AS server, t.name, t.description, t.input_schema"
        " FROM mcp_server_tools t JOIN mcp_servers s ON s.id = t.server_id"
        " WHERE s.id = ANY(%(ids)s) AND s.enabled ORDER BY s.name, t.name",
        {"ids": server_ids},
    ).fetchall()


def enabled_prompts(conn: Conn, server_ids: list[int]) -> list[Row]:
    """The cached prompts of the enabled servers of `server_ids`, with their server."""
    return conn.execute(
        "SELECT s.id AS server_id, s.name AS server, p.name, p.description, p.arguments"
        " FROM mcp_server_prompts p JOIN mcp_servers s ON s.id = p.server_id"
        " WHERE s.id = ANY(%(ids)s) AND s.enabled ORDER BY s.name, p.name",
        {"ids": server_ids},
    ).fetchall()
