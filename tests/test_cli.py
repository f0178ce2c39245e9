"""The `postrag` command: its modules, psql, users, migrate, and serve on the embedded database."""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import re
import signal
import subprocess
import time
from pathlib import Path

import click
from click.testing import CliRunner

import app.cli
from app.cli import main
from app.services import extraction
from tests.helpers import (
    POSTRAG,
    admin_token_in,
    bearer,
    drain,
    embedded_env,
    http_get,
    migration_ids,
    run,
    start_serve,
    wait_for,
)

CLI_DIR = Path(app.cli.__file__).parent


def test_every_command_has_help(cli_env):
    # The console script once, as a process; every command's help in this process (quicker).
    installed = run("--help", env=cli_env)
    assert installed.returncode == 0 and "Usage:" in installed.stdout, installed.stderr
    for name in main.commands:
        assert f" {name} " in installed.stdout, name  # listed with its summary
    runner = CliRunner()
    for command in (
        ["serve"],
        ["worker"],
        ["ingest"],
        ["backup"],
        ["restore"],
        ["export"],
        ["import"],
        ["migrate"],
        ["migrate", "status"],
        ["migrate", "rollback"],
        ["users"],
        ["users", "create"],
        ["keys"],
        ["keys", "generate"],
        ["keys", "rotate"],
        ["eval"],
        ["eval", "import-beir"],
        ["eval", "run"],
        ["eval", "compare"],
        ["psql", "--postrag-help"],
        ["pg-dump", "--postrag-help"],
    ):
        result = runner.invoke(
            main, [*command, *([] if command[-1:] == ["--postrag-help"] else ["--help"])]
        )
        assert result.exit_code == 0, (command, result.output)
        assert "Usage:" in result.output


def test_help_lists_the_commands_of_every_cli_module():
    defined: dict[int, click.Command] = {}
    for module in pkgutil.iter_modules([str(CLI_DIR)]):
        names = vars(importlib.import_module(f"app.cli.{module.name}"))
        defined |= {id(v): v for v in names.values() if isinstance(v, click.Command)}
    nested = {
        id(sub)
        for group in defined.values()
        if isinstance(group, click.Group)
        for sub in group.commands.values()
    }
    top = {command.name for key, command in defined.items() if key not in nested}
    assert (
        top
        == set(main.commands)
        == {
            *("serve", "worker", "migrate", "psql", "pg-dump", "pg-restore", "backup", "restore"),
            *("ingest", "export", "import", "users", "keys", "sources", "mcp", "eval"),
        }
    )
    listed = CliRunner().invoke(main, ["--help"]).output
    assert all(re.search(rf"^  {name} ", listed, re.MULTILINE) for name in top), listed


_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE \w+ SET|DELETE FROM)\b")


def test_cli_modules_only_parse_call_a_service_and_print():
    """No SQL, no pydantic, no repository or API module in app/cli/: those live in the layers."""
    for path in sorted(CLI_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module == "app.repositories":
                # The connection and row types only.
                imported |= {f"app.repositories.{a.name}" for a in node.names} - {
                    "app.repositories.Conn",
                    "app.repositories.Row",
                }
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
        forbidden = [
            name
            for name in imported
            if name.split(".")[0] == "pydantic" or name.startswith(("app.repositories", "app.api"))
        ]
        assert forbidden == [], path
        strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
        assert [s for s in strings if isinstance(s, str) and _SQL.search(s)] == [], path
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "execute"]
        assert calls == [], path
        assert len(path.read_text().splitlines()) < 300, path


