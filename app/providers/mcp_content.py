"""What an MCP server says, as postrag's own frozen dataclasses: its tools and prompts, a tool's
result as text for a model (capped), a prompt's messages, progress and questions (elicitation).

Nothing outside app/providers/mcp_client.py and this module sees the SDK's types.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import mcp_types as types

from app import strict_json
from app.storable import cleaned

MAX_DESCRIPTION_CHARS = 4000  # what a server writes about a tool or prompt, for the model
MAX_SCHEMA_BYTES = 64 * 1024  # a tool's input schema larger than this is not offered
MAX_CATALOG_BYTES = 512 * 1024  # a server's input schemas in all (every answer loads them)
MAX_NAME_CHARS = 128  # a stored tool's or prompt's name (the tables' CHECK)
MAX_FEATURES = 200  # tools (and prompts) kept per server: each one costs the model's context
TRUNCATED = "\n[... the rest of the result was cut]"


@dataclass(frozen=True)
class ToolInfo:
    name: str
    title: str | None
    description: str | None
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class PromptInfo:
    name: str
    title: str | None
    description: str | None
    arguments: tuple[dict[str, Any], ...]  # {name, description, required}


@dataclass(frozen=True)
class Catalog:
    """What a server offers; `skipped` says what was left out, and why."""

    tools: tuple[ToolInfo, ...]
    prompts: tuple[PromptInfo, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ToolResult:
    """A tool's answer as text for the model; `is_error` when the tool failed."""

    text: str
    is_error: bool
    truncated: bool = False


@dataclass(frozen=True)
class PromptMessage:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class PromptResult:
    description: str | None
    messages: tuple[PromptMessage, ...]


@dataclass(frozen=True)
class Progress:
    """A progress notification of the call under way."""

    progress: float
    total: float | None
    message: str | None


@dataclass(frozen=True)
class Question:
    """The server asks the user (elicitation): a form with `schema` (flat JSON Schema), or a
    page to open at `url` (then `schema` is empty)."""

    message: str
    schema: dict[str, Any] = field(default_factory=dict)
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    """The user's answer to a Question: accept (with `content` for a form), decline or cancel."""

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None


@dataclass(frozen=True)
class Hooks:
    """What the caller hears during a call. `on_progress` must not block (it runs on the
    session's loop, in the notifications' order); `on_question` may block until the user
    answers (the time it takes does not count against the call's time limit); without it, the
    server is told the client cannot ask."""

    on_progress: Callable[[Progress], None] | None = None
    on_question: Callable[[Question], Reply] | None = None


def _json_size(data: Any) -> int | None:
    """`data`'s size as JSON; None when it holds a NaN or an infinity (a server's JSON may: the
    SDK reads them), which no jsonb column or streamed event can hold."""
    try:
        return len(strict_json.dumps(data))
    except strict_json.NonFiniteNumber:
        return None


def _short(text: str | None) -> str | None:
    return cleaned(text[:MAX_DESCRIPTION_CHARS]) if text else None


def _unlisted(kind: str, name: str, seen: set[str]) -> str | None:
    """Why a tool or prompt named `name` cannot be kept (None: it can): its name is what is
    called, so it is never altered; one listed twice (say, on two pages) is kept once."""
    if not 1 <= len(name) <= MAX_NAME_CHARS or cleaned(name) != name:
        shown = cleaned(name[:MAX_NAME_CHARS])
        return f"{kind} {shown!r}: its name is not 1-{MAX_NAME_CHARS} storable characters"
    if name in seen:
        return f"{kind} {name}: listed more than once"
    seen.add(name)
    return None


def catalog(tools: Iterable[types.Tool], prompts: Iterable[types.Prompt]) -> Catalog:
    """The catalog of listed tools and prompts: at most MAX_FEATURES of each, schemas of
    standard JSON within MAX_SCHEMA_BYTES (MAX_CATALOG_BYTES in all), names stored once; what
    is left out is named in `skipped`. Text PostgreSQL cannot store is cleaned (app/storable.py)."""
    kept_tools: list[ToolInfo] = []
    skipped: list[str] = []
    seen: set[str] = set()
    total = 0  # the kept schemas' bytes
    for tool in tools:
        schema = tool.input_schema if isinstance(tool.input_schema, dict) else {}
        if (why := _unlisted("tool", tool.name, seen)) is not None:
            skipped.append(why)
        elif (size := _json_size(schema)) is None:
            skipped.append(f"tool {tool.name}: its input schema has a NaN or an infinity")
        elif size > MAX_SCHEMA_BYTES:
            skipped.append(f"tool {tool.name}: its input schema exceeds {MAX_SCHEMA_BYTES} bytes")
        elif len(kept_tools) >= MAX_FEATURES:
            skipped.append(f"tool {tool.name}: more than {MAX_FEATURES} tools")
        elif total + size > MAX_CATALOG_BYTES:
            skipped.append(f"tool {tool.name}: the input schemas exceed {MAX_CATALOG_BYTES} bytes")
        else:
            total += size
            kept_tools.append(
                ToolInfo(tool.name, _short(tool.title), _short(tool.description), cleaned(schema))
            )
    kept_prompts: list[PromptInfo] = []
    seen = set()
    for prompt in prompts:
        if (why := _unlisted("prompt", prompt.name, seen)) is not None:
            skipped.append(why)
            continue
        if len(kept_prompts) >= MAX_FEATURES:
            skipped.append(f"prompt {prompt.name}: more than {MAX_FEATURES} prompts")
            continue
        arguments = tuple(
            {
                "name": cleaned(a.name),
                "description": _short(a.description),
                "required": bool(a.required),
            }
            for a in prompt.arguments or ()
        )
        kept_prompts.append(
            PromptInfo(prompt.name, _short(prompt.title), _short(prompt.description), arguments)
        )
    return Catalog(tuple(kept_tools), tuple(kept_prompts), tuple(skipped))


