"""Follow-ups in context: the standalone question a chat turn searches with.

"And what does the GPL say about that?" searched by its own words finds the wrong passages. With
a chat model, the model rewrites the turn from the last few turns (one short call: few tokens, a
deadline); offline, or when that call fails or is late, a rule carries the earlier questions' key
terms (newest first) over to a follow-up. A first question is searched as it is.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from app.providers.llm import ChatModel, ChatRequest, LLMClients, Piece
from app.services import prompting
from app.services.answering import MAX_QUERY_CHARS, ChatTarget

log = logging.getLogger(__name__)

REWRITE_INSTRUCTIONS = (
    "You turn the last question of a conversation into one standalone search query. Replace"
    " words such as it, that, they or there with what they refer to, and keep the names and"
    " terms of the conversation. Reply with the query alone, on one line, in the question's"
    " language. Do not answer the question."
)
REWRITE_TOKENS = 96  # a query, not an answer
REWRITE_TURNS = 3  # exchanges (question and answer) the model sees
REWRITE_CHARS = 600  # of each earlier message: enough to name its subject
CARRIED_QUESTIONS = 3  # earlier questions the rule takes terms from
CARRIED_TERMS = 8  # terms the rule carries over at most, the newest question's first
# A question with at most this many content words names no subject of its own ("Why?", "How
# much?", "Examples?"); one with more is a new topic unless it refers back or continues.
SHORT = 1
_WORD = re.compile(r"[^\W_](?:[\w'-]*[^\W_])?")
# Chinese, Japanese and Korean write words without spaces: a run of their characters counts as
# its overlapping two-character pieces, as the `cjk` full-text configuration indexes it.
_CJK_RUN = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)")
_LABEL = re.compile(r"^(?:standalone\s+)?(?:search\s+)?(?:query|question)\s*:\s*", re.I)
_STOP_TEXT = """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same say says said she should so some such tell than that the their
    theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours
    yourself yourselves also else please thanks thank explain mean means know let us ok okay
    one ones thing things many much get gets got take takes give gives need needs want like"""
_REFERRING_TEXT = """it its itself that this these those they them their theirs there he him his
    she her such same also else former latter above previous"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
REFERRING = frozenset(_REFERRING_TEXT.split())
CONTINUING = ("and ", "but ", "or ", "so ", "then ", "also ", "what about ", "how about ")


@dataclass(frozen=True)
class Standalone:
    query: str  # what is searched
    how: str  # question (as it is) | rule | model
    warnings: list[str] = field(default_factory=list)
    tokens: tuple[int, int] = (0, 0)  # prompt and completion tokens of the model's rewrite


def _terms(word: str) -> list[str]:
    """A word as it is, or with each run of CJK characters in it as overlapping pairs."""
    if not _CJK_RUN.search(word):
        return [word]
    terms: list[str] = []
    for part in _CJK_RUN.split(word):
        if _CJK_RUN.fullmatch(part):
            terms += [part[i : i + 2] for i in range(max(1, len(part) - 1))]
        elif part:
            terms.append(part)
    return terms


