"""HTTP clients for language models: Ollama (/api/chat, /api/tags, /api/show, /api/pull) and
OpenAI-compatible servers (/v1/chat/completions as SSE, /v1/models). Chats are asked streamed;
a server that answers whole JSON instead (some do when tools are offered) is read all the same.
Tool calls come back as one Piece before the last (app/providers/llm_tools.py).

Every failure becomes an LLMError naming the provider and URL: unreachable is 503, a timeout
(connecting, or waiting for the next streamed piece) is 504, an error answer or a connection that
dies mid-reply is 502. Nothing here waits forever.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator, Iterator
from typing import Any

import httpx

from app.providers import llm, llm_tools
from app.providers.http_embedders import error_text
from app.providers.llm import (
    ChatRequest,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
    ModelInfo,
    Piece,
)


@contextlib.contextmanager
def _translated(provider: str, url: str) -> Iterator[None]:
    try:
        yield
    except httpx.ConnectError as exc:
        raise LLMUnavailable(provider, f"cannot reach {url}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise LLMTimeout(provider, f"{url} did not answer in time") from exc
    except httpx.TransportError as exc:
        raise LLMError(provider, f"{url} closed the connection mid-reply: {exc}") from exc


def _check(provider: str, url: str, response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()  # a streamed answer's body is not read yet
        raise LLMError(provider, f"{url} answered {response.status_code}: {error_text(response)}")


def _decoded(provider: str, url: str, line: str) -> Any:
    try:
        return json.loads(line)  # NaN in a tool call's arguments: llm_tools reads it as none
    except ValueError:
        raise LLMError(provider, f"{url} sent a line that is not JSON: {line[:100]!r}") from None


def _count(value: Any) -> int | None:
    """A token count the server reported, or None (then it is estimated) when it is no count:
    it goes into the daily budget, where a negative or enormous one would credit or lock it."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31:
        return value
    return None


def _last(finish_reason: str, usage: dict[str, Any]) -> Piece:
    return Piece(
        done=True,
        finish_reason=finish_reason,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
    )


