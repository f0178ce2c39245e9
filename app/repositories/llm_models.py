"""SQL for the llm_models registry (chat and embedding models)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from app.repositories import Conn, Row, returned
from app.strict_json import jsonb

COLUMNS = (
    "id, provider, name, kind, dimension, context_length, capabilities, is_default,"
    " default_source, created_at, updated_at"
)
UPDATABLE = ("context_length", "capabilities", "is_default")


def get(conn: Conn, model_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM llm_models WHERE id = %(id)s", {"id": model_id}
    ).fetchone()


def default_for(conn: Conn, kind: str) -> Row | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM llm_models WHERE kind = %(kind)s AND is_default", {"kind": kind}
    ).fetchone()


def find(conn: Conn, provider: str, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {COLUMNS} FROM llm_models WHERE provider = %(provider)s AND name = %(name)s",
        {"provider": provider, "name": name},
    ).fetchone()


def find_by_name(conn: Conn, name: str, kind: str) -> list[Row]:
    """Models of this kind and name, any provider (the default first)."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM llm_models WHERE name = %(name)s AND kind = %(kind)s"
        " ORDER BY is_default DESC, id",
        {"name": name, "kind": kind},
    ).fetchall()


def list_page(conn: Conn, *, kind: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"kind": kind, "limit": limit, "offset": offset}
    where = "WHERE %(kind)s::text IS NULL OR kind = %(kind)s"
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM llm_models {where} ORDER BY kind, id"
        " LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = returned(
        conn.execute(f"SELECT count(*) AS n FROM llm_models {where}", params).fetchone()
    )
    return rows, int(total["n"])


def insert(
    conn: Conn,
    *,
    provider: str,
    name: str,
    kind: str,
    dimension: int | None,
    context_length: int | None,
    capabilities: dict[str, Any],
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO llm_models (provider, name, kind, dimension, context_length, capabilities)"
            " VALUES (%(provider)s, %(name)s, %(kind)s, %(dimension)s, %(context_length)s,"
            f" %(capabilities)s) RETURNING {COLUMNS}",
            {
                "provider": provider,
                "name": name,
                "kind": kind,
                "dimension": dimension,
                "context_length": context_length,
                "capabilities": jsonb(capabilities),
            },
        ).fetchone()
    )


def update(conn: Conn, model_id: int, changes: dict[str, Any]) -> Row | None:
    assigns = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in changes
    )
    params = {k: jsonb(v) if k == "capabilities" else v for k, v in changes.items()}
    params["id"] = model_id
    query = sql.SQL("UPDATE llm_models SET {} WHERE id = %(id)s RETURNING " + COLUMNS).format(
        assigns
    )
    return conn.execute(query, params).fetchone()


def clear_default(conn: Conn, kind: str, *, source: str | None = None) -> Row | None:
    """The kind's default stops being it (only when `source` set it, if given); that row."""
    return conn.execute(
        "UPDATE llm_models SET is_default = false, default_source = NULL"
        " WHERE kind = %(kind)s AND is_default"
        " AND (%(source)s::text IS NULL OR default_source = %(source)s)"
        f" RETURNING {COLUMNS}",
        {"kind": kind, "source": source},
    ).fetchone()


def delete(conn: Conn, model_id: int) -> bool:
    return conn.execute("DELETE FROM llm_models WHERE id = %(id)s", {"id": model_id}).rowcount == 1


def get_for_reference(conn: Conn, model_id: int) -> Row | None:
    """The model, locked against deletion until the caller's transaction ends."""
    return conn.execute(
        f"SELECT {COLUMNS} FROM llm_models WHERE id = %(id)s FOR KEY SHARE", {"id": model_id}
    ).fetchone()
