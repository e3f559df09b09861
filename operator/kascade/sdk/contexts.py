"""The stacks behind ``with DAG(...)`` and ``with TaskGroup(...)``.

An operator created inside a ``with`` block joins the innermost DAG and task
group, as in Airflow (and as Hera's ``_context.py`` does for Argo). Every DAG
entered with ``with`` (or built by ``@dag``) is also recorded as *registered*,
Airflow's ``auto_register``: a DAG made in a loop and never stored in a module
global is still found when the file is loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kascade.sdk.dag import DAG
    from kascade.sdk.taskgroup import TaskGroup

_dags: list[DAG] = []
_groups: list[TaskGroup] = []
_registered: list[DAG] = []


def push_dag(dag: DAG) -> None:
    _dags.append(dag)
    if dag.auto_register and all(d is not dag for d in _registered):
        _registered.append(dag)


def pop_dag() -> DAG:
    return _dags.pop()


def current_dag() -> DAG | None:
    return _dags[-1] if _dags else None


def push_group(group: TaskGroup) -> None:
    _groups.append(group)


def pop_group() -> TaskGroup:
    return _groups.pop()


def current_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost group entered with ``with`` that belongs to ``dag``."""
    for group in reversed(_groups):
        if dag is None or group.dag is dag:
            return group
    return None


def take_registered() -> list[DAG]:
    """The DAGs registered since the last call (the loader calls it once per file)."""
    found = list(_registered)
    _registered.clear()
    return found


def reset() -> None:
    """Forget everything (a file that raised inside a ``with`` block leaves entries behind)."""
    _dags.clear()
    _groups.clear()
    _registered.clear()
