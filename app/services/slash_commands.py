"""Slash commands: the cached prompts of a chat's enabled MCP servers. A message
`/<server>:<prompt> args` (or `/<prompt> args` when one server alone has a prompt of that name)
is replaced by the prompt's text, which the server fills in (prompts/get) with the arguments:
`key=value` words for the prompt's declared arguments, the other words taken in order for those
not given (shell quoting); a prompt with one argument takes the whole rest as it. Only chats
with MCP servers have commands; elsewhere a message starting with `/` is a message. A message
meant to start with `/word` is sent as `//word` (it then loses one `/`, in any chat).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import ValidationFailed
from app.providers import mcp_client
from app.repositories import Conn
from app.repositories import mcp_servers as server_repo
from app.services import mcp_tools
from app.services.mcp_tools import Caller, McpDeps

# A command is its first word: no `/` inside, so a message starting with a path is not one.
COMMAND = re.compile(r"/([A-Za-z0-9_][^\s/]*)(?:\s+(.*))?", re.DOTALL)
ESCAPED = re.compile(r"(\s*)/(/[A-Za-z0-9_][^\s/]*(?:\s.*)?)", re.DOTALL)  # `//word`: `/word`


@dataclass(frozen=True)
class Command:
    server_id: int
    server: str
    prompt: str
    description: str | None
    arguments: tuple[dict[str, Any], ...]  # {name, description, required}

    @property
    def name(self) -> str:
        return f"{self.server}:{self.prompt}"


def available(conn: Conn, server_ids: Sequence[int]) -> list[Command]:
    """The commands of the enabled servers among `server_ids`, by server and prompt."""
    if not server_ids:
        return []
    return [
        Command(r["server_id"], r["server"], r["name"], r["description"], tuple(r["arguments"]))
        for r in server_repo.enabled_prompts(conn, list(server_ids))
    ]


def _invalid(msg: str) -> ValidationFailed:
    return ValidationFailed.on_field("content", msg, type="value_error")


def _find(commands: list[Command], name: str) -> Command:
    found = [c for c in commands if name in (c.name, c.prompt)]
    if len(found) == 1:
        return found[0]
    listed = ", ".join(f"/{c.name}" for c in commands)
    if found:
        raise _invalid(f"/{name} is offered by several servers: say which ({listed})")
    raise _invalid(f"no command /{name}; this chat's commands: {listed}")


def arguments(command: Command, text: str) -> dict[str, str]:
    """The prompt's arguments from the words after the command (422 when they do not fit)."""
    declared = [str(a["name"]) for a in command.arguments]
    text = text.strip()
    given: dict[str, str] = {}
    if len(declared) == 1 and text and not text.startswith(f"{declared[0]}="):
        given[declared[0]] = text
    elif text:
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise _invalid(f"/{command.name}: {exc}") from None
        loose = []
        for word in words:
            key, equals, value = word.partition("=")
            if equals and key in declared:
                given[key] = value
            else:
                loose.append(word)
        free = [n for n in declared if n not in given]
        if len(loose) > len(free):
            raise _invalid(f"/{command.name} takes {len(declared)} arguments: {declared}")
        given.update(zip(free, loose, strict=False))
    missing = [a["name"] for a in command.arguments if a.get("required") and a["name"] not in given]
    if missing:
        raise _invalid(f"/{command.name} needs {', '.join(missing)}")
    return given


@dataclass(frozen=True)
class Planned:
    """A command found and its arguments filled: what asking its server takes (no connection)."""

    target: mcp_client.McpTarget
    server: str
    prompt: str
    arguments: dict[str, str]


def planned(
    conn: Conn, deps: McpDeps | None, caller: Caller, server_ids: Sequence[int], content: str
) -> Planned | None:
    """The command `content` is (None: a plain message); 422 for an unknown command or
    arguments that do not fit."""
    if ESCAPED.fullmatch(content):
        return None
    matched = COMMAND.fullmatch(content.strip())
    commands = available(conn, server_ids) if matched else []
    if matched is None or not commands or deps is None:
        return None
    command = _find(commands, matched[1])
    filled = arguments(command, matched[2] or "")
    reached = mcp_tools.target(conn, deps, caller, command.server_id)
    return Planned(reached, command.server, command.prompt, filled)


def unescaped(content: str) -> str:
    """A message that is no command as it is sent: `//word ...` loses its first `/`."""
    matched = ESCAPED.fullmatch(content)
    return matched[1] + matched[2] if matched else content


def prompt_text(command: Planned) -> str:
    """The text of the command's prompt, filled in by its server (502, 503, 504 when the server
    fails); no database connection is needed meanwhile."""
    with mcp_client.session(command.target) as session:
        prompt = session.get_prompt(command.prompt, command.arguments)
    text = "\n\n".join(m.text for m in prompt.messages).strip()
    if not text:
        raise mcp_client.McpError(command.server, f"prompt {command.prompt} is empty")
    return text
