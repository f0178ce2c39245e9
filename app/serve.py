"""Runs a Flask app factory under gunicorn from inside the `postrag serve` process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, factory: Callable[[], Flask], options: dict[str, Any]):
        self.factory = factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in each worker after the fork, so each has its own connection pool.
        return self.factory()


def run_gunicorn(
    factory: Callable[[], Flask],
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
    log_level: str,
) -> None:
    _Server(
        factory,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "loglevel": log_level.lower(),
            "accesslog": "-",
            "graceful_timeout": 10,
            "timeout": 120,
            # One control socket path per user would clash between two servers on a machine.
            "control_socket_disable": True,
        },
    ).run()