def test_psql_runs_a_query_on_the_configured_database(cli_env):
    result = run("psql", "-X", "-A", "-t", "-c", "select 40 + 2", env=cli_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_psql_passes_its_exit_code_through(cli_env):
    result = run("psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "select nope", env=cli_env)
    assert result.returncode != 0
    assert "nope" in result.stderr


def test_a_client_tool_killed_by_a_signal_exits_as_a_shell_reports_it(cli_env):
    # psql's \! runs a shell whose parent is psql: SIGTERM ends psql (it has no handler for it).
    result = run("psql", "-X", "-c", "\\! kill -TERM $PPID", env=cli_env)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr


def test_pg_dump_and_pg_restore_round_trip(cli_env, make_database, tmp_path):
    assert run("users", "create", "dana", env=cli_env).returncode == 0
    dump = tmp_path / "postrag.dump"
    backup = run("pg-dump", "--format=custom", f"--file={dump}", env=cli_env)
    assert backup.returncode == 0, backup.stderr
    restored_env = {**cli_env, "DATABASE_URL": make_database()}
    restore = run("pg-restore", "--no-owner", str(dump), env=restored_env)
    assert restore.returncode == 0, restore.stderr
    names = run(
        "psql", "-X", "-A", "-t", "-c", "select name from users order by id", env=restored_env
    )
    assert names.stdout.split() == ["admin", "dana"]
    status = run("migrate", "status", env=restored_env)
    assert status.returncode == 0 and "pending" not in status.stdout


def test_pg_tools_print_their_help_and_version_without_a_database(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "POSTRAG_DATA_DIR": str(tmp_path),
    }
    for command, tool in (("pg-dump", "pg_dump"), ("pg-restore", "pg_restore"), ("psql", "psql")):
        helped = run(command, "--help", env=env)
        assert helped.returncode == 0, helped.stderr
        assert helped.stdout.startswith(f"{tool} ") and "Usage:" in helped.stdout
        version = run(command, "--version", env=env)
        assert version.returncode == 0, version.stderr
        assert version.stdout.startswith(f"{tool} (PostgreSQL) ")


def test_users_create_prints_a_working_token(cli_env, database_url, settings, client):
    result = run("users", "create", "bob", env=cli_env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    me = client.get("/api/v1/me", headers=bearer(token)).json
    assert me["name"] == "bob" and me["role"] == "user"
    admin = run("users", "create", "root2", "--admin", env=cli_env)
    assert client.get("/api/v1/me", headers=bearer(admin.stdout.strip())).json["role"] == "admin"
    listed = run("users", "list", env=cli_env).stdout
    assert "bob" in listed and "root2" in listed


def test_users_create_rejects_bad_and_duplicate_names(cli_env):
    assert run("users", "create", "carol", env=cli_env).returncode == 0
    duplicate = run("users", "create", "carol", env=cli_env)
    assert duplicate.returncode == 1
    assert "a user with this name already exists" in duplicate.stderr
    bad = run("users", "create", "two words", env=cli_env)
    assert bad.returncode == 2
    assert "invalid name" in bad.stderr


def test_commands_acting_for_a_user_refuse_an_unknown_one(cli_env, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("Owls hunt at night.")
    for command in (
        ["ingest", str(note), "--collection", "notes"],
        ["export", "notes", str(tmp_path / "notes.jsonl")],
    ):
        refused = run(*command, "--user", "nobody", env=cli_env)
        assert refused.returncode == 2, refused.stderr
        assert "Error: no user 'nobody'" in refused.stderr


def test_ingest_and_import_refuse_a_bad_collection_name_naming_the_option(
    cli_env, tmp_path, database_url
):
    """Once a raw check-constraint error that showed the failing row; now a usage error."""
    import psycopg

    note = tmp_path / "note.txt"
    note.write_text("Owls hunt at night.")
    long = "x" * 201
    too_long = run("ingest", str(note), "--collection", long, env=cli_env)
    assert too_long.returncode == 2, too_long.stderr
    assert (
        f"Error: invalid --collection {long!r}: a collection name has 1 to 200 characters, not 201"
        in too_long.stderr
    )
    assert "Failing row" not in too_long.stderr
    empty = run("ingest", str(note), "--collection", "", env=cli_env)
    assert empty.returncode == 2 and "Error: invalid --collection '': " in empty.stderr
    export = tmp_path / "empty.jsonl"
    export.write_text(
        '{"kind": "postrag.collection", "format": 1, "collection": {"name": "empty"}}\n'
        '{"kind": "end", "documents": 0, "chunks": 0}\n'
    )
    renamed = run("import", str(export), "--name", long, env=cli_env)
    assert renamed.returncode == 2, renamed.stderr
    assert f"Error: invalid --name {long!r}: a collection name has 1 to 200" in renamed.stderr
    assert "body" not in renamed.stderr  # the option, never the HTTP body's location
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM collections").fetchone() == (0,)
    assert run("import", str(export), env=cli_env).returncode == 0  # the file itself is fine


def test_import_of_a_broken_file_says_the_line_once(cli_env, tmp_path):
    """The detail names the line already: no second line repeats it under a field name."""
    broken = tmp_path / "broken.jsonl"
    broken.write_text("hello\n")
    failed = run("import", str(broken), env=cli_env)
    assert failed.returncode == 1, failed.stderr
    assert "Error: line 1 of the import file: not JSON" in failed.stderr
    assert failed.stderr.count("not JSON") == 1, failed.stderr


def test_migrate_status_and_rollback(cli_env, make_database):
    cli_env = {**cli_env, "DATABASE_URL": make_database()}  # empty: every migration to apply
    *_, keep, last = migration_ids()
    applied = run("migrate", env=cli_env)
    assert applied.returncode == 0, applied.stderr
    assert last in applied.stdout
    status = run("migrate", "status", env=cli_env).stdout.splitlines()
    assert len(status) >= 8 and all(line.startswith("applied") for line in status)
    refused = run("migrate", "rollback", "--to", keep, env=cli_env)
    assert refused.returncode == 1  # no terminal to confirm on: nothing happens
    assert "pending" not in run("migrate", "status", env=cli_env).stdout
    done = run("migrate", "rollback", "--to", keep, "--yes", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert "rolled back 1 migration(s)" in done.stdout
    after = run("migrate", "status", env=cli_env).stdout
    pending = [line.split()[1] for line in after.splitlines() if line.startswith("pending")]
    assert pending == [last]


def test_start_with_an_unreachable_database_fails_cleanly(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:1/none",
        "POSTRAG_DATA_DIR": str(tmp_path),
    }
    result = run("migrate", env=env)
    assert result.returncode == 1
    assert "Error:" in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr


def test_serve_on_the_embedded_database_end_to_end(tmp_path):
    """The README's first command: embedded PostgreSQL, admin token, psql, clean stop, restart."""
    data_dir = tmp_path / "postrag-data"
    env = embedded_env(data_dir)
    server, base = start_serve(env, "--workers", "2")
    try:
        token = admin_token_in(data_dir)
        status, body = http_get(f"{base}/api/v1/me", bearer(token))
        assert status == 200 and b'"name": "admin"' in body
        assert http_get(f"{base}/api/v1/me")[0] == 401
        tables = run("psql", "-X", "-c", r"\dt", env=env)
        assert tables.returncode == 0, tables.stderr
        for table in ("users", "api_tokens", "documents", "chunk_embeddings", "jobs"):
            assert f" {table} " in tables.stdout
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert "embedded PostgreSQL" in stderr
    assert "shown once" in stderr and stderr.count("shown once") == 1
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "embedded server left running"
    # Data survives a restart: the admin is still there and no second admin is created.
    again = run("users", "list", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["1", "admin", "admin"]
    assert "shown once" not in again.stderr


def test_ingest_a_folder_with_a_summary(cli_env, tmp_path, database_url):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Owls\n\nOwls hunt at night.\n")
    (folder / "sub" / "b.txt").write_text("Bats use echolocation.")
    (folder / "sub" / "c.pdf").write_bytes(b"%PDF-1.4 broken")
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    first = run("ingest", str(folder), "--collection", "animals", env=cli_env, timeout=300)
    assert first.returncode == 1  # one file failed
    assert "indexed 2, unchanged 0, failed 1" in first.stdout
    assert "c.pdf" in first.stdout
    again = run(
        "ingest",
        str(folder / "a.md"),
        str(folder / "sub" / "b.txt"),
        "--collection",
        "animals",
        env=cli_env,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert "indexed 0, unchanged 2, failed 0" in again.stdout
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT d.filename, d.status, c.name FROM documents d"
            " JOIN collections c ON c.id = d.collection_id ORDER BY 1"
        ).fetchall()
    assert rows == [("a.md", "indexed", "animals"), ("b.txt", "indexed", "animals")]


def test_ingest_reads_text_files_of_any_name_and_lists_every_skip(cli_env, tmp_path, database_url):
    folder = tmp_path / "repo"
    (folder / ".git" / "objects").mkdir(parents=True)
    for number in range(50):
        (folder / ".git" / "objects" / f"{number:02x}").write_bytes(b"x\x9c\x00\x01" * 8)
    (folder / "LICENSE").write_text("MIT License\n\nPermission is hereby granted.\n")
    (folder / "package.json").write_text('{"name": "demo", "private": true}\n')
    # Changed on purpose (issue 23): a PNG is read by OCR now, so the binary is an archive.
    (folder / "logo").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)))
    (folder / ".env").write_text("SECRET=1\n")
    (folder / "empty.txt").write_text("")
    result = run("ingest", str(folder), "--collection", "repo", env=cli_env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "indexed 2, unchanged 0, failed 0, skipped 4" in result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("  skipped: ")]
    assert sorted(skipped) == sorted(
        [
            f"  skipped: {folder / '.git'}/: hidden folder",
            f"  skipped: {folder / '.env'}: hidden file",
            f"  skipped: {folder / 'empty.txt'}: empty file",
            f"  skipped: {folder / 'logo'}: not a supported format (binary): postrag reads"
            f" {extraction.SUPPORTED}",
        ]
    )
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT filename, status, content_type FROM documents ORDER BY 1")
        assert rows.fetchall() == [
            ("LICENSE", "indexed", "text/plain"),
            ("package.json", "indexed", "application/json"),
        ]


def test_worker_process_ingests_and_stops_cleanly(cli_env, client, admin, collection):
    worker = subprocess.Popen(
        [POSTRAG, "worker", "--threads", "2"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        doc = client.post(
            "/api/v1/documents",
            headers=admin,
            json={"collection_id": collection, "title": "w", "text": "Processed elsewhere."},
        ).json
        deadline = time.monotonic() + 90
        while client.get(f"/api/v1/documents/{doc['id']}", headers=admin).json["status"] != (
            "indexed"
        ):
            assert worker.poll() is None, "worker exited"
            assert time.monotonic() < deadline, "the worker process did not ingest the document"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr


def test_a_killed_worker_process_job_completes_once_elsewhere(
    cli_env, make_app, client, admin, collection, database_url
):
    import psycopg

    solo = make_app(split_chunks=4096)  # drains as the worker below works: one job

    text = " ".join(f"Sentence {i} about the migration of birds." for i in range(3000))
    doc = client.post(
        "/api/v1/documents",
        headers=admin,
        json={"collection_id": collection, "title": "long", "text": text},
    ).json["id"]
    # One job for the whole document (not split into ranges any worker may take), so the dead
    # worker's lease is what holds it.
    env = {**cli_env, "POSTRAG_JOB_LEASE_S": "8", "POSTRAG_SPLIT_CHUNKS": "4096"}
    worker = subprocess.Popen(
        [POSTRAG, "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (
                client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "embedding"
            ),
            "the worker never started embedding",
        )
    finally:
        worker.send_signal(signal.SIGKILL)  # dies mid-job, holding the lease
        worker.wait(timeout=30)
    assert client.get(f"/api/v1/documents/{doc}", headers=admin).json["status"] == "embedding"
    assert drain(solo) == 0  # the dead worker's lease still holds
    with psycopg.connect(database_url, autocommit=True) as conn:
        wait_for(  # up to 8 s after the last renewal, on the database's clock as claims see it
            lambda: conn.execute("SELECT lease_expires_at < now() FROM jobs").fetchone()[0],
            "the dead worker's lease did not expire",
        )
    assert drain(solo) == 1
    detail = client.get(f"/api/v1/documents/{doc}", headers=admin).json
    assert detail["status"] == "indexed"
    assert [h["status"] for h in detail["history"]].count("indexed") == 1
    with psycopg.connect(database_url) as conn:
        job = conn.execute("SELECT state, attempts, last_error FROM jobs").fetchone()
    assert job[0] == "succeeded" and job[1] == 2 and "expired" in job[2]


def test_eval_imports_beir_runs_two_configurations_and_compares_them(cli_env, tmp_path):
    beir = tmp_path / "tiny"
    (beir / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Owls", "text": "Owls hunt mice at night."},
        {"_id": "d2", "title": "Bees", "text": "Bees dance to show where flowers grow."},
        {"_id": "d3", "title": "Whales", "text": "Whales sing across the ocean."},
    ]
    queries = [{"_id": "q1", "text": "owls hunt"}, {"_id": "q2", "text": "whales sing"}]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    (beir / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq2\tx\t1\n"
    )
    imported = run("eval", "import-beir", str(beir), "--new-collection", "tiny", env=cli_env)
    assert imported.returncode == 0, imported.stderr
    assert "evaluation set 1: 2 queries, 2 judgments, 3 documents (3 new)" in imported.stdout
    assert "skipped 1 qrels" in imported.stdout
    fulltext = run("eval", "run", "1", "--mode", "fulltext", env=cli_env)
    assert fulltext.returncode == 0, fulltext.stderr
    assert "run 1 of set 1: done" in fulltext.stdout
    assert re.search(r"^MRR\s+1\.0000$", fulltext.stdout, re.MULTILINE), fulltext.stdout
    shallow = run("eval", "run", "1", "--mode", "fulltext", "--k", "1", env=cli_env)
    assert shallow.returncode == 0 and "run 2 of set 1: done" in shallow.stdout, shallow.stderr
    compared = run("eval", "compare", "1", "2", env=cli_env)
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.startswith("2 common queries")
    assert re.search(r"^ndcg@10\s+1\.0000\s+\S+\s+\S+\s+\[", compared.stdout, re.MULTILINE)
    shown = run("eval", "show", "2", env=cli_env)
    assert "k=1" in shown.stdout and "evaluated 2" in shown.stdout
