"""schemathesis hooks (SCHEMATHESIS_HOOKS, set by tests/test_schemathesis.py): how to send the
request bodies whose media type it does not know: an import file is JSON lines."""

from __future__ import annotations

import json
import sys
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def json_lines(_ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


def _parse_schemathesis_lambdas_early() -> None:
    """Work around a CPython 3.11.7 bug (gh-106905, fixed in 3.11.8): `ast.parse` of a large file
    deep in a generator stack raises "SystemError: AST constructor recursion depth mismatch".

    hypothesis parses the source file of every lambda it describes, and schemathesis describes
    lambdas of its large coverage and JSON-strategy modules from deep inside its generators, in
    worker threads. The modules are parsed here, at the top of the stack, and its lambdas are
    handed to every thread (hypothesis' own cache is per thread).
    """
    from hypothesis.internal import lambda_sources
    from hypothesis.internal.reflection import get_pretty_function_description
    from schemathesis.generation.jsonschema import strategy
    from schemathesis.specs.openapi.coverage import _schema

    # The coverage module, and the generator of arbitrary JSON values (free-form metadata).
    for module in (_schema, strategy):
        stand_in = eval(compile("lambda value: value", module.__file__, "eval"))  # noqa: S307
        get_pretty_function_description(stand_in)
    parsed = dict(lambda_sources.AST_LAMBDAS_CACHE.cache)  # this thread's: the modules above
    per_thread = lambda_sources.AST_LAMBDAS_CACHE

    class _Parsed:
        def __getitem__(self, source_lines: Any) -> Any:
            return parsed[source_lines] if source_lines in parsed else per_thread[source_lines]

        def __setitem__(self, source_lines: Any, lambdas: Any) -> None:
            per_thread[source_lines] = lambdas

    lambda_sources.AST_LAMBDAS_CACHE = _Parsed()  # type: ignore[assignment]


if sys.version_info[:3] == (3, 11, 7):
    _parse_schemathesis_lambdas_early()
