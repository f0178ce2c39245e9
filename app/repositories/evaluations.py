"""Evaluation sets, their queries and judgments (sql/migrations/V2_22)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.repositories import Conn, Row, returned

_SET = (
    "s.id, s.owner_id, s.collection_id, s.name, s.description, s.created_at,"
    " (SELECT count(*) FROM evaluation_queries q WHERE q.set_id = s.id) AS query_count"
)
# A query's judgments as [{document_id, chunk_id, grade}], in a stable order.
_RELEVANT = (
    "coalesce((SELECT jsonb_agg(jsonb_build_object('document_id', j.document_id,"
    " 'chunk_id', j.chunk_id, 'grade', j.grade) ORDER BY j.document_id, j.chunk_id NULLS FIRST)"
    " FROM evaluation_judgments j WHERE j.query_id = q.id), '[]') AS relevant"
)


@dataclass(frozen=True)
class Judgment:
    document_id: int
    chunk_id: int | None
    grade: int


@dataclass(frozen=True)
class NewQuery:
    text: str
    external_id: str | None
    relevant: tuple[Judgment, ...]


def insert_set(
    conn: Conn, *, owner_id: int, collection_id: int, name: str, description: str
) -> Row:
    row = conn.execute(
        "INSERT INTO evaluation_sets (owner_id, collection_id, name, description)"
        " VALUES (%(owner_id)s, %(collection_id)s, %(name)s, %(description)s) RETURNING id",
        {
            "owner_id": owner_id,
            "collection_id": collection_id,
            "name": name,
            "description": description,
        },
    ).fetchone()
    return returned(get_set(conn, returned(row)["id"], owner_id))


def get_set(conn: Conn, set_id: int, owner_id: int) -> Row | None:
    return conn.execute(
        f"SELECT {_SET} FROM evaluation_sets s WHERE s.id = %(id)s AND s.owner_id = %(owner)s",
        {"id": set_id, "owner": owner_id},
    ).fetchone()


def list_sets(conn: Conn, owner_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"owner": owner_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT {_SET} FROM evaluation_sets s WHERE s.owner_id = %(owner)s"
        " ORDER BY s.id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM evaluation_sets WHERE owner_id = %(owner)s", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def delete_set(conn: Conn, set_id: int, owner_id: int) -> bool:
    row = conn.execute(
        "DELETE FROM evaluation_sets WHERE id = %(id)s AND owner_id = %(owner)s RETURNING id",
        {"id": set_id, "owner": owner_id},
    ).fetchone()
    return row is not None


def lock_set(conn: Conn, set_id: int) -> None:
    """In a transaction: hold the set while queries are added (external ids stay unique)."""
    conn.execute("SELECT 1 FROM evaluation_sets WHERE id = %(id)s FOR UPDATE", {"id": set_id})


def taken_external_ids(conn: Conn, set_id: int, external_ids: Sequence[str]) -> list[str]:
    rows = conn.execute(
        "SELECT external_id FROM evaluation_queries"
        " WHERE set_id = %(set)s AND external_id = ANY(%(ids)s) ORDER BY external_id",
        {"set": set_id, "ids": list(external_ids)},
    ).fetchall()
    return [r["external_id"] for r in rows]


def documents_in(conn: Conn, collection_id: int, document_ids: Sequence[int]) -> set[int]:
    """Those of `document_ids` that are in the collection."""
    rows = conn.execute(
        "SELECT id FROM documents WHERE collection_id = %(c)s AND id = ANY(%(ids)s)",
        {"c": collection_id, "ids": list(document_ids)},
    ).fetchall()
    return {r["id"] for r in rows}


def chunks_in(conn: Conn, collection_id: int, chunk_ids: Sequence[int]) -> dict[int, int]:
    """Those of `chunk_ids` that are in the collection: chunk id -> its document's id."""
    rows = conn.execute(
        "SELECT id, document_id FROM document_chunks"
        " WHERE collection_id = %(c)s AND id = ANY(%(ids)s)",
        {"c": collection_id, "ids": list(chunk_ids)},
    ).fetchall()
    return {r["id"]: r["document_id"] for r in rows}


