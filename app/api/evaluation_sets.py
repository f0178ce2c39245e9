"""Evaluation sets: POST/GET /api/v1/evaluation-sets, GET/DELETE /{id}, POST/GET /{id}/queries
(a batch of queries with their judgments), POST /api/v1/evaluation-sets/import (BEIR files)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from flask import Blueprint, request, url_for
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.endpoint import db, endpoint, principal, read_db, validate
from app.api.schemas import Page, PageQuery
from app.errors import FieldError, UnsupportedMediaType, ValidationFailed
from app.repositories.evaluations import Judgment as StoredJudgment
from app.repositories.evaluations import NewQuery
from app.runtime import runtime
from app.services import evaluation_import, evaluations

bp = Blueprint("evaluation_sets", __name__, url_prefix="/api/v1")

_Id = Annotated[int, Field(ge=1, le=2**62)]


class EvaluationSet(BaseModel):
    id: int
    owner_id: int
    collection_id: int
    name: str
    description: str
    query_count: int
    created_at: datetime


class EvaluationSetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    collection_id: _Id = Field(description="a collection you may read")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)


class Judgment(BaseModel):
    """A relevant document or chunk of the set's collection (grade 0: judged not relevant)."""

    model_config = ConfigDict(extra="ignore")

    document_id: _Id | None = Field(None, description="the document (a chunk's own if omitted)")
    chunk_id: _Id | None = Field(None, description="a chunk of it: the judgment is on the chunk")
    grade: int = Field(ge=0, le=evaluations.MAX_GRADE)

    @model_validator(mode="after")
    def _names_something(self) -> Judgment:
        if self.document_id is None and self.chunk_id is None:
            raise ValueError("name a document_id or a chunk_id")
        return self


class QueryIn(BaseModel):
    """One query, shaped as GET /api/v1/judgments answers candidates (other keys are ignored)."""

    model_config = ConfigDict(extra="ignore")

    query: str = Field(min_length=1, max_length=evaluations.MAX_QUERY_CHARS, pattern=r"\S")
    external_id: str | None = Field(None, min_length=1, max_length=200)
    relevant: list[Judgment] = Field(max_length=evaluations.MAX_JUDGMENTS_PER_QUERY)


class QueriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queries: list[QueryIn] = Field(min_length=1, max_length=evaluations.MAX_QUERIES_PER_REQUEST)


class QueriesAdded(BaseModel):
    added: int
    query_count: int = Field(description="the set's queries now")


class StoredJudgmentOut(BaseModel):
    document_id: int
    chunk_id: int | None
    grade: int


class EvaluationQuery(BaseModel):
    id: int
    external_id: str | None
    query: str
    relevant: list[StoredJudgmentOut]


class BeirImport(BaseModel):
    """multipart/form-data fields of a BEIR import."""

    model_config = ConfigDict(extra="forbid")

    corpus: bytes = Field(json_schema_extra={"format": "binary"}, description="corpus.jsonl")
    queries: bytes = Field(json_schema_extra={"format": "binary"}, description="queries.jsonl")
    qrels: bytes = Field(json_schema_extra={"format": "binary"}, description="qrels/<split>.tsv")
    collection_id: _Id = Field(description="a collection you may write")
    name: str = Field(min_length=1, max_length=200)


class BeirImported(BaseModel):
    set: EvaluationSet
    documents: int = Field(description="corpus entries, each a document of the collection")
    queued: int = Field(description="of those, new documents queued for ingestion")
    queries: int
    judgments: int
    qrels_skipped: int = Field(description="qrels naming a query or document not in the files")
    queries_without_judgments: int = Field(description="not added: no judgment in this split")
    skipped_examples: list[str]


@bp.post("/evaluation-sets")
@endpoint(
    summary="Create an evaluation set about a collection",
    tag="evaluations",
    status=201,
    body=EvaluationSetCreate,
    response=EvaluationSet,
    errors=(404, 422),
)
def create_set(body: EvaluationSetCreate) -> tuple[EvaluationSet, dict[str, str]]:
    row = evaluations.create(db(), principal(), **body.model_dump())
    return EvaluationSet(**row), {"Location": url_for(".get_set", set_id=row["id"])}


