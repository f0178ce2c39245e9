"""SQL and row mapping: plain functions that take `conn` first and never commit."""

from typing import TypeAlias, TypeVar

import psycopg
from psycopg.rows import DictRow

# Pool connections use dict_row, so every query answers dicts keyed by column name.
Conn: TypeAlias = psycopg.Connection[DictRow]
Row: TypeAlias = DictRow
T = TypeVar("T")


def returned(row: T | None) -> T:
    """The row a RETURNING clause or an aggregate must produce."""
    if row is None:
        raise RuntimeError("query returned no row")
    return row