def count_queries(conn: Conn, set_id: int) -> int:
    row = conn.execute(
        "SELECT count(*) AS n FROM evaluation_queries WHERE set_id = %(set_id)s", {"set_id": set_id}
    ).fetchone()
    return int(row["n"]) if row else 0


def insert_queries(conn: Conn, set_id: int, queries: Sequence[NewQuery]) -> int:
    """Add the queries and their judgments; how many queries were added."""
    if not queries:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO evaluation_queries (set_id, external_id, text)"
            " VALUES (%(set)s, %(external_id)s, %(text)s) RETURNING id",
            [{"set": set_id, "external_id": q.external_id, "text": q.text} for q in queries],
            returning=True,
        )
        ids = []
        while True:
            ids.append(returned(cur.fetchone())["id"])
            if not cur.nextset():
                break
    judged = [(qid, j) for qid, q in zip(ids, queries, strict=True) for j in q.relevant]
    conn.execute(
        "INSERT INTO evaluation_judgments (query_id, document_id, chunk_id, grade)"
        " SELECT * FROM unnest(%(q)s::bigint[], %(d)s::bigint[], %(c)s::bigint[], %(g)s::int[])",
        {
            "q": [qid for qid, _ in judged],
            "d": [j.document_id for _, j in judged],
            "c": [j.chunk_id for _, j in judged],
            "g": [j.grade for _, j in judged],
        },
    )
    return len(ids)


def list_queries(conn: Conn, set_id: int, *, limit: int, offset: int) -> tuple[list[Row], int]:
    params = {"set": set_id, "limit": limit, "offset": offset}
    rows = conn.execute(
        f"SELECT q.id, q.external_id, q.text, {_RELEVANT} FROM evaluation_queries q"
        " WHERE q.set_id = %(set)s ORDER BY q.id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) AS n FROM evaluation_queries WHERE set_id = %(set)s", params
    ).fetchone()
    return rows, int(returned(total)["n"])


def all_queries(conn: Conn, set_id: int) -> list[Row]:
    """Every query of the set with its judgments, in order (a run reads them once)."""
    return conn.execute(
        f"SELECT q.id, q.external_id, q.text, {_RELEVANT} FROM evaluation_queries q"
        " WHERE q.set_id = %(set)s ORDER BY q.id",
        {"set": set_id},
    ).fetchall()


def covered_documents(conn: Conn, space_id: int, document_ids: Sequence[int]) -> set[int]:
    """Those of `document_ids` that have chunks, every one with a vector in the space."""
    rows = conn.execute(
        "SELECT d.id FROM unnest(%(ids)s::bigint[]) AS d(id)"
        " WHERE EXISTS (SELECT 1 FROM document_chunks c WHERE c.document_id = d.id)"
        " AND NOT EXISTS (SELECT 1 FROM document_chunks c WHERE c.document_id = d.id"
        "   AND NOT EXISTS (SELECT 1 FROM chunk_embeddings e"
        "                   WHERE e.chunk_id = c.id AND e.space_id = %(space)s))",
        {"ids": list(document_ids), "space": space_id},
    ).fetchall()
    return {r["id"] for r in rows}


def covered_chunks(conn: Conn, space_id: int, chunk_ids: Sequence[int]) -> set[int]:
    """Those of `chunk_ids` with a vector in the space."""
    rows = conn.execute(
        "SELECT chunk_id FROM chunk_embeddings"
        " WHERE space_id = %(space)s AND chunk_id = ANY(%(ids)s)",
        {"ids": list(chunk_ids), "space": space_id},
    ).fetchall()
    return {r["chunk_id"] for r in rows}
