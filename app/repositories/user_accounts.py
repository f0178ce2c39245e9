"""SQL for user_accounts: the accounts postrag users have at a source (V2_15)."""

from __future__ import annotations

from collections.abc import Sequence

from app.repositories import Conn, Row

_COLUMNS = "provider, account_id, user_id, linked_by, linked_at"


def link(conn: Conn, user_id: int, provider: str, account_id: str, linked_by: str) -> Row:
    """The user's link to this account, replacing the user's other account at the provider and
    this account's link to anyone else (run as the tables' owner)."""
    conn.execute(
        "DELETE FROM user_accounts WHERE provider = %(provider)s"
        " AND (user_id = %(user)s OR account_id = %(account)s)",
        {"provider": provider, "user": user_id, "account": account_id},
    )
    row = conn.execute(
        "INSERT INTO user_accounts (provider, account_id, user_id, linked_by)"
        " VALUES (%(provider)s, %(account)s, %(user)s, %(by)s)"
        f" RETURNING {_COLUMNS}",
        {"provider": provider, "account": account_id, "user": user_id, "by": linked_by},
    ).fetchone()
    assert row is not None
    return row


def unlink(conn: Conn, user_id: int, provider: str) -> bool:
    row = conn.execute(
        "DELETE FROM user_accounts WHERE user_id = %(user)s AND provider = %(provider)s"
        " RETURNING account_id",
        {"user": user_id, "provider": provider},
    ).fetchone()
    return row is not None


def of_user(conn: Conn, user_id: int) -> list[Row]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM user_accounts WHERE user_id = %(user)s ORDER BY provider",
        {"user": user_id},
    ).fetchall()


def user_ids(conn: Conn, provider: str, account_ids: Sequence[str]) -> list[int]:
    """The users linked to any of these accounts (run as the tables' owner: others' links)."""
    rows = conn.execute(
        "SELECT user_id FROM user_accounts"
        " WHERE provider = %(provider)s AND account_id = ANY(%(accounts)s)",
        {"provider": provider, "accounts": list(account_ids)},
    ).fetchall()
    return [int(r["user_id"]) for r in rows]
