"""Standard JSON only: NaN and Infinity are refused both ways, in responses, storage and input.

Python's json writes `NaN` and `Infinity` by default, which is not JSON: a browser's parser
fails on it and PostgreSQL refuses it as json. Every response (the Flask provider in
app/api/json_provider.py, SSE events) and every json/jsonb parameter (`jsonb`) is written by
`dumps`, which raises NonFiniteNumber instead; `loads` refuses the constants in what comes in,
and numbers too large for a float (which Python would read as an infinity).
"""

from __future__ import annotations

import json
import math
from typing import Any

from psycopg.types.json import Jsonb


class NonFiniteNumber(ValueError):
    """A NaN or an infinity was about to be written as JSON (a bug upstream: it is not data)."""


def dumps(obj: Any, **kwargs: Any) -> str:
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError as exc:
        if "Out of range float" not in str(exc):  # json's message for NaN and infinities
            raise
        raise NonFiniteNumber(f"refusing to write JSON with a NaN or an infinity: {exc}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 is valid JSON, but no float holds it: it reads as inf
        raise ValueError(f"{text[:40]} is too large for a number")
    return value


def loads(text: str | bytes, **kwargs: Any) -> Any:
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float, **kwargs)


def jsonb(obj: Any) -> Jsonb:
    """`obj` as a jsonb parameter, written by `dumps`."""
    return Jsonb(obj, dumps=dumps)
