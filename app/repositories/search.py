"""Search SQL: the semantic (HNSW) leg, the BM25 full-text leg and their fusion, as one statement.

`search_statement` composes a single query from CTEs: `semantic` (top candidates by cosine
distance in one embedding space, ranked), `fulltext` (BM25, built in app/repositories/bm25.py)
and `fused` (reciprocal rank fusion over a full outer join on chunk id, or a single leg's own
score). Values are bound parameters; the only literals are the embedding space's id and
dimension (integers from our own table), which must be literal for the planner to match the
space's partial HNSW index, `(embedding::vector(N)) ... WHERE space_id = S`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq, sql
from psycopg.rows import class_row

from app.repositories import Conn, bm25, returned
from app.repositories.metadata_filter import compile_filter

# The hit's columns, shared by every mode. A document's title and metadata (up to 16 KiB) come
# with its best hit only (NULL on the others): once per document, from the same snapshot. After
# reranking, search moves them to the document's first hit left (app/services/search.py).
_HIT_COLUMNS = sql.SQL(
    "f.chunk_id, c.document_id, d.filename, c.collection_id, c.text, c.page, c.char_start,"
    " c.char_end, c.heading_path, c.ordinal, f.score, f.semantic_rank, f.semantic_similarity,"
    " f.fulltext_rank, f.fulltext_score,"
    " CASE WHEN row_number() OVER (PARTITION BY c.document_id ORDER BY f.score DESC, f.chunk_id)"
    " = 1 THEN jsonb_build_object('title', d.title, 'metadata', d.metadata) END AS document"
)


@dataclass(frozen=True)
class Context:
    """A hit's neighbourhood: its text with the text around it, and that span in the document."""

    text: str
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Hit:
    """One passage a search found: what it is, where it is, and how each leg scored it.

    It becomes a prompt's numbered source, a citation and a retrieval event's item.
    """

    chunk_id: int
    document_id: int
    filename: str
    collection_id: int
    text: str
    page: int | None  # 1-based, for formats with pages
    char_start: int  # the passage's span in the document's extracted text
    char_end: int
    heading_path: list[str]
    ordinal: int  # the chunk's place in its document, from 0
    score: float  # the fused score (hybrid), or the one leg's
    semantic_rank: int | None  # None: the semantic leg did not find it
    semantic_similarity: float | None
    fulltext_rank: int | None  # None: the full-text leg did not find it
    fulltext_score: float | None
    document: dict[str, Any] | None = None  # title and metadata, on the document's first hit
    rerank_score: float | None = None  # the reranker's, when the hit was reranked
    context: Context | None = None  # with wider context asked for (app/services/wider_context.py)


@dataclass(frozen=True)
class Scope:
    """Which chunks a search may see: collections (always), documents and a metadata filter."""

    collection_ids: list[int]
    document_ids: list[int] | None = None
    metadata_sql: sql.Composable | None = None
    metadata_params: dict[str, Any] = field(default_factory=dict)

    def where(self) -> sql.Composable:
        """Conditions over `c` (document_chunks) and, with a metadata filter, `d` (documents)."""
        parts: list[sql.Composable] = [sql.SQL("c.collection_id = ANY(%(collection_ids)s)")]
        if self.document_ids is not None:
            parts.append(sql.SQL("c.document_id = ANY(%(document_ids)s)"))
        if self.metadata_sql is not None:
            # Also on d, so the planner may start from the scope's documents.
            parts.append(sql.SQL("d.collection_id = ANY(%(collection_ids)s)"))
            parts.append(self.metadata_sql)
        return sql.SQL(" AND ").join(parts)

    def narrowed(self) -> bool:
        """Whether documents or a filter narrow the scope below whole collections."""
        return self.document_ids is not None or self.metadata_sql is not None

    def joins(self) -> sql.Composable:
        if self.metadata_sql is None:
            return sql.SQL("")
        return sql.SQL(" JOIN documents d ON d.id = c.document_id")

    def params(self) -> dict[str, Any]:
        return {
            "collection_ids": self.collection_ids,
            "document_ids": self.document_ids,
            **self.metadata_params,
        }


