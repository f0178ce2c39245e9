"""The AppError hierarchy: errors a client can act on, rendered by app/api/problems.py."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error the client can act on; `status`, `title` and `detail` become the problem body."""

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


class ValidationFailed(AppError):
    status, title = 422, "Validation failed"


class TooManyRequests(AppError):
    status, title = 429, "Too many requests"


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


# Expected constraint violations, by constraint name: the error class and the client's message.
CONSTRAINT_ERRORS: dict[str, tuple[type[AppError], str]] = {
    "users_name_key": (Conflict, "a user with this name already exists"),
    "collections_owner_id_name_key": (Conflict, "you already have a collection with this name"),
    "llm_models_provider_name_key": (Conflict, "this provider already has a model with this name"),
    "chat_messages_one_streaming_idx": (
        Conflict,
        "an answer is already being generated in this chat; wait for it or stop it",
    ),
    "embedding_spaces_embedding_model_id_fkey": (
        Conflict,
        "this embedding model has vectors (an embedding space) and cannot be deleted",
    ),
    "documents_collection_id_fkey": (NotFound, "the collection does not exist (any more)"),
}