@bp.get("/evaluation-sets")
@endpoint(
    summary="Your evaluation sets, newest first",
    tag="evaluations",
    query=PageQuery,
    response=Page[EvaluationSet],
)
def list_sets(query: PageQuery) -> Page[EvaluationSet]:
    rows, total = evaluations.list_page(
        read_db(), principal(), limit=query.limit, offset=query.offset
    )
    items = [EvaluationSet(**r) for r in rows]
    return Page[EvaluationSet](items=items, total=total, limit=query.limit, offset=query.offset)


@bp.get("/evaluation-sets/<int:set_id>")
@endpoint(summary="One evaluation set", tag="evaluations", response=EvaluationSet, errors=(404,))
def get_set(set_id: int) -> EvaluationSet:
    return EvaluationSet(**evaluations.get(read_db(), principal(), set_id))


@bp.delete("/evaluation-sets/<int:set_id>")
@endpoint(
    summary="Delete an evaluation set with its queries and runs",
    tag="evaluations",
    status=204,
    errors=(404,),
)
def delete_set(set_id: int) -> None:
    evaluations.delete(db(), principal(), set_id)


@bp.post("/evaluation-sets/<int:set_id>/queries")
@endpoint(
    summary="Add queries with their judgments to a set (all or none)",
    tag="evaluations",
    status=201,
    body=QueriesIn,
    response=QueriesAdded,
    errors=(404, 409, 422),
)
def add_queries(set_id: int, body: QueriesIn) -> QueriesAdded:
    items = [
        NewQuery(
            q.query,
            q.external_id,
            tuple(StoredJudgment(j.document_id or 0, j.chunk_id, j.grade) for j in q.relevant),
        )
        for q in body.queries
    ]
    conn = db()
    added = evaluations.add_queries(conn, principal(), set_id, items)
    return QueriesAdded(
        added=added, query_count=evaluations.get(conn, principal(), set_id)["query_count"]
    )


@bp.get("/evaluation-sets/<int:set_id>/queries")
@endpoint(
    summary="A set's queries with their judgments",
    tag="evaluations",
    query=PageQuery,
    response=Page[EvaluationQuery],
    errors=(404,),
)
def list_queries(set_id: int, query: PageQuery) -> Page[EvaluationQuery]:
    rows, total = evaluations.queries(
        read_db(), principal(), set_id, limit=query.limit, offset=query.offset
    )
    items = [EvaluationQuery(**r, query=r["text"]) for r in rows]
    return Page[EvaluationQuery](items=items, total=total, limit=query.limit, offset=query.offset)


def _file(name: str) -> bytes:
    file = request.files.get(name)
    if file is None:
        missing = FieldError((name,), "field required", "missing", source="body")
        raise ValidationFailed(f"the import has no {name} file", [missing])
    data: bytes = file.read()
    return data


@bp.post("/evaluation-sets/import")
@endpoint(
    summary="A new set from BEIR files (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); the"
    " corpus is ingested into the collection",
    tag="evaluations",
    status=201,
    multipart=BeirImport,
    response=BeirImported,
    errors=(403, 404, 413, 415, 422),
)
def import_beir() -> tuple[BeirImported, dict[str, str]]:
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with corpus, queries and qrels")
    form = validate(
        BeirImport,
        {**request.form.to_dict(), "corpus": b"-", "queries": b"-", "qrels": b"-"},
        "body",
    )
    files = evaluation_import.BeirFiles(_file("corpus"), _file("queries"), _file("qrels"))
    summary = evaluation_import.import_beir(
        db(),
        principal(),
        files,
        collection_id=form.collection_id,
        name=form.name,
        settings=runtime().settings,
    )
    body = BeirImported(
        **{**summary.__dict__, "set": EvaluationSet(**summary.set)},
    )
    return body, {"Location": url_for(".get_set", set_id=summary.set["id"])}
