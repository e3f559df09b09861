"""Airflow's ``default_args``: every ``__init__`` of an operator class takes the
defaults it has a parameter for, unless the call gives that argument.

Airflow does this with a metaclass too (``BaseOperatorMeta``); the layers are the
DAG's ``default_args``, then each enclosing TaskGroup's, then the operator's own
``default_args=`` argument. Signatures are cached: a file generating 500 DAGs
builds thousands of operators.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from kascade.sdk import contexts

_ACCEPTS: dict[Callable[..., Any], tuple[inspect.Signature, frozenset[str]]] = {}


def _signature(func: Callable[..., Any]) -> tuple[inspect.Signature, frozenset[str]]:
    cached = _ACCEPTS.get(func)
    if cached is None:
        sig = inspect.signature(func)
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names = frozenset(
            name for name, p in sig.parameters.items() if p.kind in kinds and name != "self"
        )
        cached = _ACCEPTS[func] = (sig, names)
    return cached


def merged_default_args(kwargs: dict[str, Any]) -> dict[str, Any]:
    """DAG defaults < enclosing groups' defaults < the call's own ``default_args``."""
    dag = kwargs.get("dag") or contexts.current_dag()
    group = kwargs.get("task_group") or contexts.current_group(dag)
    merged: dict[str, Any] = {}
    if dag is not None and dag.default_args:
        merged.update(dag.default_args)
    layers = []
    while group is not None:
        if group.default_args:
            layers.append(group.default_args)
        group = group.parent_group
    for layer in reversed(layers):
        merged.update(layer)
    own = kwargs.get("default_args")
    if own:
        merged.update(own)
    return merged


def apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an operator ``__init__``; the outermost call also finishes the operator."""
    sig, accepted = _signature(init)

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        defaults = merged_default_args(kwargs)
        if defaults:
            given = set(kwargs)
            if args:
                given |= set(sig.bind_partial(self, *args).arguments)
            filled = {
                n for n in accepted if n not in given and n in defaults and n != "default_args"
            }
            for name in filled:
                kwargs[name] = defaults[name]
            # Remembered so that an operator can tell its own arguments from inherited ones.
            object.__setattr__(self, "_defaulted", getattr(self, "_defaulted", set()) | filled)
        depth = getattr(self, "_init_depth", 0)
        object.__setattr__(self, "_init_depth", depth + 1)
        try:
            init(self, *args, **kwargs)
        finally:
            object.__setattr__(self, "_init_depth", depth)
        if depth == 0:
            self._after_init()

    wrapper.__kascade_defaults__ = True  # type: ignore[attr-defined]
    return wrapper


class OperatorMeta(type):
    """Applies ``apply_defaults`` to every operator class's own ``__init__``."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> OperatorMeta:
        init = ns.get("__init__")
        if init is not None and not getattr(init, "__kascade_defaults__", False):
            ns["__init__"] = apply_defaults(init)
        return super().__new__(mcls, name, bases, ns)
