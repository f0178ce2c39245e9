"""The app's long-lived things (pools, clients, embedders, keys, the chat answers under way and
the LISTEN connection that follows them) in one typed object.

`Runtime.open(settings)` builds them in order; `close()` shuts them down in the reverse order,
each once, even when one of them fails to close. If a step of `open` fails, what the earlier
steps opened is closed before the error goes on (procrastinate's `App.open/close`). Ingestion
workers are not here: they run in their own processes (app/serve.py).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from flask import Flask, current_app

from app.db import scope, server
from app.db.listener import Listener
from app.db.pool import AppPool, open_pool, open_replica_pool
from app.db.replica import Replica
from app.providers.embeddings import Embedder, QueryEmbedders, make_embedder
from app.providers.llm import LLMClients
from app.providers.oidc import OIDCVerifier
from app.providers.oidc_login import OIDCLogin
from app.providers.rerank import Reranker, make_reranker
from app.repositories import Conn
from app.repositories.chat_events import CHANNEL as CHAT_EVENTS_CHANNEL
from app.services import llm_models as llm_model_service
from app.services import search as search_service
from app.services import secrets
from app.services.answer_runs import AnswerRunner
from app.services.mcp_tools import McpDeps
from app.services.secrets import Keyring
from app.settings import Settings

log = logging.getLogger(__name__)

EXTENSION = "postrag"  # the one key under Flask's app.extensions


class _Closable(Protocol):
    def close(self) -> None: ...


@dataclass
class Runtime:
    settings: Settings
    pool: AppPool
    replica: Replica | None
    keyring: Keyring | None  # None while POSTRAG_SECRET_KEY is unset or weak
    llm: LLMClients
    embedder: Embedder  # the configured model: ingestion, imports, /v1/embeddings
    query_embedders: QueryEmbedders  # the model of the space a search reads
    iterative_scans: bool  # the server's pgvector has iterative index scans (0.8+)
    answers: AnswerRunner  # chat answers generated in this process
    listener: Listener  # wakes streams that follow answers generated in any process
    oidc: OIDCVerifier | None = None  # None while POSTRAG_OIDC_ISSUER is unset
    oidc_login: OIDCLogin | None = None  # the web page's sign-in, with oidc
    reranker: Reranker | None = None  # None while POSTRAG_RERANK is none
    openapi: dict[str, Any] | None = None  # GET /openapi.json, built on first use
    _to_close: list[tuple[str, _Closable]] = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, settings: Settings, llm_provider: str) -> Runtime:
        """Open everything for `settings` (database_url resolved); `llm_provider` is the
        resolved POSTRAG_LLM."""
        assert settings.database_url is not None
        with contextlib.ExitStack() as opened:
            pool = open_pool(settings.database_url, settings)
            opened.callback(pool.close)
            replica = _open_replica(settings)
            if replica is not None:
                opened.callback(replica.close)
            with pool.connection() as conn:  # pool connections answer dict rows (see open_pool)
                iterative_scans = search_service.iterative_scans_available(cast(Conn, conn))
            llm = LLMClients(settings, llm_provider)
            opened.callback(llm.close)
            with pool.connection() as conn, scope.acting_as_owner(conn):
                log.info(
                    "%s",
                    llm_model_service.apply_configured_chat_model(
                        cast(Conn, conn), llm.provider, settings.chat_model
                    ),
                )
            embedder = make_embedder(settings)
            query_embedders = QueryEmbedders(settings, embedder)
            reranker = make_reranker(settings)  # a model that fails its sha256 stops the start
            opened.pop_all()  # from here on, close() owns them
        keyring = None
        if secrets.weakness(settings.secret_key) is None:
            keyring = Keyring.from_settings(settings)
        oidc, oidc_login = _open_oidc(settings)
        runtime = cls(
            settings,
            pool,
            replica,
            keyring,
            llm,
            embedder,
            query_embedders,
            iterative_scans,
            AnswerRunner(
                pool,
                settings.chat_events_keep_hours,
                settings.chat_answers_per_process,
                settings.chat_answers_per_user,
                settings.chat_streams_per_user,
            ),
            Listener(settings.database_url, CHAT_EVENTS_CHANNEL),
            oidc,
            oidc_login,
            reranker,
        )
        runtime._to_close = [
            ("chat answers", runtime.answers),
            ("chat event listener", runtime.listener),
            *([("OpenID sign-in client", oidc_login)] if oidc_login is not None else []),
            *([("OpenID verifier", oidc)] if oidc is not None else []),
            *([("reranker", reranker)] if reranker is not None else []),
            ("query embedders", query_embedders),
            ("LLM clients", llm),
            *([("replica", replica)] if replica is not None else []),
            ("pool", pool),
        ]
        return runtime

    @property
    def mcp(self) -> McpDeps:
        return McpDeps(self.settings, self.keyring, self.oidc_login)

    @property
    def search(self) -> search_service.SearchDeps:
        return search_service.SearchDeps(
            self.settings, self.query_embedders, self.iterative_scans, self.reranker
        )

    def close(self) -> None:
        """Close in reverse order of opening, each once; a failing close is logged and the
        others still run."""
        while self._to_close:
            name, thing = self._to_close.pop(0)
            try:
                thing.close()
            except Exception:
                log.exception("closing the %s failed", name)

    def attach(self, app: Flask) -> None:
        app.extensions[EXTENSION] = self

    @staticmethod
    def of(app: Flask) -> Runtime:
        return cast(Runtime, app.extensions[EXTENSION])


def _open_oidc(settings: Settings) -> tuple[OIDCVerifier | None, OIDCLogin | None]:
    """The provider's JWT verifier and the web page's sign-in client, with POSTRAG_OIDC_*."""
    if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_client):
        return None, None
    verifier = OIDCVerifier(settings.oidc_issuer, settings.oidc_audience)
    login = OIDCLogin(
        verifier, settings.oidc_client, settings.oidc_client_secret, settings.oidc_scopes
    )
    return verifier, login


def _open_replica(settings: Settings) -> Replica | None:
    """The streaming replica reads may go to (app/db/replica.py), when one is configured."""
    if not settings.database_replica_url:
        return None
    log.info("reading from the replica at %s", server.redact(settings.database_replica_url))
    pool = open_replica_pool(settings.database_replica_url, settings)
    return Replica(pool, settings.replica_max_lag_s)


def runtime() -> Runtime:
    """The runtime of the app handling the current request."""
    return cast(Runtime, current_app.extensions[EXTENSION])
