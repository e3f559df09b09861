"""Dynamic task mapping: ``.partial(...).expand(...)`` and ``.expand_kwargs(...)``.

The engine maps one list per task (``expand.items`` or ``expand.param``), so:
one mapped argument maps over its list (a literal, an upstream output, or
``dag.param(...)``); several literal lists map over their cross product, as
Airflow does; an upstream output combined with anything else has to be built
into one list upstream (``expand_kwargs``). Inside the task, a mapped argument
is a placeholder: ``{{ item }}`` for the engine's templates, the instance's
element for the Kascade runtime.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.xcom_arg import ResolveMixin

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator


class MappedArg(str):
    """A mapped argument's placeholder (``{{ item }}`` / ``{{ item.name }}`` as text)."""

    _mapped = True
    name: str | None

    def __new__(cls, name: str | None) -> MappedArg:
        text = "{{ item }}" if name is None else "{{ item." + name + " }}"
        obj = super().__new__(cls, text)
        obj.name = name
        return obj

    def value(self, item: Any) -> Any:
        if self.name is None:
            return item
        if not isinstance(item, dict) or self.name not in item:
            raise KeyError(f"mapped item {item!r} has no value for {self.name!r}")
        return item[self.name]


@dataclass
class ExpandInput:
    names: list[str] | None
    """The mapped arguments (None: an expand_kwargs list whose keys are known at run time)."""
    multi: bool
    """True when each item is a dict of argument → value."""
    items: list[Any] | None = None
    expression: str | None = None
    references: list[BaseOperator] = field(default_factory=list)


def _json_items(values: list[Any], what: str) -> list[Any]:
    try:
        json.dumps(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what}: mapped values must be JSON (strings, numbers, lists...): {exc}"
        ) from None
    return values


def _literal(value: Any) -> list[Any] | None:
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    return None


def expand_input(mapped: Mapping[str, Any], task_id: str) -> ExpandInput:
    """The engine's expand for ``expand(**mapped)``."""
    if not mapped:
        raise TypeError(f"{task_id}: expand() needs at least one argument to map over")
    refs = {name: v for name, v in mapped.items() if isinstance(v, ResolveMixin)}
    if refs:
        if len(mapped) > 1:
            raise UnsupportedFeature(
                f"{task_id}: expand() over an upstream output together with other arguments",
                "build the list of argument dicts in one upstream @task and use expand_kwargs()",
            )
        ((name, ref),) = refs.items()
        return ExpandInput(
            [name], False, expression=ref.expression(), references=list(ref.references())
        )
    lists = {}
    for name, value in mapped.items():
        items = _literal(value)
        if items is None:
            raise TypeError(
                f"{task_id}: expand({name}=...) needs a list, a dict or an XComArg, got "
                f"{type(value).__name__}"
            )
        lists[name] = items
    if len(lists) == 1:
        ((name, items),) = lists.items()
        return ExpandInput([name], False, items=_json_items(items, task_id))
    names = list(lists)
    product = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists.values())]
    return ExpandInput(names, True, items=_json_items(product, task_id))


def expand_kwargs_input(value: Any, task_id: str) -> ExpandInput:
    if isinstance(value, ResolveMixin):
        return ExpandInput(
            None, True, expression=value.expression(), references=list(value.references())
        )
    items = _literal(value)
    if items is None or not all(isinstance(i, dict) for i in items):
        raise TypeError(f"{task_id}: expand_kwargs() needs a list of dicts or an XComArg")
    names = sorted({str(k) for item in items for k in item})
    return ExpandInput(names, True, items=_json_items(items, task_id))


def placeholders(spec: ExpandInput) -> dict[str, MappedArg]:
    if spec.names is None:
        return {}
    if not spec.multi:
        return {spec.names[0]: MappedArg(None)}
    return {name: MappedArg(name) for name in spec.names}


class OperatorPartial:
    """``SomeOperator.partial(task_id=..., **fixed)``: waits for ``expand``."""

    def __init__(self, cls: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise TypeError(f"{cls.__name__}.partial() needs task_id")
        self.cls = cls
        self.kwargs = kwargs

    def expand(self, **mapped: Any) -> BaseOperator:
        return self._build(expand_input(mapped, self.kwargs["task_id"]))

    def expand_kwargs(self, value: Any, *, strict: bool = True) -> BaseOperator:
        return self._build(expand_kwargs_input(value, self.kwargs["task_id"]))

    def _build(self, spec: ExpandInput) -> BaseOperator:
        holders = placeholders(spec)
        clash = set(holders) & set(self.kwargs)
        if clash:
            raise TypeError(f"{sorted(clash)} given both to partial() and expand()")
        arguments: dict[str, Any] = {**self.kwargs, **holders}
        op = self.cls(**arguments)
        for name, holder in holders.items():
            setattr(op, name, holder)  # undo what __init__ made of the placeholder (lists...)
        op.expand_input = spec
        native = not op.runs_in_runtime()
        if native:
            allowed = set(getattr(op, "mappable_fields", ()))
            bad = (set(holders) - allowed) if spec.names is not None else {"expand_kwargs"}
            if bad:
                raise UnsupportedFeature(
                    f"{self.cls.__name__} mapped over {sorted(bad)}",
                    f"it can map over {sorted(allowed) or 'nothing'}; map a @task instead",
                )
        for up in spec.references:
            op.set_upstream(up)
        return op
