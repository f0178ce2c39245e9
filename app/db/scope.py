"""Acting as a user: the Row-Level Security switch (policies in sql/migrations/V2_5).

`act_as(conn, user_id)` makes a connection's next statements run as the role postrag_app with
`postrag.user_id` set, so PostgreSQL itself hides every row the user may not see, whatever the
SQL forgets to filter. `act_as_nobody(conn)` switches back to the connecting role (the tables'
owner), for work that is nobody's: the job queue, start-up, token lookup, administration.

Pool connections run in autocommit mode, one transaction per statement, so the setting is made
for the session and undone when the connection goes back to the pool (`reset`, app/db/pool.py)
or when the work is done; inside a transaction that rolls back, PostgreSQL undoes it too.
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


def act_as_nobody(conn: psycopg.Connection[Any]) -> None:
    conn.execute(_SET, {"role": "none", "user": ""})


@contextmanager
def acting_as(conn: psycopg.Connection[Any], user_id: int) -> Iterator[None]:
    """Run the block as `user_id`, then act as before (a user, or nobody), even after errors."""
    before = conn.cursor(row_factory=tuple_row).execute(_CURRENT).fetchone()
    act_as(conn, user_id)
    try:
        yield
    finally:
        # A failed transaction cannot run the restore; its rollback undoes the switch anyway.
        failed = conn.info.transaction_status == pq.TransactionStatus.INERROR
        if not conn.closed and not failed and before is not None:
            conn.execute(_SET, {"role": before[0], "user": before[1]})


@contextmanager
def user_connection(pool: ConnectionPool[Any], user_id: int) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection acting as `user_id` (the pool's reset undoes it on return)."""
    with pool.connection() as conn:
        act_as(conn, user_id)
        yield conn
