"""Log output: text or one JSON object per line (POSTRAG_LOG_FORMAT), each with its request id.

The request id is read from the Flask request being served when the record is made (it is set
by app/api/observability.py), so every line a request causes carries it, whichever logger wrote
it. Records made outside a request carry none.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# The attributes every LogRecord has; anything else was passed with extra={...} and is kept.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


def current_request_id() -> str | None:
    return g.get("request_id") if has_request_context() else None


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute ('-' outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or current_request_id()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(level: str, log_format: str) -> None:
    """The root logger writes to stderr in the chosen format; replaces earlier handlers."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def gunicorn_logconfig(level: str, log_format: str) -> dict[str, Any]:
    """The same output for gunicorn's processes: its own loggers and the root logger (the app's).

    gunicorn's access log is off: the app logs each request itself, with its request id.
    """
    fmt: dict[str, Any] = {"()": "app.logs.JsonFormatter"}
    if log_format != "json":
        fmt = {"()": "logging.Formatter", "fmt": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"postrag": fmt},
        "filters": {"request_id": {"()": "app.logs.RequestIdFilter"}},
        "handlers": {
            "postrag": {
                "class": "logging.StreamHandler",
                "formatter": "postrag",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["postrag"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["postrag"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": [], "propagate": False},
        },
    }
