"""The ChatModel protocol, its errors (AppErrors naming the provider) and the client factory.

The rest of postrag only sees `ChatModel` (stream a reply) and `ModelCatalog` (what a provider
has installed): whether Ollama or an OpenAI-compatible server answers is decided here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import BadGateway

if TYPE_CHECKING:
    from app.providers.llm_http import OllamaClient
    from app.settings import Settings

LLM_PROVIDERS = ("ollama", "openai")
_USERINFO = re.compile(r"://[^/@\s]+@")


class LLMError(BadGateway):
    """A language-model provider failed (502 unless a subclass says); the problem names it."""

    def __init__(self, provider: str, detail: str):
        detail = _USERINFO.sub("://***@", detail)  # a base URL may carry credentials
        super().__init__(f"{provider}: {detail}", provider=provider)
        self.provider = provider


class LLMUnavailable(LLMError):
    """The provider cannot be reached (connection refused, DNS, nothing configured)."""

    status, title = 503, "Service unavailable"


class LLMTimeout(LLMError):
    """The provider took longer than POSTRAG_LLM_TIMEOUT_S to connect or to send the next piece."""

    status, title = 504, "Gateway timeout"


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may call: its name, what it does, its arguments' JSON Schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for; `id` pairs it with its result (made up when the provider
    gives none, as Ollama does)."""

    id: str
    name: str
    arguments: dict[str, Any]
    error: str | None = None  # arguments that could not be read (then `arguments` is empty)


@dataclass(frozen=True)
class Piece:
    """One streamed piece of a reply: answer text, reasoning text, the tool calls the model
    asks for (one piece holding all of them, just before the last), or the closing usage."""

    text: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False
    finish_reason: str | None = None  # on the last piece: stop | length | tool_calls
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class ModelInfo:
    """What a provider says about one of its models."""

    name: str
    kind: str | None = None  # chat | embedding, when the provider says
    context_length: int | None = None
    dimension: int | None = None
    capabilities: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    # {"role", "content"}, system first; and, when tools are offered, the calls the model made
    # and their results, as assistant_calls() and tool_message() write them
    messages: list[dict[str, Any]]
    temperature: float
    max_tokens: int  # longest answer
    context_length: int  # prompt + answer
    tools: tuple[ToolSpec, ...] = ()  # functions the model may call instead of answering
    # Longest wait to connect and for each piece (None: POSTRAG_LLM_TIMEOUT_S): a call whose
    # reply is given up past a deadline then ends by then, its connection closed.
    timeout_s: float | None = None


def assistant_calls(calls: Sequence[ToolCall], text: str = "") -> dict[str, Any]:
    """The assistant's message that asked for `calls` (whatever the provider)."""
    listed = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return {"role": "assistant", "content": text, "tool_calls": listed}


def tool_message(call: ToolCall, content: str) -> dict[str, Any]:
    """The result of `call`, for the model (whatever the provider)."""
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}


class ChatModel(Protocol):
    provider: str

    def stream(self, req: ChatRequest) -> Iterator[Piece]:
        """The reply's pieces in order, ending with one whose `done` is true.

        Closing the iterator early closes the upstream connection.
        """
        ...


class ModelCatalog(Protocol):
    provider: str

    def list_models(self) -> list[ModelInfo]: ...

    def show(self, model: str) -> ModelInfo | None:
        """Details of one model, or None when the provider does not have it."""
        ...


class ProviderClient(ChatModel, ModelCatalog, Protocol):
    """The HTTP client of one provider: it chats, lists and shows models, and closes."""

    def close(self) -> None: ...


def base_url(settings: Settings, provider: str) -> str:
    return settings.ollama_url if provider == "ollama" else settings.openai_base_url


def make_client(settings: Settings, provider: str) -> ProviderClient:
    """The HTTP client for `provider` (ollama or openai), a ChatModel and a ModelCatalog."""
    from app.providers import llm_http

    if provider == "ollama":
        return llm_http.OllamaClient(settings.ollama_url, settings.llm_timeout_s)
    if provider == "openai":
        return llm_http.OpenAIClient(
            settings.openai_base_url, settings.llm_timeout_s, settings.openai_api_key
        )
    raise LLMUnavailable(provider, "is not a language-model provider")


def ollama_answers(url: str, timeout_s: float = 0.5) -> bool:
    """True when an Ollama server answers GET /api/version at `url` (the auto-detection)."""
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/api/version", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and "version" in response.text


class LLMClients:
    """One HTTP client per provider, made on first use, and a short cache of model details.

    Lives on the app (`postrag.llm`). `provider` is the resolved POSTRAG_LLM: ollama, openai or
    none (then chats answer extractively unless a model is registered).
    """

    SHOW_TTL_S = 300.0

    def __init__(self, settings: Settings, provider: str):
        self.settings = settings
        self.provider = provider
        self._clients: dict[str, ProviderClient] = {}
        self._shown: dict[tuple[str, str], tuple[float, ModelInfo | None]] = {}
        self._lock = threading.Lock()

    def client(self, provider: str) -> ProviderClient:
        with self._lock:
            if provider not in self._clients:
                self._clients[provider] = make_client(self.settings, provider)
            return self._clients[provider]

    def ollama(self) -> OllamaClient:
        """Ollama's client, for what only Ollama does (pulling models)."""
        from app.providers.llm_http import OllamaClient

        client = self.client("ollama")
        assert isinstance(client, OllamaClient)
        return client

    def show(self, provider: str, model: str) -> ModelInfo | None:
        """The provider's details of `model`, cached for a few minutes."""
        key = (provider, model)
        cached = self._shown.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.SHOW_TTL_S:
            return cached[1]
        info = self.client(provider).show(model)
        self._shown[key] = (time.monotonic(), info)
        return info

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def forget(self, provider: str, model: str) -> None:
        self._shown.pop((provider, model), None)
