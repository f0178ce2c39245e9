"""The tools a chat's answer offers its model: the cached tools of the chat's enabled MCP
servers, each under a name the tool-calling protocols accept (`<server>__<tool>`, at most 64 of
`A-Za-z0-9_-`), and the way back from that name to the server and the tool."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.providers.llm import ToolSpec
from app.repositories import Conn
from app.repositories import mcp_servers as server_repo

SEPARATOR = "__"
MAX_NAME = 64  # what OpenAI accepts as a function's name
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class ToolRef:
    """Which server's tool a name the model calls stands for."""

    server_id: int
    server: str
    tool: str


@dataclass(frozen=True)
class Toolbox:
    specs: tuple[ToolSpec, ...] = ()
    refs: Mapping[str, ToolRef] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.specs)


EMPTY = Toolbox()


def model_name(server: str, tool: str, taken: set[str]) -> str:
    """`<server>__<tool>` in the allowed characters; one too long, or that another tool's name
    became too, is cut and made unique with a hash of the tool's real name."""
    name = f"{server}{SEPARATOR}{_NOT_ALLOWED.sub('_', tool)}"
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha256(f"{server}/{tool}".encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}_{digest}"
    return name


def load(conn: Conn, server_ids: Sequence[int]) -> Toolbox:
    """The tools of the enabled servers among `server_ids` (none: the empty toolbox)."""
    if not server_ids:
        return EMPTY
    specs: list[ToolSpec] = []
    refs: dict[str, ToolRef] = {}
    for row in server_repo.enabled_tools(conn, list(server_ids)):
        name = model_name(row["server"], row["name"], set(refs))
        refs[name] = ToolRef(row["server_id"], row["server"], row["name"])
        description = row["description"] or f"{row['name']} (MCP server {row['server']})"
        # OpenAI's servers want an object schema; an MCP tool's always is one, if not said so.
        schema = {"type": "object", **row["input_schema"]}
        specs.append(ToolSpec(name, description, schema))
    return Toolbox(tuple(specs), refs)
