"""The model registry: registering, changing and removing models, their live state, Ollama pulls.

A row says what postrag may use; the live state says what the provider has right now. Asking the
providers never fails a request: an unreachable one makes its models `unreachable`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.errors import AppError, NotFound, ValidationFailed, as_app_error
from app.providers import local_embedder
from app.providers.llm import LLMClients, LLMError, ModelInfo
from app.repositories import Conn, Row, locks, returned
from app.repositories import llm_models as model_repo

log = logging.getLogger(__name__)

DEFAULT_LOCK_KEY = 0x706F737472616703  # serialises choosing a default (one per kind)
# Who made a model its kind's default: an admin's choice outlives the configuration's.
_ADMIN_DEFAULT = {"is_default": True, "default_source": "admin"}
_CONFIGURED_DEFAULT = {"is_default": True, "default_source": "environment"}


@dataclass(frozen=True)
class LiveState:
    state: str  # installed | missing | unreachable
    context_length: int | None = None
    dimension: int | None = None
    capabilities: list[str] = field(default_factory=list)
    detail: str | None = None


@dataclass(frozen=True)
class PullEvent:
    kind: str  # progress | done | error
    data: dict[str, Any]
    error: AppError | None = None  # of an `error` event: the API renders it as any problem


def _invalid(field: str, msg: str) -> ValidationFailed:
    return ValidationFailed.on_field(field, msg, type="value_error")


def get(conn: Conn, model_id: int) -> Row:
    row = model_repo.get(conn, model_id)
    if row is None:
        raise NotFound(f"no model {model_id}")
    return row


def list_page(conn: Conn, *, kind: str | None, limit: int, offset: int) -> tuple[list[Row], int]:
    return model_repo.list_page(conn, kind=kind, limit=limit, offset=offset)


def _listed(name: str, names: set[str]) -> bool:
    """Ollama lists `llama3` as `llama3:latest`."""
    return name in names or (":" not in name and f"{name}:latest" in names)


def _installed(llm: LLMClients, provider: str, name: str) -> LiveState:
    if provider != "ollama":
        return LiveState("installed")  # OpenAI-compatible servers tell nothing more
    try:
        info = llm.show(provider, name)
    except LLMError as exc:
        return LiveState("installed", detail=f"no details: {exc.detail}")
    if info is None:
        return LiveState("missing", detail=f"ollama does not have {name!r}")
    return LiveState("installed", info.context_length, info.dimension, list(info.capabilities))


def _missing(provider: str, name: str) -> LiveState:
    if provider == "ollama":
        return LiveState("missing", detail=f"ollama does not have {name!r}: pull it")
    return LiveState("missing", detail=f"the {provider} server does not serve {name!r}")


def live_states(llm: LLMClients, rows: list[Row]) -> dict[int, LiveState]:
    """Each row's live state by id, asking each provider for its models once."""
    listed: dict[str, set[str] | LLMError] = {}
    states: dict[int, LiveState] = {}
    for row in rows:
        provider, name = row["provider"], row["name"]
        if provider == "local":  # bundled with postrag: always there
            states[row["id"]] = LiveState(
                "installed", row["context_length"], local_embedder.DIMENSION, ["embedding"]
            )
            continue
        if provider not in listed:
            try:
                listed[provider] = {m.name for m in llm.client(provider).list_models()}
            except LLMError as exc:
                listed[provider] = exc
        found = listed[provider]
        if isinstance(found, LLMError):
            states[row["id"]] = LiveState("unreachable", detail=found.detail)
        elif _listed(name, found):
            states[row["id"]] = _installed(llm, provider, name)
        else:
            states[row["id"]] = _missing(provider, name)
    return states


def _ollama_info(llm: LLMClients, name: str) -> ModelInfo | None:
    try:
        return llm.show("ollama", name)
    except LLMError as exc:
        log.info("registering %r without Ollama's details: %s", name, exc.detail)
        return None


def _discover(
    llm: LLMClients, name: str, kind: str, dimension: int | None, context_length: int | None
) -> tuple[int | None, int | None]:
    """Ollama's dimension and context length where the admin gave none; 422 on contradictions."""
    info = _ollama_info(llm, name)
    if info is None:
        return dimension, context_length
    if info.kind is not None and info.kind != kind:
        raise _invalid("kind", f"ollama says {name!r} is a {info.kind} model")
    if kind == "embedding" and info.dimension is not None:
        if dimension is not None and dimension != info.dimension:
            raise _invalid("dimension", f"ollama says {name!r} has {info.dimension} dimensions")
        dimension = info.dimension
    return dimension, context_length or info.context_length


def _check_local(name: str, kind: str, dimension: int | None) -> int:
    if kind != "embedding":
        raise _invalid("provider", "the local provider only has its bundled embedding models")
    if name not in local_embedder.MODEL_NAMES:
        names = ", ".join(map(repr, local_embedder.MODEL_NAMES))
        raise _invalid("name", f"the local provider only has {names}")
    if dimension not in (None, local_embedder.DIMENSION):
        raise _invalid("dimension", f"the local model has {local_embedder.DIMENSION} dimensions")
    return local_embedder.DIMENSION


def _check_dimension(provider: str, kind: str, dimension: int | None) -> None:
    if kind == "chat" and dimension is not None:
        raise _invalid("dimension", "chat models have no dimension")
    if kind == "embedding" and dimension is None:
        raise _invalid("dimension", f"required for embedding models ({provider} could not tell it)")


def _make_default(conn: Conn, kind: str) -> None:
    """Clear the kind's default so the caller can set another (in the caller's transaction)."""
    locks.advisory_xact_lock(conn, DEFAULT_LOCK_KEY)
    model_repo.clear_default(conn, kind)


