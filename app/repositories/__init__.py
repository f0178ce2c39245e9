"""SQL and row mapping: plain functions that take `conn` first and never commit."""

from typing import TypeAlias

import psycopg
from psycopg.rows import DictRow

# Pool connections use dict_row, so every query answers dicts keyed by column name.
Conn: TypeAlias = psycopg.Connection[DictRow]
Row: TypeAlias = DictRow


def returned(row: Row | None) -> Row:
    """The row a RETURNING clause or an aggregate must produce."""
    if row is None:
        raise RuntimeError("query returned no row")
    return row
