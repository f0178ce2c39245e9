"""The @endpoint decorator: authentication, pydantic validation of bodies and queries, OpenAPI data.

Every view declares what it takes and answers; the same declaration drives validation here and
the OpenAPI document in app/api/openapi.py, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import psycopg
import pydantic
from flask import Response, g, json, request

from app.api import cookies
from app.db import scope
from app.errors import (
    BadRequest,
    FieldError,
    Forbidden,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.repositories import Conn
from app.runtime import runtime
from app.services import authentication, tokens, usage, web_sessions
from app.services.tokens import Principal
from app.storable import reject_unstorable_text

# "optional": anyone may call; a request with an Authorization header or the web session's cookie
# is authenticated as "user".
Auth = Literal["public", "optional", "user", "admin"]
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
READ_FROM_HEADER = "X-Postrag-Read-From"  # replica or primary: which served a read_db() view
CSRF_HEADER = "X-CSRF-Token"  # writes made with the web session's cookie must send it


@dataclass(frozen=True)
class EndpointSpec:
    summary: str
    tag: str
    auth: Auth
    status: int
    body: type[pydantic.BaseModel] | None
    query: type[pydantic.BaseModel] | None
    response: type[pydantic.BaseModel] | None
    errors: tuple[int, ...] = field(default=())
    multipart: type[pydantic.BaseModel] | None = None
    also: tuple[int, ...] = ()  # other success statuses answering the same `response` body
    reads_only: bool = False  # a POST that changes nothing (search) needs only the read scope
    streams: bool = False  # may answer text/event-stream instead of JSON
    raw_body: str | None = None  # the view reads a body of this media type itself (an upload)
    raw_response: str | None = None  # the view answers a body of this media type (a download)
    # Errors as this JSON body instead of problem+json (a protocol with its own: Dify's).
    error_body: type[pydantic.BaseModel] | None = None


def db() -> Conn:
    """The request's connection, taken from the pool on first use and returned at teardown."""
    if "db_conn" not in g:
        g.db_conn = runtime().pool.getconn()
        if "principal" in g:  # taken again after release_db: still the caller's rows only
            scope.act_as(g.db_conn, g.principal.user_id)
    return cast(Conn, g.db_conn)


def read_db() -> Conn:
    """For views that only read: a replica connection (acting as the caller) while the replica
    is up and within POSTRAG_REPLICA_MAX_LAG_S of the primary, else db(). The answer says which
    in X-Postrag-Read-From. Authentication and accounting stay on db() (the primary)."""
    if "read_conn" in g:
        return cast(Conn, g.read_conn)
    replica = runtime().replica
    conn = replica.getconn(db()) if replica is not None else None
    if replica is not None and conn is not None:
        try:
            if "principal" in g:
                scope.act_as(conn, g.principal.user_id)
        except psycopg.OperationalError as exc:  # it went away since its check
            replica.putconn(conn)
            replica.mark_down(exc)
            conn = None
    if conn is None:
        g.read_from = "primary"
        return db()
    g.read_conn, g.read_from = conn, "replica"
    return cast(Conn, conn)


@contextmanager
def read_db_while_used() -> Iterator[Conn]:
    """read_db() for one stretch of a service's work, given back after it (release_db): none is
    held while the service waits on another server (a reranker) in between."""
    try:
        yield read_db()
    finally:
        release_db()


def release_db(_exc: BaseException | None = None) -> None:
    conn = g.pop("db_conn", None)
    if conn is not None:
        runtime().pool.putconn(conn)
    read_conn = g.pop("read_conn", None)
    replica = runtime().replica
    if read_conn is not None and replica is not None:
        if read_conn.broken:  # the replica went away mid-request: the next ones read the primary
            replica.mark_down(psycopg.OperationalError("connection lost"))
        replica.putconn(read_conn)


def principal() -> Principal:
    who: Principal = g.principal
    return who


def bearer_jwt() -> str | None:
    """The caller's bearer JWT of the OpenID provider (what token exchange passes on), or None
    when the request came with an API token or the web session (which keeps no such token)."""
    who = principal()
    header = request.headers.get("Authorization")
    if who.token_id is not None or who.session_id is not None or not header:
        return None
    return tokens.bearer_of(header)


def _authorize_optional(reads_only: bool) -> None:
    """A bearer token must be valid; a session cookie that no longer is (expired, signed out)
    leaves the caller anonymous, as a browser without one would be."""
    if "Authorization" in request.headers:
        _authorize("user", reads_only)
    elif cookies.read(cookies.SESSION):
        try:
            _authorize("user", reads_only)
        except Unauthorized:
            g.pop("principal", None)


def authorize_bearer(reads_only: bool) -> Principal:
    """For a view outside @endpoint (the MCP transport): authenticated as @endpoint does, rate
    limited and accounted, but by an `Authorization: Bearer` credential only, never the web
    page's cookie (whose writes need a CSRF token such clients cannot send)."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthorized("send Authorization: Bearer with an API token")
    _authorize("user", reads_only)
    return principal()


def optional_principal() -> Principal | None:
    """The caller of an `optional` endpoint, None when anonymous."""
    who: Principal | None = g.get("principal")
    return who


def _errors(exc: pydantic.ValidationError, where: str) -> list[FieldError]:
    return [
        FieldError(tuple(e["loc"]), e["msg"], e["type"], source=where)
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def changes_of(body: pydantic.BaseModel, *, nullable: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields a PATCH body sets; 422 naming each one set to null that may not be."""
    changes = body.model_dump(exclude_unset=True)
    nulls = [k for k, v in changes.items() if v is None and k not in nullable]
    if nulls:
        raise ValidationFailed(
            "fields cannot be set to null",
            errors=[FieldError((k,), "may not be null", "null", source="body") for k in nulls],
        )
    return changes


