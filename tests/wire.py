"""A loopback TCP proxy in front of PostgreSQL that counts round trips as they cross the wire.

A round trip is the server answering after the client has sent something: however the client
batches its statements (pipelined or one at a time), what it waits for is counted once per
answer it has to wait for. Asynchronous notifications (the server speaking first) are not.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import quote

from psycopg.conninfo import conninfo_to_dict


class WireCounter:
    def __init__(self, upstream_url: str) -> None:
        info = conninfo_to_dict(upstream_url)
        host, port = str(info.get("host") or "/tmp"), int(info.get("port") or 5432)
        self._upstream: tuple[int, object] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
            if host.startswith("/")
            else (socket.AF_INET, (host, port))
        )
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.round_trips = 0
        self.counting = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        user = quote(str(info.get("user") or os.environ.get("USER", "postgres")))
        self.url = (
            f"postgresql://{user}@127.0.0.1:{self._listener.getsockname()[1]}/{info['dbname']}"
        )
        threading.Thread(target=self._accept, daemon=True).start()

    @contextlib.contextmanager
    def counted(self) -> Iterator[WireCounter]:
        with self._lock:
            self.round_trips, self.counting = 0, True
        try:
            yield self
        finally:
            self.counting = False

    def close(self) -> None:
        self._listener.close()
        for end in self._open:
            _hang_up(end)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            family, address = self._upstream
            server = socket.socket(family, socket.SOCK_STREAM)
            server.connect(address)
            self._open += [client, server]
            asked = threading.Event()  # the client sent something the server has not answered
            threading.Thread(
                target=self._pump, args=(client, server, asked, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, asked, False), daemon=True
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, asked: threading.Event, up: bool
    ) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if up:
                    asked.set()
                elif asked.is_set():
                    asked.clear()
                    if self.counting:
                        with self._lock:
                            self.round_trips += 1
                sink.sendall(data)
        for end in (source, sink):
            _hang_up(end)


def _hang_up(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    end.close()