class _Client:
    provider = ""

    def __init__(self, base_url: str, timeout_s: float, headers: dict[str, str] | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)), headers=headers
        )

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str) -> Any:
        url = self.base_url + path
        with _translated(self.provider, url):
            response = self._client.get(url)
        _check(self.provider, url, response)
        return _decoded(self.provider, url, response.text)

    chat_path = ""

    def stream(self, req: ChatRequest) -> Iterator[Piece]:
        body = self._chat_body(req)
        timeout = None if req.timeout_s is None else httpx.Timeout(req.timeout_s)
        lines = self._lines(self.chat_path, body, timeout)
        url = self.base_url + self.chat_path
        try:
            yield from self._pieces(lines, url)
        except (AttributeError, KeyError, TypeError) as exc:  # JSON of an unexpected shape
            raise LLMError(self.provider, f"{url} sent a malformed reply ({exc!r})") from exc
        finally:
            lines.close()  # closes the upstream connection when the reader stops early

    def _chat_body(self, req: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def _pieces(self, lines: Iterator[str], url: str) -> Iterator[Piece]:
        raise NotImplementedError

    def _lines(
        self, path: str, body: dict[str, Any], timeout: httpx.Timeout | None = None
    ) -> Generator[str, None, None]:
        """POST `body` and yield the streamed answer's non-empty lines (`timeout`: the client's
        when None)."""
        url = self.base_url + path
        bounded = self._client.timeout if timeout is None else timeout
        with (
            _translated(self.provider, url),
            self._client.stream("POST", url, json=body, timeout=bounded) as response,
        ):
            _check(self.provider, url, response)
            if response.headers.get("content-type", "").startswith("application/json"):
                # A server that does not stream (some do not with tools) answers whole: one
                # line, as JSON's own line breaks are only white space.
                yield " ".join(response.read().decode().split())
                return
            for line in response.iter_lines():
                if line.strip():
                    yield line


class OllamaClient(_Client):
    provider = "ollama"
    chat_path = "/api/chat"

    def _chat_body(self, req: ChatRequest) -> dict[str, Any]:
        body = {
            "model": req.model,
            "messages": llm_tools.ollama_messages(req.messages),
            "stream": True,
            "options": {
                "temperature": req.temperature,
                "num_predict": req.max_tokens,
                "num_ctx": req.context_length,  # Ollama's own default would cut the prompt
            },
        }
        return {**body, "tools": llm_tools.functions(req.tools)} if req.tools else body

    def _pieces(self, lines: Iterator[str], url: str) -> Iterator[Piece]:
        calls: tuple[llm.ToolCall, ...] = ()
        for line in lines:
            data = _decoded(self.provider, url, line)
            if not isinstance(data, dict):
                raise LLMError(self.provider, f"{url} sent {line[:100]!r}")
            if "error" in data:
                raise LLMError(self.provider, f"{url} failed mid-reply: {data['error']}")
            message = data.get("message") or {}
            if message.get("content") or message.get("thinking"):
                yield Piece(
                    text=message.get("content") or "", reasoning=message.get("thinking") or ""
                )
            # Each call comes whole, once; however many lines bring them, MAX_CALLS in all.
            calls = (calls + llm_tools.whole_calls(self.provider, message))[: llm_tools.MAX_CALLS]
            if data.get("done"):
                if calls:
                    yield Piece(tool_calls=calls)
                reason = data.get("done_reason") or "stop"
                yield Piece(
                    done=True,
                    finish_reason=llm_tools.finish_reason(reason, calls),
                    prompt_tokens=_count(data.get("prompt_eval_count")),
                    completion_tokens=_count(data.get("eval_count")),
                )
                return
        raise LLMError(self.provider, f"{url} ended the reply without its final message")

    def list_models(self) -> list[ModelInfo]:
        data = self._get("/api/tags")
        return [
            ModelInfo(name=m["name"], details=m.get("details") or {})
            for m in data.get("models", [])
            if isinstance(m, dict) and m.get("name")
        ]

    def show(self, model: str) -> ModelInfo | None:
        url = self.base_url + "/api/show"
        with _translated(self.provider, url):
            response = self._client.post(url, json={"model": model})
        if response.status_code == 404:
            return None
        _check(self.provider, url, response)
        data = _decoded(self.provider, url, response.text)
        info = data.get("model_info") or {}
        capabilities = list(data.get("capabilities") or [])
        context = next((v for k, v in info.items() if k.endswith(".context_length")), None)
        dimension = next((v for k, v in info.items() if k.endswith(".embedding_length")), None)
        if "embedding" in capabilities:
            kind: str | None = "embedding"
        elif "completion" in capabilities:
            kind = "chat"
        else:
            kind = None
        return ModelInfo(
            name=model,
            kind=kind,
            context_length=context if isinstance(context, int) else None,
            dimension=dimension if kind == "embedding" and isinstance(dimension, int) else None,
            capabilities=capabilities,
            details=data.get("details") or {},
        )

    def pull(self, model: str) -> Iterator[dict[str, Any]]:
        """Ollama's progress objects ({status, digest, total, completed}) until "success"."""
        url = self.base_url + "/api/pull"
        for line in self._lines("/api/pull", {"model": model, "stream": True}):
            data = _decoded(self.provider, url, line)
            if not isinstance(data, dict):
                raise LLMError(self.provider, f"{url} sent {line[:100]!r}")
            if "error" in data:
                raise LLMError(self.provider, f"pulling {model!r} failed: {data['error']}")
            yield data
            if data.get("status") == "success":
                return
        raise LLMError(self.provider, f"{url} ended the pull of {model!r} before success")


class OpenAIClient(_Client):
    provider = "openai"
    chat_path = "/chat/completions"

    def __init__(self, base_url: str, timeout_s: float, api_key: str | None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(base_url, timeout_s, headers)

    def _chat_body(self, req: ChatRequest) -> dict[str, Any]:
        body = {
            "model": req.model,
            "messages": llm_tools.openai_messages(req.messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
        }
        return {**body, "tools": llm_tools.functions(req.tools)} if req.tools else body

    def _pieces(self, lines: Iterator[str], url: str) -> Iterator[Piece]:
        finish_reason: str | None = None
        usage: dict[str, Any] = {}
        fragments = llm_tools.CallFragments(self.provider)
        for line in lines:
            if line.startswith("{"):  # not a stream: the whole answer
                yield from self._whole(self._object(url, line))
                return
            if not line.startswith("data:"):
                continue  # SSE comments, event names and ids carry nothing for us
            payload = line[5:].strip()
            if payload == "[DONE]":
                calls = fragments.calls()
                if calls:
                    yield Piece(tool_calls=calls)
                yield _last(llm_tools.finish_reason(finish_reason, calls), usage)
                return
            data = self._object(url, payload)
            if isinstance(data.get("usage"), dict):
                usage = data["usage"]
            for choice in data.get("choices") or []:
                delta = choice.get("delta") or {}
                text = delta.get("content") or ""
                reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
                if text or reasoning:
                    yield Piece(text=text, reasoning=reasoning)
                fragments.add(delta.get("tool_calls") or [])
                finish_reason = choice.get("finish_reason") or finish_reason
        raise LLMError(self.provider, f"{url} ended the stream without data: [DONE]")

    def _object(self, url: str, payload: str) -> dict[str, Any]:
        """A chunk or answer as an object; an error object is an LLMError."""
        data = _decoded(self.provider, url, payload)
        if not isinstance(data, dict):
            raise LLMError(self.provider, f"{url} sent {payload[:100]!r}")
        if "error" in data:
            error = data["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise LLMError(self.provider, f"{url} failed mid-reply: {message}")
        return data

    def _whole(self, data: dict[str, Any]) -> Iterator[Piece]:
        """The pieces of a non-streamed chat completion."""
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        text = message.get("content") or ""
        reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
        if text or reasoning:
            yield Piece(text=text, reasoning=reasoning)
        calls = llm_tools.whole_calls(self.provider, message)
        if calls:
            yield Piece(tool_calls=calls)
        usage = data.get("usage")
        yield _last(
            llm_tools.finish_reason(choice.get("finish_reason"), calls),
            usage if isinstance(usage, dict) else {},
        )

    def list_models(self) -> list[ModelInfo]:
        data = self._get("/models")
        return [
            ModelInfo(name=m["id"], details={"owned_by": m.get("owned_by")})
            for m in data.get("data", [])
            if isinstance(m, dict) and m.get("id")
        ]

    def show(self, model: str) -> ModelInfo | None:
        return next((m for m in self.list_models() if m.name == model), None)
