"""Evaluation sets: create, list, read and delete them; add queries with their judgments.

A set is one user's, about one of the collections they may read. A query's judgments name
documents or chunks of that collection with a grade (0: judged not relevant); a query judged on
chunks only is scored on chunks, any other on documents (a chunk's grade counts for its
document). Runs and comparisons are in app/services/evaluation_runs.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.repositories import Conn, Row
from app.repositories import evaluations as evaluation_repo
from app.repositories.evaluations import Judgment, NewQuery
from app.services import collections
from app.services.tokens import Principal

MAX_QUERIES_PER_REQUEST = 1000
MAX_QUERIES_PER_SET = 10_000  # a run searches each one; a comparison resamples them all
MAX_JUDGMENTS_PER_QUERY = 100
MAX_QUERY_CHARS = 2000  # as evaluation_queries_text_check has it
MAX_EXTERNAL_ID_CHARS = 200
MAX_GRADE = 100


def create(
    conn: Conn, who: Principal, *, collection_id: int, name: str, description: str = ""
) -> Row:
    """A new empty set about a collection the caller may read (else 404)."""
    collections.get_readable(conn, who, collection_id)
    if not 1 <= len(name) <= 200:  # the API checks this too; the CLI's names come unchecked
        kind = "string_too_long" if name else "string_too_short"
        raise ValidationFailed.on_field("name", "must be 1 to 200 characters", type=kind)
    with conn.transaction():
        return evaluation_repo.insert_set(
            conn,
            owner_id=who.user_id,
            collection_id=collection_id,
            name=name,
            description=description,
        )


def get(conn: Conn, who: Principal, set_id: int) -> Row:
    row = evaluation_repo.get_set(conn, set_id, who.user_id)
    if row is None:
        raise NotFound(f"no evaluation set {set_id}")
    return row


def list_page(conn: Conn, who: Principal, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return evaluation_repo.list_sets(conn, who.user_id, limit=limit, offset=offset)


def delete(conn: Conn, who: Principal, set_id: int) -> None:
    """The set with its queries, judgments, runs and results."""
    with conn.transaction():
        if not evaluation_repo.delete_set(conn, set_id, who.user_id):
            raise NotFound(f"no evaluation set {set_id}")


def queries(
    conn: Conn, who: Principal, set_id: int, *, limit: int, offset: int
) -> tuple[list[Row], int]:
    get(conn, who, set_id)
    return evaluation_repo.list_queries(conn, set_id, limit=limit, offset=offset)


def add_queries(
    conn: Conn,
    who: Principal,
    set_id: int,
    items: Sequence[NewQuery],
    *,
    max_judgments: int = MAX_JUDGMENTS_PER_QUERY,
) -> int:
    """Add a batch of queries with their judgments, all or none; how many were added."""
    evaluation_set = get(conn, who, set_id)
    _check_bounds(items, max_judgments)
    with conn.transaction():
        evaluation_repo.lock_set(conn, set_id)
        held = evaluation_repo.count_queries(conn, set_id)
        if held + len(items) > MAX_QUERIES_PER_SET:
            msg = f"a set holds at most {MAX_QUERIES_PER_SET} queries; this one has {held}"
            raise ValidationFailed.on_field("queries", msg, type="too_long")
        checked = _resolved(conn, evaluation_set["collection_id"], items)
        _check_external_ids(conn, set_id, checked)
        return evaluation_repo.insert_queries(conn, set_id, checked)


def _invalid(at: tuple[str | int, ...], msg: str, kind: str = "value_error") -> ValidationFailed:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at)
    return ValidationFailed(f"queries{where}: {msg}", [FieldError(("queries", *at), msg, kind)])


def _check_bounds(items: Sequence[NewQuery], max_judgments: int) -> None:
    """What the API's models check too: the CLI and importers come here unchecked."""
    if not 1 <= len(items) <= MAX_QUERIES_PER_REQUEST:
        msg = f"send 1 to {MAX_QUERIES_PER_REQUEST} queries at a time, not {len(items)}"
        raise ValidationFailed.on_field("queries", msg, type="too_long")
    for index, item in enumerate(items):
        if not item.text.strip() or len(item.text) > MAX_QUERY_CHARS:
            raise _invalid((index, "query"), f"must be 1 to {MAX_QUERY_CHARS} characters")
        if item.external_id is not None and not 1 <= len(item.external_id) <= 200:
            raise _invalid((index, "external_id"), "must be 1 to 200 characters")
        if len(item.relevant) > max_judgments:
            msg = f"at most {max_judgments} judgments per query"
            raise _invalid((index, "relevant"), msg, "too_long")
        for place, judgment in enumerate(item.relevant):
            if not 0 <= judgment.grade <= MAX_GRADE:
                raise _invalid((index, "relevant", place, "grade"), f"must be 0 to {MAX_GRADE}")


def _resolved(conn: Conn, collection_id: int, items: Sequence[NewQuery]) -> list[NewQuery]:
    """The queries with every judgment's document named (a chunk's own), each checked to be in
    the set's collection; a 422 names the first query (by its index) that is not right."""
    chunk_ids = [j.chunk_id for q in items for j in q.relevant if j.chunk_id is not None]
    chunk_documents = evaluation_repo.chunks_in(conn, collection_id, chunk_ids)
    document_ids = [j.document_id for q in items for j in q.relevant if j.document_id]
    documents = evaluation_repo.documents_in(conn, collection_id, document_ids)
    resolved = []
    for index, item in enumerate(items):
        judgments: dict[tuple[int, int | None], Judgment] = {}
        for place, judgment in enumerate(item.relevant):
            at = (index, "relevant", place)
            if judgment.chunk_id is not None:
                owner = chunk_documents.get(judgment.chunk_id)
                if owner is None or judgment.document_id not in (0, owner):
                    msg = f"chunk {judgment.chunk_id} is not in collection {collection_id}"
                    raise _invalid((*at, "chunk_id"), msg)
                judgment = Judgment(owner, judgment.chunk_id, judgment.grade)
            elif judgment.document_id not in documents:
                msg = f"document {judgment.document_id} is not in collection {collection_id}"
                raise _invalid((*at, "document_id"), msg)
            key = (judgment.document_id, judgment.chunk_id)
            if key in judgments:
                raise _invalid(at, "judged twice in this query")
            judgments[key] = judgment
        resolved.append(NewQuery(item.text, item.external_id, tuple(judgments.values())))
    return resolved


def _check_external_ids(conn: Conn, set_id: int, items: Sequence[NewQuery]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.external_id is None:
            continue
        if item.external_id in seen:
            raise _invalid((index, "external_id"), "given twice in this batch")
        seen.add(item.external_id)
    taken = evaluation_repo.taken_external_ids(conn, set_id, sorted(seen))
    if taken:
        raise Conflict(f"the set already has queries with external ids {', '.join(taken[:10])}")
