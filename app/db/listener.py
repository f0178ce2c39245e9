"""One LISTEN connection per process, waking the threads that wait for notifications about a key
(an answer's new stored events: app/services/answer_streams.py).

It connects on first use, so a process nobody follows a stream from holds no extra connection.
A notification is only a hint to read again: when the connection is lost (or comes back), every
waiter is woken, and waiters time out anyway, so a lost notification delays, never loses, data.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)
POLL_S = 0.25  # how often the listening thread checks that it should go on
RETRY_S = 2.0  # pause before connecting again after the connection failed


class Listener:
    def __init__(self, url: str, channel: str):
        self.url, self.channel = url, channel
        self._waiters: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @contextmanager
    def watch(self, key: str) -> Iterator[threading.Event]:
        """An event set by each notification naming `key` (clear it before reading again)."""
        woken = threading.Event()
        with self._lock:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="postrag-listen", daemon=True
                )
                self._thread.start()
            self._waiters.setdefault(key, set()).add(woken)
        try:
            yield woken
        finally:
            with self._lock:
                waiting = self._waiters.get(key, set())
                waiting.discard(woken)
                if not waiting:
                    self._waiters.pop(key, None)

    def _wake(self, key: str | None) -> None:
        with self._lock:
            keys = list(self._waiters) if key is None else [key]
            for woken in [w for k in keys for w in self._waiters.get(k, ())]:
                woken.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self._wake(None)  # what was sent while nobody listened: read again
                    while not self._closed.is_set():
                        for notice in conn.notifies(timeout=POLL_S):
                            self._wake(notice.payload)
            except psycopg.Error as exc:
                log.warning("listening for %s failed (%s); retrying", self.channel, exc)
                self._wake(None)
                self._closed.wait(RETRY_S)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(POLL_S + 5)
        self._wake(None)
