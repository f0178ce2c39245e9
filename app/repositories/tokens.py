"""SQL for API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.repositories import Conn, Row, returned

_TOKEN_COLUMNS = (
    "id, user_id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at"
)


def insert_token(
    conn: Conn,
    *,
    user_id: int,
    name: str,
    prefix: str,
    secret_hash: bytes,
    scopes: list[str],
    expires_at: datetime | None,
    parent_id: int | None,
) -> Row:
    row = conn.execute(
        "INSERT INTO api_tokens (user_id, name, prefix, secret_hash, scopes, expires_at,"
        " parent_id) VALUES (%(user_id)s, %(name)s, %(prefix)s, %(secret_hash)s, %(scopes)s,"
        f" %(expires_at)s, %(parent_id)s) RETURNING {_TOKEN_COLUMNS}",
        {
            "user_id": user_id,
            "name": name,
            "prefix": prefix,
            "secret_hash": secret_hash,
            "scopes": scopes,
            "expires_at": expires_at,
            "parent_id": parent_id,
        },
    ).fetchone()
    return returned(row)


def find_by_prefix(conn: Conn, prefix: str) -> Row | None:
    """The token with this prefix, its secret hash, validity and its user."""
    return conn.execute(
        "SELECT t.id, t.secret_hash, t.scopes, t.expires_at, t.last_used_at,"
        " (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())) AS active,"
        " u.id AS user_id, u.name AS user_name, u.role AS user_role"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.prefix = %(prefix)s",
        {"prefix": prefix},
    ).fetchone()


# At most one write a minute per token: a busy client must not turn reads into writes.
LAST_USED_GRAIN = timedelta(minutes=1)


def stale_last_used(last_used_at: datetime | None) -> bool:
    """Whether touch_last_used would write (the statement checks again, on the server's clock)."""
    return last_used_at is None or datetime.now(UTC) - last_used_at >= LAST_USED_GRAIN


def touch_last_used(conn: Conn, token_id: int) -> None:
    conn.execute(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s"
        " AND (last_used_at IS NULL OR last_used_at <= now() - %(grain)s)",
        {"id": token_id, "grain": LAST_USED_GRAIN},
    )


def list_tokens(conn: Conn, user_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    rows = conn.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE user_id = %(user_id)s"
        " ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {"user_id": user_id, "limit": limit, "offset": offset},
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM api_tokens WHERE user_id = %(user_id)s", {"user_id": user_id}
    ).fetchone()
    return rows, returned(total)["n"]


def get_token(conn: Conn, user_id: int, token_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = %(id)s AND user_id = %(user_id)s",
        {"id": token_id, "user_id": user_id},
    ).fetchone()


def revoke_token(conn: Conn, user_id: int, token_id: int) -> Row | None:
    """Revoke one of the user's tokens (idempotent: an already revoked token keeps its time)."""
    return conn.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
        f" WHERE id = %(id)s AND user_id = %(user_id)s RETURNING {_TOKEN_COLUMNS}",
        {"id": token_id, "user_id": user_id},
    ).fetchone()


def lock_active(conn: Conn, token_id: int) -> bool:
    """Whether the token is still valid, locking it against revocation until the caller's
    transaction ends (so a token it makes meanwhile cannot escape that revocation)."""
    row = conn.execute(
        "SELECT id FROM api_tokens WHERE id = %(id)s AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now()) FOR SHARE",
        {"id": token_id},
    ).fetchone()
    return row is not None


def revoke_children_of_revoked(conn: Conn, user_id: int) -> int:
    """Revoke the user's tokens made by a revoked token (one generation); how many."""
    return conn.execute(
        "UPDATE api_tokens SET revoked_at = now()"
        " WHERE user_id = %(user_id)s AND revoked_at IS NULL AND parent_id IN"
        " (SELECT id FROM api_tokens WHERE user_id = %(user_id)s AND revoked_at IS NOT NULL)",
        {"user_id": user_id},
    ).rowcount
