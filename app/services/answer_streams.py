"""An answer's events as streams: numbered, batched and stored as they are produced (with a
NOTIFY), and followed either in memory (the request that asked) or from the database by any
process (a client that reconnects with Last-Event-ID).

Events are stored by a writer thread of their own: it takes what the answer produced for up to
FLUSH_S, joins consecutive text pieces of one kind (delta, reasoning) into one event, numbers
them and stores the batch in one transaction, so a fast model costs ~12 writes a second and a
slow database never holds up the model's stream. A batch that cannot be stored (the database is
down) still reaches the request that asked, with its ids; only a reader that reconnects misses it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from psycopg_pool import ConnectionPool

from app.db import scope
from app.db.listener import Listener
from app.errors import NotFound
from app.repositories import Conn, Row
from app.repositories import chat_events as event_repo
from app.repositories import chat_questions as question_repo
from app.services.tokens import Principal

log = logging.getLogger(__name__)
FLUSH_S = 0.08  # events produced within this long are stored (and sent) together
HEARTBEAT_S = 15.0  # a waiting stream sends a comment this often, so proxies keep it open
CLOSED_GRACE_S = 10.0  # a closed answer without a stored end: its process died; stop waiting
PAGE = 500
_JOINED = ("delta", "reasoning")


@dataclass(frozen=True)
class StoredEvent:
    seq: int  # the SSE id
    kind: str
    data: dict[str, Any]


class EventLog:
    """The events of one answer: `put` from the generating thread, read with `follow`."""

    def __init__(self, pool: ConnectionPool[Any], user_id: int, message_id: int):
        self.pool, self.user_id, self.message_id = pool, user_id, message_id
        self.events: list[StoredEvent] = []
        self.ended = False
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._changed = threading.Condition()
        self._writer = threading.Thread(
            target=self._write, name=f"answer-{message_id}-events", daemon=True
        )
        self._writer.start()

    def put(self, kind: str, data: dict[str, Any]) -> None:
        self._queue.put((kind, data))

    def close(self) -> None:
        """No more events: the writer stores what it has and ends."""
        self._queue.put(None)

    def join(self, timeout: float) -> None:
        self._writer.join(timeout)

    def _write(self) -> None:
        try:
            while not self.ended:
                batch, last = self._batch()
                events = self._numbered(batch)
                if events:
                    self._store(events)
                with self._changed:
                    self.events.extend(events)
                    self.ended = last
                    self._changed.notify_all()
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def _batch(self) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """What came within FLUSH_S of the first event, and whether it was the last."""
        batch: list[tuple[str, dict[str, Any]]] = []
        item = self._queue.get()
        deadline = time.monotonic() + FLUSH_S
        while item is not None:
            batch.append(item)
            if item[0] in event_repo.TERMINAL:
                return batch, True
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, False
        return batch, True

    def _numbered(self, batch: list[tuple[str, dict[str, Any]]]) -> list[StoredEvent]:
        joined: list[tuple[str, dict[str, Any]]] = []
        for kind, data in batch:
            if joined and kind in _JOINED and joined[-1][0] == kind:
                joined[-1] = (kind, {"text": joined[-1][1]["text"] + data["text"]})
            else:
                joined.append((kind, data))
        start = self.events[-1].seq if self.events else 0
        return [StoredEvent(start + i, k, d) for i, (k, d) in enumerate(joined, 1)]

    def _store(self, events: list[StoredEvent]) -> None:
        rows = [(e.seq, e.kind, e.data) for e in events]
        try:
            with scope.user_connection(self.pool, self.user_id) as conn, conn.transaction():
                event_repo.insert(conn, self.message_id, rows)
        except Exception:
            log.warning("could not store events of answer %d", self.message_id, exc_info=True)

    def follow(self) -> Iterator[StoredEvent | None]:
        """Every event from the first, as it is stored; None (a heartbeat) while waiting."""
        sent = 0
        while True:
            with self._changed:
                if sent == len(self.events) and not self.ended:
                    self._changed.wait(HEARTBEAT_S)
                new, ended = self.events[sent:], self.ended
            sent += len(new)
            yield from new
            if ended and sent == len(self.events):
                return
            if not new:
                yield None


def check_answer(conn: Conn, who: Principal, chat_id: int, message_id: int) -> None:
    """404 unless `message_id` is an answer in a chat of `who`."""
    if event_repo.stream_state(conn, chat_id, message_id, who.user_id) is None:
        raise NotFound(f"no answer {message_id} in chat {chat_id}")


def follow_stored(
    pool: ConnectionPool[Any],
    listener: Listener,
    who: Principal,
    ids: tuple[int, int],
    after: int,
    stale_s: float,
) -> Iterator[StoredEvent | None]:
    """The stored events of answer `ids` (chat, message) after `after`, then the live rest until
    its end (done or error); None (a heartbeat) while waiting. From any process."""
    chat_id, message_id = ids
    with listener.watch(str(message_id)) as woken:
        while True:
            woken.clear()  # before reading: a NOTIFY from now on wakes the wait below
            with scope.user_connection(pool, who.user_id) as conn:
                rows = event_repo.after(conn, message_id, after, limit=PAGE)
                state = None
                if not rows:
                    state = event_repo.stream_state(conn, chat_id, message_id, who.user_id)
            for row in rows:
                yield StoredEvent(row["seq"], row["kind"], row["data"])
                after = row["seq"]
                if row["kind"] in event_repo.TERMINAL:
                    return
            if rows:
                continue
            if state is not None and (state["end_seq"] or 0) > after:
                continue  # the end was stored between the two reads: read it
            if state is None or _over(state, stale_s):
                return
            if not woken.wait(HEARTBEAT_S):
                yield None


def _over(state: Row, stale_s: float) -> bool:
    """Nothing more will come: the end was stored (before where the reader is), or the process
    generating the answer died (closed by a stop without an end, or silent for too long)."""
    if state["end_seq"] is not None:
        return True
    limit = stale_s if state["status"] == "streaming" else CLOSED_GRACE_S
    return bool(state["quiet_s"] > limit)


def prune(pool: ConnectionPool[Any], keep_hours: int) -> int:
    """Delete events of answers that ended over `keep_hours` ago, and the questions of tools
    that expired as long ago (everyone's: as the owner); how many events."""
    with pool.connection() as conn, scope.acting_as_owner(conn), conn.transaction():
        question_repo.prune(cast(Conn, conn), keep_hours)
        return event_repo.prune(cast(Conn, conn), keep_hours)
