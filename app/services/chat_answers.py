"""Posting a message to a chat: the exchange is stored, sources retrieved, the answer generated.

`start` runs in the request, before any byte is sent (so its errors are plain HTTP problems): it
stores the user's message and an assistant message in state 'streaming', and holds the tokens the
answer may take of the user's daily budget. `run` then yields events (retrieval, reasoning,
delta, done, error) while it saves the text every half second, so a stop request from any
process reaches it and a crash leaves the partial text; at its end the tokens used are counted
and the hold released. It runs in a thread of its own (app/services/answer_runs.py), so a client
that goes away changes nothing: the answer is generated to its end. A stop, the process ending,
or a model (or database) that fails mid-answer leave the message 'incomplete' with what was
generated; a model that fails before its first word leaves nothing stored, so the message can
simply be sent again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from app.db import scope
from app.db.pool import DATABASE_DOWN
from app.errors import AppError, NotFound, ValidationFailed, as_app_error
from app.repositories import Conn, Row
from app.repositories import chats as chat_repo
from app.repositories.search import Hit
from app.services import (
    answering,
    chat_rounds,
    chat_toolbox,
    followups,
    prompting,
    slash_commands,
    usage,
)
from app.services.chat_exchange import Answer, Deps, Event, Exchange, answer_tokens
from app.services.chat_toolbox import EMPTY
from app.services.mcp_tools import Caller
from app.services.tokens import Principal
from app.settings import Settings

log = logging.getLogger(__name__)
TITLE_CHARS = 80
# How long the end of an answer is tried again while the database is down.
CLOSE_RETRY_S = 300


def stale_after_s(settings: Settings) -> float:
    """Silence after which a 'streaming' message is taken as abandoned by a crashed process."""
    return 2 * settings.llm_timeout_s + 30


def _title(content: str) -> str:
    first = " ".join(content.split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 3].rstrip() + "..."


def command(
    conn: Conn, who: Principal, chat_id: int, content: str, deps: Deps, subject_token: str | None
) -> slash_commands.Planned | None:
    """The slash command `content` is in the chat (None: a plain message; 404, 422 first).
    Its prompt is then fetched by `slash_commands.prompt_text`, with no connection held."""
    found = chat_repo.get_owned(conn, chat_id, who.user_id)
    if found is None:
        raise NotFound(f"no chat {chat_id}")
    caller = Caller(who.user_id, subject_token, who.session_id is not None)
    return slash_commands.planned(conn, deps.mcp, caller, found["mcp_server_ids"], content)


def start(
    conn: Conn,
    who: Principal,
    chat_id: int,
    content: str,
    deps: Deps,
    subject_token: str | None = None,
    options: answering.RetrievalOptions = answering.NO_OPTIONS,
) -> Exchange:
    """Store the user's message and the assistant's placeholder (404, 409, 422 or 5xx first).

    `content` is taken as it is (a slash command was replaced by its prompt before:
    `command`); `subject_token` is the request's bearer JWT, for MCP servers that act with the
    user's identity (token exchange); `options` are the message's own retrieval choices.
    """
    found = chat_repo.get_owned(conn, chat_id, who.user_id)
    if found is None:
        raise NotFound(f"no chat {chat_id}")
    caller = Caller(who.user_id, subject_token, who.session_id is not None)
    servers = found["mcp_server_ids"]
    prefs = answering.preferences(conn, who.user_id, found["chat_model_id"])
    target = answering.resolve_target(conn, deps.llm, prefs)
    room = (target.context_length - answer_tokens(deps, target)) * prompting.SAFETY_MARGIN
    if prompting.count_tokens(content) > room * 0.8:
        raise ValidationFailed.on_field(
            "content",
            "too long",
            type="too_long",
            detail=f"the message is too long for {target.model}'s context",
        )
    with conn.transaction():
        chat = chat_repo.get_owned(conn, chat_id, who.user_id, lock=True)  # one post at a time
        if chat is None:
            raise NotFound(f"no chat {chat_id}")
        chat_repo.close_abandoned(conn, chat_id, stale_after_s(deps.settings))
        hold = None
        if target.provider != "extractive":  # prompt and answer fit the context: hold all of it
            budget = deps.settings.llm_tokens_per_day
            hold = usage.hold_llm_tokens(conn, who.user_id, budget, target.context_length)
        user = chat_repo.insert_message(conn, chat_id, "user", content)
        assistant = chat_repo.insert_message(
            conn, chat_id, "assistant", "", status="streaming", model=target.model
        )  # a second answer in the making violates chat_messages_one_streaming_idx: 409
        chat_repo.touch(conn, chat_id, _title(content))
        history = chat_repo.history(conn, chat_id, user["id"])
    toolbox = EMPTY
    if target.provider != "extractive" and deps.mcp is not None:
        toolbox = chat_toolbox.load(conn, servers)
    return Exchange(
        who,
        chat,
        content,
        user["id"],
        assistant["id"],
        target,
        prefs,
        prompting.alternating([{"role": r["role"], "content": r["content"]} for r in history]),
        hold,
        toolbox,
        caller,
        options,
    )


def _source_event(
    message_id: int, sources: list[Hit], warnings: list[str], mode: str, query: str
) -> Event:
    """The first event; it names the answer, so a client cut off later can resume its stream."""
    items = []
    for c, s in zip(prompting.citations(sources, ""), sources, strict=True):
        item = c.as_json()
        del item["cited"]  # nothing is cited before the answer
        items.append({**item, "text": s.text, "heading_path": s.heading_path})
    data = {
        "message_id": message_id,
        "mode": mode,
        "query": query,
        "sources": items,
        "warnings": warnings,
    }
    return Event("retrieval", data)


def run(ex: Exchange, deps: Deps) -> Generator[Event, None, None]:
    """The answer's events; always ends with `done` or `error`."""
    answer = Answer(ex, deps)
    try:
        yield from _generate(ex, deps, answer)
    except Exception as exc:  # a lost database is a 503 the client may retry, not a 500
        during = f"chat {ex.chat['id']}'s answer {ex.assistant_id}"
        yield _failed(answer, as_app_error(exc, during))
    finally:  # whatever happened, the tokens held for the answer go back
        usage.release_llm_tokens(deps.pool, ex.hold)


