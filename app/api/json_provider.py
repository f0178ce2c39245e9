"""The app's JSON provider: Flask's, writing and reading standard JSON only (app/strict_json.py)."""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from app import strict_json


class StrictJSONProvider(DefaultJSONProvider):
    """Every flask.json use (responses, problems, SSE events, request bodies) refuses NaN and
    Infinity: writing one raises NonFiniteNumber (a logged 500), reading one is a 400."""

    sort_keys = False  # in the order the models declare their fields

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        return strict_json.dumps(obj, **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_json.loads(s, **kwargs)
