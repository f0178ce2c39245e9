"""postrag: a RAG backend on one PostgreSQL database. `create_app` is the only factory."""

from __future__ import annotations

import atexit
import logging

import psycopg
from flask import Flask
from psycopg.rows import dict_row

from app.api import (
    accounting,
    accounts,
    atlassian,
    auth,
    chat_tools,
    chats,
    chunks,
    collections,
    connectors,
    cors,
    dify,
    documents,
    endpoint,
    evaluation_sets,
    evaluations,
    feedback,
    groups,
    health,
    mcp,
    mcp_servers,
    models,
    observability,
    openai_compat,
    openapi,
    preferences,
    problems,
    search,
    shares,
    sources,
    tokens,
    transfer,
    usage,
    users,
)
from app.api.json_provider import StrictJSONProvider
from app.db import migrations, scope, server
from app.logredact import install as install_log_redaction
from app.providers.llm import ollama_answers
from app.runtime import Runtime
from app.services import connectors as connector_service
from app.services import spaces
from app.services import users as user_service
from app.settings import Settings
from app.web import pages as web_pages

log = logging.getLogger(__name__)


def prepare_database(settings: Settings, *, migrate: bool | None = None) -> Settings:
    """Resolve the database, check it, apply migrations and create the first admin.

    Returns settings whose database_url is set (the embedded server's when it was unset). Safe to
    run from several processes at once: migrations and the first-admin check take advisory locks.
    With POSTRAG_MIGRATE_ON_START=false both are left to `postrag migrate`, but an edited applied
    migration still stops the start.
    """
    resolved = server.resolve(settings)
    server.check_server(resolved.url)
    if settings.migrate_on_start if migrate is None else migrate:
        applied = migrations.migrate(resolved.url, settings.migrations_dir)
        if applied:
            log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
        bootstrap_admin(resolved.url, settings)
    else:
        migrations.validate(resolved.url, settings.migrations_dir)
    with psycopg.connect(resolved.url, autocommit=True, row_factory=dict_row) as conn:
        if not scope.app_role_exists(conn):  # pool connections act as it (row-level security)
            raise migrations.MigrationError(
                f"the database has no role {scope.APP_ROLE} (made by migration V2_5): apply the"
                " migrations with `postrag migrate`"
            )
        connector_service.check_keys(conn, settings)  # before any token is read or written
        settings = spaces.settle_local_model(conn, settings)
    return settings.with_database_url(resolved.url)


def bootstrap_admin(url: str, settings: Settings) -> None:
    """Create the first admin (token in the data dir) if the database has no user yet."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        user_service.ensure_admin(conn, settings.data_dir)


def resolve_llm(settings: Settings) -> str:
    """POSTRAG_LLM, with `auto` settled: ollama when one answers on OLLAMA_URL, else none."""
    if settings.llm != "auto":
        return settings.llm
    found = "ollama" if ollama_answers(settings.ollama_url) else "none"
    log.info(
        "POSTRAG_LLM unset: %s at %s",
        "using Ollama" if found == "ollama" else "no Ollama answers",
        settings.ollama_url,
    )
    return found


def create_app(settings: Settings | None = None) -> Flask:
    install_log_redaction()  # first, before anything logs
    settings = prepare_database(settings or Settings.from_env())
    runtime = Runtime.open(settings, resolve_llm(settings))
    try:
        app = _flask_app(settings)
    except BaseException:
        runtime.close()
        raise
    runtime.attach(app)
    # Gunicorn's workers and `postrag serve` end with the interpreter; tests close it themselves.
    atexit.register(runtime.close)
    # No ingestion here: it runs in worker processes (app/serve.py), so that a request never
    # waits behind a document's extraction, chunking or embedding.
    return app


def _flask_app(settings: Settings) -> Flask:
    app = Flask(__name__)
    app.json = StrictJSONProvider(app)  # no NaN or Infinity in or out
    # Room for the multipart envelope around a file of the largest allowed size.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes + 1024 * 1024
    observability.register_request_tracking(app)  # first: the request id is set before all else
    problems.register_error_handlers(app)
    cors.register_cors(app, settings.cors_origins)
    accounting.register_accounting(app)
    app.teardown_appcontext(endpoint.release_db)
    for blueprint in (
        health.bp,
        observability.bp,
        openapi.bp,
        users.bp,
        accounts.bp,
        groups.bp,
        tokens.bp,
        collections.bp,
        shares.bp,
        sources.bp,
        mcp_servers.bp,
        transfer.bp,
        documents.bp,
        chunks.bp,
        search.bp,
        evaluation_sets.bp,
        evaluations.bp,
        chats.bp,
        chat_tools.bp,
        feedback.bp,
        models.bp,
        preferences.bp,
        openai_compat.bp,
        dify.bp,
        mcp.bp,
        connectors.bp,
        atlassian.bp,
        usage.bp,
        auth.bp,
        web_pages.bp,
    ):
        app.register_blueprint(blueprint)
    return app