def make_scope(
    collection_ids: list[int], document_ids: list[int] | None, metadata_filter: Any
) -> Scope:
    """The scope, with the metadata filter (if any) compiled over the documents' metadata."""
    if metadata_filter is None:
        return Scope(collection_ids, document_ids)
    condition, params = compile_filter(metadata_filter, sql.SQL("d.metadata"))
    return Scope(collection_ids, document_ids, condition, params)


@dataclass(frozen=True)
class SemanticLeg:
    space_id: int
    dimension: int
    exact: bool  # an exact scan (very selective scopes) instead of the HNSW index


def _distance(leg: SemanticLeg) -> sql.Composable:
    if leg.exact:
        # Not the index's expression, so the planner cannot pick the HNSW index.
        return sql.SQL("(e.embedding <=> %(query_vector)s::vector)")
    dim = sql.Literal(leg.dimension)
    return sql.SQL("(e.embedding::vector({dim}) <=> %(query_vector)s::vector({dim}))").format(
        dim=dim
    )


def _semantic_ctes(leg: SemanticLeg, scope: Scope) -> sql.Composable:
    distance = _distance(leg)
    return sql.SQL(
        """semantic_hits AS MATERIALIZED (
    SELECT e.chunk_id, {distance} AS distance
    FROM chunk_embeddings e
    JOIN document_chunks c ON c.id = e.chunk_id{joins}
    WHERE e.space_id = {space_id} AND {where}
    ORDER BY {distance}
    LIMIT %(candidates)s
), semantic AS (
    -- Iterative index scans return hits in roughly distance order: rank them exactly here.
    SELECT chunk_id, least(1, greatest(0, 1 - distance)) AS similarity,
           row_number() OVER (ORDER BY distance, chunk_id) AS rank
    FROM semantic_hits
    -- A vector without direction (zeros) is NaN away from everything, and NaN is above every
    -- number in PostgreSQL (even the threshold): such a chunk is no semantic hit.
    WHERE distance <> 'NaN'::float8
      AND least(1, greatest(0, 1 - distance)) >= %(min_similarity)s
)"""
    ).format(
        distance=distance,
        joins=scope.joins(),
        space_id=sql.Literal(leg.space_id),
        where=scope.where(),
    )


def _fused(semantic: bool, fulltext: bool) -> sql.Composable:
    if semantic and fulltext:
        return sql.SQL(
            """, fused AS (
    -- Reciprocal rank fusion: each leg adds weight / (k + rank) for the chunks it found.
    SELECT coalesce(s.chunk_id, t.chunk_id) AS chunk_id,
           coalesce(%(semantic_weight)s / (%(rrf_k)s + s.rank), 0)
             + coalesce(%(fulltext_weight)s / (%(rrf_k)s + t.rank), 0) AS score,
           s.rank AS semantic_rank, s.similarity AS semantic_similarity,
           t.rank AS fulltext_rank, t.score AS fulltext_score
    FROM semantic s FULL OUTER JOIN fulltext t ON t.chunk_id = s.chunk_id
)"""
        )
    if semantic:
        return sql.SQL(
            """, fused AS (
    SELECT chunk_id, similarity AS score, rank AS semantic_rank,
           similarity AS semantic_similarity, NULL::bigint AS fulltext_rank,
           NULL::float8 AS fulltext_score
    FROM semantic
)"""
        )
    return sql.SQL(
        """, fused AS (
    SELECT chunk_id, score, NULL::bigint AS semantic_rank, NULL::float8 AS semantic_similarity,
           rank AS fulltext_rank, score AS fulltext_score
    FROM fulltext
)"""
    )


