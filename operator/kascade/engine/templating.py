"""``{{ expr }}`` templating over plain data, for task specs and params.

Only the expression language in :mod:`kascade.engine.expressions` runs
inside the braces, so rendering a user's spec cannot reach Python objects.
Rendering is deterministic and clock-free: every date comes from
:func:`macro_context`, built from the run's logical date and data interval.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kascade.engine.expressions import (
    MAX_STRING_LENGTH,
    ExpressionError,
    Path,
    parse,
    to_text,
)
from kascade.engine.schedule import DataInterval

__all__ = [
    "MAX_RENDERED_TASK",
    "Budget",
    "TemplateError",
    "check",
    "expressions_in",
    "is_templated",
    "macro_context",
    "references",
    "render",
    "render_native",
    "render_value",
    "string_leaves",
]

_OPEN = "{{"
_CLOSE = "}}"


class TemplateError(ExpressionError):
    """A template that cannot be split or rendered; names the column in the text."""


@dataclass(frozen=True)
class _Part:
    literal: str
    expression: str | None  # None for trailing literal text
    column: int  # 1-based column of the expression's first character


def _close_index(text: str, start: int) -> int:
    """Index of the ``}}`` ending an expression that begins at ``start``.

    Quotes are honoured so ``{{ '}}' }}`` works; -1 when there is none.
    """
    i = start
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif text.startswith(_CLOSE, i):
            return i
        i += 1
    return -1


def _split(text: str) -> Iterator[_Part]:
    pos = 0
    while True:
        open_at = text.find(_OPEN, pos)
        if open_at < 0:
            yield _Part(text[pos:], None, 0)
            return
        body = open_at + len(_OPEN)
        close_at = _close_index(text, body)
        if close_at < 0:
            raise TemplateError("unclosed '{{'", expression=text, column=open_at + 1)
        yield _Part(text[pos:open_at], text[body:close_at], body + 1)
        pos = close_at + len(_CLOSE)


def _template_error(exc: ExpressionError, text: str, part: _Part) -> TemplateError:
    """Re-anchor an expression error to the whole template's columns.

    Syntax errors point into the expression; evaluation errors have no
    column of their own, so they point at the opening braces.
    """
    assert part.expression is not None
    column = part.column - len(_OPEN) if exc.column is None else part.column + exc.column - 1
    shown = f"{{{{ {part.expression.strip()} }}}}" if part.expression.strip() else "{{ }}"
    return TemplateError(f"{exc.reason} (in {shown!r})", expression=text, column=column)


def is_templated(text: str) -> bool:
    return _OPEN in text


MAX_RENDERED_TASK = MAX_STRING_LENGTH
"""Characters a task's rendered fields may add up to (command, args, script, env, image,
sensor fields together): what a pod holds must fit in etcd, and a hundred fields each
just under the per-string limit must not make a 100 MiB pod."""


class Budget:
    """What is left of :data:`MAX_RENDERED_TASK` while one task's fields are rendered."""

    def __init__(self, limit: int = MAX_RENDERED_TASK) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, size: int, text: str) -> None:
        self.left -= size
        if self.left < 0:
            raise TemplateError(
                f"the task's rendered fields are longer than {self.limit} characters in total",
                expression=text,
            )


def render(
    text: str,
    ctx: Mapping[str, Any],
    *,
    escape: Callable[[str], str] | None = None,
    budget: Budget | None = None,
) -> str:
    """Replace each ``{{ expr }}``; raise TemplateError on any failure.

    ``escape`` is applied to each substituted value, never to the literal text:
    an HTML e-mail body escapes what a run produced (an error message with ``<``)
    while the author's markup stays markup. Sizes are checked as the text grows, against
    the string limit and the task's ``budget`` (a value is not even written out past
    what is left of either).
    """
    if _OPEN not in text:
        if budget is not None:
            budget.spend(len(text), text)
        return text
    budget = budget or Budget()
    out: list[str] = []
    size = 0
    for part in _split(text):
        out.append(part.literal)
        size += len(part.literal)
        budget.spend(len(part.literal), text)
        if part.expression is not None:
            room = max(0, min(MAX_STRING_LENGTH - size, budget.left))
            try:
                value = to_text(parse(part.expression).evaluate(ctx), room)
            except ExpressionError as exc:
                raise _template_error(exc, text, part) from exc
            if escape is not None:
                value = escape(value)
            out.append(value)
            size += len(value)
            budget.spend(len(value), text)
        if size > MAX_STRING_LENGTH:
            raise TemplateError(
                f"rendered text longer than {MAX_STRING_LENGTH} characters", expression=text
            )
    return "".join(out)


