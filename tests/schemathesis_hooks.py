"""schemathesis hooks (SCHEMATHESIS_HOOKS, set by tests/test_schemathesis.py): how to send the
request bodies whose media type it does not know: an import file is JSON lines."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(_ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")
