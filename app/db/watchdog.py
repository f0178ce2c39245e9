"""Keeps the embedded PostgreSQL up: a thread in the process that started it restarts it when
its postmaster dies, and gives up (so that the process exits and its own supervisor restarts
it) when it cannot."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from app.db import embedded

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0
# Waits before each restart attempt: a killed postmaster's backends need a moment to exit
# before a new one can take the shared memory.
RESTART_DELAYS_S = (0.0, 1.0, 2.0, 4.0, 8.0)
EXIT_CODE = 3  # what `postrag serve` / `postrag worker` exit with after giving up


class Watchdog:
    """Checks the postmaster every CHECK_INTERVAL_S; `on_failure` runs (in the watchdog's thread)
    when it is dead and every restart attempt failed."""

    def __init__(
        self,
        server: embedded.EmbeddedServer,
        on_failure: Callable[[], None],
        *,
        interval_s: float = CHECK_INTERVAL_S,
    ):
        self.server = server
        self.on_failure = on_failure
        self.interval_s = interval_s
        self.failed = False
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postrag-pg-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        # Registered after pgserver's own exit hook, so it runs first: the server that hook
        # stops on purpose must not be started again.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        pgdata = self.server.pgdata
        while not self._stopping.wait(self.interval_s):
            running = embedded.postmaster_pid(pgdata)
            if running is not None and running == self.server.handle.get_pid():
                continue
            if running is None:
                log.error("the embedded PostgreSQL in %s is down; starting it again", pgdata)
            # else another process started it again: adopting it lets this one stop it when it
            # is the last to leave.
            if self._restart():
                continue
            self.failed = True
            log.critical(
                "the embedded PostgreSQL in %s could not be started again; giving up", pgdata
            )
            self.on_failure()
            return

    def _restart(self) -> bool:
        for delay in RESTART_DELAYS_S:
            if self._stopping.wait(delay):
                return True  # leaving anyway
            try:
                pid = embedded.restart(self.server)
            except Exception as exc:  # noqa: BLE001 - each attempt's failure is logged
                log.warning("starting the embedded PostgreSQL again failed: %s", exc)
                continue
            log.warning("the embedded PostgreSQL is running again (pid %d)", pid)
            return True
        return False
