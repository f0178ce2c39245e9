"""Round trips to PostgreSQL per search: counted statement by statement, bounded."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.helpers import names, search


def _counting(monkeypatch, sent: list[str]) -> None:
    """Every statement and transaction command any connection sends goes into `sent`."""
    execute, command = psycopg.Cursor.execute, psycopg.Connection._exec_command

    def counted_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query)[:60])
        return execute(self, query, *args, **kwargs)

    def counted_command(self: Any, command_: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(command_)[:60])
        return command(self, command_, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted_execute)
    monkeypatch.setattr(psycopg.Connection, "_exec_command", counted_command)


def test_a_semantic_search_makes_few_round_trips(client, admin, docs, monkeypatch):
    search(client, admin, query="warm up", mode="semantic")  # the pool's connections exist
    sent: list[str] = []
    _counting(monkeypatch, sent)
    response = search(client, admin, query="clever forest animals", mode="semantic")
    monkeypatch.undo()
    assert names(response)[0] == "fox.txt"
    # 21 before preferences, scope and space were one statement, the exact-scan choice one, the
    # token's last_used_at written only when stale and the usage row kept on the connection.
    assert len(sent) <= 12, "\n".join(sent)