def search_statement(
    semantic: SemanticLeg | None, fulltext: bm25.FulltextLeg | None, scope: Scope
) -> tuple[sql.Composed, dict[str, Any]]:
    """The one statement for the legs given, and the parameters it needs besides the knobs."""
    ctes: list[sql.Composable] = []
    params = scope.params()
    if semantic is not None:
        ctes.append(_semantic_ctes(semantic, scope))
    if fulltext is not None:
        composed, extra = bm25.fulltext_ctes(fulltext, scope)
        ctes.append(composed)
        params.update(extra)
    body = sql.SQL(", ").join(ctes)
    statement = sql.SQL(
        """WITH {body}{fused}, top AS MATERIALIZED (
    -- The best top_k first, so that only they are joined to their chunks and documents (by
    -- key): the planner cannot tell how few rows the legs return.
    SELECT * FROM fused ORDER BY score DESC, chunk_id LIMIT %(top_k)s
)
SELECT {columns}
FROM top f
JOIN document_chunks c ON c.id = f.chunk_id
JOIN documents d ON d.id = c.document_id
ORDER BY f.score DESC, f.chunk_id"""
    ).format(
        body=body,
        fused=_fused(semantic is not None, fulltext is not None),
        columns=_HIT_COLUMNS,
    )
    return statement, params


# The HNSW settings each connection was given last (forgotten with the connection).
_KNOBS: weakref.WeakKeyDictionary[Any, tuple[int, bool, int]] = weakref.WeakKeyDictionary()


def set_search_knobs(
    conn: Conn, *, ef_search: int, iterative_scan: bool, max_scan_tuples: int
) -> None:
    """This connection's HNSW settings for its searches, sent only when they change: a search
    is then its statement alone, with no transaction and no round trip for the settings. They
    last for the connection's session; only search statements scan HNSW indexes, and each one
    sets them first."""
    knobs = (ef_search, iterative_scan, max_scan_tuples)
    if _KNOBS.get(conn) == knobs:
        return
    query = "SELECT set_config('hnsw.ef_search', %(ef)s, false)"
    if iterative_scan:  # unknown to pgvector < 0.8
        query += (
            ", set_config('hnsw.iterative_scan', 'relaxed_order', false),"
            " set_config('hnsw.max_scan_tuples', %(tuples)s, false)"
        )
    _KNOBS.pop(conn, None)  # unknown if this fails
    conn.execute(query, {"ef": str(ef_search), "tuples": str(max_scan_tuples)})
    if conn.info.transaction_status == pq.TransactionStatus.IDLE:  # no rollback can undo them
        _KNOBS[conn] = knobs


def run(conn: Conn, statement: sql.Composed, params: dict[str, Any]) -> list[Hit]:
    with conn.cursor(row_factory=class_row(Hit)) as cur:
        return cur.execute(statement, params).fetchall()


def explain(conn: Conn, statement: sql.Composed, params: dict[str, Any]) -> Any:
    """The planner's plan (EXPLAIN, FORMAT JSON) for the statement, without running it."""
    row = returned(
        conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(statement), params).fetchone()
    )
    return row["QUERY PLAN"][0]["Plan"]


def _count_in_scope(scope: Scope, cap: sql.Composable) -> sql.Composed:
    """The scope's chunks, counted no further than `cap` + 1 when it is narrowed."""
    if not scope.narrowed():
        return sql.SQL(
            "SELECT coalesce(sum(chunk_count), 0) FROM collection_text_stats"
            " WHERE collection_id = ANY(%(collection_ids)s)"
        ).format()
    return sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM document_chunks c{joins} WHERE {where}"
        " LIMIT {cap} + 1) t"
    ).format(joins=scope.joins(), where=scope.where(), cap=cap)


def chunks_in_scope(conn: Conn, scope: Scope, cap: int) -> int:
    """How many chunks the scope holds, counting no further than `cap` + 1."""
    statement = sql.SQL("SELECT ({count}) AS n").format(
        count=_count_in_scope(scope, sql.Placeholder("cap"))
    )
    row = returned(conn.execute(statement, {**scope.params(), "cap": cap}).fetchone())
    return int(row["n"])


def pgvector_version(conn: Conn) -> tuple[int, ...]:
    row = returned(
        conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    )
    return tuple(int(part) for part in row["extversion"].split(".") if part.isdigit())