def content_words(text: str) -> list[str]:
    """The words of `text` that carry its subject, lowercased, once each, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        for term in _terms(word):
            if len(term) > 1 and term not in STOP_WORDS:
                seen.setdefault(term)
    return list(seen)


def is_follow_up(question: str) -> bool:
    """A question that leans on the conversation: it refers back, continues, or names nothing."""
    lowered = " ".join(question.lower().split())
    if lowered.startswith(CONTINUING):
        return True
    words = set(_WORD.findall(lowered))
    return bool(words & REFERRING) or len(content_words(question)) <= SHORT


def by_rule(history: Sequence[dict[str, str]], question: str) -> str:
    """`question`, and for a follow-up the key terms of the earlier questions (newest first)."""
    if not is_follow_up(question):
        return question
    own = set(content_words(question))
    asked = [m["content"] for m in history if m["role"] == "user"][-CARRIED_QUESTIONS:]
    carried: list[str] = []
    for earlier in reversed(asked):
        carried += [w for w in content_words(earlier) if w not in own and w not in carried]
    carried = carried[:CARRIED_TERMS]
    return f"{question} {' '.join(carried)}" if carried else question


def standalone(
    llm: LLMClients,
    target: ChatTarget,
    history: Sequence[dict[str, str]],
    question: str,
) -> Standalone:
    """The query a chat turn searches with (see the module docstring), as long as search takes."""
    found = _standalone(llm, target, history, question)
    return dataclasses.replace(found, query=found.query[:MAX_QUERY_CHARS])


def _standalone(
    llm: LLMClients, target: ChatTarget, history: Sequence[dict[str, str]], question: str
) -> Standalone:
    way = llm.settings.chat_followups
    if not history or way == "off":
        return Standalone(question, "question")
    if way == "rule" or target.provider == "extractive":
        return _ruled(history, question)
    client = llm.client(target.provider)
    try:
        query, tokens = _rewritten(
            client, target, history, question, llm.settings.chat_rewrite_timeout_s
        )
    except Exception as exc:  # any failure of the model: the rule still finds the context
        reason = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        log.warning("the chat model could not rewrite a follow-up: %s", reason)
        warning = f"the chat model could not rewrite the question ({reason}); used the offline rule"
        ruled = _ruled(history, question)
        return Standalone(ruled.query, ruled.how, [warning])
    return Standalone(query, "model", tokens=tokens)


def _ruled(history: Sequence[dict[str, str]], question: str) -> Standalone:
    query = by_rule(history, question)
    return Standalone(query, "question" if query == question else "rule")


def rewrite_messages(history: Sequence[dict[str, str]], question: str) -> list[dict[str, str]]:
    """The rewrite request: the instructions, then the last few turns and the question."""
    lines = []
    for message in list(history)[-2 * REWRITE_TURNS :]:
        text = " ".join(message["content"].split())
        if len(text) > REWRITE_CHARS:
            text = text[:REWRITE_CHARS].rsplit(" ", 1)[0] + " ..."
        lines.append(f"{'User' if message['role'] == 'user' else 'Assistant'}: {text}")
    asked = " ".join(question.split())[:MAX_QUERY_CHARS]
    user = "Conversation:\n" + "\n".join(lines) + f"\n\nLast question: {asked}"
    return [{"role": "system", "content": REWRITE_INSTRUCTIONS}, {"role": "user", "content": user}]


def _rewritten(
    client: ChatModel,
    target: ChatTarget,
    history: Sequence[dict[str, str]],
    question: str,
    timeout_s: float,
) -> tuple[str, tuple[int, int]]:
    """The model's standalone query and the tokens it took (estimated when the provider does
    not say); TimeoutError past `timeout_s` (the call then ends at its next piece, or when no
    piece comes within `timeout_s` more), ValueError for an empty reply."""
    messages = rewrite_messages(history, question)
    # The answer's context length: Ollama would reload the model for another num_ctx.
    request = ChatRequest(
        target.model, messages, 0.0, REWRITE_TOKENS, target.context_length, timeout_s=timeout_s
    )
    outcome: dict[str, Reply | BaseException] = {}
    given_up, done = threading.Event(), threading.Event()

    def ask() -> None:
        try:
            outcome["text"] = _read(client.stream(request), given_up)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=ask, name="followup-rewrite", daemon=True).start()
    if not done.wait(timeout_s):
        given_up.set()
        raise TimeoutError(f"no rewrite within {timeout_s:g} s")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    reply = outcome["text"]
    assert isinstance(reply, Reply)
    query = _cleaned(reply.text)
    if not query:
        raise ValueError("the model's rewrite was empty")
    prompt = reply.prompt_tokens
    if prompt is None:
        prompt = sum(prompting.count_tokens(m["content"]) + 4 for m in messages)
    completion = reply.completion_tokens
    if completion is None:
        completion = prompting.count_tokens(reply.text)
    return query, (prompt, completion)


@dataclass(frozen=True)
class Reply:
    text: str  # the answer, reasoning left out
    prompt_tokens: int | None  # as the provider counted them, when it says
    completion_tokens: int | None


def _read(stream: Iterator[Piece], given_up: threading.Event) -> Reply:
    """The reply, until it ends or the wait was given up."""
    splitter, text, last = prompting.ThinkSplitter(), "", Piece()
    try:
        for piece in stream:
            if given_up.is_set():
                break
            text += splitter.feed(piece.text)[0]
            last = piece
    finally:
        getattr(stream, "close", lambda: None)()  # a reply given up: its connection closes
    text = prompting.unopened_reasoning(text + splitter.flush()[0])[0]
    return Reply(text, last.prompt_tokens, last.completion_tokens)


def _cleaned(reply: str) -> str:
    """The first line of the reply, without a label, quotes or control characters (NUL cannot
    be stored, a lone surrogate cannot be encoded), as long as search takes."""
    lines = (_printable(ln) for ln in reply.splitlines())
    line = next((ln for ln in lines if ln), "")
    line = _LABEL.sub("", line).strip().strip("\"'`“”").strip()
    return line[:MAX_QUERY_CHARS]


def _printable(line: str) -> str:
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in line)
    return " ".join(kept.split())
