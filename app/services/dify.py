"""Dify's External Knowledge API over a collection: semantic search, scored by cosine similarity.

Dify's `knowledge_id` is a collection's id; one the caller may not read (another user's, unshared)
does not exist for them, as everywhere else. `metadata_condition` becomes a filter on the
documents' metadata (the operators postrag's filter has; others are refused, not ignored); a
bad condition is named as Dify sent it, `metadata_condition.conditions[i].value`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app.errors import NotFound, ValidationFailed
from app.repositories import Conn
from app.repositories import collections as collection_repo
from app.services import search
from app.services.tokens import Principal

# Dify's comparison operators, as postrag filter ops (None: the condition takes no value).
_OPS = {
    "is": "eq",
    "=": "eq",
    "is not": "ne",
    "≠": "ne",
    "in": "in",
    ">": "gt",
    "after": "gt",
    "<": "lt",
    "before": "lt",
    "≥": "gte",
    "≤": "lte",
}


_NUMERIC = ("=", "≠", ">", "<", "≥", "≤")
_SCALAR = (str, int, float)  # and bool, an int


class KnowledgeNotFound(NotFound):
    """Dify's error 2001: no such knowledge, or one the caller may not read."""


@dataclass(frozen=True)
class Retrieval:
    knowledge_id: str
    query: str
    top_k: int
    score_threshold: float
    metadata_condition: dict[str, Any] | None = None


def retrieve(
    connect: search.Connect, who: Principal, req: Retrieval, deps: search.SearchDeps
) -> list[dict[str, Any]]:
    """Dify's records, best first: at most `top_k`, each scoring at least `score_threshold`."""
    with connect() as conn:
        collection_id = _collection(conn, who, req.knowledge_id)
    request = search.SearchRequest(
        query=req.query,
        mode="semantic",  # the one score in [0, 1] that Dify's threshold can mean
        top_k=req.top_k,
        min_similarity=req.score_threshold,
        collection_ids=[collection_id],
        filter=_filter(req.metadata_condition),
    )
    try:
        hits = search.search(connect, who, request, deps).hits
    except ValidationFailed as exc:
        raise _as_sent(exc) from None
    return [
        {
            "content": hit.text,
            "score": hit.semantic_similarity or 0.0,
            "title": (hit.document or {}).get("title") or hit.filename,
            "metadata": {
                "document_id": hit.document_id,
                "chunk_id": hit.chunk_id,
                "collection_id": hit.collection_id,
                "filename": hit.filename,
                "page": hit.page,
                "char_start": hit.char_start,
                "char_end": hit.char_end,
                "heading_path": hit.heading_path,
            },
        }
        for hit in hits
        if (hit.semantic_similarity or 0.0) >= req.score_threshold
    ]


def _collection(conn: Conn, who: Principal, knowledge_id: str) -> int:
    """The collection a knowledge id names, if the caller may read it."""
    wanted = int(knowledge_id) if knowledge_id.isascii() and knowledge_id.isdigit() else 0
    if not 1 <= wanted <= 2**63 - 1 or not collection_repo.readable_ids(
        conn, who.user_id, [wanted]
    ):
        raise KnowledgeNotFound(f"knowledge {knowledge_id[:100]!r} does not exist")
    return wanted


def _filter(condition: dict[str, Any] | None) -> dict[str, Any] | None:
    """postrag's metadata filter for Dify's `metadata_condition` (None: no condition)."""
    if not condition or not condition.get("conditions"):
        return None
    parts = [_condition(i, c) for i, c in enumerate(condition["conditions"])]
    return {"or" if condition.get("logical_operator") == "or" else "and": parts}


def _condition(i: int, condition: dict[str, Any]) -> dict[str, Any]:
    name, op = condition["name"], condition["comparison_operator"]
    if op in ("empty", "not empty"):
        return {"field": name, "op": "exists", "value": op == "not empty"}
    if op not in _OPS and op != "not in":
        supported = ", ".join([*_OPS, "not in", "empty", "not empty"])
        raise _invalid(
            (i, "comparison_operator"),
            f"the operator {op!r} is not supported; use one of {supported}",
        )
    value = _value(i, op, condition.get("value"))
    if op == "not in":
        return {"not": {"field": name, "op": "in", "value": value}}
    return {"field": name, "op": _OPS[op], "value": value}


def _value(i: int, op: str, value: Any) -> Any:
    """The value as postrag's filter compares it: Dify may send a number as text."""
    if op in ("in", "not in"):
        if not isinstance(value, list) or not all(isinstance(v, _SCALAR) for v in value):
            raise _invalid((i, "value"), f"{op!r} takes a list of strings or numbers")
        return value
    if not isinstance(value, _SCALAR):  # missing, a list or an object
        raise _invalid((i, "value"), f"{op!r} takes a string or a number")
    return _number(value) if op in _NUMERIC and isinstance(value, str) else value


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return int(number) if number.is_integer() else number


def _invalid(at: tuple[str | int, ...], msg: str) -> ValidationFailed:
    return ValidationFailed.on_field(
        "metadata_condition",
        msg,
        type="value_error",
        at=("conditions", *at),
        detail=f"the metadata condition is invalid: {msg}",
    )


def _as_sent(exc: ValidationFailed) -> ValidationFailed:
    """A filter error (`filter.and.1.value`) named as Dify sent the condition, else `exc`."""
    first = exc.errors[0] if exc.errors else None
    if first is None or first.path[:1] != ("filter",) or len(first.path) < 3:
        return exc
    names: dict[str | int, str | int] = {"field": "name", "op": "comparison_operator"}
    rest = [names.get(p, p) for p in first.path[3:] if p != "not"]
    return _invalid((first.path[2], *rest), first.msg)
