"""Compiles a search's metadata filter (JSON conditions) into SQL with bound parameters only.

A filter is a condition `{"field": "year", "op": "gte", "value": 2020}` or a combination
`{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}`. Fields name keys of the document's metadata;
a dotted field (`author.name`) walks into nested objects. Values always travel as parameters;
field paths too (as a text[] for `#>`), so no user text ever becomes SQL.
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import sql

from app.errors import ValidationFailed
from app.strict_json import jsonb

MAX_DEPTH = 8
MAX_CONDITIONS = 64
MAX_IN_VALUES = 100
OPERATORS = ("eq", "ne", "in", "lt", "lte", "gt", "gte", "exists")
_RANGE_SQL = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class _Compiler:
    def __init__(self, column: sql.Composable):
        self.column = column
        self.params: dict[str, Any] = {}
        self.conditions = 0

    def fail(self, loc: list[Any], msg: str) -> ValidationFailed:
        return ValidationFailed.on_field(
            "filter",
            msg,
            at=tuple(loc),
            type="invalid_filter",
            detail=f"the filter is invalid: {msg}",
        )

    def param(self, value: Any) -> sql.Placeholder:
        name = f"filter_{len(self.params)}"
        self.params[name] = value
        return sql.Placeholder(name)

    def node(self, spec: Any, loc: list[Any], depth: int) -> sql.Composable:
        if depth > MAX_DEPTH:
            raise self.fail(loc, f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(spec, dict):
            raise self.fail(loc, "a condition must be an object")
        combinators = [key for key in ("and", "or", "not") if key in spec]
        if combinators:
            if len(spec) != 1:
                raise self.fail(loc, "and/or/not must be the object's only key")
            key = combinators[0]
            if key == "not":
                inner = self.node(spec["not"], [*loc, "not"], depth + 1)
                return sql.SQL("(NOT {})").format(inner)
            items = spec[key]
            if not isinstance(items, list) or not items:
                raise self.fail([*loc, key], f"{key} takes a non-empty list of conditions")
            parts = [self.node(s, [*loc, key, i], depth + 1) for i, s in enumerate(items)]
            joiner = sql.SQL(" AND " if key == "and" else " OR ")
            return sql.SQL("({})").format(joiner.join(parts))
        # Two-valued logic: a condition on a missing field is false, so `not` is its complement.
        return sql.SQL("coalesce({}, false)").format(self.condition(spec, loc))

    def condition(self, spec: dict[str, Any], loc: list[Any]) -> sql.Composable:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.fail(loc, f"more than {MAX_CONDITIONS} conditions")
        unknown = set(spec) - {"field", "op", "value"}
        if unknown:
            raise self.fail(loc, f"unknown keys {sorted(unknown)}; use field, op, value")
        field, op = spec.get("field"), spec.get("op", "eq")
        if not isinstance(field, str) or not 1 <= len(field) <= 200:
            raise self.fail([*loc, "field"], "field must be a string of 1 to 200 characters")
        path = field.split(".")
        if "" in path:
            raise self.fail([*loc, "field"], "field has an empty path segment")
        if op not in OPERATORS:
            raise self.fail([*loc, "op"], f"op must be one of {', '.join(OPERATORS)}")
        value_loc = [*loc, "value"]
        target = sql.SQL("({} #> {})").format(self.column, self.param(path))
        if op == "exists":
            value = spec.get("value", True)
            if not isinstance(value, bool):
                raise self.fail(value_loc, "exists takes true or false")
            return sql.SQL("({} IS {} NULL)").format(target, sql.SQL("NOT" if value else ""))
        if "value" not in spec:
            raise self.fail(value_loc, f"{op} needs a value")
        value = spec["value"]
        self.check_finite(value, value_loc)
        if op == "eq":
            return sql.SQL("({} = {}::jsonb)").format(target, self.param(jsonb(value)))
        if op == "ne":
            return sql.SQL("({} IS DISTINCT FROM {}::jsonb)").format(
                target, self.param(jsonb(value))
            )
        if op == "in":
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
                raise self.fail(value_loc, f"in takes a list of 1 to {MAX_IN_VALUES} values")
            values = self.param([jsonb(v) for v in value])
            return sql.SQL("({} = ANY({}::jsonb[]))").format(target, values)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(value_loc, f"{op} compares numbers or strings")
        kind = "string" if isinstance(value, str) else "number"
        # jsonb orders values of different types by type first; compare like with like only.
        return sql.SQL("(jsonb_typeof({}) = {} AND {} {} {}::jsonb)").format(
            target, self.param(kind), target, sql.SQL(_RANGE_SQL[op]), self.param(jsonb(value))
        )

    def check_finite(self, value: Any, loc: list[Any]) -> None:
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise self.fail(loc, "numbers must be finite")
            if isinstance(item, list):
                pending.extend(item)
            elif isinstance(item, dict):
                pending.extend(item.values())


def compile_filter(spec: Any, column: sql.Composable) -> tuple[sql.Composable, dict[str, Any]]:
    """SQL for `spec` over the jsonb `column`, and the parameters it binds (422 if invalid)."""
    compiler = _Compiler(column)
    return compiler.node(spec, [], 1), compiler.params
