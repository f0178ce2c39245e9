"""Row-Level Security (V2_5): PostgreSQL itself shows a user only the rows the user may see.

The app's SQL filters by owner everywhere; these tests take the filters away (unfiltered SQL
acting as a user, repository functions patched to forget their owner filter) and check that the
database still hides everyone else's rows, and that vector search under RLS keeps top_k.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from psycopg.rows import dict_row

from app.db import scope
from app.repositories import chats as chat_repo
from app.repositories import documents as document_repo
from app.repositories import staging
from app.runtime import Runtime
from tests.helpers import ask, create_collection, drain, new_chat, upload

READABLE_COLLECTIONS = "SELECT id FROM collections WHERE owner_id = %(u)s OR is_shared"
READABLE_DOCUMENTS = f"SELECT id FROM documents WHERE collection_id IN ({READABLE_COLLECTIONS})"
READABLE_CHUNKS = f"SELECT id FROM document_chunks WHERE collection_id IN ({READABLE_COLLECTIONS})"
# For every table under RLS: the key of a row, and which rows user %(u)s may see (as the owner).
VISIBLE = {
    "collections": ("id", "owner_id = %(u)s OR is_shared"),
    "documents": ("id", f"collection_id IN ({READABLE_COLLECTIONS})"),
    "document_status_history": ("id", f"document_id IN ({READABLE_DOCUMENTS})"),
    "document_chunks": ("id", f"collection_id IN ({READABLE_COLLECTIONS})"),
    "chunk_embeddings": ("chunk_id", f"chunk_id IN ({READABLE_CHUNKS})"),
    "chunk_lexemes": ("chunk_id::text || lexeme", f"collection_id IN ({READABLE_COLLECTIONS})"),
    "collection_text_stats": ("collection_id", f"collection_id IN ({READABLE_COLLECTIONS})"),
    "collection_lexeme_stats": (
        "collection_id::text || lexeme",
        f"collection_id IN ({READABLE_COLLECTIONS})",
    ),
    "chats": ("id", "owner_id = %(u)s"),
    "chat_messages": ("id", "chat_id IN (SELECT id FROM chats WHERE owner_id = %(u)s)"),
    "chat_message_events": (
        "message_id::text || '/' || seq",
        "message_id IN (SELECT m.id FROM chat_messages m JOIN chats c ON c.id = m.chat_id"
        " WHERE c.owner_id = %(u)s)",
    ),
    "chat_questions": ("id", "chat_id IN (SELECT id FROM chats WHERE owner_id = %(u)s)"),
    "answer_feedback": ("message_id", "user_id = %(u)s"),
    "user_preferences": ("user_id", "user_id = %(u)s"),
    "api_tokens": ("id", "user_id = %(u)s"),
    "connector_tokens": ("id", "owner_id = %(u)s"),
    "request_counters": ("user_id::text || window_start::text", "user_id = %(u)s"),
    "llm_token_counters": ("user_id", "user_id = %(u)s"),
    "api_usage": ("id", "user_id = %(u)s"),
}


def _chat(client, headers, question: str) -> int:
    chat = new_chat(client, headers)
    sent = ask(client, headers, chat, question)
    assert sent.status_code == 201, sent.json
    return chat


@pytest.fixture
def two_users(make_app, admin, new_user, database_url):  # type: ignore[no-untyped-def]
    """The admin (a private and a shared collection, a chat) and bob (his own of each), made
    through an app that counts requests per token (so every table under RLS has rows)."""
    bob = new_user("bob")
    app = make_app(rate_limit_per_minute=1000)
    client = app.test_client()
    ids = {
        "admin": client.get("/api/v1/me", headers=admin).json["id"],
        "bob": client.get("/api/v1/me", headers=bob).json["id"],
        "admin_private": create_collection(client, admin, "private"),
        "admin_shared": create_collection(client, admin, "team", is_shared=True),
        "bob_private": create_collection(client, bob, "mine"),
    }
    ids["admin_private_doc"] = upload(
        client, admin, ids["admin_private"], "salaries.txt", "Salaries rise in March."
    )
    ids["admin_shared_doc"] = upload(
        client, admin, ids["admin_shared"], "handbook.txt", "Holidays are booked in the portal."
    )
    ids["bob_doc"] = upload(client, bob, ids["bob_private"], "notes.txt", "Bob's garden plans.")
    assert drain(app) == 3
    ids["admin_chat"] = _chat(client, admin, "When do salaries rise?")
    ids["bob_chat"] = _chat(client, bob, "What are my garden plans?")
    with psycopg.connect(database_url, autocommit=True) as conn:
        for user in (ids["admin"], ids["bob"]):
            conn.execute(
                "INSERT INTO connector_tokens (owner_id, provider, access_token, key_id)"
                " VALUES (%s, 'jira', %s, 'k1')",
                (user, b"x" * 40),
            )
            conn.execute(
                "INSERT INTO llm_token_counters (user_id, window_start, tokens)"
                " VALUES (%s, date_trunc('day', now()), 5)",
                (user,),
            )
        for chat in (ids["admin_chat"], ids["bob_chat"]):  # an MCP server's question in each
            conn.execute(
                "INSERT INTO chat_questions (chat_id, message_id, server, tool, question,"
                " expires_at) SELECT chat_id, max(id), 'tickets', 'ask', 'Which colour?',"
                " now() + interval '1 hour' FROM chat_messages WHERE chat_id = %s GROUP BY 1",
                (chat,),
            )
            conn.execute(  # and its owner's rating of the answer
                "INSERT INTO answer_feedback (message_id, user_id, rating)"
                " SELECT m.id, c.owner_id, 1 FROM chat_messages m JOIN chats c ON c.id = m.chat_id"
                " WHERE m.chat_id = %s AND m.role = 'assistant'",
                (chat,),
            )
    return ids, admin, bob, client


def _keys(conn: psycopg.Connection, table: str, where: str = "true", **params: object) -> set:
    key = VISIBLE[table][0]
    return {r[0] for r in conn.execute(f"SELECT {key} FROM {table} t WHERE {where}", params)}


# Tables the app role may use without RLS: nobody's rows (the queue, the embedding spaces).
NOT_USER_OWNED = {"jobs", "embedding_spaces"}
OWNER_COLUMNS = [
    "owner_id",
    "user_id",
    "token_id",
    "chat_id",
    "document_id",
    "collection_id",
    "chunk_id",
]


def test_every_table_the_app_role_can_use_is_under_rls(app, database_url):
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT c.relname, c.relrowsecurity,"
            " has_table_privilege(%(role)s, c.oid, 'SELECT') AS usable,"
            " EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
            "         AND a.attname = ANY(%(owners)s) AND NOT a.attisdropped) AS has_owner"
            " FROM pg_class c WHERE c.relkind = 'r'"
            " AND c.relnamespace = current_schema()::regnamespace",
            {"role": scope.APP_ROLE, "owners": OWNER_COLUMNS},
        ).fetchall()
    protected = {name for name, rls, _, _ in tables if rls}
    # Every table with an owner column is protected, and so is every table the role can read,
    # but the queue and the spaces (the migrations' bookkeeping it cannot read at all). Jobs
    # name their document and its owner (for fair claims), but the queue is nobody's: workers
    # work it as the tables' owner.
    assert {name for name, _, _, owned in tables if owned} - NOT_USER_OWNED <= protected
    assert {name for name, _, usable, _ in tables if usable} - protected == NOT_USER_OWNED
    # Groups are every user's to read (tests/test_groups.py checks that only admins write them);
    # tests/test_shares.py checks the shares, tests/test_web_signin.py the web sessions,
    # tests/test_atlassian_consent.py the consents under way and the linked accounts,
    # tests/test_mcp_servers.py the MCP servers (every user reads them; only admins write),
    # tests/test_evaluations.py the evaluation sets and runs (another user's are 404),
    # tests/test_ingestion_split.py the splits of big documents (their workers act as owners).
    assert set(VISIBLE) | {
        "users",
        "llm_models",
        "groups",
        "group_members",
        "collection_shares",
        "web_sessions",
        "sources",
        "source_runs",
        "source_items",
        "access_sets",
        "access_set_members",
        "connector_consents",
        "user_accounts",
        "mcp_servers",
        "mcp_server_tools",
        "mcp_server_prompts",
        "evaluation_sets",
        "evaluation_queries",
        "evaluation_judgments",
        "evaluation_runs",
        "evaluation_results",
        "document_splits",
        "split_chunks",
    } == (protected)


def test_unfiltered_queries_return_only_the_callers_rows(two_users, database_url):
    ids, *_ = two_users
    bob = ids["bob"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table, (_, where) in VISIBLE.items():
            everything = _keys(conn, table)
            expected = _keys(conn, table, where, u=bob)
            # The admin's rows exist, so an unprotected query would return more.
            assert expected < everything, table
            with scope.acting_as(conn, bob):
                seen = _keys(conn, table)
            assert seen == expected, table
        assert conn.execute("SELECT current_user").fetchone()[0] != scope.APP_ROLE


def test_the_shared_collection_is_readable_but_not_writable(two_users, database_url):
    ids, *_ = two_users
    with psycopg.connect(database_url, autocommit=True) as conn, scope.acting_as(conn, ids["bob"]):
        readable = _keys(conn, "documents")
        assert ids["admin_shared_doc"] in readable
        assert ids["admin_private_doc"] not in readable
        assert ids["bob_doc"] in readable
        texts = [r[0] for r in conn.execute("SELECT text FROM document_chunks")]
        assert any("Holidays" in t for t in texts) and not any("Salaries" in t for t in texts)
        for statement in (
            "UPDATE collections SET description = 'mine now' WHERE id = %(c)s",
            "DELETE FROM collections WHERE id = %(c)s",
        ):
            assert conn.execute(statement, {"c": ids["admin_shared"]}).rowcount == 0
        assert conn.execute("DELETE FROM documents WHERE true").rowcount == 1  # bob's only
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO chats (owner_id, title) VALUES (%s, 'planted')", (ids["admin"],)
            )
    with psycopg.connect(database_url) as conn:
        assert conn.execute(
            "SELECT description FROM collections WHERE id = %s", (ids["admin_shared"],)
        ).fetchone() == ("",)
        left = {r[0] for r in conn.execute("SELECT id FROM documents")}
        assert left == {ids["admin_private_doc"], ids["admin_shared_doc"]}


def test_pool_connections_act_for_nobody_until_told_otherwise(two_users, make_app, database_url):
    ids, _, bob, _ = two_users
    with psycopg.connect(database_url) as conn:  # an app refuses to start with unreadable ones
        conn.execute("DELETE FROM connector_tokens")
    app = make_app(pool_min_size=1, pool_max_size=1)  # one connection: the request's, reused
    with Runtime.of(app).pool.connection() as conn:
        assert conn.execute("SELECT current_user AS r").fetchone() == {"r": scope.APP_ROLE}
        for table in VISIBLE:
            assert _keys(conn, table) == set(), table
        assert conn.execute("SELECT count(*) AS n FROM users").fetchone() == {"n": 0}
    assert app.test_client().get("/api/v1/chats", headers=bob).json["total"] == 1
    with Runtime.of(app).pool.connection() as conn:  # back from bob's request
        assert _keys(conn, "chats") == set()
        assert conn.execute("SELECT postrag_user_id() AS u").fetchone() == {"u": None}


def test_acting_as_restores_the_previous_state_after_errors(two_users, database_url):
    ids, *_ = two_users
    with psycopg.connect(database_url, autocommit=True) as conn:
        with pytest.raises(ZeroDivisionError), scope.acting_as(conn, ids["bob"]):
            assert _keys(conn, "chats") == {ids["bob_chat"]}
            raise ZeroDivisionError
        with (
            pytest.raises(psycopg.errors.DivisionByZero),
            conn.transaction(),
            scope.acting_as(conn, ids["bob"]),
        ):
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT current_user = session_user").fetchone() == (True,)
        assert _keys(conn, "chats") == {ids["admin_chat"], ids["bob_chat"]}


def test_only_admins_change_users_and_models(two_users, database_url):
    ids, *_ = two_users
    with psycopg.connect(database_url, autocommit=True) as conn:
        with scope.acting_as(conn, ids["bob"]):
            assert [r[0] for r in conn.execute("SELECT id FROM users")] == [ids["bob"]]
            assert conn.execute("UPDATE users SET role = 'admin'").rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(
                    "INSERT INTO llm_models (provider, name, kind) VALUES ('ollama', 'x', 'chat')"
                )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM postrag_migration_checksums")
        with scope.acting_as(conn, ids["admin"]):
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (2,)
            conn.execute(
                "INSERT INTO llm_models (provider, name, kind) VALUES ('ollama', 'x', 'chat')"
            )
        with scope.acting_as(conn, ids["bob"]):
            # Bob reaches the model (preferences lock it) but may not change it.
            locked = conn.execute("SELECT name FROM llm_models WHERE name = 'x' FOR KEY SHARE")
            assert locked.fetchall() == [("x",)]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("UPDATE llm_models SET context_length = 1 WHERE name = 'x'")
        assert conn.execute("SELECT role FROM users WHERE id = %s", (ids["bob"],)).fetchone() == (
            "user",
        )


def test_admins_read_everyones_usage_and_nothing_else_of_theirs(two_users, database_url):
    ids, *_ = two_users
    with psycopg.connect(database_url, autocommit=True) as conn:
        users_with_usage = {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM api_usage")}
        assert users_with_usage == {ids["admin"], ids["bob"]}
        with scope.acting_as(conn, ids["admin"]):
            assert {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM api_usage")} == (
                users_with_usage
            )
            assert ids["bob_chat"] not in _keys(conn, "chats")
            assert ids["bob_doc"] not in _keys(conn, "documents")


def test_a_request_whose_sql_forgets_the_owner_still_sees_only_its_rows(two_users, monkeypatch):
    ids, admin, bob, client = two_users

    def get_any_chat(conn, chat_id, owner_id, *, lock=False):  # the bug: no owner filter
        return conn.execute(
            f"SELECT {chat_repo.CHAT} FROM chats WHERE id = %(id)s", {"id": chat_id}
        ).fetchone()

    def get_any_document(conn, document_id, user_id):
        return document_repo.get(conn, document_id)

    monkeypatch.setattr(chat_repo, "get_owned", get_any_chat)
    monkeypatch.setattr(document_repo, "get_readable", get_any_document)
    assert client.get(f"/api/v1/chats/{ids['admin_chat']}", headers=admin).status_code == 200
    assert client.get(f"/api/v1/chats/{ids['admin_chat']}", headers=bob).status_code == 404
    private = f"/api/v1/documents/{ids['admin_private_doc']}"
    assert client.get(private, headers=admin).status_code == 200
    assert client.get(private, headers=bob).status_code == 404
    shared = f"/api/v1/documents/{ids['admin_shared_doc']}"
    assert client.get(shared, headers=bob).status_code == 200


def test_workers_run_a_document_as_its_owner(app, client, admin, new_user, monkeypatch):
    bob = new_user("bob")
    bob_id = client.get("/api/v1/me", headers=bob).json["id"]
    seen = []
    original = staging.swap

    def spy(conn, *args, **kwargs):
        seen.append(conn.execute("SELECT current_user AS r, postrag_user_id() AS u").fetchone())
        return original(conn, *args, **kwargs)

    monkeypatch.setattr(staging, "swap", spy)
    upload(client, bob, create_collection(client, bob, "mine"), "a.txt", "Some words to index.")
    assert drain(app) == 1
    assert seen == [{"r": scope.APP_ROLE, "u": bob_id}]
    listed = client.get("/api/v1/documents", headers=bob).json["items"]
    assert [d["status"] for d in listed] == ["indexed"]


DIM = 32


@pytest.fixture
def crowded_space(app, database_url):  # type: ignore[no-untyped-def]
    """A ready 32-d space where user a owns 3000 chunks and user b 60 (2%)."""
    rng = np.random.default_rng(7)
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        users = {
            name: conn.execute(
                "INSERT INTO users (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()["id"]
            for name in ("a", "b")
        }
        model = conn.execute(
            "INSERT INTO llm_models (provider, name, kind, dimension)"
            " VALUES ('local', 'rls-test', 'embedding', %s) RETURNING id",
            (DIM,),
        ).fetchone()["id"]
        space = conn.execute(
            "INSERT INTO embedding_spaces (embedding_model_id, dimension, state, ready_at)"
            " VALUES (%s, %s, 'ready', now()) RETURNING id",
            (model, DIM),
        ).fetchone()["id"]
        for name, count in (("a", 3000), ("b", 60)):
            user = users[name]
            collection = conn.execute(
                "INSERT INTO collections (owner_id, name) VALUES (%s, 'c') RETURNING id", (user,)
            ).fetchone()["id"]
            document = conn.execute(
                "INSERT INTO documents (collection_id, owner_id, filename, content_type, sha256,"
                " size_bytes, content, status) VALUES (%s, %s, 'f.txt', 'text/plain',"
                " sha256(%s::bytea), 1, 'x', 'indexed') RETURNING id",
                (collection, user, name.encode()),
            ).fetchone()["id"]
            chunks = [
                r["id"]
                for r in conn.execute(
                    "INSERT INTO document_chunks (document_id, ordinal, text, token_count,"
                    " char_start, char_end) SELECT %s, n, 'chunk ' || n, 2, 0, 1"
                    " FROM generate_series(0, %s - 1) n RETURNING id",
                    (document, count),
                )
            ]
            with conn.cursor().copy(
                "COPY chunk_embeddings (chunk_id, space_id, embedding) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8", "vector"])
                for chunk in chunks:
                    copy.write_row((chunk, space, rng.standard_normal(DIM).astype(np.float32)))
        index = conn.execute("SELECT create_embedding_space_index(%s) AS i", (space,)).fetchone()
        conn.execute("ANALYZE chunk_embeddings")
    return users, space, index["i"], rng.standard_normal(DIM).astype(np.float32)


def test_hnsw_search_under_rls_returns_top_k_of_the_callers_chunks(crowded_space, database_url):
    users, space, index, query = crowded_space
    nearest = (
        f"SELECT e.chunk_id FROM chunk_embeddings e WHERE e.space_id = {space}"
        f" ORDER BY e.embedding::vector({DIM}) <=> %(q)s::vector({DIM}) LIMIT 10"
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        exact = [
            r[0]
            for r in conn.execute(
                "SELECT e.chunk_id FROM chunk_embeddings e JOIN document_chunks c"
                " ON c.id = e.chunk_id JOIN documents d ON d.id = c.document_id"
                " WHERE d.owner_id = %(b)s ORDER BY e.embedding <=> %(q)s LIMIT 10",
                {"b": users["b"], "q": query},
            )
        ]
        conn.execute("SET hnsw.ef_search = 40")
        with scope.acting_as(conn, users["b"]):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + nearest, {"q": query}))
            assert index in plan
            # The policy looks each candidate's chunk up by key; it does not hash every chunk.
            assert "Seq Scan on document_chunks" not in plan
            conn.execute("SET hnsw.iterative_scan = off")
            without = [r[0] for r in conn.execute(nearest, {"q": query})]
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            found = [r[0] for r in conn.execute(nearest, {"q": query})]
    # The index's first 40 candidates hold about one of b's chunks (`without`); iterative scans
    # go on until ten pass the policy, and they are b's ten nearest (or nearly).
    assert len(found) == 10 > len(without)
    assert set(found) <= set(_owned(database_url, users["b"]))
    assert len(set(found) & set(exact)) >= 8


def _owned(database_url: str, user: int) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT c.id FROM document_chunks c JOIN documents d ON d.id = c.document_id"
                " WHERE d.owner_id = %s",
                (user,),
            )
        ]
