"""SQL-first migrations: the schema they build, rollbacks, concurrent starts, edited files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from app.db import embedded, migrations
from tests.helpers import MIGRATIONS_DIR, migration_ids

TABLES = {
    "users",
    "groups",
    "group_members",
    "collection_shares",
    "sources",
    "source_runs",
    "source_items",
    "access_sets",
    "access_set_members",
    "api_tokens",
    "llm_models",
    "collections",
    "documents",
    "document_status_history",
    "user_preferences",
    "document_chunks",
    "embedding_spaces",
    "chunk_embeddings",
    "chats",
    "chat_messages",
    "chat_message_events",
    "jobs",
    "chunk_lexemes",
    "collection_text_stats",
    "collection_lexeme_stats",
    "connector_tokens",
    "request_counters",
    "llm_token_counters",
    "api_usage",
    "web_logins",
    "web_sessions",
    "connector_consents",
    "user_accounts",
    "mcp_servers",
    "mcp_server_tools",
    "mcp_server_prompts",
    "chat_questions",
    "answer_feedback",
    "evaluation_sets",
    "evaluation_queries",
    "evaluation_judgments",
    "evaluation_runs",
    "evaluation_results",
    "document_splits",
    "split_chunks",
}
FOREIGN_KEYS = {
    "api_tokens_user_id_fkey": ("api_tokens", "users", "c"),
    "connector_tokens_owner_id_fkey": ("connector_tokens", "users", "c"),
    "api_tokens_parent_id_fkey": ("api_tokens", "api_tokens", "n"),
    "request_counters_user_id_fkey": ("request_counters", "users", "c"),
    "llm_token_counters_user_id_fkey": ("llm_token_counters", "users", "c"),
    "api_usage_user_id_fkey": ("api_usage", "users", "c"),
    "api_usage_token_id_fkey": ("api_usage", "api_tokens", "n"),
    "collections_owner_id_fkey": ("collections", "users", "c"),
    "documents_collection_id_fkey": ("documents", "collections", "c"),
    "documents_owner_id_fkey": ("documents", "users", "c"),
    "document_status_history_document_id_fkey": ("document_status_history", "documents", "c"),
    "user_preferences_user_id_fkey": ("user_preferences", "users", "c"),
    "user_preferences_chat_model_id_fkey": ("user_preferences", "llm_models", "n"),
    "document_chunks_document_id_fkey": ("document_chunks", "documents", "c"),
    "embedding_spaces_embedding_model_id_fkey": ("embedding_spaces", "llm_models", "r"),
    "chunk_embeddings_chunk_id_fkey": ("chunk_embeddings", "document_chunks", "c"),
    "chunk_embeddings_space_id_fkey": ("chunk_embeddings", "embedding_spaces", "c"),
    "chats_owner_id_fkey": ("chats", "users", "c"),
    "chat_messages_chat_id_fkey": ("chat_messages", "chats", "c"),
    "chat_message_events_message_id_fkey": ("chat_message_events", "chat_messages", "c"),
    "collection_text_stats_collection_id_fkey": ("collection_text_stats", "collections", "c"),
    "collection_lexeme_stats_collection_id_fkey": (
        "collection_lexeme_stats",
        "collections",
        "c",
    ),
    "jobs_document_id_fkey": ("jobs", "documents", "c"),
    "jobs_owner_id_fkey": ("jobs", "users", "c"),
    "group_members_group_id_fkey": ("group_members", "groups", "c"),
    "group_members_user_id_fkey": ("group_members", "users", "c"),
    "collection_shares_collection_id_fkey": ("collection_shares", "collections", "c"),
    "collection_shares_user_id_fkey": ("collection_shares", "users", "c"),
    "collection_shares_group_id_fkey": ("collection_shares", "groups", "c"),
    "web_sessions_user_id_fkey": ("web_sessions", "users", "c"),
    "sources_owner_id_fkey": ("sources", "users", "c"),
    "sources_collection_id_fkey": ("sources", "collections", "c"),
    "source_runs_source_id_fkey": ("source_runs", "sources", "c"),
    "source_items_source_id_fkey": ("source_items", "sources", "c"),
    "source_items_document_id_fkey": ("source_items", "documents", "n"),
    "access_sets_source_id_fkey": ("access_sets", "sources", "c"),
    "access_set_members_set_id_fkey": ("access_set_members", "access_sets", "c"),
    "access_set_members_user_id_fkey": ("access_set_members", "users", "c"),
    "access_set_members_group_id_fkey": ("access_set_members", "groups", "c"),
    "documents_access_set_id_fkey": ("documents", "access_sets", "a"),
    "connector_consents_user_id_fkey": ("connector_consents", "users", "c"),
    "user_accounts_user_id_fkey": ("user_accounts", "users", "c"),
    "mcp_server_tools_server_id_fkey": ("mcp_server_tools", "mcp_servers", "c"),
    "mcp_server_prompts_server_id_fkey": ("mcp_server_prompts", "mcp_servers", "c"),
    "chat_questions_chat_id_fkey": ("chat_questions", "chats", "c"),
    "chat_questions_message_id_fkey": ("chat_questions", "chat_messages", "c"),
    "answer_feedback_message_id_fkey": ("answer_feedback", "chat_messages", "c"),
    "answer_feedback_user_id_fkey": ("answer_feedback", "users", "c"),
    "chats_chat_model_id_fkey": ("chats", "llm_models", "n"),
    "evaluation_sets_owner_id_fkey": ("evaluation_sets", "users", "c"),
    "evaluation_sets_collection_id_fkey": ("evaluation_sets", "collections", "c"),
    "evaluation_queries_set_id_fkey": ("evaluation_queries", "evaluation_sets", "c"),
    "evaluation_judgments_query_id_fkey": ("evaluation_judgments", "evaluation_queries", "c"),
    "evaluation_judgments_document_id_fkey": ("evaluation_judgments", "documents", "c"),
    "evaluation_judgments_chunk_id_fkey": ("evaluation_judgments", "document_chunks", "c"),
    "evaluation_runs_set_id_fkey": ("evaluation_runs", "evaluation_sets", "c"),
    "evaluation_results_run_id_fkey": ("evaluation_results", "evaluation_runs", "c"),
    "evaluation_results_query_id_fkey": ("evaluation_results", "evaluation_queries", "c"),
    "document_splits_document_id_fkey": ("document_splits", "documents", "c"),
    "document_splits_space_id_fkey": ("document_splits", "embedding_spaces", "c"),
    "split_chunks_split_id_fkey": ("split_chunks", "document_splits", "c"),
}
INDEXES = {
    "document_splits_pkey",
    "document_splits_document_id_key",
    "document_splits_space_id_idx",
    "split_chunks_pkey",
    "evaluation_sets_owner_id_idx",
    "evaluation_sets_collection_id_idx",
    "evaluation_queries_set_id_idx",
    "evaluation_queries_set_id_external_id_key",
    "evaluation_judgments_key_idx",
    "evaluation_judgments_document_id_idx",
    "evaluation_judgments_chunk_id_idx",
    "evaluation_runs_set_id_idx",
    "evaluation_results_pkey",
    "evaluation_results_query_id_idx",
    "users_identity_key",
    "web_sessions_secret_hash_key",
    "web_sessions_expires_at_idx",
    "web_logins_expires_at_idx",
    "connector_consents_user_id_idx",
    "connector_consents_expires_at_idx",
    "user_accounts_pkey",
    "user_accounts_user_id_provider_key",
    "mcp_servers_name_key",
    "mcp_server_tools_pkey",
    "mcp_server_prompts_pkey",
    "chat_questions_pkey",
    "chat_questions_chat_id_idx",
    "chat_questions_message_id_idx",
    "answer_feedback_pkey",
    "answer_feedback_user_id_idx",
    "groups_name_key",
    "group_members_pkey",
    "group_members_user_id_idx",
    "collection_shares_user_key",
    "collection_shares_group_key",
    "collection_shares_user_id_idx",
    "collection_shares_group_id_idx",
    "sources_owner_id_name_key",
    "source_runs_active_idx",
    "source_items_pkey",
    "access_sets_source_id_members_key_key",
    "documents_access_set_id_idx",
    "api_tokens_prefix_key",
    "api_tokens_user_id_created_at_idx",
    "llm_models_provider_name_key",
    "llm_models_default_per_kind_idx",
    "collections_owner_id_name_key",
    "collections_shared_idx",
    "documents_collection_id_sha256_key",
    "documents_owner_id_created_at_idx",
    "documents_collection_id_status_idx",
    "document_status_history_document_id_idx",
    "user_preferences_chat_model_id_idx",
    "document_chunks_document_id_ordinal_key",
    "embedding_spaces_model_key",
    "chunk_embeddings_pkey",
    "chunk_embeddings_space_id_idx",
    "chats_owner_id_updated_at_idx",
    "chats_chat_model_id_idx",
    "chat_messages_chat_id_id_idx",
    "chat_message_events_pkey",
    "chat_message_events_created_at_idx",
    "jobs_claim_idx",
    "jobs_lease_expires_at_idx",
    "jobs_active_dedupe_key_idx",
    "jobs_document_id_idx",
    "jobs_owner_id_state_idx",
    "document_chunks_collection_id_idx",
    "document_chunks_search_vector_idx",
    "chunk_lexemes_pkey",
    "chunk_lexemes_chunk_id_idx",
    "collection_lexeme_stats_pkey",
}


def test_every_migration_has_a_rollback_and_depends_on_the_previous():
    ids = migration_ids()
    assert ids[0] == "V1_1__extensions_users_tokens" and len(ids) >= 8
    for previous, current in zip(ids, ids[1:], strict=False):
        text = (MIGRATIONS_DIR / f"{current}.sql").read_text()
        assert f"-- depends: {previous}" in text, current
    for migration_id in ids:
        assert (MIGRATIONS_DIR / f"{migration_id}.rollback.sql").exists(), migration_id
        assert (MIGRATIONS_DIR / f"{migration_id}.sql").read_text().startswith("-- "), migration_id


def test_fresh_migrate_builds_every_table_foreign_key_and_index(make_database):
    database_url = make_database()
    applied = migrations.migrate(database_url, MIGRATIONS_DIR)
    assert applied == migration_ids()
    with psycopg.connect(database_url) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        fks = {
            r[0]: (r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT conname, conrelid::regclass::text, confrelid::regclass::text, confdeltype"
                " FROM pg_constraint WHERE contype = 'f'"
            )
        }
        indexes = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
        }
        vector = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    assert tables >= TABLES
    assert fks == FOREIGN_KEYS
    assert indexes >= INDEXES
    assert vector is not None
    # Every foreign key column is the leading column of some index (cascades and joins need it).
    with psycopg.connect(database_url) as conn:
        unindexed = conn.execute(
            "SELECT c.conname FROM pg_constraint c WHERE c.contype = 'f' AND NOT EXISTS ("
            " SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid"
            " AND i.indkey[0] = c.conkey[1])"
        ).fetchall()
    assert unindexed == []


def _schema_dump(url: str) -> str:
    pg_dump = embedded.bin_dir() / "pg_dump"
    out = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", "--dbname", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # \restrict keys are random per dump (PostgreSQL 18); they say nothing about the schema.
    return "\n".join(
        line for line in out.splitlines() if not line.startswith(("\\restrict", "\\unrestrict"))
    )


def test_rolling_back_each_migration_and_reapplying_gives_the_same_schema(make_database):
    fresh, cycled = make_database(), make_database()
    migrations.migrate(fresh, MIGRATIONS_DIR)
    migrations.migrate(cycled, MIGRATIONS_DIR)
    ids = migration_ids()
    for keep in reversed(ids[:-1]):  # one at a time, newest first
        assert len(migrations.rollback(cycled, MIGRATIONS_DIR, keep)) == 1
    assert migrations.rollback(cycled, MIGRATIONS_DIR, migrations.BASE) == [ids[0]]
    with psycopg.connect(cycled) as conn:
        left = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT LIKE '%%yoyo%%' AND tablename <> %s",
            (migrations.CHECKSUM_TABLE,),
        ).fetchall()
    assert left == []
    assert migrations.migrate(cycled, MIGRATIONS_DIR) == ids
    assert _schema_dump(cycled) == _schema_dump(fresh)


def test_rollback_to_an_unknown_id_is_refused(database_url):
    migrations.migrate(database_url, MIGRATIONS_DIR)
    with pytest.raises(migrations.MigrationError, match="no migration 'V9_9'"):
        migrations.rollback(database_url, MIGRATIONS_DIR, "V9_9")


def test_four_processes_starting_at_once_apply_each_migration_once(make_database, tmp_path):
    database_url = make_database()
    code = (
        "from app import create_app\n"
        "from app.settings import Settings\n"
        "app = create_app(Settings.from_env())\n"
        "from app.runtime import Runtime\nRuntime.of(app).close()\n"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "POSTRAG_DATA_DIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        results.append((proc.returncode, err))
    assert all(code == 0 for code, _ in results), results
    with psycopg.connect(database_url) as conn:
        applies = conn.execute(
            "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply'"
            " GROUP BY migration_id"
        ).fetchall()
        admins = conn.execute("SELECT count(*) FROM users").fetchone()
    assert sorted(applies) == sorted((migration_id, 1) for migration_id in migration_ids())
    assert admins == (1,)
    assert sum("shown once" in err for _, err in results) == 1


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


def test_an_edited_applied_migration_is_refused_naming_the_file(database_url, migrations_copy):
    migrations.migrate(database_url, migrations_copy)
    edited = migrations_copy / "V1_3__collections_documents.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(
        migrations.MigrationError, match=r"V1_3__collections_documents\.sql was edited"
    ):
        migrations.migrate(database_url, migrations_copy)
    statuses = {s.id: s for s in migrations.status(database_url, migrations_copy)}
    assert statuses["V1_3__collections_documents"].edited
    assert not statuses["V1_2__llm_models"].edited


def test_an_edited_migration_stops_the_start_even_without_migrating(
    database_url, migrations_copy, tmp_path
):
    from app import create_app
    from app.settings import Settings

    migrations.migrate(database_url, migrations_copy)
    edited = migrations_copy / "V1_5__vector_store.sql"
    edited.write_text(edited.read_text().replace("DEFAULT 16", "DEFAULT 32"))
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        migrations_dir=migrations_copy,
        migrate_on_start=False,
    )
    with pytest.raises(migrations.MigrationError, match=r"V1_5__vector_store\.sql was edited"):
        create_app(settings)


def test_a_new_migration_is_applied_on_the_next_start(database_url, migrations_copy):
    migrations.migrate(database_url, migrations_copy)
    last = migration_ids()[-1]
    (migrations_copy / "V1_99__extra.sql").write_text(
        f"-- test migration\n-- depends: {last}\nCREATE TABLE extra_thing (id int);\n"
    )
    (migrations_copy / "V1_99__extra.rollback.sql").write_text("DROP TABLE extra_thing;\n")
    assert migrations.migrate(database_url, migrations_copy) == ["V1_99__extra"]
    assert migrations.migrate(database_url, migrations_copy) == []


def test_embedding_space_index_is_used_and_enforces_the_dimension(database_url):
    migrations.migrate(database_url, MIGRATIONS_DIR)
    with psycopg.connect(database_url, autocommit=True) as conn:
        model_id = conn.execute(
            "INSERT INTO llm_models (provider, name, kind, dimension)"
            " VALUES ('local', 'tiny', 'embedding', 3) RETURNING id"
        ).fetchone()[0]
        space_id = conn.execute(
            "INSERT INTO embedding_spaces (embedding_model_id, dimension) VALUES (%s, 3)"
            " RETURNING id",
            (model_id,),
        ).fetchone()[0]
        index = conn.execute("SELECT create_embedding_space_index(%s)", (space_id,)).fetchone()[0]
        user_id = conn.execute("INSERT INTO users (name) VALUES ('u') RETURNING id").fetchone()[0]
        coll = conn.execute(
            "INSERT INTO collections (owner_id, name) VALUES (%s, 'c') RETURNING id", (user_id,)
        ).fetchone()[0]
        doc = conn.execute(
            "INSERT INTO documents (collection_id, owner_id, filename, content_type, sha256,"
            " size_bytes, content) VALUES (%s, %s, 'a.txt', 'text/plain', sha256('x'), 1, 'x')"
            " RETURNING id",
            (coll, user_id),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO document_chunks (document_id, ordinal, text, token_count, char_start,"
            " char_end) SELECT %s, i, 't', 1, 0, 1 FROM generate_series(0, 1999) i",
            (doc,),
        )
        conn.execute(
            "INSERT INTO chunk_embeddings (chunk_id, space_id, embedding)"
            " SELECT id, %s, ARRAY[random(), random(), random()]::vector FROM document_chunks",
            (space_id,),
        )
        conn.execute("ANALYZE chunk_embeddings")
        chunk = conn.execute(
            "INSERT INTO document_chunks (document_id, ordinal, text, token_count, char_start,"
            " char_end) VALUES (%s, 5000, 't', 1, 0, 1) RETURNING id",
            (doc,),
        ).fetchone()[0]
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"EXPLAIN SELECT chunk_id FROM chunk_embeddings WHERE space_id = {space_id}"
                " ORDER BY embedding::vector(3) <=> '[1,1,1]'::vector(3) LIMIT 5"
            )
        )
        assert index in plan
        with pytest.raises(psycopg.errors.DataException, match="expected 3 dimensions"):
            conn.execute(
                "INSERT INTO chunk_embeddings (chunk_id, space_id, embedding)"
                " VALUES (%s, %s, '[1,2]')",
                (chunk, space_id),
            )
        conn.execute("DELETE FROM documents WHERE id = %s", (doc,))
        left = conn.execute("SELECT count(*) FROM chunk_embeddings").fetchone()
    assert left == (0,)


def test_migrating_prints_nothing(make_database, capsys):
    # yoyo prints the rows of any statement that returns some: a first start stays quiet.
    migrations.migrate(make_database(), MIGRATIONS_DIR)
    assert capsys.readouterr().out == ""


def test_versions_are_ordered_by_their_numbers_not_as_text():
    names = ["V2_10__b", "V10_1__d", "V2_9__a", "notes", "V2_1__c"]
    assert sorted(names, key=migrations.order_key) == [
        "V2_1__c",
        "V2_9__a",
        "V2_10__b",
        "V10_1__d",
        "notes",
    ]
