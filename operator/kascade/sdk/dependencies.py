"""``>>``, ``<<``, ``chain`` and ``cross_downstream``: Airflow's ways to draw edges.

Everything that can sit on either side of ``>>`` (an operator, an XComArg, a
TaskGroup, or a list of them) exposes ``roots`` and ``leaves``; an edge always
joins operators. ``a >> group`` links ``a`` to the group's roots *at that
moment*, as Airflow does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator


class DependencyMixin:
    @property
    def roots(self) -> list[BaseOperator]:
        raise NotImplementedError

    @property
    def leaves(self) -> list[BaseOperator]:
        raise NotImplementedError

    def set_upstream(self, other: Any) -> None:
        if isinstance(other, Label):
            other.set_downstream(self)
            return
        for up in _flatten(other, "leaves"):
            for down in self.roots:
                link(up, down)

    def set_downstream(self, other: Any) -> None:
        if isinstance(other, Label):
            other.set_upstream(self)
            return
        for down in _flatten(other, "roots"):
            for up in self.leaves:
                link(up, down)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> Any:
        """``[a, b] >> self``."""
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> Any:
        """``[a, b] << self``."""
        self.set_downstream(other)
        return self


class Label(DependencyMixin):
    """Airflow's edge label: ``a >> Label("big files") >> b`` draws ``a >> b``.

    The text only decorates Airflow's graph view; Pipelines have no edge labels.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self._left: list[BaseOperator] = []

    @property
    def roots(self) -> list[BaseOperator]:
        return []

    @property
    def leaves(self) -> list[BaseOperator]:
        return list(self._left)

    def set_upstream(self, other: Any) -> None:
        self._left.extend(_flatten(other, "leaves"))

    def set_downstream(self, other: Any) -> None:
        for down in _flatten(other, "roots"):
            for up in self._left:
                link(up, down)


def _flatten(other: Any, side: str) -> list[BaseOperator]:
    if isinstance(other, DependencyMixin):
        return list(getattr(other, side))
    if isinstance(other, list | tuple | set | frozenset):
        out: list[BaseOperator] = []
        for item in other:
            out.extend(_flatten(item, side))
        return out
    raise TypeError(
        f"cannot set a dependency with {type(other).__name__} {other!r}: "
        "use operators, task groups, XComArgs or lists of them"
    )


def link(up: BaseOperator, down: BaseOperator) -> None:
    """One edge ``up >> down``; both tasks must belong to the same DAG."""
    from kascade.sdk.exceptions import DagDefinitionError

    if up is down:
        raise DagDefinitionError(f"task {up.task_id!r} cannot depend on itself")
    if up.dag is not down.dag:
        names = (up.dag.dag_id if up.dag else None, down.dag.dag_id if down.dag else None)
        raise DagDefinitionError(
            f"tasks {up.task_id!r} and {down.task_id!r} are in different DAGs {names}: "
            "use an ExternalTaskSensor across DAGs"
        )
    up.downstream_task_ids.add(down.task_id)
    down.upstream_task_ids.add(up.task_id)


def chain(*tasks: Any) -> None:
    """Airflow's ``chain``: ``a >> b >> c``, where two lists in a row pair up one to one."""
    for left, right in itertools.pairwise(tasks):
        left_list = isinstance(left, list | tuple)
        right_list = isinstance(right, list | tuple)
        if left_list and right_list:
            if len(left) != len(right):
                raise ValueError(
                    f"chain() needs lists of equal length side by side, got {len(left)} "
                    f"and {len(right)}"
                )
            for up, down in zip(left, right, strict=True):
                _as_mixin(up).set_downstream(down)
        elif left_list:
            for up in left:
                _as_mixin(up).set_downstream(right)
        else:
            _as_mixin(left).set_downstream(right)


def chain_linear(*elements: Any) -> None:
    """Every element of each step upstream of every element of the next."""
    for left, right in itertools.pairwise(elements):
        lefts = left if isinstance(left, list | tuple) else [left]
        for up in lefts:
            _as_mixin(up).set_downstream(right)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Iterable[Any]) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    targets = list(to_tasks)
    for up in from_tasks:
        _as_mixin(up).set_downstream(targets)


def _as_mixin(value: Any) -> DependencyMixin:
    if not isinstance(value, DependencyMixin):
        raise TypeError(f"chain() got {type(value).__name__} {value!r}, not a task")
    return value
