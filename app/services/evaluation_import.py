"""BEIR's format into an evaluation set: the corpus ingested through the normal upload pipeline,
the queries and qrels (one split's) as the set's queries and document judgments.

BEIR: `corpus.jsonl` ({"_id", "title", "text", "metadata"?} per line), `queries.jsonl`
({"_id", "text"}), `qrels/<split>.tsv` (`query-id	corpus-id	score`, a header line first).
Every file is parsed and checked before anything is written, and the import is one transaction:
a failed import leaves no document, no set and no job behind. Each corpus entry becomes a text
document (its title, a blank line, its text) whose metadata keeps the BEIR id as `beir_id`; one
already in the collection with the same bytes is reused, not uploaded again. qrels naming an
unknown query or document are skipped and counted; queries without a judgment in the split are
not added.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from app import storable
from app.errors import AppError, ValidationFailed
from app.repositories import Conn, Row
from app.repositories.evaluations import Judgment, NewQuery
from app.services import collections, documents, evaluations
from app.services.documents import Upload
from app.services.tokens import Principal
from app.settings import Settings

MAX_DOCUMENTS = 10_000
MAX_QUERIES = 10_000
MAX_QRELS = 200_000
MAX_JUDGMENTS_PER_QUERY = 1000  # BEIR's sets judge up to a few hundred documents per query
MAX_ID_CHARS = 200


@dataclass(frozen=True)
class BeirFiles:
    corpus: bytes
    queries: bytes
    qrels: bytes


@dataclass
class ImportSummary:
    set: Row
    documents: int = 0  # corpus entries, each a document of the collection
    queued: int = 0  # of those, new documents queued for ingestion
    queries: int = 0
    judgments: int = 0
    qrels_skipped: int = 0  # naming a query or document the files do not have
    queries_without_judgments: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    queued_ids: dict[int, str] = field(default_factory=dict)  # new document id -> BEIR id


def _malformed(file: str, line: int, msg: str) -> ValidationFailed:
    return ValidationFailed.on_field(
        file, msg, type="value_error", at=("line", line), detail=f"{file} line {line}: {msg}"
    )


def _lines(file: str, data: bytes) -> Iterator[tuple[int, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _malformed(file, line, "not UTF-8") from None
    # Lines end at "\n" only: JSON allows U+0085, U+2028 and U+2029 raw inside its strings.
    for number, content in enumerate(text.split("\n"), start=1):
        content = content.removesuffix("\r")
        if content.strip():
            yield number, content


def _identifier(file: str, line: int, value: Any, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise _malformed(file, line, f"{name} must be a string of 1 to {MAX_ID_CHARS} characters")
    return value


def _objects(file: str, data: bytes, limit: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line, _id, object) of a JSON-lines file, ids unique."""
    seen: set[str] = set()
    for count, (number, line) in enumerate(_lines(file, data), start=1):
        if count > limit:
            raise _malformed(file, number, f"more than {limit} entries")
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            raise _malformed(file, number, "not a JSON object") from None
        if not isinstance(item, dict):
            raise _malformed(file, number, "not a JSON object")
        if storable.cleaned(item) != item:
            raise _malformed(file, number, "a NUL character or a lone surrogate")
        key = _identifier(file, number, item.get("_id"), "_id")
        if key in seen:
            raise _malformed(file, number, f"_id {key!r} appears twice")
        seen.add(key)
        yield number, key, item


def _text(file: str, line: int, item: dict[str, Any], name: str) -> str:
    value = item.get(name, "")
    if not isinstance(value, str):
        raise _malformed(file, line, f"{name} must be a string")
    return value


def _qrels(data: bytes) -> Iterator[tuple[int, str, str, int]]:
    """(line, query id, corpus id, grade) of a qrels file; its header line is skipped."""
    for count, (number, line) in enumerate(_lines("qrels", data), start=1):
        if count > MAX_QRELS:
            raise _malformed("qrels", number, f"more than {MAX_QRELS} lines")
        fields = line.split("\t")
        if count == 1 and fields[0].strip() == "query-id":
            continue
        if len(fields) != 3:
            msg = "expected query-id, corpus-id and score, tab-separated"
            raise _malformed("qrels", number, msg)
        query_id, corpus_id, score = (f.strip() for f in fields)
        if not (score.isascii() and score.isdigit()) or int(score) > evaluations.MAX_GRADE:
            msg = f"the score must be a whole number from 0 to {evaluations.MAX_GRADE}"
            raise _malformed("qrels", number, msg)
        yield number, query_id, corpus_id, int(score)