def _failed(answer: Answer, error: AppError) -> Event:
    """The `error` event; the partial answer is kept (and named in the problem) or dropped."""
    if answer.text or answer.reasoning:
        if _cleanly(_kept, answer, error.detail) is not None:
            error.extra["message_id"] = answer.ex.assistant_id  # only when it was really kept
    else:
        _cleanly(answer.discard)
    return Event("error", {}, error)


def _kept(answer: Answer, detail: str) -> Row | None:
    """Close the answer as 'incomplete'. Tool calls that cannot be stored (a bug: what comes in
    is checked) are left out rather than leave the message 'streaming' with no error."""
    try:
        return answer.finish("incomplete", "error", detail)
    except DATABASE_DOWN:
        raise
    except Exception:
        if not answer.tool_calls:
            raise
        log.exception(
            "could not store the end of an answer with its tool calls: storing it without"
        )
        answer.tool_calls = []
        return answer.finish("incomplete", "error", detail)


def _cleanly(cleanup: Any, *args: Any) -> Any:
    """Run a cleanup that must not hide the error being reported (the database may be the cause);
    its result, or None when it failed.

    While the database is down it is tried again in the background until the database is back
    (so the chat takes a new message then); what stays open, a stop request closes at once, and a
    later message once it has been silent for `stale_after_s`.
    """
    try:
        return cleanup(*args)
    except DATABASE_DOWN:
        log.warning("could not store the end of an answer: the database is down; retrying")
        threading.Thread(target=_retry, args=(cleanup, *args), daemon=True).start()
    except Exception:
        log.exception("could not store the end of an answer")
    return None


def _retry(cleanup: Any, *args: Any) -> None:
    deadline = time.monotonic() + CLOSE_RETRY_S
    while time.monotonic() < deadline:
        time.sleep(2)
        try:
            cleanup(*args)
            log.info("stored the end of an answer once the database was back")
            return
        except DATABASE_DOWN:
            continue
        except Exception:
            log.exception("could not store the end of an answer")
            return
    log.error("gave up storing the end of an answer after %d s", CLOSE_RETRY_S)


def _generate(ex: Exchange, deps: Deps, answer: Answer) -> Iterator[Event]:
    t0 = time.monotonic()
    asked = followups.standalone(deps.llm, ex.target, ex.history, ex.question)
    answer.search_query, answer.rewrite_tokens = asked.query, asked.tokens
    if asked.how == "model":
        answer.timings["rewrite_ms"] = round((time.monotonic() - t0) * 1000, 1)
        t0 = time.monotonic()
    found = answering.retrieve(  # a connection taken only while used: not during the rerank
        lambda: scope.user_connection(deps.pool, ex.who.user_id),
        ex.who,
        asked.query,
        collection_ids=ex.chat["collection_ids"],
        prefs=ex.prefs,
        deps=deps.search,
        options=ex.options,
    )
    answer.timings["retrieval_ms"] = round((time.monotonic() - t0) * 1000, 1)
    prompt = prompting.build_prompt(
        system_prompt=ex.prefs.system_prompt,
        sources=found.sources,
        history=ex.history,
        question=ex.question,
        context_tokens=ex.target.context_length,
        answer_tokens=answer_tokens(deps, ex.target),
        search_query=asked.query,
    )
    answer.sources = prompt.sources
    answer.prompt_tokens = prompt.estimated_tokens
    warnings = asked.warnings + found.warnings
    yield _source_event(ex.assistant_id, prompt.sources, warnings, found.mode, asked.query)
    yield from chat_rounds.answered(ex, deps, answer, prompt)
