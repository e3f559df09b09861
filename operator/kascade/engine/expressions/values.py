"""Values in the expression language: limits, errors, truthiness and text.

Everything an expression handles is plain JSON-like data; these helpers keep it so
(sizes capped) and decide how it reads as a condition or renders as text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_EXPRESSION_LENGTH = 4096
MAX_DEPTH = 64
MAX_STRING_LENGTH = 1 << 20
MAX_LIST_LENGTH = 100_000
MAX_INT_DIGITS = 4300
"""Python refuses to print a longer integer (``sys.get_int_max_str_digits``); none is made."""
_INT_LIMIT = 10**MAX_INT_DIGITS
FALSE_STRINGS = frozenset({"", "false", "False", "0", "null"})

Segment = str | int
Path = tuple[Segment, ...]


class ExpressionError(ValueError):
    """Bad syntax or a failed evaluation; the message names text and column."""

    def __init__(
        self, reason: str, *, expression: str | None = None, column: int | None = None
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.column = column
        message = reason
        if column is not None:
            message += f" at column {column}"
        if expression is not None:
            message += f" in {shorten(expression)!r}"
        super().__init__(message)


class UndefinedError(ExpressionError):
    """A path that does not resolve; ``| default(...)`` turns it into a value."""


class NullMap(dict[str, Any]):
    """A mapping in which every missing key reads as null instead of being undefined.

    It stands for the outputs of a task that ended without succeeding: Airflow's
    ``xcom_pull`` returns None for such a task, so a downstream task that runs anyway
    (a join after a branch, an ``all_done`` cleanup) must render, not fail. It stays
    empty, so ``in``, ``length`` and JSON still see a task that wrote nothing.
    """


class Deferred:
    """A value fetched when an expression reaches it (an output kept in the object store:
    the engine holds its reference, and reads it only when a template, a ``when`` or an
    ``expand`` uses it). ``resolve`` raises ExpressionError when it cannot be read."""

    def resolve(self) -> Any:
        raise NotImplementedError


def resolved(value: Any) -> Any:
    """``value`` with every Deferred in it read (containers are copied only if they hold one)."""
    if isinstance(value, Deferred):
        return resolved(value.resolve())
    if isinstance(value, NullMap):
        return value
    if isinstance(value, Mapping):
        if any(_holds_deferred(v) for v in value.values()):
            return {k: resolved(v) for k, v in value.items()}
        return value
    if isinstance(value, list | tuple):
        if any(_holds_deferred(v) for v in value):
            return [resolved(v) for v in value]
        return value
    return value


def _holds_deferred(value: Any) -> bool:
    if isinstance(value, Deferred):
        return True
    if isinstance(value, Mapping):
        return any(_holds_deferred(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_deferred(v) for v in value)
    return False


def shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- values


def truthy(value: Any) -> bool:
    """Python truthiness, except that strings spelling falsehood are false.

    Task outputs and rendered templates are strings, so ``"false"`` coming
    back from a container must not count as true.
    """
    if isinstance(value, str):
        return value.strip() not in FALSE_STRINGS
    return bool(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def to_json(value: Any, limit: int = MAX_STRING_LENGTH) -> str:
    """``value`` as compact JSON, written piece by piece and abandoned past ``limit``
    characters: a value that shares parts (YAML aliases) can be far larger written out
    than it is in memory, and must not be written out whole before it is refused."""
    pieces: list[str] = []
    size = 0
    try:
        for piece in _ENCODER.iterencode(value):
            size += len(piece)
            if size > limit:
                raise ExpressionError(f"string result longer than {limit} characters")
            pieces.append(piece)
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"value cannot be converted to JSON: {exc}") from None
    return "".join(pieces)


def to_text(value: Any, limit: int = MAX_STRING_LENGTH) -> str:
    """The string form used by templates: YAML-ish scalars, JSON containers (at most
    ``limit`` characters of JSON are written)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(checked(value))
    if isinstance(value, Mapping | list | tuple):
        return to_json(value, min(limit, MAX_STRING_LENGTH))
    return str(value)


def checked(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    if isinstance(value, list) and len(value) > MAX_LIST_LENGTH:
        raise ExpressionError(f"list result longer than {MAX_LIST_LENGTH} items")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("numeric result is not finite")
    if isinstance(value, int) and not -_INT_LIMIT < value < _INT_LIMIT:
        raise ExpressionError(f"integer result has more than {MAX_INT_DIGITS} digits")
    return value


def type_name(value: Any) -> str:
    names = {str: "string", bool: "bool", int: "int", float: "float", type(None): "null"}
    if type(value) in names:
        return names[type(value)]
    if isinstance(value, Mapping):
        return "dict"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
