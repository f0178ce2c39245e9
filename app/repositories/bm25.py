"""SQL of the full-text leg: BM25 over the postings and statistics that V2_1's triggers keep.

The leg is a chain of CTEs ending in `fulltext (chunk_id, score, rank)`, for the one search
statement built in app/repositories/search.py. A chunk matches when it has any of the query's
lexemes (each collection's own text-search configuration makes them, through V2_25's
postrag_tsvector, which cuts CJK text into bigrams for `cjk`); quoted phrases and
`prefix*` words are required matches checked on the GIN-indexed tsvector, and a prefix also
scores as the lexemes it expands to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    from app.repositories.search import Scope

MAX_PREFIX_EXPANSION = 64  # lexemes a prefix* stands for (the most frequent ones)


@dataclass(frozen=True)
class FulltextLeg:
    phrases: list[str]  # each must occur as a phrase
    prefixes: list[str]  # letters and digits only; each must occur as a lexeme prefix


_SCORES = sql.SQL(
    """fulltext_terms AS (
    -- The query's lexemes in each collection's own text-search configuration, plus what each
    -- prefix* expands to in that collection's lexicon.
    SELECT col.id AS collection_id, t.lexeme COLLATE "C" AS lexeme
    FROM collections col CROSS JOIN LATERAL unnest(postrag_tsvector(col.language, %(query)s)) t
    WHERE col.id = ANY(%(collection_ids)s)
    UNION
    SELECT col.id, x.lexeme
    FROM collections col
    CROSS JOIN unnest(%(prefixes)s::text[]) AS w(word)
    CROSS JOIN LATERAL unnest(postrag_tsvector(col.language, w.word)) p
    CROSS JOIN LATERAL (
        SELECT l.lexeme FROM collection_lexeme_stats l
        WHERE l.collection_id = col.id
          AND l.lexeme >= p.lexeme COLLATE "C"
          AND l.lexeme < (p.lexeme || chr(1114111)) COLLATE "C"
        ORDER BY l.df DESC LIMIT {expansion}
    ) x
    WHERE col.id = ANY(%(collection_ids)s)
), fulltext_stats AS (
    SELECT greatest(sum(chunk_count), 1)::float8 AS n,
           greatest(sum(total_length), 1)::float8 / greatest(sum(chunk_count), 1) AS avgdl
    FROM collection_text_stats WHERE collection_id = ANY(%(collection_ids)s)
), fulltext_idf AS (
    SELECT t.lexeme, ln(1 + (st.n - sum(l.df) + 0.5) / (sum(l.df) + 0.5)) AS idf
    FROM fulltext_terms t
    JOIN collection_lexeme_stats l ON l.collection_id = t.collection_id AND l.lexeme = t.lexeme
    CROSS JOIN fulltext_stats st
    GROUP BY t.lexeme, st.n
), fulltext_scores AS (
    -- BM25: any of the query's lexemes matches; rare ones weigh more, long chunks less.
    SELECT p.chunk_id,
           sum(i.idf * p.tf * (%(k1)s + 1)
               / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.chunk_length / st.avgdl))) AS score
    FROM fulltext_terms t
    JOIN chunk_lexemes p ON p.collection_id = t.collection_id AND p.lexeme = t.lexeme
    JOIN fulltext_idf i ON i.lexeme = t.lexeme
    CROSS JOIN fulltext_stats st
    GROUP BY p.chunk_id
)"""
).format(expansion=sql.Literal(MAX_PREFIX_EXPANSION))

_SCORED_HITS = sql.SQL(
    """, fulltext_hits AS (
    SELECT s.chunk_id, s.score FROM fulltext_scores s{chunk_join}
    ORDER BY s.score DESC, s.chunk_id
    LIMIT %(candidates)s
)"""
)

_REQUIRED_HITS = sql.SQL(
    """, fulltext_required AS (
    SELECT col.id AS collection_id, {required} AS query
    FROM collections col WHERE col.id = ANY(%(collection_ids)s)
), fulltext_matches AS (
    -- Quoted phrases and prefix* words must match (GIN index on search_vector); where they
    -- reduce to nothing (stop words only), the scored chunks stand.
    SELECT c.id AS chunk_id
    FROM fulltext_required r
    JOIN document_chunks c
      ON c.collection_id = r.collection_id AND c.search_vector @@ r.query{joins}
    WHERE numnode(r.query) > 0 AND {where}
    UNION ALL
    SELECT s.chunk_id
    FROM fulltext_scores s
    JOIN document_chunks c ON c.id = s.chunk_id{joins}
    JOIN fulltext_required r ON r.collection_id = c.collection_id
    WHERE numnode(r.query) = 0 AND {where}
), fulltext_hits AS (
    SELECT m.chunk_id, coalesce(s.score, 0) AS score
    FROM fulltext_matches m LEFT JOIN fulltext_scores s ON s.chunk_id = m.chunk_id
    ORDER BY score DESC, m.chunk_id
    LIMIT %(candidates)s
)"""
)

_RANKED = sql.SQL(
    """, fulltext AS (
    SELECT chunk_id, score, row_number() OVER (ORDER BY score DESC, chunk_id) AS rank
    FROM fulltext_hits
)"""
)


def _required(leg: FulltextLeg) -> tuple[sql.Composable | None, dict[str, Any]]:
    """The tsquery every hit must match (per collection language), and its parameters."""
    parts: list[sql.Composable] = []
    params: dict[str, Any] = {}
    for i, phrase in enumerate(leg.phrases):
        params[f"phrase_{i}"] = phrase
        parts.append(
            sql.SQL("phraseto_tsquery(col.language, postrag_search_text(col.language, {}))").format(
                sql.Placeholder(f"phrase_{i}")
            )
        )
    for i, prefix in enumerate(leg.prefixes):
        params[f"prefix_{i}"] = prefix
        parts.append(
            sql.SQL("postrag_prefix_tsquery(col.language, {})").format(
                sql.Placeholder(f"prefix_{i}")
            )
        )
    if not parts:
        return None, params
    return sql.SQL(" && ").join(parts), params


def fulltext_ctes(leg: FulltextLeg, scope: Scope) -> tuple[sql.Composed, dict[str, Any]]:
    """The leg's CTEs (ending in `fulltext`) and the parameters they add."""
    required, params = _required(leg)
    params["prefixes"] = leg.prefixes
    if required is not None:
        hits = _REQUIRED_HITS.format(required=required, joins=scope.joins(), where=scope.where())
    elif scope.narrowed():
        chunk_join = sql.SQL(" JOIN document_chunks c ON c.id = s.chunk_id{joins} WHERE {where}")
        hits = _SCORED_HITS.format(
            chunk_join=chunk_join.format(joins=scope.joins(), where=scope.where())
        )
    else:
        hits = _SCORED_HITS.format(chunk_join=sql.SQL(""))
    return sql.Composed([_SCORES, hits, _RANKED]), params
