"""Embedding spaces: the configured embedder's space, and switching models in the background.

Every vector belongs to one space (model + dimension). A new model gets a new space that is
filled in the background (an `embed_space` job) while search keeps using the old ready space;
when every chunk has a vector in the new space it becomes the ready one.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from app.providers import local_embedder
from app.providers.embeddings import Embedder
from app.repositories import Conn, locks
from app.repositories import embedding_spaces as space_repo
from app.repositories.embedding_spaces import EmbeddingSpace
from app.services import llm_models
from app.services.job_kinds import embed_space
from app.settings import Settings

log = logging.getLogger(__name__)

SPACE_LOCK_KEY = 0x706F737472616702


def ensure_space(conn: Conn, embedder: Embedder, *, max_attempts: int) -> EmbeddingSpace:
    """The space of the configured embedding model, created (and scheduled to fill) if new."""
    dimension = embedder.dimension()
    with conn.transaction():
        locks.advisory_xact_lock(conn, SPACE_LOCK_KEY)
        model = space_repo.upsert_embedding_model(
            conn,
            provider=embedder.provider,
            name=embedder.model,
            dimension=dimension,
            context_length=embedder.max_tokens,
        )
        llm_models.default_if_none(conn, model)  # the registry shows which model embeds
        space = space_repo.find_space(conn, model["id"], dimension)
        if space is not None:
            if space.state == "building":  # (re)queue its fill; a no-op while one is active
                embed_space.enqueue(conn, space.id, max_attempts=max_attempts)
            return space
        # Nothing to re-embed (a fresh install): the new space is ready at once.
        fresh = space_repo.current_ready(conn) is None or space_repo.count_chunks(conn) == 0
        space = space_repo.insert_space(
            conn, model_id=model["id"], dimension=dimension, ready=fresh
        )
        if not fresh:
            embed_space.enqueue(conn, space.id, max_attempts=max_attempts)
        log.info(
            "created embedding space %s for %s/%s (%d dimensions, %s)",
            space.id,
            embedder.provider,
            embedder.model,
            dimension,
            space.state,
        )
        return space


def settle_local_model(conn: Conn, settings: Settings) -> Settings:
    """The settings with the local model named: POSTRAG_EMBEDDING_MODEL when set, else the model
    the installation's local space already has, else (a new installation) the default. So a new
    default never re-embeds an existing installation behind its admin's back."""
    if settings.embedder != "local" or settings.embedding_model:
        return settings
    in_use = space_repo.local_model_in_use(conn)
    return replace(settings, embedding_model=in_use or local_embedder.DEFAULT_MODEL)