@dataclass(frozen=True)
class _Parsed:
    corpus: list[tuple[int, str, Upload]]  # (line, _id, the document to upload)
    queries: dict[str, str]  # _id -> text
    judged: dict[str, dict[str, int]]  # query _id -> corpus _id -> grade
    skipped: list[str]


def _corpus(data: bytes, collection_id: int) -> list[tuple[int, str, Upload]]:
    entries = []
    for line, key, item in _objects("corpus", data, MAX_DOCUMENTS):
        title, text = _text("corpus", line, item, "title"), _text("corpus", line, item, "text")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise _malformed("corpus", line, "metadata must be a JSON object")
        if not (title + text).strip():
            raise _malformed("corpus", line, "no title and no text")
        body = f"{title}\n\n{text}" if title else text
        upload = Upload(
            filename=f"{key}.txt",
            content_type="text/plain",
            data=body.encode(),
            collection_id=collection_id,
            title=title,
            metadata={**metadata, "beir_id": key},
            detect_format=False,
        )
        entries.append((line, key, upload))
    return entries


def parse(files: BeirFiles, collection_id: int) -> _Parsed:
    """Every file read and checked (422 naming the file and line), nothing written."""
    corpus = _corpus(files.corpus, collection_id)
    known = {key for _, key, _ in corpus}
    queries = {}
    for line, key, item in _objects("queries", files.queries, MAX_QUERIES):
        text = _text("queries", line, item, "text").strip()
        if not text or len(text) > evaluations.MAX_QUERY_CHARS:
            msg = f"text must be 1 to {evaluations.MAX_QUERY_CHARS} characters"
            raise _malformed("queries", line, msg)
        queries[key] = text
    judged: dict[str, dict[str, int]] = {}
    skipped = []
    for line, query_id, corpus_id, grade in _qrels(files.qrels):
        if query_id not in queries or corpus_id not in known:
            skipped.append(f"qrels line {line}: {query_id}\t{corpus_id}")
            continue
        judged.setdefault(query_id, {})[corpus_id] = grade
        if len(judged[query_id]) > MAX_JUDGMENTS_PER_QUERY:
            msg = f"query {query_id} has more than {MAX_JUDGMENTS_PER_QUERY} judgments"
            raise _malformed("qrels", line, msg)
    return _Parsed(corpus, queries, judged, skipped)


def import_beir(
    conn: Conn,
    who: Principal,
    files: BeirFiles,
    *,
    collection_id: int,
    name: str,
    settings: Settings,
    progress: Callable[[int], Any] = lambda n: None,
) -> ImportSummary:
    """A new set from BEIR files, its corpus uploaded into the collection (which the caller
    must be able to write); all or nothing. `progress` counts corpus entries stored."""
    collections.get_writable(conn, who, collection_id)
    parsed = parse(files, collection_id)
    with conn.transaction():
        created = evaluations.create(conn, who, collection_id=collection_id, name=name)
        summary = ImportSummary(created)
        document_ids = _upload_corpus(conn, who, parsed, summary, settings, progress)
        new_queries = [
            NewQuery(
                parsed.queries[key],
                key,
                tuple(Judgment(document_ids[c], None, g) for c, g in judged.items()),
            )
            for key, judged in parsed.judged.items()
        ]
        for start in range(0, len(new_queries), evaluations.MAX_QUERIES_PER_REQUEST):
            batch = new_queries[start : start + evaluations.MAX_QUERIES_PER_REQUEST]
            summary.queries += evaluations.add_queries(
                conn, who, created["id"], batch, max_judgments=MAX_JUDGMENTS_PER_QUERY
            )
        summary.judgments = sum(len(q.relevant) for q in new_queries)
        summary.set = evaluations.get(conn, who, created["id"])
    summary.qrels_skipped = len(parsed.skipped)
    summary.skipped_examples = parsed.skipped[:10]
    summary.queries_without_judgments = len(parsed.queries) - len(parsed.judged)
    return summary


def _upload_corpus(
    conn: Conn,
    who: Principal,
    parsed: _Parsed,
    summary: ImportSummary,
    settings: Settings,
    progress: Callable[[int], Any],
) -> dict[str, int]:
    """Upload each corpus entry (in the caller's transaction); BEIR id -> document id."""
    document_ids = {}
    for line, key, upload in parsed.corpus:
        try:
            uploaded = documents.upload(conn, who, upload, settings)
        except AppError as exc:
            raise _malformed("corpus", line, exc.detail) from None
        document_ids[key] = uploaded.document.id
        summary.documents += 1
        summary.queued += uploaded.queued
        if uploaded.queued:
            summary.queued_ids[uploaded.document.id] = key
        progress(1)
    return document_ids
