"""Documents' metadata: a JSON object of bounded size and depth, checked wherever it comes in.

Metadata is for filtering and labelling, not for content: without a bound, a few megabytes on
a shared document would weigh on every search that finds it. Uploads (file or JSON) and import
files go through `check`; search answers carry each document's metadata once, not per hit.
"""

from __future__ import annotations

from typing import Any

from app import strict_json
from app.errors import ValidationFailed

MAX_METADATA_BYTES = 16 * 1024  # as compact UTF-8 JSON
MAX_METADATA_DEPTH = 16  # levels of objects and arrays, the metadata object itself included


def _depth(value: Any) -> int:
    """Levels of nested objects and arrays (iterative: the depth is what is being bounded)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def check(metadata: dict[str, Any]) -> None:
    """422 (naming the field `metadata`) when it is larger or deeper than the documented limits."""
    if _depth(metadata) > MAX_METADATA_DEPTH:  # first: serialising recurses
        problem = f"is nested more than {MAX_METADATA_DEPTH} levels deep"
    else:
        text = strict_json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))
        size = len(text.encode(errors="surrogatepass"))  # lone surrogates are refused apart
        if size <= MAX_METADATA_BYTES:
            return
        problem = f"is {size} bytes as JSON; the limit is {MAX_METADATA_BYTES}"
    raise ValidationFailed.on_field(
        "metadata", f"metadata {problem}", type="too_large", detail=f"the metadata {problem}"
    )
