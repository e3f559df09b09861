"""JSON as Kubernetes stores it: no NaN or Infinity, integers Python can print, bounded nesting.

Params given on a command line and task outputs are JSON written by people and
programs. Python's reader is lenient (``NaN``, ``1e999`` read as infinity) and its
failures are not all ``JSONDecodeError`` (an integer of 5,000 digits is a plain
ValueError; 60,000 nested brackets a RecursionError). :func:`loads` turns every one of
them into :class:`JsonValueError` with a message fit for the user.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_NESTING = 64
"""Levels of lists and objects in one value."""


class JsonValueError(ValueError):
    """Text that is not JSON a run can use; the message says why."""


class NotJsonError(JsonValueError):
    """Text that is not JSON at all (as opposed to JSON with a value no run can use)."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonValueError(f"{text[:40]} is not a finite number")
    return value


def _no_constant(name: str) -> Any:
    raise JsonValueError(f"{name} is not a number JSON allows")


def loads(text: str | bytes) -> Any:
    """Parse strictly; JsonValueError (a ValueError) on anything a run cannot use."""
    try:
        value = json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except JsonValueError:
        raise
    except RecursionError:
        raise JsonValueError(f"nested deeper than {MAX_NESTING} levels") from None
    except json.JSONDecodeError as exc:
        raise NotJsonError(f"not JSON: {exc}") from None
    except ValueError as exc:  # int() refuses over sys.get_int_max_str_digits() digits
        raise JsonValueError(f"an integer with too many digits ({exc})"[:120]) from None
    if depth(value) > MAX_NESTING:
        raise JsonValueError(f"nested deeper than {MAX_NESTING} levels")
    return value


def depth(value: Any) -> int:
    """How many lists and objects deep ``value`` goes (iterative: no recursion limit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (``--output json`` is strict JSON):
    a non-finite float, which no reader of this module produces, is written as null."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        return json.dumps(_finite_only(value), allow_nan=False, **kwargs)


def _finite_only(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_only(v) for v in value]
    return value
