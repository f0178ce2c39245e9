"""Liveness and readiness."""

from dataclasses import replace

import psycopg
from psycopg import sql

from app import create_app
from app.db import migrations
from tests.conftest import MIGRATIONS_DIR, close_app


def test_healthz_answers_without_auth(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_requires_a_token(client):
    response = client.get("/readyz")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_readyz_reports_database_migrations_and_pgvector(client, admin):
    response = client.get("/readyz", headers=admin)
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["migrations"] == "at head"
    major, minor = (int(x) for x in body["pgvector"].split(".")[:2])
    assert (major, minor) >= (0, 7)


def test_readyz_is_503_when_a_migration_is_pending(client, admin, database_url):
    migrations.rollback(database_url, MIGRATIONS_DIR, "V1_7__chat_messages")
    response = client.get("/readyz", headers=admin)
    assert response.status_code == 503
    assert response.json["status"] == "not ready"
    assert response.json["migrations"] == "pending"


def test_an_unreachable_database_is_503_not_500(settings, server_url, admin_token):
    app = create_app(replace(settings, pool_timeout_s=2))
    try:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {admin_token}"}
        assert client.get("/readyz", headers=headers).status_code == 200
        dbname = psycopg.conninfo.conninfo_to_dict(settings.database_url)["dbname"]
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
        for path in ("/readyz", "/api/v1/me"):
            response = client.get(path, headers=headers)
            assert response.status_code == 503, path
            assert response.mimetype == "application/problem+json"
            assert response.json["detail"] == "the database is unavailable; retry later"
            assert response.headers["Retry-After"] == "5"
        assert client.get("/healthz").status_code == 200
    finally:
        close_app(app)
