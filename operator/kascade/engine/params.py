"""Run parameters (Airflow Params): declared types, defaults and enums, overridden per run.

Values given on a command line arrive as strings (``--param days=3``); they are
converted to the declared type here so that templates and ``when`` see numbers
as numbers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kascade.api.pipeline import Param, ParamType
from kascade.engine.errors import Issue


def coerce_cli_value(param: Param | None, raw: str) -> Any:
    """Turn a ``k=v`` string into the declared type (JSON for non-strings)."""
    if param is None or param.type is ParamType.STRING:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _type_ok(kind: ParamType, value: Any) -> bool:
    if kind is ParamType.STRING:
        return isinstance(value, str)
    if kind is ParamType.BOOLEAN:
        return isinstance(value, bool)
    if kind is ParamType.INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is ParamType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is ParamType.ARRAY:
        return isinstance(value, list)
    return isinstance(value, dict)


def check_param(name: str, param: Param, value: Any, path: str) -> list[Issue]:
    issues: list[Issue] = []
    if not _type_ok(param.type, value):
        issues.append(
            Issue(path, f"param {name!r} must be of type {param.type.value}, got {value!r}")
        )
        return issues
    if param.enum is not None and value not in param.enum:
        issues.append(Issue(path, f"param {name!r} must be one of {param.enum}, got {value!r}"))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            issues.append(Issue(path, f"param {name!r} must be >= {param.minimum}"))
        if param.maximum is not None and value > param.maximum:
            issues.append(Issue(path, f"param {name!r} must be <= {param.maximum}"))
    return issues


def resolve_params(
    declared: Mapping[str, Param] | None, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[Issue]]:
    """The effective params of a run, and every problem with the given values."""
    declared = declared or {}
    given = dict(given or {})
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, param in declared.items():
        if name in given:
            value = given.pop(name)
        elif param.default is not None:
            value = param.default
        elif param.required:
            issues.append(Issue(f"params.{name}", f"param {name!r} is required (no default)"))
            continue
        else:
            values[name] = None
            continue
        issues.extend(check_param(name, param, value, f"params.{name}"))
        values[name] = value
    for name, value in given.items():
        # Undeclared params are allowed, as in Airflow, and passed as given.
        values[name] = value
    return values, issues
