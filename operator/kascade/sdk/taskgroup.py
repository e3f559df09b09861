"""``TaskGroup`` and ``@task_group``: tasks whose ids are prefixed by the group's.

Dependencies on a group are drawn to its roots or leaves *when ``>>`` runs*, as
in Airflow; the compiler writes them as task-level ``dependsOn`` edges and the
group itself as a ``spec.groups`` entry (or flattens it into its parent when
``prefix_group_id=False``, where Airflow does not prefix the ids either).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kascade.sdk import contexts
from kascade.sdk.dependencies import DependencyMixin
from kascade.sdk.exceptions import DagDefinitionError, DuplicateTaskIdFound, UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator
    from kascade.sdk.dag import DAG


class TaskGroup(DependencyMixin):
    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        self.default_args = dict(default_args or {})
        self.tooltip = tooltip
        self.prefix_group_id = prefix_group_id
        self._label = group_id
        if group_id is None:  # the root group of a DAG
            self.parent_group = None
            self.dag = dag
            return
        dag = dag or (parent_group.dag if parent_group else None) or contexts.current_dag()
        if dag is None:
            raise DagDefinitionError(f"TaskGroup {group_id!r} must be created inside a DAG")
        self.dag = dag
        self.parent_group = parent_group or contexts.current_group(dag) or dag.task_group
        if add_suffix_on_collision:
            self._label = self._free_label(group_id)
        gid = self.group_id or ""
        if gid in self.parent_group.dag_ids():
            raise DuplicateTaskIdFound(f"group_id {gid!r} has already been added")
        self.parent_group.children[gid] = self
        dag.group_dict[gid] = self

    def _free_label(self, wanted: str) -> str:
        assert self.parent_group is not None
        taken = self.parent_group.dag_ids()
        label, n = wanted, 0
        while self.parent_group.child_id(label) in taken:
            n += 1
            base = re.sub(r"__\d+$", "", wanted)
            label = f"{base}__{n}"
        return label

    def dag_ids(self) -> set[str]:
        assert self.dag is not None
        return set(self.dag.task_dict) | set(self.dag.group_dict)

    @property
    def group_id(self) -> str | None:
        """The qualified id (``outer.inner``), None for a DAG's root group."""
        if self._label is None:
            return None
        parent = self.parent_group
        if parent is not None and parent.group_id and parent.prefix_group_id:
            return f"{parent.group_id}.{self._label}"
        return self._label

    @property
    def label(self) -> str | None:
        return self._label

    @property
    def is_root(self) -> bool:
        return self._label is None

    def child_id(self, label: str) -> str:
        """The id a task or group named ``label`` gets inside this group (Airflow's rule)."""
        group_id = self.group_id
        if group_id and self.prefix_group_id:
            return f"{group_id}.{label}"
        return label

    def add(self, op: BaseOperator) -> None:
        self.children[op.task_id] = op

    def iter_tasks(self) -> list[BaseOperator]:
        from kascade.sdk.baseoperator import BaseOperator

        out: list[BaseOperator] = []
        for child in self.children.values():
            if isinstance(child, BaseOperator):
                out.append(child)
            else:
                out.extend(child.iter_tasks())
        return out

    @property
    def roots(self) -> list[BaseOperator]:
        """Tasks of the group with no upstream task inside the group."""
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not t.upstream_task_ids & ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not t.downstream_task_ids & ids]

    def get_roots(self) -> list[BaseOperator]:
        return self.roots

    def get_leaves(self) -> list[BaseOperator]:
        return self.leaves

    def __enter__(self) -> TaskGroup:
        contexts.push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        contexts.pop_group()

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"


class _TaskGroupFactory:
    """A function decorated with ``@task_group``; each call builds one group."""

    def __init__(self, function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.function = function
        self.kwargs = kwargs
        functools.update_wrapper(self, function)

    def override(self, **kwargs: Any) -> _TaskGroupFactory:
        return _TaskGroupFactory(self.function, {**self.kwargs, **kwargs})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        options = {"group_id": self.function.__name__, **self.kwargs}
        options.setdefault("add_suffix_on_collision", True)
        with TaskGroup(**options) as group:
            result = self.function(*args, **kwargs)
        # As in Airflow: a returned task (or XComArg) stands for the group in >> chains.
        return result if result is not None else group

    def expand(self, **kwargs: Any) -> Any:
        raise UnsupportedFeature(
            "mapped task groups (@task_group ... .expand())",
            "map the tasks inside the group one by one with .expand()",
        )

    def partial(self, **kwargs: Any) -> Any:
        return self.expand()


def task_group(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@task_group`` / ``@task_group(group_id=..., default_args=...)``."""
    if python_callable is not None and callable(python_callable):
        return _TaskGroupFactory(python_callable, kwargs)
    if python_callable is not None:  # @task_group("my_id")
        kwargs["group_id"] = python_callable

    def decorate(function: Callable[..., Any]) -> _TaskGroupFactory:
        return _TaskGroupFactory(function, kwargs)

    return decorate
