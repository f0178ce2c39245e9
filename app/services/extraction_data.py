"""JSON and YAML as text: checked to be what they claim (YAML with safe loading only), then
read as text: JSON pretty-printed (a minified file is one long line), YAML as written."""

from __future__ import annotations

import io
import json
from typing import Any

from app.services import extraction
from app.services.extraction import Block, UnreadableDocument, decode_text, paragraphs


def json_blocks(data: bytes) -> list[Block]:
    text = decode_text(data)
    try:
        pretty = _pretty(json.loads(text), limit=extraction.MAX_TEXT_CHARS)
    except RecursionError:
        raise UnreadableDocument("the JSON is nested too deeply to read") from None
    except ValueError as exc:
        raise UnreadableDocument(f"the file is not valid JSON: {exc}") from None
    return paragraphs(text if pretty is None else pretty)


def _pretty(value: Any, limit: int) -> str | None:
    """The value indented, or None past `limit` characters: indentation grows with depth, so
    deeply nested lists could pretty-print to gigabytes."""
    pretty, size = io.StringIO(), 0
    for part in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value):
        size += len(part)
        if size > limit:
            return None
        pretty.write(part)
    return pretty.getvalue()


def yaml_blocks(data: bytes) -> list[Block]:
    import yaml

    text = decode_text(data)
    # Safe loading builds plain values only (no Python objects); an alias is a reference, not a
    # copy, so "billion laughs" stays small. The value is dropped: the text is what is indexed.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for _ in yaml.load_all(text, Loader=loader):  # noqa: S506 - a safe loader
            pass
    except RecursionError:
        raise UnreadableDocument("the YAML is nested too deeply to read") from None
    except yaml.YAMLError as exc:
        raise UnreadableDocument(f"the file is not valid YAML: {exc}") from None
    return paragraphs(text)
