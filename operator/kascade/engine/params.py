"""Run parameters (Airflow Params): declared types, defaults and enums, overridden per run.

Values given on a command line arrive as strings (``--param days=3``); they are
converted to the declared type here so that templates and ``when`` see numbers
as numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Any

from kascade.api.pipeline import Param, ParamType
from kascade.engine import strict_json
from kascade.engine.errors import Issue, did_you_mean, shown


def coerce_cli_value(param: Param | None, raw: str) -> Any:
    """Turn a ``k=v`` string into the declared type (JSON for non-strings); a value that is
    not JSON stays a string, and the type check then names the param. Raises
    ``strict_json.JsonValueError`` for JSON that no run can use (NaN, 1e999, too deep)."""
    if param is None or param.type is ParamType.STRING:
        return raw
    try:
        return strict_json.loads(raw)
    except strict_json.NotJsonError:
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
        got = shown(value, 80)
        issues.append(Issue(path, f"param {name!r} must be of type {param.type.value}, got {got}"))
        return issues
    if param.enum is not None and value not in param.enum:
        issues.append(
            Issue(path, f"param {name!r} must be one of {param.enum}, got {shown(value, 80)}")
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            issues.append(Issue(path, f"param {name!r} must be >= {param.minimum}"))
        if param.maximum is not None and value > param.maximum:
            issues.append(Issue(path, f"param {name!r} must be <= {param.maximum}"))
    return issues


def resolve_params(
    declared: Mapping[str, Param] | None,
    given: Mapping[str, Any] | None,
    *,
    used: Collection[str] | None = None,
) -> tuple[dict[str, Any], list[Issue]]:
    """The effective params of a run, and every problem with the given values.

    A pipeline that declares params takes only those (a misspelt name is an error with a
    hint, not a value nobody reads). One that declares none takes any, like Airflow's
    ``conf``, except that with ``used`` (the names its templates read) a name nothing
    reads is refused too.
    """
    declared = declared or {}
    given = dict(given or {})
    issues = list(_unknown(declared, given, used))
    values: dict[str, Any] = {}
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
        # Params of a pipeline that declares none are passed as given (Airflow's conf).
        values[name] = value
    return values, issues


def _unknown(
    declared: Mapping[str, Param], given: Mapping[str, Any], used: Collection[str] | None
) -> Iterator[Issue]:
    for name in given:
        if declared and name not in declared:
            known = ", ".join(declared)
            yield Issue(
                f"params.{name}",
                f"unknown param {name!r}{did_you_mean(name, declared)}; declared: {known}",
            )
        elif not declared and used is not None and name not in used:
            hint = did_you_mean(name, used)
            yield Issue(
                f"params.{name}",
                f"unknown param {name!r}{hint}: the pipeline declares no params and no "
                f"template reads params.{name}",
            )
