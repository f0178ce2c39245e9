"""postrag backup / restore: a populated database survives the round trip, with a server running."""

from __future__ import annotations

import dataclasses
import subprocess

import psycopg

from app import create_app
from app.db import backup, migrations
from tests.helpers import close_app, drain, run, search, upload

COUNTED = ["users", "api_tokens", "collections", "documents", "document_chunks", "chats"]


def _snapshot(database_url: str) -> dict:
    with psycopg.connect(database_url) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in COUNTED}
        vectors = conn.execute(
            "SELECT md5(string_agg(chunk_id || ':' || embedding::text, ',' ORDER BY chunk_id))"
            " FROM chunk_embeddings"
        ).fetchone()[0]
    return {"counts": counts, "vectors": vectors}


def _hits(client, headers, mode: str) -> list:
    response = search(client, headers, query="holiday booking portal", mode=mode)
    assert response.status_code == 200, response.json
    return [(h["chunk_id"], round(h["score"], 6)) for h in response.json["hits"]]


def test_round_trip_restores_rows_vectors_and_search_with_the_server_running(
    app, client, admin, collection, database_url, tmp_path, settings
):
    upload(client, admin, collection, "handbook.txt", "Holidays are booked in the portal.")
    upload(client, admin, collection, "notes.txt", "The canteen opens at noon on Mondays.")
    assert drain(app) == 2
    before = _snapshot(database_url)
    searches = {mode: _hits(client, admin, mode) for mode in ("semantic", "fulltext", "hybrid")}
    assert all(searches.values()) and before["vectors"]

    tables: list[str] = []
    done = backup.backup(database_url, tmp_path / "b.dump", tables.append)
    assert done.tables == len(tables) >= len(COUNTED) and done.size_bytes > 0
    assert "documents" in " ".join(tables)

    # Change everything: the collection goes, another arrives.
    assert client.delete(f"/api/v1/collections/{collection}", headers=admin).status_code == 204
    other = client.post("/api/v1/collections", json={"name": "other"}, headers=admin).json["id"]
    upload(client, admin, other, "x.txt", "Unrelated words.")
    assert drain(app) == 1
    assert _snapshot(database_url) != before

    restored = backup.restore(database_url, tmp_path / "b.dump", lambda _: None)
    assert restored.tables == backup.archive_tables(tmp_path / "b.dump") == done.tables
    assert _snapshot(database_url) == before
    # The running app's pooled connections see the restored data.
    assert {mode: _hits(client, admin, mode) for mode in searches} == searches
    pending = [m for m in migrations.status(database_url, settings.migrations_dir) if not m.applied]
    assert pending == []


def test_restore_asks_before_replacing_and_refuses_a_bad_file(app, cli_env, tmp_path):  # noqa: F811
    dump = tmp_path / "b.dump"
    made = run("backup", str(dump), env=cli_env)
    assert made.returncode == 0, made.stderr
    assert "backed up" in made.stdout
    unconfirmed = run("restore", str(dump), env=cli_env)
    assert unconfirmed.returncode == 1
    assert "--yes" in unconfirmed.stderr
    confirmed = run("restore", "--yes", str(dump), env=cli_env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "restored" in confirmed.stdout
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not an archive")
    refused = run("restore", "--yes", str(junk), env=cli_env)
    assert refused.returncode == 1 and "not a pg_dump archive" in refused.stderr


def test_backup_into_a_missing_folder_fails_with_a_message_not_a_traceback(cli_env, tmp_path):
    missing = tmp_path / "no such folder" / "b.dump"
    failed = run("backup", str(missing), env=cli_env)
    assert failed.returncode == 1
    assert "Error: [Errno 2] No such file or directory" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_readme_plain_data_only_dump_loads_into_a_migrated_database(
    app, client, admin, collection, database_url, make_database, tmp_path, settings, cli_env
):
    """The README's plain pg_dump --data-only recipe, into a `postrag migrate --no-admin`ed one."""
    upload(client, admin, collection, "handbook.txt", "Holidays are booked in the portal.")
    assert drain(app) == 1
    before = _snapshot(database_url)
    dump = tmp_path / "data.dump"
    exclude = ["--exclude-table=_yoyo_*", "--exclude-table=yoyo_lock"]
    exclude.append("--exclude-table=postrag_migration_checksums")
    dumped = subprocess.run(
        [
            backup.client_tool("pg_dump"),
            "--dbname",
            database_url,
            "--format=custom",
            "--data-only",
            *exclude,
            f"--file={dump}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dumped.returncode == 0, dumped.stderr
    target = make_database()
    migrated = run("migrate", "--no-admin", env={**cli_env, "DATABASE_URL": target})
    assert migrated.returncode == 0, migrated.stderr
    loaded = subprocess.run(
        [
            backup.client_tool("pg_restore"),
            "--dbname",
            target,
            "--data-only",
            "--disable-triggers",
            "--single-transaction",
            "--exit-on-error",
            str(dump),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert _snapshot(target) == before
    restored = create_app(dataclasses.replace(settings, database_url=target))
    try:
        assert _hits(restored.test_client(), admin, "hybrid") == _hits(client, admin, "hybrid")
        # The identity sequences came along: new rows get fresh ids.
        made = restored.test_client().post(
            "/api/v1/collections", json={"name": "new"}, headers=admin
        )
        assert made.status_code == 201, made.json
    finally:
        close_app(restored)
