"""The MCP server's tools (search, fetch, list_collections, ask), shared by /mcp and `postrag mcp`.

A tool parses its arguments (the SDK validates them against the schema built from the
signature), calls one service on a pooled connection acting as the caller (PostgreSQL's
row-level security, as for an HTTP request) and answers a pydantic model, which the SDK sends as
structured content and as JSON text. Who calls comes from the `Caller` of the request (/mcp) or
of the process (stdio), set with `serving`. Every failure becomes a tool result with isError and
the detail an HTTP problem would carry: another user's id reads as a missing one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from app.db import scope
from app.errors import Forbidden, as_app_error
from app.repositories import Conn
from app.repositories.search import Hit
from app.runtime import Runtime
from app.services import collections, openai_compat, passages, prompting, search
from app.services.tokens import Principal

MAX_QUERY_CHARS = 4000  # as POST /api/v1/search
MAX_TOP_K = 50
MAX_FETCH_CHARS = 100_000  # a document's text beyond this is cut (truncated: true)
MAX_OFFSET = 2**31 - 1  # as the REST API's list endpoints
_ID = r"^(chunk|document):[1-9][0-9]{0,17}$"
_Ids = Annotated[int, Field(ge=1, le=2**62)]


@dataclass(frozen=True)
class Caller:
    """Who calls the tools and what they run on. `identify` is asked at every call, on a
    connection acting as the tables' owner: the principal of the request, or a token checked
    again (a revoked token stops a long-running stdio server)."""

    runtime: Runtime
    base_url: str  # citation links point at this server's API
    identify: Callable[[Conn], Principal]
    llm_usage: dict[str, int]  # tokens the answers took, for the request's usage row


_caller: ContextVar[Caller] = ContextVar("postrag_mcp_caller")


@contextmanager
def serving(caller: Caller) -> Iterator[None]:
    """Tool calls within the block (tasks and worker threads started in it too) act for `caller`."""
    token = _caller.set(caller)
    try:
        yield
    finally:
        _caller.reset(token)


@contextmanager
def _failing_as(tool: str) -> Iterator[None]:
    """Any error in the block as the tool's isError result, with what HTTP would say of it."""
    try:
        yield
    except ToolError:
        raise
    except Exception as exc:
        raise ToolError(as_app_error(exc, f"the MCP tool {tool}").detail) from None


@contextmanager
def _acting(tool: str) -> Iterator[tuple[Conn, Principal, Caller]]:
    """A pooled connection acting as the caller (anonymous again once back in the pool)."""
    caller = _caller.get()
    with _failing_as(tool), caller.runtime.pool.connection() as pooled:
        conn: Conn = pooled
        with scope.acting_as_owner(conn):
            who = caller.identify(conn)
        if "read" not in who.scopes:
            raise Forbidden("this token lacks the 'read' scope")
        scope.act_as(conn, who.user_id)
        yield conn, who, caller


def _identified(tool: str) -> tuple[Principal, Caller]:
    """The caller and who they are, on a connection given back at once."""
    with _acting(tool) as (_, who, caller):
        return who, caller


class Passage(BaseModel):
    id: str = Field(description="give it to fetch for the whole chunk")
    title: str
    url: str = Field(description="the chunk in postrag's API (GET with your bearer token)")
    text: str
    chunk_id: int
    document_id: int
    collection_id: int
    filename: str
    page: int | None
    char_start: int = Field(description="the passage's span in the document's extracted text")
    char_end: int
    heading_path: list[str]
    score: float = Field(description="hybrid: fused RRF score; semantic: similarity; else BM25")


class SearchResults(BaseModel):
    mode: str
    results: list[Passage]
    warnings: list[str]


class Fetched(BaseModel):
    id: str
    title: str
    url: str
    text: str
    truncated: bool = Field(description=f"a document's text is cut at {MAX_FETCH_CHARS} chars")
    metadata: dict[str, Any]


class CollectionItem(BaseModel):
    id: int
    name: str
    description: str
    role: str = Field(description="owner, editor or reader")
    is_shared: bool = Field(description="readable by every user")


class CollectionList(BaseModel):
    collections: list[CollectionItem]
    total: int


class Citation(BaseModel):
    n: int = Field(description="the [n] the answer cites")
    cited: bool
    url: str
    chunk_id: int
    document_id: int
    filename: str
    page: int | None
    char_start: int
    char_end: int
    score: float


class Answer(BaseModel):
    answer: str
    model: str = Field(description="the model that answered, or 'extractive' (no model)")
    citations: list[Citation]
    warnings: list[str]


def _chunk_url(caller: Caller, chunk_id: int) -> str:
    return f"{caller.base_url}/api/v1/chunks/{chunk_id}"


def _passage(caller: Caller, hit: Hit) -> Passage:
    title = (hit.document or {}).get("title") or hit.filename
    return Passage(
        id=f"chunk:{hit.chunk_id}",
        title=title,
        url=_chunk_url(caller, hit.chunk_id),
        **{name: getattr(hit, name) for name in Passage.model_fields if hasattr(hit, name)},
    )


Query = Annotated[
    str,
    Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S", description="what to look for"),
]
Scope = Annotated[
    list[_Ids] | None,
    Field(max_length=100, description="collection ids (list_collections); default: all you read"),
]
Mode = Annotated[
    Literal["hybrid", "semantic", "fulltext"] | None,
    Field(description="default: your preference (hybrid unless changed)"),
]
TopK = Annotated[
    int | None, Field(ge=1, le=MAX_TOP_K, description="how many passages; default: yours (8)")
]


