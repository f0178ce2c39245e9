"""docker/init_schema.sh gives a least-privileged role that can still run every migration."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from app.db import backup, embedded, migrations, scope
from tests.helpers import MIGRATIONS_DIR, with_dbname

INIT_SCRIPT = Path(__file__).resolve().parent.parent / "docker" / "init_schema.sh"


def _as_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


def test_init_schema_creates_a_least_privileged_role_that_runs_migrations(server_url, tmp_path):
    dbname = f"postrag_init_{uuid.uuid4().hex[:8]}"
    role = f"postrag_app_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    info = conninfo_to_dict(server_url)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        env = {
            **os.environ,
            "PATH": f"{embedded.bin_dir()}{os.pathsep}{os.environ['PATH']}",
            "PGHOST": str(info.get("host", "")),
            "PGPORT": str(info.get("port", "5432")),
            "PGPASSWORD": str(info.get("password") or ""),
            "POSTGRES_USER": str(info["user"]),
            "POSTGRES_DB": dbname,
            "POSTRAG_APP_USER": role,
            "POSTRAG_APP_PASSWORD": password,
        }
        result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

        app_url = _as_user(with_dbname(server_url, dbname), role, password)
        assert len(migrations.migrate(app_url, MIGRATIONS_DIR)) >= 9
        with psycopg.connect(app_url, autocommit=True) as conn:
            owners = conn.execute(
                "SELECT DISTINCT schemaname, tableowner FROM pg_tables"
                " WHERE tablename IN ('users', 'documents', 'chunk_embeddings')"
            ).fetchall()
            flags = conn.execute(
                "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
                (role,),
            ).fetchone()
            # It can act for a user as postrag_app (RLS), which may stage rows in temp tables.
            scope.act_as(conn, 1)
            conn.execute("CREATE TEMPORARY TABLE staging (id int)")
            assert conn.execute("SELECT current_user, count(*) FROM users").fetchone() == (
                scope.APP_ROLE,
                0,
            )
            scope.act_as_owner(conn)
            try:
                conn.execute("CREATE TABLE public.intruder (id int)")
                created_in_public = True
            except psycopg.errors.InsufficientPrivilege:
                created_in_public = False
        assert owners == [(role, role)]
        assert flags == (False, False, False)
        assert not created_in_public
        # postrag backup / restore work as this role: it owns its schema but may not create one.
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("INSERT INTO users (name, role) VALUES ('before', 'user')")
        dump = tmp_path / "as-app-role.dump"
        backup.backup(app_url, dump, lambda _: None)
        assert oct(dump.stat().st_mode & 0o777) == "0o600"
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("UPDATE users SET name = 'after'")
        backup.restore(app_url, dump, lambda _: None)
        with psycopg.connect(app_url, autocommit=True) as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("before",)]
        # The README's plain-tools recipe for the Docker database, as the same role.
        as_role = {**env, "PGUSER": role, "PGPASSWORD": password, "PGDATABASE": dbname}
        plain = tmp_path / "plain.dump"
        with plain.open("wb") as out:
            dumped = subprocess.run(
                ["pg_dump", "--format=custom"], env=as_role, stdout=out, stderr=subprocess.PIPE
            )
        assert dumped.returncode == 0, dumped.stderr
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("UPDATE users SET name = 'after'")
        recipe = (
            'cat > "$WORK/full.dump" && pg_restore -l "$WORK/full.dump"'
            ' | grep -v -e " EXTENSION " -e " SCHEMA - " > "$WORK/keep.list"'
            " && pg_restore --clean --if-exists --single-transaction --exit-on-error"
            ' --no-owner -L "$WORK/keep.list" -d "$PGDATABASE" "$WORK/full.dump"; status=$?;'
            ' rm -f "$WORK/full.dump" "$WORK/keep.list"; exit $status'
        )
        with plain.open("rb") as source:
            restored = subprocess.run(
                ["sh", "-c", recipe],
                env={**as_role, "WORK": str(tmp_path)},
                stdin=source,
                capture_output=True,
            )
        assert restored.returncode == 0, restored.stderr
        with psycopg.connect(app_url, autocommit=True) as conn:
            assert conn.execute("SELECT name FROM users").fetchall() == [("before",)]
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_init_schema_refuses_the_row_level_security_role_as_login_role():
    """The login role owns the tables, and owners are not held to the policies."""
    env = {
        **os.environ,
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "postrag",
        "POSTRAG_APP_USER": "postrag_app",
        "POSTRAG_APP_PASSWORD": "pw",
        "PATH": "/nonexistent",  # refused before any psql runs
    }
    done = subprocess.run(
        ["/bin/bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1
    assert "must not be postrag_app" in done.stderr
