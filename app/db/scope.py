"""Who the database thinks is asking: the Row-Level Security switch (policies: sql/migrations/V2_5).

Three states, each a role and a `postrag.user_id`:
- `act_as(conn, user_id)`: role postrag_app and the user's id; PostgreSQL hides every row the
  user may not see, whatever the SQL forgets to filter.
- `act_as_anonymous(conn)`: role postrag_app and no user: no user-owned row at all. Every pooled
  connection starts this way and goes back to the pool this way (app/db/pool.py), so code that
  forgets to say who it acts for sees nothing rather than everything.
- `act_as_owner(conn)`: the connecting role, which owns the tables and bypasses the policies,
  for work that is nobody's: token lookup, readiness, start-up. Workers and the CLI open their
  own connections, which are the owner's unless they act as someone (a worker acts as the owner
  of the document it ingests).

Pool connections run in autocommit mode, one transaction per statement, so the state belongs to
the session until it is changed again; inside a transaction that rolls back, PostgreSQL undoes
it too. RLS guards against queries that forget their owner filter, not against SQL injection: the
connecting role may always switch back (all SQL here uses bound parameters).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

APP_ROLE = "postrag_app"
_OWNER = "none"  # SET ROLE NONE: back to the connecting role

_SET = "SELECT set_config('role', %(role)s, false), set_config('postrag.user_id', %(user)s, false)"
_CURRENT = "SELECT current_setting('role'), coalesce(current_setting('postrag.user_id', true), '')"
# The search path resolved for the connecting role: "$user" would name postrag_app's (missing)
# schema after the switch, and the tables live in the connecting role's (docker/init_schema.sh).
_PIN_PATH = (
    " FROM (SELECT set_config('search_path', array_to_string(ARRAY("
    "SELECT quote_ident(s) FROM unnest(current_schemas(false)) s), ', '), false)) pinned"
)


def act_as(conn: psycopg.Connection[Any], user_id: int) -> None:
    conn.execute(_SET + _PIN_PATH, {"role": APP_ROLE, "user": str(int(user_id))})


def act_as_anonymous(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SET + _PIN_PATH, {"role": APP_ROLE, "user": ""})


def act_as_owner(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SET, {"role": _OWNER, "user": ""})


@contextmanager
def _switched(conn: psycopg.Connection[Any], role: str, user: str) -> Iterator[None]:
    before = conn.cursor(row_factory=tuple_row).execute(_CURRENT).fetchone()
    conn.execute(_SET + _PIN_PATH, {"role": role, "user": user})
    try:
        yield
    finally:
        # A failed transaction cannot run the restore; its rollback undoes the switch anyway.
        failed = conn.info.transaction_status == pq.TransactionStatus.INERROR
        if not conn.closed and not failed and before is not None:
            conn.execute(_SET, {"role": before[0], "user": before[1]})


def acting_as(conn: psycopg.Connection[Any], user_id: int) -> Any:
    """Run the block as `user_id`, then act as before, even after errors."""
    return _switched(conn, APP_ROLE, str(int(user_id)))


def acting_as_owner(conn: psycopg.Connection[Any]) -> Any:
    """Run the block as the tables' owner (nobody's work), then act as before."""
    return _switched(conn, _OWNER, "")


@contextmanager
def user_connection(pool: ConnectionPool[Any], user_id: int) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection acting as `user_id` (anonymous again once back in the pool)."""
    with pool.connection() as conn:
        act_as(conn, user_id)
        yield conn


def app_role_exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %(role)s", {"role": APP_ROLE})
    return row.fetchone() is not None