def search_tool(
    query: Query, collection_ids: Scope = None, mode: Mode = None, top_k: TopK = None
) -> SearchResults:
    """Search the user's postrag collections (and those shared with them) for passages; each
    comes with its document, page, character span, score and a citation URL."""
    who, caller = _identified("search")  # the search takes connections only while it uses them
    request = search.SearchRequest(
        query=query, mode=mode, top_k=top_k, collection_ids=collection_ids or None
    )
    with _failing_as("search"):
        found = search.search(
            lambda: scope.user_connection(caller.runtime.pool, who.user_id),
            who,
            request,
            caller.runtime.search,
        )
    hits = [_passage(caller, h) for h in found.hits]
    return SearchResults(mode=found.mode, results=hits, warnings=found.warnings)


def fetch_tool(
    id: Annotated[  # noqa: A002 - the name MCP clients (ChatGPT's connectors) expect
        str, Field(pattern=_ID, description="'chunk:<id>' (from search) or 'document:<id>'")
    ],
) -> Fetched:
    """A chunk's text or a whole document's extracted text, with metadata."""
    kind, number = id.split(":")
    with _acting("fetch") as (conn, who, caller):
        if kind == "chunk":
            row = passages.chunk(conn, who, int(number))
            meta = {k: row[k] for k in ("document_id", "collection_id", "filename", "page")}
            meta |= {k: row[k] for k in ("char_start", "char_end", "heading_path", "metadata")}
            title = row["title"] or row["filename"]
            url, text, truncated = _chunk_url(caller, row["id"]), row["text"], False
        else:
            found = passages.document_text(conn, who, int(number), MAX_FETCH_CHARS)
            doc = found.document
            meta = {"collection_id": doc.collection_id, "filename": doc.filename}
            meta |= {"content_type": doc.content_type, "status": doc.status}
            meta |= {"metadata": doc.metadata, "chunk_count": doc.chunk_count}
            title, text, truncated = doc.title or doc.filename, found.text, found.truncated
            url = f"{caller.base_url}/api/v1/documents/{doc.id}"
        return Fetched(id=id, title=title, url=url, text=text, truncated=truncated, metadata=meta)


def list_collections_tool(
    limit: Annotated[int, Field(ge=1, le=100)] = 50,
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0,
) -> CollectionList:
    """The collections the user may search: their own, and those shared with them, newest first."""
    with _acting("list_collections") as (conn, who, _caller):
        rows, total = collections.list_page(conn, who, limit=limit, offset=offset)
        shown = [CollectionItem(**{k: r[k] for k in CollectionItem.model_fields}) for r in rows]
        return CollectionList(collections=shown, total=total)


def ask_tool(
    question: Query, collection_ids: Scope = None, mode: Mode = None, top_k: TopK = None
) -> Answer:
    """Answer a question from the user's documents with numbered citations [n], by the chat
    model postrag is configured with, or (with none) the best passages quoted as they are."""
    with _acting("ask") as (_, who, caller):
        rt = caller.runtime
    with _failing_as("ask"):  # connections are taken only while used: not during the model
        completion = openai_compat.prepare(
            rt.pool,
            who,
            model=None,
            messages=[{"role": "user", "content": question}],
            rag={"collection_ids": collection_ids or None, "mode": mode, "top_k": top_k},
            temperature=None,
            max_tokens=None,
            llm=rt.llm,
            search=rt.search,
        )
        text = _generate(completion, caller)
    sources = completion.prompt.sources
    return Answer(
        answer=text,
        model=completion.target.model,
        citations=[_citation(caller, c) for c in prompting.citations(sources, text)],
        warnings=completion.warnings,
    )


def _generate(completion: openai_compat.Completion, caller: Caller) -> str:
    """The whole answer (reasoning left out), its tokens counted against the daily budget."""
    account = openai_compat.Accountant(completion, caller.runtime.pool, caller.llm_usage)
    text = reasoning = ""
    try:
        for answer, thought, last in openai_compat.pieces(completion, caller.runtime.llm):
            text, reasoning = text + answer, reasoning + thought
            if last is not None:
                account(completion.usage(last, text + reasoning))
                return text
    finally:
        account.close(text + reasoning)
    raise RuntimeError("the model's stream ended without its closing piece")


def _citation(caller: Caller, citation: prompting.Citation) -> Citation:
    return Citation(url=_chunk_url(caller, citation.chunk_id), **citation.as_json())


_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
_INSTRUCTIONS = (
    "postrag searches the documents of the user this server acts for. Call search (or ask for"
    " a cited answer), then fetch a result's id for its whole text; list_collections names the"
    " collections a search can be limited to. Cite passages by their url."
)


@functools.cache
def server() -> MCPServer:
    """The MCP server with postrag's tools (one per process: who calls comes from `serving`)."""
    mcp: MCPServer = MCPServer("postrag", instructions=_INSTRUCTIONS, version=_version())
    for name, tool, title in (
        ("search", search_tool, "Search documents"),
        ("fetch", fetch_tool, "Fetch a chunk or a document"),
        ("list_collections", list_collections_tool, "List collections"),
        ("ask", ask_tool, "Ask, with cited passages"),
    ):
        mcp.add_tool(tool, name=name, title=title, annotations=_READ_ONLY)
    return mcp


def _version() -> str:
    from importlib.metadata import version

    return version("postrag")
