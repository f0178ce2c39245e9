"""What a search reads before its statement, in one round trip: the user's preferences, the
collections they may read (among those asked for) with their chunk counts, every collection's
chunk count (what an exact-scan choice compares with) and the embedding space searched."""

from __future__ import annotations

from dataclasses import dataclass, fields

from psycopg.rows import dict_row

from app.repositories import Conn, Row, returned
from app.repositories.collections import READABLE
from app.repositories.embedding_spaces import SPACE, EmbeddingSpace

_PREFERENCES = (
    "search_mode",
    "top_k",
    "similarity_threshold",
    "rerank",
    "rerank_candidates",
    "context_window",
)

_STATEMENT = (
    "SELECT p.user_id IS NOT NULL AS has_preferences,"
    + "".join(f" p.{name}," for name in _PREFERENCES)
    + " ARRAY(SELECT c.id FROM collections c WHERE "
    + READABLE
    + " AND (%(wanted)s::bigint[] IS NULL OR c.id = ANY(%(wanted)s)) ORDER BY c.id)"
    " AS collection_ids,"
    " ARRAY(SELECT coalesce(t.chunk_count, 0) FROM collections c"
    " LEFT JOIN collection_text_stats t ON t.collection_id = c.id WHERE "
    + READABLE
    + " AND (%(wanted)s::bigint[] IS NULL OR c.id = ANY(%(wanted)s)) ORDER BY c.id)"
    " AS chunk_counts,"
    " (SELECT coalesce(sum(chunk_count), 0) FROM collection_text_stats) AS all_chunks, sp.*"
    " FROM (SELECT 1) one"
    " LEFT JOIN user_preferences p ON p.user_id = %(user_id)s"
    " LEFT JOIN LATERAL (SELECT "
    + SPACE
    + " FROM embedding_spaces s JOIN llm_models m ON m.id = s.embedding_model_id"
    # The space asked for (an evaluation of one being filled), else the newest ready one.
    " WHERE (%(space_id)s::bigint IS NULL AND s.state = 'ready') OR s.id = %(space_id)s"
    " ORDER BY s.ready_at DESC NULLS LAST, s.id DESC LIMIT 1) sp ON true"
)


@dataclass(frozen=True)
class SearchContext:
    preferences: Row | None  # None: the user has no preferences row
    collection_ids: list[int]  # readable, among those asked for (every one when None)
    chunk_counts: dict[int, int]  # the chunks of each of those collections
    all_chunks: int  # the chunks of every collection the user may see
    space: EmbeddingSpace | None  # None: no such space, or none is ready


def load(conn: Conn, user_id: int, wanted: list[int] | None, space_id: int | None) -> SearchContext:
    params = {"user_id": user_id, "wanted": wanted, "space_id": space_id}
    with conn.cursor(row_factory=dict_row) as cur:
        row = returned(cur.execute(_STATEMENT, params).fetchone())
    preferences = {name: row[name] for name in _PREFERENCES} if row["has_preferences"] else None
    space = None
    if row["id"] is not None:
        space = EmbeddingSpace(**{f.name: row[f.name] for f in fields(EmbeddingSpace)})
    ids = list(row["collection_ids"])
    counts = dict(zip(ids, row["chunk_counts"], strict=True))
    return SearchContext(preferences, ids, counts, int(row["all_chunks"]), space)
