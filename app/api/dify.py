"""POST /api/v1/dify/retrieval: Dify's External Knowledge API over a collection.

Register postrag in Dify as an external knowledge API with endpoint http://host/api/v1/dify, a
postrag API token as the key, and a collection's id as the knowledge id. Errors have Dify's own
shape, `{"error_code", "error_msg"}` (not problem+json: Dify parses its shape): 1001 when the
Authorization header is not `Bearer <key>`, 1002 when the key is refused, 2001 when the
knowledge (collection) does not exist for that key; others carry their HTTP status as code.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from flask import Blueprint, Response, json, request
from pydantic import BaseModel, ConfigDict, Field

from app.api.endpoint import endpoint, principal, read_db_while_used
from app.errors import (
    AppError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    as_app_error,
)
from app.runtime import runtime
from app.services import dify

bp = Blueprint("dify", __name__, url_prefix="/api/v1/dify")

_BEARER = re.compile(r"Bearer \S+")
_SCALARS: list[Any] = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]


class RetrievalSetting(BaseModel):
    model_config = ConfigDict(extra="ignore")

    top_k: int = Field(ge=1, le=100, description="the most records to return")
    score_threshold: float = Field(
        ge=0, le=1, description="the least cosine similarity of a record (0: no threshold)"
    )


class MetadataCondition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200, description="a document metadata field")
    comparison_operator: str = Field(min_length=1, max_length=20)
    # Checked by the service, which names a bad one as Dify sent it (a union here would name
    # each of its members).
    value: Any = Field(
        default=None,
        description="a string, number or boolean; for in and not in a list of strings or"
        " numbers; none for empty and not empty",
        json_schema_extra={
            "anyOf": [
                *_SCALARS,
                {"type": "array", "items": {"anyOf": _SCALARS}},
                {"type": "null"},
            ]
        },
    )


class MetadataConditions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    logical_operator: Literal["and", "or"] = "and"
    conditions: list[MetadataCondition] = Field(max_length=50)


class RetrievalBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # Dify may send more than it documents

    knowledge_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="a collection's id"
    )
    query: str = Field(min_length=1, max_length=4000, pattern=r"\S")
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataConditions | None = None


class Record(BaseModel):
    content: str
    score: float = Field(description="cosine similarity to the query, in [0, 1]")
    title: str
    metadata: dict[str, Any]


class Records(BaseModel):
    records: list[Record]


class DifyError(BaseModel):
    error_code: int = Field(description="1001, 1002, 2001, or the HTTP status")
    error_msg: str


@bp.before_request
def _bearer_only() -> None:
    """Dify always sends `Authorization: Bearer <key>`; nothing else (not the page's cookie)."""
    if not _BEARER.fullmatch(request.headers.get("Authorization", "")):
        raise Unauthorized("Invalid Authorization header format. Expected 'Bearer <api-key>'.")


@bp.errorhandler(Exception)
def _dify_error(exc: Exception) -> Response:
    error = as_app_error(exc, f"{request.method} {request.path}")
    body = DifyError(error_code=_code(error), error_msg=_message(error))
    return Response(
        json.dumps(body.model_dump()),
        status=error.status,
        mimetype="application/json",
        headers=error.headers,
    )


def _message(error: AppError) -> str:
    """The detail, with each invalid field named (Dify shows only this text)."""
    if not isinstance(error, ValidationFailed) or not error.errors:
        return error.detail
    fields = "; ".join(f"{_path(e.path)}: {e.msg}" for e in error.errors[:5])
    return f"{error.detail} ({fields})"


def _path(path: tuple[str | int, ...]) -> str:
    """`metadata_condition.conditions[0].value`: as a JSON body's reader writes it."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _code(error: AppError) -> int:
    if isinstance(error, Unauthorized):
        return 1002 if _BEARER.fullmatch(request.headers.get("Authorization", "")) else 1001
    if isinstance(error, Forbidden):
        return 1002
    if isinstance(error, NotFound):
        return 2001
    return error.status


@bp.post("/retrieval")
@endpoint(
    summary="Retrieve passages of a collection (Dify's External Knowledge API)",
    tag="dify",
    body=RetrievalBody,
    response=Records,
    errors=(404, 503),
    reads_only=True,
    error_body=DifyError,
)
def retrieval(body: RetrievalBody) -> Records:
    condition = body.metadata_condition.model_dump() if body.metadata_condition else None
    req = dify.Retrieval(
        knowledge_id=body.knowledge_id,
        query=body.query,
        top_k=body.retrieval_setting.top_k,
        score_threshold=body.retrieval_setting.score_threshold,
        metadata_condition=condition,
    )
    records = dify.retrieve(read_db_while_used, principal(), req, runtime().search)
    return Records(records=[Record(**r) for r in records])