def _block_text(block: Any) -> str:
    """A content block as text: text as it is, anything else named (a model reads no bytes)."""
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent | types.AudioContent):
        return f"[{block.type} {block.mime_type}]"
    if isinstance(block, types.ResourceLink):
        return f"[resource {block.name}: {block.uri}]"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, types.TextResourceContents):
            return resource.text
        return f"[resource {resource.uri} ({resource.mime_type or 'binary'})]"
    return f"[{getattr(block, 'type', 'content')}]"


def capped(text: str, max_chars: int) -> tuple[str, bool]:
    """`text` within `max_chars` (the cut one ends saying so), and whether it was cut."""
    if len(text) <= max_chars:
        return text, False
    return text[: max(0, max_chars - len(TRUNCATED))] + TRUNCATED, True


def tool_result(result: types.CallToolResult, max_chars: int) -> ToolResult:
    """A tool's result as text for the model: its content blocks, else its structured content."""
    text = "\n".join(_block_text(block) for block in result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    text, truncated = capped(cleaned(text), max_chars)
    return ToolResult(text, bool(result.is_error), truncated)


def prompt_result(result: types.GetPromptResult, max_chars: int) -> PromptResult:
    """A prompt's messages as text, each within `max_chars`."""
    messages = tuple(
        PromptMessage(m.role, capped(cleaned(_block_text(m.content)), max_chars)[0])
        for m in result.messages
    )
    return PromptResult(_short(result.description), messages)


def question(params: types.ElicitRequestFormParams | types.ElicitRequestURLParams) -> Question:
    if isinstance(params, types.ElicitRequestURLParams):
        return Question(cleaned(params.message), url=cleaned(params.url))
    schema = params.requested_schema
    if not isinstance(schema, dict):
        schema = schema.model_dump(mode="json", by_alias=True, exclude_none=True)
    return Question(cleaned(params.message), schema=cleaned(schema))


# MCP's elicitation forms: an object of primitive properties, each described by these keys only.
_FORM_KEYS = {"type", "properties", "required", "title", "description", "$schema"}
_PROPERTY_KEYS = {"type", "title", "description", "enum", "enumNames", "oneOf", "const"}
_PROPERTY_KEYS |= {"minimum", "maximum", "minLength", "maxLength", "format", "default"}
_PRIMITIVES = {"string", "number", "integer", "boolean"}
MAX_QUESTION_SCHEMA_BYTES = 16 * 1024
MAX_QUESTION_URL_CHARS = 2000


def unreadable(q: Question) -> str | None:
    """Why postrag will not put `q` to a user (None: it will): a url or form too large, a form
    with a NaN or an infinity (it could not be stored), or a form outside MCP's flat subset (no
    $ref, no pattern, no nesting, lists where lists belong), whose checking could fail or take
    unbounded time, or whose form the web page could not build."""
    if q.url is not None:
        return "its url is too long" if len(q.url) > MAX_QUESTION_URL_CHARS else None
    size = _json_size(q.schema)
    if size is None:
        return "its form has a NaN or an infinity"
    if size > MAX_QUESTION_SCHEMA_BYTES:
        return f"its form exceeds {MAX_QUESTION_SCHEMA_BYTES} bytes"
    properties = q.schema.get("properties", {})
    if set(q.schema) - _FORM_KEYS or q.schema.get("type") != "object":
        return "its form is not an object of simple fields"
    if not _list_of(q.schema.get("required", []), str):
        return "its form's required fields are not a list of names"
    if not isinstance(properties, dict) or not all(_flat(p) for p in properties.values()):
        return "its form has fields that are not simple (text, number, yes/no, a choice)"
    return None


def _list_of(value: Any, kind: type | tuple[type, ...]) -> bool:
    return isinstance(value, list) and all(isinstance(v, kind) for v in value)


def _flat(prop: Any) -> bool:
    if not isinstance(prop, dict) or set(prop) - _PROPERTY_KEYS:
        return False
    choices = prop.get("oneOf", [])
    simple = all(isinstance(c, dict) and set(c) <= {"const", "title"} for c in choices)
    listed = _list_of(prop.get("enum", []), (str, int, float, bool, type(None)))
    listed = listed and _list_of(prop.get("enumNames", []), str)
    return prop.get("type") in _PRIMITIVES and isinstance(choices, list) and simple and listed


def elicit_result(reply: Reply) -> types.ElicitResult:
    content = reply.content if reply.action == "accept" else None
    return types.ElicitResult(action=reply.action, content=content)
