"""The AppError hierarchy: errors a client can act on, how a field is named in one, and which
exception any failure becomes. Rendered by app/api/problems.py (JSON and streams alike)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
import psycopg_pool
import pydantic

log = logging.getLogger(__name__)


class AppError(Exception):
    """An error the client can act on; `status`, `title`, `detail` and `extra` (more members of
    the problem object, such as `provider`) become the problem body."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status, title = 400, "Bad request"


class Unauthorized(AppError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="postrag"'}, **extra)


class Forbidden(AppError):
    status, title = 403, "Forbidden"


class NotFound(AppError):
    status, title = 404, "Not found"


class Conflict(AppError):
    status, title = 409, "Conflict"


class PayloadTooLarge(AppError):
    status, title = 413, "Content too large"


class UnsupportedMediaType(AppError):
    status, title = 415, "Unsupported media type"


@dataclass(frozen=True)
class FieldError:
    """One invalid input: the field and the path inside it, what is wrong, and a stable `type`.

    Code that is given a value names it as it was given (`("expires_at",)`, `("line", 3)`);
    whether it came from the request's body, query or path is for the API layer to say, which
    knows. `source` is set only by the code that parsed the request itself.
    """

    path: tuple[str | int, ...]
    msg: str
    type: str
    source: str | None = None  # body | query | path

    def loc(self, source: str) -> list[str | int]:
        """The `loc` of a problem's error entry: the source first (this one's, else `source`)."""
        return [self.source or source, *self.path]


class ValidationFailed(AppError):
    """422; `errors` name each invalid field (the problem's `errors` list)."""

    status, title = 422, "Validation failed"

    def __init__(self, detail: str, errors: Iterable[FieldError] = (), **extra: Any):
        super().__init__(detail, **extra)
        self.errors = tuple(errors)

    @classmethod
    def on_field(
        cls,
        field: str,
        msg: str,
        *,
        type: str,
        at: tuple[str | int, ...] = (),
        detail: str | None = None,
    ) -> ValidationFailed:
        """One invalid field (and the path `at` inside it); `detail` defaults to `msg`."""
        return cls(detail or msg, [FieldError((field, *at), msg, type)])

    @classmethod
    def first_of(cls, exc: pydantic.ValidationError, field: str, what: str) -> ValidationFailed:
        """The first error pydantic found in a value a service checked itself, on `field`;
        the detail is `what` (the value named, e.g. "invalid name 'x'") and the message."""
        first = exc.errors(include_url=False)[0]
        msg = first["msg"]
        return cls.on_field(field, msg, type=first["type"], detail=f"{what}: {msg}")


class TooManyRequests(AppError):
    status, title = 429, "Too many requests"


class InternalError(AppError):
    """Anything unexpected: logged where it happened; the client learns nothing more."""

    status, title = 500, "Internal server error"

    def __init__(self) -> None:
        super().__init__("an unexpected error occurred; it was logged")


class BadGateway(AppError):
    status, title = 502, "Bad gateway"


class ServiceUnavailable(AppError):
    status, title = 503, "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database is down or restarting (a connection failed, or none came in time)."""

    def __init__(self) -> None:
        super().__init__("the database is unavailable; retry later", headers={"Retry-After": "5"})


class GatewayTimeout(AppError):
    status, title = 504, "Gateway timeout"


# Expected constraint violations, by constraint name: the error the client gets instead.
CONSTRAINT_ERRORS: dict[str, Callable[[], AppError]] = {
    "users_name_key": partial(Conflict, "a user with this name already exists"),
    "collections_owner_id_name_key": partial(
        Conflict, "you already have a collection with this name"
    ),
    # Reached from the CLI (import --name, ingest --collection); the API validates names first.
    "collections_name_check": partial(
        ValidationFailed.on_field,
        "name",
        "must be 1 to 200 characters",
        type="invalid_length",
        detail="a collection's name must be 1 to 200 characters",
    ),
    "sources_owner_id_name_key": partial(Conflict, "you already have a source with this name"),
    "llm_models_provider_name_key": partial(
        Conflict, "this provider already has a model with this name"
    ),
    "chat_messages_one_streaming_idx": partial(
        Conflict, "an answer is already being generated in this chat; wait for it or stop it"
    ),
    "embedding_spaces_embedding_model_id_fkey": partial(
        Conflict, "this embedding model has vectors (an embedding space) and cannot be deleted"
    ),
    "documents_collection_id_fkey": partial(NotFound, "the collection does not exist (any more)"),
    # A share made while its collection, user or group is being deleted.
    "collection_shares_collection_id_fkey": partial(
        NotFound, "the collection does not exist (any more)"
    ),
    "collection_shares_user_id_fkey": partial(NotFound, "the user does not exist (any more)"),
    "collection_shares_group_id_fkey": partial(NotFound, "the group does not exist (any more)"),
    "groups_name_key": partial(Conflict, "a group with this name already exists"),
    "mcp_servers_name_key": partial(Conflict, "an MCP server with this name already exists"),
    "group_members_pkey": partial(Conflict, "this user is already a member of this group"),
    # A group or user deleted between the check and the insert.
    "group_members_group_id_fkey": partial(NotFound, "the group does not exist (any more)"),
    "group_members_user_id_fkey": partial(NotFound, "the user does not exist (any more)"),
    # A judged document or chunk deleted (or reindexed) between the check and the insert.
    "evaluation_judgments_document_id_fkey": partial(
        NotFound, "a judged document does not exist (any more)"
    ),
    "evaluation_judgments_chunk_id_fkey": partial(
        NotFound, "a judged chunk does not exist (any more)"
    ),
}


def constraint_error(exc: psycopg.IntegrityError) -> AppError | None:
    """The client's error for an expected constraint violation (by its name), else None."""
    make = CONSTRAINT_ERRORS.get(exc.diag.constraint_name or "")
    return make() if make is not None else None


def as_app_error(exc: BaseException, during: str) -> AppError:
    """What the client is told of any failure `during` something (named in the log): an
    AppError as it is, an expected constraint violation by its name, a lost database as a 503
    to retry, anything else as a logged 500 without internals."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, psycopg.IntegrityError) and (known := constraint_error(exc)) is not None:
        return known
    if isinstance(exc, psycopg.OperationalError | psycopg_pool.PoolTimeout):
        log.error("database unavailable during %s: %s", during, exc)
        return DatabaseUnavailable()
    log.error("unexpected error during %s", during, exc_info=exc)
    return InternalError()