def parse_json(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    """The request's JSON body validated by `model` (400/415/422 problems otherwise)."""
    return _parse_body(model)


def validate(model: type[pydantic.BaseModel], data: Any, where: str) -> Any:
    """`data` validated by `model`, or a 422 problem locating the errors under `where`."""
    reject_unstorable_text(data, source=where)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(f"the {where} is invalid", errors=_errors(exc, where)) from None


def _parse_body(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    if not request.is_json:
        raise UnsupportedMediaType("send the request body as application/json")
    try:
        data = json.loads(request.get_data(cache=True) or b"null")
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    reject_unstorable_text(data, source="body")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed("the request body is invalid", errors=_errors(exc, "body")) from None


def _parse_query(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    data = {key: values if len(values) > 1 else values[0] for key, values in request.args.lists()}
    reject_unstorable_text(data, source="query")
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(
            "the query parameters are invalid", errors=_errors(exc, "query")
        ) from None


def _authorize(auth: Auth, reads_only: bool) -> None:
    header = request.headers.get("Authorization")
    rt = runtime()
    claims = authentication.jwt_claims(header, rt.oidc)  # before taking a connection
    scope.act_as_owner(db())  # the one lookup made before anyone is known
    try:
        session = cookies.read(cookies.SESSION)
        who = authentication.authenticate(db(), header, rt.oidc, rt.settings, session, claims)
        if who.session_id is not None and request.method not in READ_METHODS:
            _check_cookie_write(session or "")
    except BaseException:
        scope.act_as_anonymous(db())
        raise
    g.principal = who  # from here on the request is accounted to this token
    scope.act_as(db(), who.user_id)  # and PostgreSQL shows it only this user's rows (RLS)
    limit = runtime().settings.rate_limit_per_minute
    g.rate_headers = usage.count_request(db(), who, limit)
    needed = "read" if reads_only or request.method in READ_METHODS else "write"
    if needed not in who.scopes:
        raise Forbidden(f"this token lacks the {needed!r} scope")
    if auth == "admin" and not who.is_admin:
        raise Forbidden("this endpoint is for admins only")


def _check_cookie_write(session: str) -> None:
    """A write with the session cookie must come from postrag's own page: the Origin (when the
    browser sends one) is this host, and the session's CSRF token is in X-CSRF-Token."""
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise Forbidden("a write with the session cookie must come from postrag's own page")
    web_sessions.check_csrf(session, request.headers.get(CSRF_HEADER))


def _render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    headers: dict[str, str] = {}
    if isinstance(result, tuple):  # (model, headers) or (model, headers, one of `also`)
        result, headers, *other_status = result
        status = other_status[0] if other_status else status
    if result is None:
        return Response(status=204 if status == 200 else status, headers=headers)
    body = result.model_dump(mode="json") if isinstance(result, pydantic.BaseModel) else result
    return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)


def endpoint(
    *,
    summary: str,
    tag: str,
    auth: Auth = "user",
    status: int = 200,
    body: type[pydantic.BaseModel] | None = None,
    query: type[pydantic.BaseModel] | None = None,
    response: type[pydantic.BaseModel] | None = None,
    errors: tuple[int, ...] = (),
    multipart: type[pydantic.BaseModel] | None = None,
    also: tuple[int, ...] = (),
    reads_only: bool = False,
    streams: bool = False,
    raw_body: str | None = None,
    raw_response: str | None = None,
    error_body: type[pydantic.BaseModel] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Response]]:
    """Wrap a view: authenticate, validate `body`/`query` into kwargs, serialize the result.

    A view returns a pydantic model, `(model, headers)`, `(model, headers, status)` (a status of
    `also`), None (204) or a ready Response. With `multipart` (documented as the
    multipart/form-data alternative to `body`), the view reads the request body itself and gets
    neither. `error_body` documents errors in that shape; the blueprint's own error handler
    renders them so.
    """
    spec = EndpointSpec(
        summary,
        tag,
        auth,
        status,
        body,
        query,
        response,
        errors,
        multipart,
        also,
        reads_only,
        streams,
        raw_body,
        raw_response,
        error_body,
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**path_args: Any) -> Response:
            if auth == "optional":
                _authorize_optional(reads_only)
            elif auth != "public":
                _authorize(auth, reads_only)
            kwargs = dict(path_args)
            if body is not None and multipart is None:
                kwargs["body"] = _parse_body(body)
            if query is not None:
                kwargs["query"] = _parse_query(query)
            response = _render(view(**kwargs), status)
            if "read_from" in g:
                response.headers[READ_FROM_HEADER] = g.read_from
            return response

        wrapper.endpoint_spec = spec  # type: ignore[attr-defined]
        return wrapper

    return decorate
