"""Text PostgreSQL cannot store (NUL characters, lone surrogates), found before any SQL runs.

JSON can carry both; a text column refuses them with an error that would be a 500. Used on
request bodies and queries (app/api/endpoint.py) and on import files (app/services/transfer.py);
what remote servers send (MCP servers) is cleaned instead.
"""

from __future__ import annotations

import re
from typing import Any

from app.errors import BadRequest, FieldError, ValidationFailed


def _storable(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor lone surrogates (JSON can carry both)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def cleaned(data: Any) -> Any:
    """`data` with each NUL character and lone surrogate in its text (keys included) replaced
    by U+FFFD, so that PostgreSQL stores it."""
    if isinstance(data, str):
        return data if _storable(data) else _UNSTORABLE.sub("\ufffd", data)
    if isinstance(data, dict):
        return {cleaned(str(k)): cleaned(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [cleaned(v) for v in data]
    return data


def _bad_text_paths(data: Any, where: list[Any]) -> list[list[Any]]:
    """Where `data` (keys included) holds text PostgreSQL cannot store."""
    if isinstance(data, str):
        return [] if _storable(data) else [where]
    if isinstance(data, dict):
        bad_keys = [[*where, key] for key in data if not _storable(str(key))]
        items: Any = data.items()
    elif isinstance(data, list):
        bad_keys, items = [], enumerate(data)
    else:
        return []
    return bad_keys + [p for key, value in items for p in _bad_text_paths(value, [*where, key])]


def reject_unstorable_text(data: Any, *path: str | int, source: str | None = None) -> None:
    """422 naming each string in `data` (at `path`, in the request's `source` when the caller
    parsed the request) that contains NUL characters or lone surrogates."""
    try:
        paths = _bad_text_paths(data, list(path))
    except RecursionError:
        raise BadRequest(f"the {path[-1] if path else source} is nested too deeply") from None
    if paths:
        msg = "must not contain NUL characters or lone surrogates"
        raise ValidationFailed(
            "the request contains characters that cannot be stored",
            [FieldError(tuple(p), msg, "invalid_text", source) for p in paths],
        )
