"""SQL for connector_consents: OAuth consents under way, each used once."""

from __future__ import annotations

from datetime import timedelta

from app.repositories import Conn, Row


def insert(
    conn: Conn,
    *,
    nonce_hash: bytes,
    browser_hash: bytes,
    user_id: int,
    provider: str,
    code_verifier: str,
    redirect_uri: str,
    lifetime: timedelta,
) -> None:
    conn.execute(
        "INSERT INTO connector_consents"
        " (nonce_hash, browser_hash, user_id, provider, code_verifier, redirect_uri, expires_at)"
        " VALUES (%(nonce_hash)s, %(browser_hash)s, %(user_id)s, %(provider)s, %(code_verifier)s,"
        " %(redirect_uri)s, now() + %(lifetime)s)",
        {
            "nonce_hash": nonce_hash,
            "browser_hash": browser_hash,
            "user_id": user_id,
            "provider": provider,
            "code_verifier": code_verifier,
            "redirect_uri": redirect_uri,
            "lifetime": lifetime,
        },
    )


def take(conn: Conn, nonce_hash: bytes, user_id: int, provider: str) -> Row | None:
    """The consent of this nonce, deleted (so used once), and whether it is still live."""
    return conn.execute(
        "DELETE FROM connector_consents WHERE nonce_hash = %(nonce_hash)s"
        " AND user_id = %(user_id)s AND provider = %(provider)s"
        " RETURNING browser_hash, code_verifier, redirect_uri, expires_at > now() AS live",
        {"nonce_hash": nonce_hash, "user_id": user_id, "provider": provider},
    ).fetchone()


def delete_expired(conn: Conn, user_id: int) -> None:
    conn.execute(
        "DELETE FROM connector_consents WHERE user_id = %(user_id)s AND expires_at <= now()",
        {"user_id": user_id},
    )
