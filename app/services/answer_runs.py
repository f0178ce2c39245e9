"""Chat answers generated in background threads of the app process, so that an answer goes on
after its client leaves; app/services/answer_streams.py stores its events for whoever follows.

An answer is bounded as it was inside its request: the model's timeout per piece, the answer's
tokens, a stop request from any process (seen at its next save). `close()`, at the process's
end (after gunicorn's graceful wait for requests), asks the answers still running to end at
their next piece, storing their text as `incomplete`, and waits up to CLOSE_WAIT_S for them.
After an answer ends, the events of answers that ended POSTRAG_CHAT_EVENTS_KEEP_HOURS ago are
deleted, at most once every PRUNE_EVERY_S per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from psycopg_pool import ConnectionPool

from app.errors import AppError, ServiceUnavailable, TooManyRequests
from app.repositories.chat_events import TERMINAL
from app.services import answer_streams, chat_answers
from app.services.answer_streams import EventLog
from app.services.chat_exchange import Deps, Event, Exchange

log = logging.getLogger(__name__)
CLOSE_WAIT_S = 5.0
PRUNE_EVERY_S = 600.0

RenderError = Callable[[AppError], dict[str, Any]]


class AnswerRun:
    """One answer in the making: its events, and its last one as produced (with its error)."""

    def __init__(self, log: EventLog):
        self.log = log
        self.final: Event | None = None
        self.finished = threading.Event()

    def wait(self) -> Event | None:
        """The answer's `done` or `error` event, once it ended (None if it ended without)."""
        self.finished.wait()
        return self.final


class AnswerRunner:
    """The answers this process generates."""

    def __init__(
        self,
        pool: ConnectionPool[Any],
        keep_hours: int,
        most: int = 32,
        per_user: int = 4,
        streams_per_user: int = 4,
    ):
        self.pool, self.keep_hours, self.most, self.per_user = pool, keep_hours, most, per_user
        self.streams_per_user = streams_per_user
        self._streams: Counter[int] = Counter()  # streams followed from the database, by user
        self.stopping = threading.Event()  # set by close(): answers end at their next piece
        self._running: set[AnswerRun] = set()
        self._reserved = 0  # answers being started: counted before their message is stored
        self._users: Counter[int] = Counter()  # answers reserved or running, by user
        self._lock = threading.Lock()
        self._pruned_at: float | None = None

    def reserve(self, user_id: int) -> None:
        """Room for one more answer of `user_id`, taken before its messages are stored (503
        when this process generates `most` already: answers go on after their clients leave,
        so the requests' threads no longer bound them; 429 when this user has `per_user`
        under way here, so that one user cannot take them all); `unreserve` or the launched
        answer's end gives it back."""
        with self._lock:
            if self._users[user_id] >= self.per_user:
                raise TooManyRequests(
                    f"you have {self.per_user} answers under way already: wait for one to end",
                    headers={"Retry-After": "5"},
                )
            if len(self._running) + self._reserved >= self.most:
                raise ServiceUnavailable(
                    f"this server is generating {self.most} answers already: try again shortly",
                    headers={"Retry-After": "5"},
                )
            self._reserved += 1
            self._users[user_id] += 1

    def hold_stream(self, user_id: int) -> Callable[[], None]:
        """Room for one more stream of stored events `user_id` follows here (each holds a
        request thread while it waits: 429 when the user follows `streams_per_user` already);
        the function that gives it back (once)."""
        with self._lock:
            if self._streams[user_id] >= self.streams_per_user:
                raise TooManyRequests(
                    f"you follow {self.streams_per_user} answer streams here already: close one",
                    headers={"Retry-After": "5"},
                )
            self._streams[user_id] += 1
        given_back = threading.Event()

        def give_back() -> None:
            with self._lock:
                if given_back.is_set():
                    return
                given_back.set()
                self._streams[user_id] -= 1
                if self._streams[user_id] <= 0:
                    del self._streams[user_id]

        return give_back

    def unreserve(self, user_id: int) -> None:
        with self._lock:
            self._reserved -= 1
            self._let_go(user_id)

    def _let_go(self, user_id: int) -> None:
        self._users[user_id] -= 1
        if self._users[user_id] <= 0:
            del self._users[user_id]  # the counter holds only users with answers under way

    def launch(self, ex: Exchange, deps: Deps, render_error: RenderError) -> AnswerRun:
        """Generate the answer of `ex` (its room reserved) in a thread of its own; its events
        go to the run's log, an error rendered by `render_error` (the problem object of the
        request that asked)."""
        run = AnswerRun(EventLog(self.pool, ex.who.user_id, ex.assistant_id))
        with self._lock:
            self._reserved -= 1
            self._running.add(run)
        threading.Thread(
            target=self._generate,
            args=(run, ex, deps, render_error),
            name=f"answer-{ex.assistant_id}",
            daemon=True,  # close() ends them; a process that is killed leaves them to /stop
        ).start()
        return run

    def _generate(self, run: AnswerRun, ex: Exchange, deps: Deps, render: RenderError) -> None:
        try:
            for event in chat_answers.run(ex, deps):
                run.log.put(event.kind, event.data if event.error is None else render(event.error))
                if event.kind in TERMINAL:
                    run.final = event
        except Exception:  # run() reports failures as events: this is a bug, not an outage
            log.exception("the answer %d failed", ex.assistant_id)
        finally:
            run.log.close()
            run.finished.set()
            # The answer has ended; its room is given back once the MCP calls it left end too
            # (each is bounded by POSTRAG_MCP_TIMEOUT_S, and its session's close as long).
            bound = time.monotonic() + 2 * deps.settings.mcp_timeout_s + CLOSE_WAIT_S
            for call in ex.left_calls:
                call.join(max(0.0, bound - time.monotonic()))
            with self._lock:
                self._running.discard(run)
                self._let_go(ex.who.user_id)
            self._prune_now_and_then()

    def _prune_now_and_then(self) -> None:
        now = time.monotonic()
        with self._lock:
            if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_S:
                return
            self._pruned_at = now
        try:
            pruned = answer_streams.prune(self.pool, self.keep_hours)
        except Exception:
            log.warning("could not prune old answer events", exc_info=True)
            return
        if pruned:
            log.info("pruned %d events of answers older than %d h", pruned, self.keep_hours)

    def close(self) -> None:
        """End the answers still running (their text is kept) and wait a little for them."""
        self.stopping.set()
        deadline = time.monotonic() + CLOSE_WAIT_S
        with self._lock:
            running = list(self._running)
        for run in running:
            run.finished.wait(max(0.0, deadline - time.monotonic()))
            run.log.join(max(0.0, deadline - time.monotonic()))
