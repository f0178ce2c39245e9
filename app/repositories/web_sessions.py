"""SQL for the web page's pending sign-ins (web_logins) and sessions (web_sessions)."""

from __future__ import annotations

from datetime import timedelta

from app.repositories import Conn, Row, returned


def insert_login(
    conn: Conn,
    *,
    state_hash: bytes,
    browser_hash: bytes,
    nonce: str,
    code_verifier: str,
    redirect_uri: str,
    lifetime: timedelta,
) -> None:
    conn.execute(
        "INSERT INTO web_logins (state_hash, browser_hash, nonce, code_verifier, redirect_uri,"
        " expires_at) VALUES (%(state_hash)s, %(browser_hash)s, %(nonce)s, %(code_verifier)s,"
        " %(redirect_uri)s, now() + %(lifetime)s)",
        {
            "state_hash": state_hash,
            "browser_hash": browser_hash,
            "nonce": nonce,
            "code_verifier": code_verifier,
            "redirect_uri": redirect_uri,
            "lifetime": lifetime,
        },
    )


def take_login(conn: Conn, state_hash: bytes) -> Row | None:
    """The pending sign-in of this state, deleted (so used once), unless it has expired."""
    return conn.execute(
        "DELETE FROM web_logins WHERE state_hash = %(state_hash)s"
        " RETURNING browser_hash, nonce, code_verifier, redirect_uri, expires_at > now() AS live",
        {"state_hash": state_hash},
    ).fetchone()


def insert_session(conn: Conn, *, secret_hash: bytes, user_id: int, lifetime: timedelta) -> Row:
    row = conn.execute(
        "INSERT INTO web_sessions (secret_hash, user_id, expires_at)"
        " VALUES (%(secret_hash)s, %(user_id)s, now() + %(lifetime)s)"
        " RETURNING id, user_id, created_at, expires_at",
        {"secret_hash": secret_hash, "user_id": user_id, "lifetime": lifetime},
    ).fetchone()
    return returned(row)


def find_session(conn: Conn, secret_hash: bytes) -> Row | None:
    """The session with this secret, whether it is still valid, and its user."""
    return conn.execute(
        "SELECT s.id, s.expires_at, s.expires_at > now() AS live,"
        " u.id AS user_id, u.name AS user_name, u.role AS user_role"
        " FROM web_sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.secret_hash = %(secret_hash)s",
        {"secret_hash": secret_hash},
    ).fetchone()


def touch_session(conn: Conn, session_id: int) -> None:
    # At most one write a minute per session, as for API tokens.
    conn.execute(
        "UPDATE web_sessions SET last_seen_at = now() WHERE id = %(id)s"
        " AND last_seen_at < now() - interval '1 minute'",
        {"id": session_id},
    )


def delete_session(conn: Conn, session_id: int) -> int:
    return conn.execute("DELETE FROM web_sessions WHERE id = %(id)s", {"id": session_id}).rowcount


def has_live_session(conn: Conn, user_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM web_sessions WHERE user_id = %(user_id)s"
        " AND expires_at > now()) AS live",
        {"user_id": user_id},
    ).fetchone()
    return bool(row and row["live"])


def delete_expired(conn: Conn) -> None:
    """Forget expired sessions and pending sign-ins (as the tables' owner)."""
    conn.execute("DELETE FROM web_sessions WHERE expires_at <= now()")
    conn.execute("DELETE FROM web_logins WHERE expires_at <= now()")
