"""Templated arguments: Airflow's Jinja written as Kascade's template language.

Kascade renders ``{{ ... }}`` in the engine, with a sandboxed expression
language (docs/concepts.md#expressions), never in the task. The common Airflow
spellings are rewritten to it when the DAG is compiled:
``{{ ti.xcom_pull(task_ids='t', key='k') }}`` → ``{{ tasks.t.outputs.k }}``,
``{{ macros.ds_add(ds, 7) }}`` → ``{{ ds | ds_add(7) }}``, ``execution_date`` →
``logical_date``, ``dag.dag_id`` → the DAG id. Jinja statements and Variables in
templates have no equivalent and are refused with a hint.

For tasks run by the Kascade runtime, templated strings inside Python arguments
(``op_kwargs={"day": "{{ ds }}"}``) travel as environment variables the engine
renders (``KASCADE_TEMPLATE_<n>``); ``walk`` gives both sides the same order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.xcom_arg import RETURN_KEY, ResolveMixin, output_path

_EXPR = re.compile(r"\{\{(.*?)\}\}", re.S)
_XCOM_PULL = re.compile(r"\b(?:ti|task_instance)\.xcom_pull\(([^()]*)\)")
_ARG = re.compile(r"""\s*(?:(\w+)\s*=\s*)?(['"])([^'"]*)\2\s*""")
_DS_ADD = re.compile(r"\bmacros\.ds_add\(\s*([\w.]+)\s*,\s*(-?\d+)\s*\)")
_DS_FORMAT = re.compile(
    r"""\bmacros\.ds_format\(\s*([\w.]+)\s*,\s*(['"][^'"]*['"])\s*,\s*(['"][^'"]*['"])\s*\)"""
)
_RENAMES = (
    (re.compile(r"\b(?:ti|task_instance)\.try_number\b"), "task.try_number"),
    (re.compile(r"\b(?:ti|task_instance|task)\.task_id\b"), "task.id"),
    (re.compile(r"\b(?:ti|task_instance)\.map_index\b"), "task.map_index"),
    # In a notifier's templates (the callback context): what the task instance says.
    (re.compile(r"\b(?:ti|task_instance)\.(log_url|state|duration|max_tries)\b"), r"\1"),
    (re.compile(r"\bdag_run\.run_id\b"), "run_id"),
    (re.compile(r"\bdag_run\.logical_date\b"), "logical_date"),
    (re.compile(r"(?<![\w.])execution_date\b"), "logical_date"),
)
_DAG_ID = re.compile(r"\b(?:dag|dag_run)\.dag_id\b")
_VARIABLES = re.compile(r"(?<![\w.])(var|conn)\.\w+")


def _xcom_pull(match: re.Match[str]) -> str:
    args = match.group(1)
    task_id: str | None = None
    key = RETURN_KEY
    pos = 0
    position = 0
    while pos < len(args):
        arg = _ARG.match(args, pos)
        if arg is None:
            return match.group(0)  # not literal strings: leave it for the validator to report
        name, value = arg.group(1), arg.group(3)
        if name is None:
            name = ("task_ids", "dag_id", "key")[min(position, 2)]
            position += 1
        if name == "task_ids":
            task_id = value
        elif name == "key":
            key = value
        elif name != "dag_id":
            return match.group(0)
        pos = arg.end()
        if pos < len(args) and args[pos] == ",":
            pos += 1
    return output_path(task_id, key) if task_id else match.group(0)


def translate_expression(expr: str, dag_id: str) -> str:
    var = _VARIABLES.search(expr)
    if var is not None:
        kind = "Variables" if var.group(1) == "var" else "Connections"
        raise UnsupportedFeature(
            f"{kind} in templates ({{{{ {expr.strip()} }}}})",
            "read them in the task (Variable.get / BaseHook.get_connection) or as the "
            "environment variables the DAG's variables/connections set",
        )
    expr = _XCOM_PULL.sub(_xcom_pull, expr)
    expr = _DS_ADD.sub(lambda m: f"({m.group(1)} | ds_add({m.group(2)}))", expr)
    expr = _DS_FORMAT.sub(lambda m: f"({m.group(1)} | ds_format({m.group(2)}, {m.group(3)}))", expr)
    for pattern, replacement in _RENAMES:
        expr = pattern.sub(replacement, expr)
    return _DAG_ID.sub(repr(dag_id), expr)


def translate(text: str, dag_id: str) -> str:
    """Airflow Jinja → Kascade template (text without ``{{`` is returned as is)."""
    if "{%" in text or "{#" in text:
        raise UnsupportedFeature(
            "Jinja statements and comments ({% ... %}, {# ... #}) in templates",
            "compute the value in a @task and pass its result, or use filters "
            "such as default(...) inside {{ }}",
        )
    if "{{" not in text:
        return text
    return _EXPR.sub(
        lambda m: "{{ " + translate_expression(m.group(1), dag_id).strip() + " }}", text
    )


def to_template(value: Any, dag_id: str, what: str) -> str:
    """A string for a templated container field (command, env value, path...)."""
    if isinstance(value, ResolveMixin):
        return str(value)
    if isinstance(value, str):
        return translate(value, dag_id)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"{what} must be a string (or an XComArg), got {type(value).__name__}")


def walk(value: Any, visit: Callable[[str], str]) -> Any:
    """Apply ``visit`` to every string with ``{{`` inside lists, tuples and dicts, in order."""
    if isinstance(value, str) and not isinstance(value, ResolveMixin):
        return visit(value) if "{{" in value and not getattr(value, "_mapped", False) else value
    if isinstance(value, list):
        return [walk(v, visit) for v in value]
    if isinstance(value, tuple):
        return tuple(walk(v, visit) for v in value)
    if isinstance(value, dict):
        return {k: walk(v, visit) for k, v in value.items()}
    return value


def templated_strings(obj: Any, fields: Iterator[str] | tuple[str, ...] | list[str]) -> list[str]:
    """The templated strings of ``obj``'s fields, in the order the runtime replaces them."""
    found: list[str] = []

    def keep(text: str) -> str:
        found.append(text)
        return text

    for name in fields:
        walk(getattr(obj, name, None), keep)
    return found


def replace_templated(obj: Any, fields: tuple[str, ...] | list[str], rendered: list[str]) -> None:
    """Put the engine's renderings back, in ``templated_strings`` order."""
    values = iter(rendered)

    def take(text: str) -> str:
        try:
            return next(values)
        except StopIteration:
            raise RuntimeError(
                "the DAG file built different templated arguments here than when it was "
                "compiled; arguments must not depend on when or where the file is parsed"
            ) from None

    for name in fields:
        if hasattr(obj, name):
            setattr(obj, name, walk(getattr(obj, name), take))
    if next(values, None) is not None:
        raise RuntimeError(
            "the DAG file built fewer templated arguments here than when it was compiled"
        )
