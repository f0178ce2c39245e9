"""Liveness and readiness."""

from app.db import migrations
from tests.conftest import MIGRATIONS_DIR


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
