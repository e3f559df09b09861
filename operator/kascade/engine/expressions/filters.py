"""The filters (``value | name(args)``): a fixed table of pure functions on plain data."""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kascade.engine.expressions.values import (
    MAX_STRING_LENGTH,
    ExpressionError,
    UndefinedError,
    is_number,
    shorten,
    to_json,
    to_text,
    type_name,
)


@dataclass(frozen=True)
class Filter:
    func: Callable[..., Any]
    min_args: int
    max_args: int


def _need_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{what} must be a string, got {type_name(value)}")
    return value


def _f_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError(f"cannot convert {value} to int (not a finite number)")
        return int(value)
    if isinstance(value, str) and len(value) <= 100:
        text = value.strip()
        try:
            return int(text, 10)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number)
    raise ExpressionError(f"cannot convert {shorten(to_text(value), 40)!r} to int")


def _f_float(value: Any) -> float:
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            raise ExpressionError("integer too large to convert to float") from None
        if not math.isfinite(number):
            raise ExpressionError(f"cannot convert {number} to float (not a finite number)")
        return number
    if isinstance(value, str) and len(value) <= 100:
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    raise ExpressionError(f"cannot convert {shorten(to_text(value), 40)!r} to float")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _f_fromjson(value: Any) -> Any:
    text = _need_str(value, "input")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ExpressionError(f"invalid JSON: {shorten(str(exc), 80)}") from None


def _f_length(value: Any) -> int:
    if isinstance(value, str | list | tuple | Mapping):
        return len(value)
    raise ExpressionError(f"a {type_name(value)} has no length")


def _f_join(value: Any, sep: Any = "") -> str:
    if not isinstance(value, list | tuple):
        raise ExpressionError(f"input must be a list, got {type_name(value)}")
    glue = _need_str(sep, "separator")
    parts = [to_text(item) for item in value]
    if sum(map(len, parts)) + len(glue) * len(parts) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    return glue.join(parts)


def _f_replace(value: Any, old: Any, new: Any) -> str:
    text = to_text(value)
    old = _need_str(old, "search text")
    new = _need_str(new, "replacement")
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * (len(new) - len(old)) > MAX_STRING_LENGTH:
        raise ExpressionError(f"string result longer than {MAX_STRING_LENGTH} characters")
    return text.replace(old, new)


def _f_ds_add(value: Any, days: Any) -> str:
    text = _need_str(value, "date")
    if not is_number(days) or not math.isfinite(days) or int(days) != days:
        raise ExpressionError(f"days must be a whole number, got {shorten(str(days), 40)!r}")
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
        return (day + timedelta(days=int(days))).strftime("%Y-%m-%d")
    except (ValueError, OverflowError):
        raise ExpressionError(f"cannot add {days} days to {shorten(text, 40)!r}") from None


# Directives with the same meaning on every platform; glibc extensions such as
# %-d or %s vary by libc and are refused.
_STRFTIME_OK = set("aAbBdHIjmMpSUwWyYzZfGuV%")
_DIRECTIVE = re.compile(r"%(.?)", re.DOTALL)


def check_format(value: Any) -> str:
    fmt = _need_str(value, "format")
    if len(fmt) > 200:
        raise ExpressionError("format longer than 200 characters")
    for m in _DIRECTIVE.finditer(fmt):
        if m.group(1) not in _STRFTIME_OK:
            raise ExpressionError(
                f"unsupported format directive {m.group()!r} in {fmt!r}; "
                "use strftime directives such as %Y %m %d %H %M %S"
            )
    return fmt


def _f_ds_format(value: Any, in_fmt: Any, out_fmt: Any) -> str:
    text = _need_str(value, "date")
    try:
        return datetime.strptime(text, check_format(in_fmt)).strftime(check_format(out_fmt))
    except ValueError as exc:
        raise ExpressionError(f"cannot reformat {shorten(text, 40)!r}: {exc}") from None


def _f_edge(index: int) -> Callable[[Any], Any]:
    def pick(value: Any) -> Any:
        if not isinstance(value, str | list | tuple):
            raise ExpressionError(f"input must be a list or string, got {type_name(value)}")
        if not value:
            raise UndefinedError(f"{'first' if index == 0 else 'last'} of an empty value")
        return value[index]

    return pick


def _default(value: Any, fallback: Any = "") -> Any:  # handled in Pipe
    return fallback if value is None else value


FILTERS: dict[str, Filter] = {
    "default": Filter(_default, 0, 1),
    "upper": Filter(lambda v: to_text(v).upper(), 0, 0),
    "lower": Filter(lambda v: to_text(v).lower(), 0, 0),
    "trim": Filter(lambda v: to_text(v).strip(), 0, 0),
    "length": Filter(_f_length, 0, 0),
    "int": Filter(_f_int, 0, 0),
    "float": Filter(_f_float, 0, 0),
    "string": Filter(to_text, 0, 0),
    "tojson": Filter(to_json, 0, 0),
    "shquote": Filter(lambda v: shlex.quote(to_text(v)), 0, 0),
    "fromjson": Filter(_f_fromjson, 0, 0),
    "join": Filter(_f_join, 0, 1),
    "replace": Filter(_f_replace, 2, 2),
    "ds_add": Filter(_f_ds_add, 1, 1),
    "ds_format": Filter(_f_ds_format, 2, 2),
    "first": Filter(_f_edge(0), 0, 0),
    "last": Filter(_f_edge(-1), 0, 0),
}
