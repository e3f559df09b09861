"""XComArg: a reference to another task's output, as in Airflow 2/3's TaskFlow.

``t.output``, ``t.output["key"]`` and the result of calling a ``@task`` are
XComArgs. Passed to another task they create the dependency (``apply_upstream``)
and are resolved to the value when the task runs. Turned into a string (an
f-string in a ``bash_command``) they become the Kascade template
``{{ tasks.<id>.outputs.<key> }}``, which the engine renders, instead of
Airflow's ``{{ task_instance.xcom_pull(...) }}`` Jinja.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from kascade.sdk.dependencies import DependencyMixin
from kascade.sdk.exceptions import UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator
    from kascade.sdk.dag import DAG

RETURN_KEY = "return_value"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def output_path(task_id: str, key: str) -> str:
    """The expression ``tasks.<id>.outputs.<key>`` (keys that are not names are indexed)."""
    tail = f".{key}" if _PLAIN_KEY.match(key) else f"[{key!r}]"
    return f"tasks.{task_id}.outputs{tail}"


class ResolveMixin:
    """A value known only when the task runs (an XCom, a run param)."""

    def resolve(self, context: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def expression(self) -> str:
        """The engine expression giving the value (for ``expand`` and templates)."""
        raise NotImplementedError

    def references(self) -> Iterator[BaseOperator]:
        return iter(())


class XComArg(ResolveMixin, DependencyMixin):
    """``XComArg(op)`` / ``XComArg(op, key)``: a reference to ``op``'s XCom ``key``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is XComArg:
            return PlainXComArg(*args, **kwargs)
        return super().__new__(cls)

    def map(self, f: Any) -> Any:
        raise UnsupportedFeature(
            "XComArg.map()", "transform the list in the upstream @task before returning it"
        )

    def zip(self, *others: Any, fillvalue: Any = None) -> Any:
        raise UnsupportedFeature(
            "XComArg.zip()", "build the list of tuples in one upstream @task and expand over it"
        )

    def concat(self, *others: Any) -> Any:
        raise UnsupportedFeature(
            "XComArg.concat()", "concatenate the lists in one upstream @task and expand over it"
        )


class PlainXComArg(XComArg):
    def __init__(self, operator: BaseOperator, key: str = RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    @property
    def roots(self) -> list[BaseOperator]:
        return [self.operator]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self.operator]

    def references(self) -> Iterator[BaseOperator]:
        yield self.operator

    def __getitem__(self, key: str) -> PlainXComArg:
        if not isinstance(key, str):
            raise ValueError(f"XComArg only supports str lookup, received {type(key).__name__}")
        return PlainXComArg(self.operator, key)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("'XComArg' object is not iterable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlainXComArg):
            return NotImplemented
        return self.operator is other.operator and self.key == other.key

    def __hash__(self) -> int:
        return hash((id(self.operator), self.key))

    def __repr__(self) -> str:
        if self.key == RETURN_KEY:
            return f"XComArg(<Task({type(self.operator).__name__}): {self.operator.task_id}>)"
        return f"XComArg(<Task: {self.operator.task_id}>, {self.key!r})"

    def __str__(self) -> str:
        return "{{ " + self.expression() + " }}"

    def expression(self) -> str:
        return output_path(self.operator.task_id, self.key)

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)


class DagParam(ResolveMixin):
    """``dag.param("name")``: a run param's value, resolved when the task runs."""

    def __init__(self, dag: DAG, name: str) -> None:
        self.dag = dag
        self.name = name

    def __str__(self) -> str:
        return "{{ " + self.expression() + " }}"

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def expression(self) -> str:
        return f"params.{self.name}" if _PLAIN_KEY.match(self.name) else f"params[{self.name!r}]"

    def resolve(self, context: Mapping[str, Any]) -> Any:
        return context["params"].get(self.name)


def iter_references(value: Any) -> Iterator[BaseOperator]:
    """Every operator an argument refers to through XComArgs, however deeply nested."""
    if isinstance(value, ResolveMixin):
        yield from value.references()
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from iter_references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_references(item)


def resolve_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Replace every XComArg/DagParam inside ``value`` by what it refers to."""
    if isinstance(value, ResolveMixin):
        return value.resolve(context)
    if isinstance(value, list):
        return [resolve_value(v, context) for v in value]
    if isinstance(value, tuple):
        return tuple(resolve_value(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve_value(v, context) for k, v in value.items()}
    return value