def register(
    conn: Conn,
    llm: LLMClients,
    *,
    provider: str,
    name: str,
    kind: str,
    dimension: int | None,
    context_length: int | None,
    capabilities: dict[str, Any],
    is_default: bool,
) -> Row:
    """A new registry row (409 when the provider already has this name)."""
    if provider == "local":
        dimension = _check_local(name, kind, dimension)
        context_length = context_length or local_embedder.MAX_TOKENS
    elif provider == "ollama":
        dimension, context_length = _discover(llm, name, kind, dimension, context_length)
    _check_dimension(provider, kind, dimension)
    with conn.transaction():
        if is_default:
            _make_default(conn, kind)
        row = model_repo.insert(
            conn,
            provider=provider,
            name=name,
            kind=kind,
            dimension=dimension,
            context_length=context_length,
            capabilities=capabilities,
        )
        if is_default:
            row = returned(model_repo.update(conn, row["id"], _ADMIN_DEFAULT))
    return row


def update(conn: Conn, model_id: int, changes: dict[str, Any]) -> Row:
    """Change context_length, capabilities or is_default (true replaces the kind's default)."""
    with conn.transaction():
        row = get(conn, model_id)
        if not changes:
            return row
        if changes.get("is_default"):
            _make_default(conn, row["kind"])
        if "is_default" in changes:
            changes = {**changes, "default_source": "admin" if changes["is_default"] else None}
        return returned(model_repo.update(conn, model_id, changes))


def delete(conn: Conn, model_id: int) -> None:
    """Remove a model; 409 while an embedding space uses it, preferences fall back to default."""
    with conn.transaction():
        if not model_repo.delete(conn, model_id):
            raise NotFound(f"no model {model_id}")


def pullable(conn: Conn, model_id: int) -> Row:
    row = get(conn, model_id)
    if row["provider"] != "ollama":
        raise ValidationFailed.on_field(
            "model_id",
            "not an Ollama model",
            type="value_error",
            detail=f"only Ollama models can be pulled; model {model_id} is {row['provider']}'s",
        )
    return row


def _progress(data: dict[str, Any]) -> dict[str, Any]:
    total, completed = data.get("total"), data.get("completed")
    percent = None
    if isinstance(total, int) and total > 0 and isinstance(completed, int):
        percent = round(100 * completed / total, 1)
    return {
        "status": data.get("status"),
        "digest": data.get("digest"),
        "total": total,
        "completed": completed,
        "percent": percent,
    }


def pull(llm: LLMClients, row: Row) -> Iterator[dict[str, Any]]:
    """Ollama's progress for pulling the row's model; raises LLMError when the pull fails."""
    for data in llm.ollama().pull(row["name"]):
        yield _progress(data)
    llm.forget("ollama", row["name"])


def pull_events(llm: LLMClients, row: Row) -> Iterator[PullEvent]:
    """`progress` events, then `done` ({"live"}) or `error` (its AppError): never raises."""
    try:
        for progress in pull(llm, row):
            yield PullEvent("progress", progress)
        live = live_states(llm, [row])[row["id"]]
    except Exception as exc:
        yield PullEvent("error", {}, as_app_error(exc, f"the pull of {row['name']!r}"))
        return
    yield PullEvent("done", {"live": live})


def default_if_none(conn: Conn, row: Row) -> None:
    """Make `row` its kind's default when the kind has none (inside the caller's transaction)."""
    locks.advisory_xact_lock(conn, DEFAULT_LOCK_KEY)
    if model_repo.default_for(conn, row["kind"]) is None:
        model_repo.update(conn, row["id"], _CONFIGURED_DEFAULT)


def apply_configured_chat_model(conn: Conn, provider: str, name: str) -> str:
    """Make POSTRAG_CHAT_MODEL on `provider` the default chat model, or drop the default that an
    earlier start's configuration made; what chats answer with by default, for the start's log.

    The configuration wins at each start where it names a model (an admin's later choice lasts
    until then); an admin's choice also outlives a configuration that names none.
    Nothing is asked of the provider here (it may be down at start); its details show up live.
    """
    configured = bool(name) and provider in ("ollama", "openai")
    with conn.transaction():
        locks.advisory_xact_lock(conn, DEFAULT_LOCK_KEY)
        if configured:
            _register_configured(conn, provider, name)
        else:
            dropped = model_repo.clear_default(conn, "chat", source="environment")
            if dropped is not None:
                log.info(
                    "%s/%s is no longer the default chat model: POSTRAG_CHAT_MODEL made it so"
                    " and no longer names it on a language model provider",
                    dropped["provider"],
                    dropped["name"],
                )
        default = model_repo.default_for(conn, "chat")
    if default is not None:
        who = "POSTRAG_CHAT_MODEL" if default["default_source"] == "environment" else "an admin"
        return (
            f"chats answer with {default['provider']}/{default['name']}, the default chat model"
            f" ({who} chose it), unless a user prefers another"
        )
    if provider == "ollama":
        return "chats answer with the first chat model installed in Ollama"
    return "chats answer extractively: no language model is configured or registered as default"


def _register_configured(conn: Conn, provider: str, name: str) -> None:
    row = model_repo.find(conn, provider, name)
    if row is None:
        row = model_repo.insert(
            conn,
            provider=provider,
            name=name,
            kind="chat",
            dimension=None,
            context_length=None,
            capabilities={},
        )
        log.info("registered the chat model %s/%s", provider, name)
    if row["kind"] == "chat" and not row["is_default"]:  # an admin may have chosen it already
        model_repo.clear_default(conn, "chat")
        model_repo.update(conn, row["id"], _CONFIGURED_DEFAULT)
