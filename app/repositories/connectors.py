"""SQL for connector_tokens (encrypted third-party tokens, one per user and provider)."""

from __future__ import annotations

from datetime import datetime

from app.repositories import Conn, Row, returned

PUBLIC = "id, owner_id, provider, scopes, expires_at, created_at, updated_at"
SECRET = f"{PUBLIC}, access_token, refresh_token, key_id"


def list_owned(conn: Conn, owner_id: int) -> list[Row]:
    return conn.execute(
        f"SELECT {PUBLIC} FROM connector_tokens WHERE owner_id = %(owner_id)s ORDER BY provider",
        {"owner_id": owner_id},
    ).fetchall()


def get_secret(conn: Conn, owner_id: int, provider: str, *, lock: bool = False) -> Row | None:
    return conn.execute(
        f"SELECT {SECRET} FROM connector_tokens"
        " WHERE owner_id = %(owner_id)s AND provider = %(provider)s"
        + (" FOR UPDATE" if lock else ""),
        {"owner_id": owner_id, "provider": provider},
    ).fetchone()


def upsert(
    conn: Conn,
    owner_id: int,
    provider: str,
    *,
    access_token: bytes,
    refresh_token: bytes | None,
    key_id: str,
    scopes: list[str],
    expires_at: datetime | None,
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO connector_tokens"
            " (owner_id, provider, access_token, refresh_token, key_id, scopes, expires_at)"
            " VALUES (%(owner_id)s, %(provider)s, %(access)s, %(refresh)s, %(key_id)s,"
            " %(scopes)s, %(expires_at)s)"
            " ON CONFLICT ON CONSTRAINT connector_tokens_owner_id_provider_key DO UPDATE SET"
            " access_token = EXCLUDED.access_token, refresh_token = EXCLUDED.refresh_token,"
            " key_id = EXCLUDED.key_id, scopes = EXCLUDED.scopes,"
            f" expires_at = EXCLUDED.expires_at RETURNING {PUBLIC}",
            {
                "owner_id": owner_id,
                "provider": provider,
                "access": access_token,
                "refresh": refresh_token,
                "key_id": key_id,
                "scopes": scopes,
                "expires_at": expires_at,
            },
        ).fetchone()
    )


def reencrypt(
    conn: Conn, token_id: int, access_token: bytes, refresh_token: bytes | None, key_id: str
) -> None:
    conn.execute(
        "UPDATE connector_tokens SET access_token = %(access)s, refresh_token = %(refresh)s,"
        " key_id = %(key_id)s WHERE id = %(id)s",
        {"id": token_id, "access": access_token, "refresh": refresh_token, "key_id": key_id},
    )


def delete(conn: Conn, owner_id: int, provider: str) -> bool:
    return (
        conn.execute(
            "DELETE FROM connector_tokens"
            " WHERE owner_id = %(owner_id)s AND provider = %(provider)s",
            {"owner_id": owner_id, "provider": provider},
        ).rowcount
        == 1
    )


def key_ids(conn: Conn) -> dict[str, int]:
    """How many rows each key encrypted."""
    rows = conn.execute(
        "SELECT key_id, count(*) AS n FROM connector_tokens GROUP BY key_id"
    ).fetchall()
    return {r["key_id"]: int(r["n"]) for r in rows}


def all_secret(conn: Conn, *, not_key: str) -> list[Row]:
    """Every row not encrypted with `not_key`, locked for re-encryption."""
    return conn.execute(
        f"SELECT {SECRET} FROM connector_tokens WHERE key_id <> %(key)s ORDER BY id FOR UPDATE",
        {"key": not_key},
    ).fetchall()


def lock_owner(conn: Conn, owner_id: int) -> None:
    """A per-user transaction lock for token refreshes (keyed apart from other advisory locks)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('postrag:connectors:' || %(owner)s, 0))",
        {"owner": owner_id},
    )