def render_value(obj: Any, ctx: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Render every string inside plain data; keys stay literal so specs keep shape."""
    if isinstance(obj, str):
        return render(obj, ctx, budget=budget)
    if isinstance(obj, Mapping):
        return {key: render_value(value, ctx, budget) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [render_value(item, ctx, budget) for item in obj]
    return obj


def render_native(obj: Any, ctx: Mapping[str, Any]) -> Any:
    """:func:`render_value`, but a string that is one whole ``{{ expr }}`` becomes the
    expression's value with its type (a number stays a number, a list a list), as
    Airflow's ``render_template_as_native_obj`` does: for params passed to another run."""
    if isinstance(obj, str):
        parts = list(_split(obj)) if _OPEN in obj else []
        if (
            len(parts) == 2
            and parts[0].expression is not None
            and not parts[0].literal.strip()
            and not parts[1].literal.strip()
        ):
            part = parts[0]
            try:
                value = parse(part.expression).evaluate(ctx)
            except ExpressionError as exc:
                raise _template_error(exc, obj, part) from exc
            # Containers as plain JSON data (a task's outputs map included), size-capped.
            return json.loads(to_text(value)) if isinstance(value, Mapping | list) else value
        return render(obj, ctx)
    if isinstance(obj, Mapping):
        return {key: render_native(value, ctx) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [render_native(item, ctx) for item in obj]
    return obj


def string_leaves(obj: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside plain data, with its field path (``body.blocks[0].text``): what
    :func:`render_value` renders, for validation to check."""
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from string_leaves(value, f"{path}.{key}")
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from string_leaves(item, f"{path}[{i}]")


def _parsed(text: str) -> Iterator[tuple[_Part, list[Path]]]:
    for part in _split(text):
        if part.expression is not None:
            try:
                yield part, parse(part.expression).references()
            except ExpressionError as exc:
                raise _template_error(exc, text, part) from exc


def expressions_in(text: str) -> list[str]:
    """The text of every ``{{ expr }}`` of a template ([] when it does not split)."""
    try:
        return [part.expression for part in _split(text) if part.expression is not None]
    except TemplateError:
        return []


def check(text: str) -> list[str]:
    """Syntax errors of every expression, without evaluating; [] when fine."""
    errors: list[str] = []
    try:
        parts = list(_split(text))
    except TemplateError as exc:
        return [str(exc)]
    for part in parts:
        if part.expression is None:
            continue
        try:
            parse(part.expression)
        except ExpressionError as exc:
            errors.append(str(_template_error(exc, text, part)))
    return errors


def references(text: str) -> list[Path]:
    """Every path used in the template, in order, without duplicates."""
    seen: dict[Path, None] = {}
    for _, paths in _parsed(text):
        for path in paths:
            seen.setdefault(path, None)
    return list(seen)


MACRO_NAMES = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "run_id",
        "params",
        "pipeline",
        "tasks",
    }
)
"""The names :func:`macro_context` gives every template of a run."""


def _as_airflow_prints(value: datetime) -> str:
    """``str()`` of Airflow's date objects: ISO with a space, ``2024-01-15 00:00:00+00:00``."""
    return str(value.astimezone(UTC))


def _task_tree(task_outputs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Nest qualified ids ("group.task") so ``tasks.group.task.outputs.x`` resolves.

    A group and a task can share a prefix (task ``a`` and ``a.b``): both live
    in the same dict, the task's ``outputs`` key beside the child names.
    """
    tree: dict[str, Any] = {}
    for task_id, outputs in task_outputs.items():
        node = tree
        for name in task_id.split("."):
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
        node["outputs"] = dict(outputs)
    return tree


def macro_context(
    *,
    logical_date: datetime,
    interval: DataInterval,
    run_id: str,
    pipeline_name: str,
    namespace: str,
    params: Mapping[str, Any],
    task_outputs: Mapping[str, Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Airflow's template variables for one run, as plain strings and dicts.

    Each renders as the same text as in Airflow: ``ts`` is ISO 8601 with a ``T``, while
    ``logical_date`` and ``data_interval_*`` are Airflow's date objects printed with
    ``str()`` (a space between date and time); ``ts_nodash_with_tz`` keeps microseconds.
    Dates are in UTC like Airflow's defaults, so ``ds`` of a run is the same whatever
    the pipeline's schedule timezone.
    """
    logical = logical_date.astimezone(UTC)
    ts = logical.isoformat()
    ctx: dict[str, Any] = {
        "ds": logical.strftime("%Y-%m-%d"),
        "ds_nodash": logical.strftime("%Y%m%d"),
        "ts": ts,
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "logical_date": _as_airflow_prints(logical),
        "data_interval_start": _as_airflow_prints(interval.start),
        "data_interval_end": _as_airflow_prints(interval.end),
        "run_id": run_id,
        "params": dict(params),
        "pipeline": {"name": pipeline_name, "namespace": namespace},
        "tasks": _task_tree(task_outputs),
    }
    if extra:
        ctx.update(extra)
    return ctx
