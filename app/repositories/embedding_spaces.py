"""SQL for the embedding model registry rows and their embedding spaces."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from app.repositories import Conn, Row, returned


@dataclass(frozen=True)
class EmbeddingSpace:
    """The vectors of one embedding model at one dimension: what ingestion fills and search
    reads (the newest `ready` one), with its model's provider and name."""

    id: int
    embedding_model_id: int
    dimension: int
    distance: str  # cosine
    state: str  # building | ready | retired
    ready_at: datetime | None
    provider: str
    model: str


# The columns of an EmbeddingSpace (s: embedding_spaces, m: llm_models).
SPACE = (
    "s.id, s.embedding_model_id, s.dimension, s.distance, s.state, s.ready_at,"
    " m.provider, m.name AS model"
)


def upsert_embedding_model(
    conn: Conn, *, provider: str, name: str, dimension: int, context_length: int
) -> Row:
    return returned(
        conn.execute(
            "INSERT INTO llm_models (provider, name, kind, dimension, context_length)"
            " VALUES (%(provider)s, %(name)s, 'embedding', %(dimension)s, %(context_length)s)"
            " ON CONFLICT (provider, name) DO UPDATE SET dimension = excluded.dimension,"
            " context_length = excluded.context_length RETURNING id, kind, dimension",
            {
                "provider": provider,
                "name": name,
                "dimension": dimension,
                "context_length": context_length,
            },
        ).fetchone()
    )


def _one(conn: Conn, query: str, params: dict[str, object] | None = None) -> EmbeddingSpace | None:
    with conn.cursor(row_factory=class_row(EmbeddingSpace)) as cur:
        return cur.execute(query, params).fetchone()


def find_space(conn: Conn, model_id: int, dimension: int) -> EmbeddingSpace | None:
    return _one(
        conn,
        f"SELECT {SPACE} FROM embedding_spaces s JOIN llm_models m ON m.id = s.embedding_model_id"
        " WHERE s.embedding_model_id = %(model_id)s AND s.dimension = %(dimension)s"
        " AND s.distance = 'cosine' AND NOT s.use_halfvec",
        {"model_id": model_id, "dimension": dimension},
    )


def insert_space(conn: Conn, *, model_id: int, dimension: int, ready: bool) -> EmbeddingSpace:
    row = returned(
        conn.execute(
            "INSERT INTO embedding_spaces (embedding_model_id, dimension, state, ready_at)"
            " VALUES (%(model_id)s, %(dimension)s, %(state)s, CASE WHEN %(ready)s THEN now() END)"
            " RETURNING id",
            {
                "model_id": model_id,
                "dimension": dimension,
                "ready": ready,
                "state": "ready" if ready else "building",
            },
        ).fetchone()
    )
    if ready:
        create_index(conn, row["id"])  # a building space gets its index once it is filled
    return returned(get(conn, row["id"]))


def create_index(conn: Conn, space_id: int, *, build_memory: str | None = None) -> None:
    """Build the space's HNSW index; `build_memory` is the build's maintenance_work_mem.

    A build whose graph does not fit in maintenance_work_mem is several times slower.
    """
    with conn.transaction():
        if build_memory is not None:
            conn.execute(
                "SELECT set_config('maintenance_work_mem', %(mem)s, true)", {"mem": build_memory}
            )
        conn.execute("SELECT create_embedding_space_index(%(id)s)", {"id": space_id})
    # Fresh statistics, or the planner may not believe the new index beats a scan and sort.
    conn.execute("ANALYZE chunk_embeddings")


def drop_index(conn: Conn, space_id: int) -> None:
    """Before a bulk load: inserting into an HNSW index row by row is far slower than a build."""
    conn.execute("SELECT drop_embedding_space_index(%(id)s)", {"id": space_id})


def get(conn: Conn, space_id: int) -> EmbeddingSpace | None:
    return _one(
        conn,
        f"SELECT {SPACE} FROM embedding_spaces s JOIN llm_models m ON m.id = s.embedding_model_id"
        " WHERE s.id = %(id)s",
        {"id": space_id},
    )


def current_ready(conn: Conn) -> EmbeddingSpace | None:
    """The space search uses: the newest ready one."""
    return _one(
        conn,
        f"SELECT {SPACE} FROM embedding_spaces s JOIN llm_models m ON m.id = s.embedding_model_id"
        " WHERE s.state = 'ready' ORDER BY s.ready_at DESC, s.id DESC LIMIT 1",
    )


def local_model_in_use(conn: Conn) -> str | None:
    """The local model of the installation's ready space, else of its newest space; None when
    no space is a local model's."""
    row = conn.execute(
        "SELECT m.name FROM embedding_spaces s JOIN llm_models m ON m.id = s.embedding_model_id"
        " WHERE m.provider = 'local' ORDER BY s.state = 'ready' DESC, s.id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row["name"])


def mark_ready(conn: Conn, space_id: int) -> None:
    """The space becomes the one search uses; every other ready space retires."""
    conn.execute(
        "UPDATE embedding_spaces SET state = 'retired' WHERE state = 'ready' AND id <> %(id)s",
        {"id": space_id},
    )
    conn.execute(
        "UPDATE embedding_spaces SET state = 'ready', ready_at = now() WHERE id = %(id)s",
        {"id": space_id},
    )


def count_chunks(conn: Conn) -> int:
    return int(returned(conn.execute("SELECT count(*) AS n FROM document_chunks").fetchone())["n"])


def chunks_missing_from(conn: Conn, space_id: int, *, limit: int) -> list[Row]:
    """Chunks (with their document's title) that have no vector in the space yet."""
    return conn.execute(
        "SELECT c.id, c.text, c.heading_path, coalesce(nullif(d.title, ''), d.filename) AS title"
        " FROM document_chunks c"
        " JOIN documents d ON d.id = c.document_id"
        " WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e"
        "                   WHERE e.chunk_id = c.id AND e.space_id = %(space_id)s)"
        " ORDER BY c.id LIMIT %(limit)s",
        {"space_id": space_id, "limit": limit},
    ).fetchall()
