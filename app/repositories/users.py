"""SQL for users and their default preferences."""

from __future__ import annotations

from app.repositories import Conn, Row, returned

_USER_COLUMNS = "id, name, role, created_at"


def insert_user(conn: Conn, *, name: str, role: str) -> Row:
    row = conn.execute(
        f"INSERT INTO users (name, role) VALUES (%(name)s, %(role)s) RETURNING {_USER_COLUMNS}",
        {"name": name, "role": role},
    ).fetchone()
    return returned(row)


def insert_default_preferences(conn: Conn, user_id: int) -> None:
    conn.execute(
        "INSERT INTO user_preferences (user_id) VALUES (%(user_id)s)"
        " ON CONFLICT (user_id) DO NOTHING",
        {"user_id": user_id},
    )


def get_user(conn: Conn, user_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE id = %(id)s", {"id": user_id}
    ).fetchone()


def get_by_name(conn: Conn, name: str) -> Row | None:
    return conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE name = %(name)s", {"name": name}
    ).fetchone()


def list_users(conn: Conn, *, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users ORDER BY id LIMIT %(limit)s OFFSET %(offset)s",
        {"limit": limit, "offset": offset},
    ).fetchall()
    total = conn.execute("SELECT count(*) AS n FROM users").fetchone()
    return rows, returned(total)["n"]


def count_users(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) AS n FROM users").fetchone()
    return int(returned(row)["n"])


def get_by_identity(conn: Conn, issuer: str, subject: str) -> Row | None:
    return conn.execute(
        f"SELECT {_USER_COLUMNS}, email FROM users"
        " WHERE issuer = %(issuer)s AND subject = %(subject)s",
        {"issuer": issuer, "subject": subject},
    ).fetchone()


def upsert_identity(
    conn: Conn,
    *,
    issuer: str,
    subject: str,
    name: str,
    email: str | None,
    role: str | None,
) -> Row | None:
    """The provider user (issuer, subject), created or given this name, email and role (None:
    'user' when created, else unchanged); `inserted` says which. None when nothing changed."""
    row = conn.execute(
        "INSERT INTO users AS u (name, role, issuer, subject, email)"
        " VALUES (%(name)s, coalesce(%(role)s, 'user'), %(issuer)s, %(subject)s, %(email)s)"
        " ON CONFLICT (issuer, subject) DO UPDATE"
        " SET name = EXCLUDED.name, email = EXCLUDED.email, role = coalesce(%(role)s, u.role)"
        " WHERE (u.name, u.email, u.role)"
        " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.email, coalesce(%(role)s, u.role))"
        f" RETURNING {_USER_COLUMNS}, (xmax = 0) AS inserted",
        {"issuer": issuer, "subject": subject, "name": name, "email": email, "role": role},
    ).fetchone()
    return row
