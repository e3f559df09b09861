"""``@task`` and its variants: the TaskFlow API.

Calling a ``@task`` function inside a DAG creates a task and returns an XComArg
for its return value; passing that XComArg to another ``@task`` (or operator)
creates the edge and, when the task runs, the value. ``@task.bash`` returns the
command to run, ``@task.branch`` the task ids to follow, ``@task.short_circuit``
a condition, ``@task.sensor`` a poke result. Repeated calls get ids ``f__1``,
``f__2``... as in Airflow.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from kascade.sdk import contexts
from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature
from kascade.sdk.mapped import ExpandInput, expand_input, expand_kwargs_input, placeholders
from kascade.sdk.operators.bash import BashOperator, run_bash
from kascade.sdk.operators.python import (
    BranchPythonOperator,
    CallableArgs,
    PythonOperator,
    ShortCircuitOperator,
)
from kascade.sdk.sensors.python import PythonSensor
from kascade.sdk.xcom_arg import PlainXComArg


def _infer_multiple_outputs(function: Callable[..., Any]) -> bool:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: Airflow falls back to False too
        return False
    ret = hints.get("return")
    origin = typing.get_origin(ret) or ret
    if origin in (dict, Mapping, typing.Dict):  # noqa: UP006
        return True
    return bool(typing.is_typeddict(ret)) if ret is not None else False


def unique_task_id(task_id: str, kwargs: dict[str, Any]) -> str:
    dag = kwargs.get("dag") or contexts.current_dag()
    if dag is None:
        return task_id
    group = kwargs.get("task_group") or contexts.current_group(dag) or dag.task_group
    if group.child_id(task_id) not in dag.task_dict:
        return task_id
    base = task_id.rsplit("__", 1)[0] if "__" in task_id else task_id
    n = 1
    while group.child_id(f"{base}__{n}") in dag.task_dict:
        n += 1
    return f"{base}__{n}"


class _PythonDecorated(PythonOperator):
    """A ``@task`` function as a task."""


class _BranchDecorated(BranchPythonOperator):
    pass


class _ShortCircuitDecorated(ShortCircuitOperator):
    pass


class _SensorDecorated(PythonSensor):
    pass


class _BashDecorated(CallableArgs, BashOperator):
    """``@task.bash``: the function returns the command (run by the runtime's bash)."""

    template_fields: ClassVar[Sequence[str]] = ("env", "cwd", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: list[Any] | None = None,
        op_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bash_command="", **kwargs)
        self._set_callable(python_callable, op_args, op_kwargs, None)

    def execute(self, context: Mapping[str, Any]) -> Any:
        command = self.call_with_context(dict(context))
        if not isinstance(command, str) or not command.strip():
            raise TypeError(f"@task.bash {self.task_id!r} must return a non-empty command string")
        if "{{" in command:
            raise UnsupportedFeature(
                "templates in the command a @task.bash returns",
                "the runtime does not render templates; build the text in Python "
                "(the function receives ds, params... as arguments)",
            )
        return run_bash(command, self.env, self.cwd, self.output_encoding)


class _TaskDecorator:
    """A decorated function; calling it (inside a DAG) builds one task."""

    def __init__(
        self,
        function: Callable[..., Any],
        operator_class: type[BaseOperator],
        kwargs: dict[str, Any],
    ) -> None:
        self.function = function
        self.operator_class = operator_class
        self.kwargs = kwargs
        functools.update_wrapper(self, function)

    def override(self, **kwargs: Any) -> _TaskDecorator:
        return _TaskDecorator(self.function, self.operator_class, {**self.kwargs, **kwargs})

    def _options(self, extra: dict[str, Any]) -> dict[str, Any]:
        options = {**self.kwargs, **extra}
        task_id = options.pop("task_id", None) or self.function.__name__
        options["task_id"] = unique_task_id(task_id, options)
        if options.get("multiple_outputs") is None:
            options["multiple_outputs"] = _infer_multiple_outputs(self.function)
        if self.operator_class is _SensorDecorated:
            options.pop("multiple_outputs")
        return options

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            inspect.signature(self.function).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.function.__name__}(): {exc}") from None

    def __call__(self, *args: Any, **kwargs: Any) -> PlainXComArg:
        self._check_call(args, kwargs)
        op = self.operator_class(
            python_callable=self.function,
            op_args=list(args),
            op_kwargs=kwargs,
            **self._options({}),
        )
        return PlainXComArg(op)

    def partial(self, **kwargs: Any) -> _DecoratedPartial:
        return _DecoratedPartial(self, kwargs)

    def expand(self, **mapped: Any) -> PlainXComArg:
        return _DecoratedPartial(self, {}).expand(**mapped)

    def expand_kwargs(self, value: Any, *, strict: bool = True) -> PlainXComArg:
        return _DecoratedPartial(self, {}).expand_kwargs(value)


class _DecoratedPartial:
    def __init__(self, decorator: _TaskDecorator, fixed: dict[str, Any]) -> None:
        self.decorator = decorator
        self.fixed = fixed

    def expand(self, **mapped: Any) -> PlainXComArg:
        name = self.decorator.function.__name__
        return self._build(expand_input(mapped, name))

    def expand_kwargs(self, value: Any, *, strict: bool = True) -> PlainXComArg:
        return self._build(expand_kwargs_input(value, self.decorator.function.__name__))

    def _build(self, spec: ExpandInput) -> PlainXComArg:
        op_kwargs = {**self.fixed, **placeholders(spec)}
        options = self.decorator._options({})
        op = self.decorator.operator_class(
            python_callable=self.decorator.function, op_args=[], op_kwargs=op_kwargs, **options
        )
        op.expand_input = spec
        for up in spec.references:
            op.set_upstream(up)
        return PlainXComArg(op)


def _decorator_for(
    operator_class: type[BaseOperator],
) -> Callable[..., Any]:
    def make(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return _TaskDecorator(python_callable, operator_class, kwargs)
        return lambda function: _TaskDecorator(function, operator_class, kwargs)

    return make


def _unsupported(name: str, instead: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedFeature(f"@task.{name}", instead)

    return refuse


class _TaskNamespace:
    """``task`` itself plus ``task.bash``, ``task.branch``... (Airflow's decorator collection)."""

    python = staticmethod(_decorator_for(_PythonDecorated))
    bash = staticmethod(_decorator_for(_BashDecorated))
    branch = staticmethod(_decorator_for(_BranchDecorated))
    short_circuit = staticmethod(_decorator_for(_ShortCircuitDecorated))
    sensor = staticmethod(_decorator_for(_SensorDecorated))
    kubernetes = python  # the function runs in a pod of the given image: what every task does
    virtualenv = staticmethod(_unsupported("virtualenv", "use @task(image=...) with the packages"))
    external_python = staticmethod(_unsupported("external_python", "use @task(image=...)"))
    docker = staticmethod(_unsupported("docker", "use @task(image=...)"))
    branch_virtualenv = staticmethod(
        _unsupported("branch_virtualenv", "use @task.branch(image=...)")
    )
    run_if = staticmethod(_unsupported("run_if", "a task cannot skip itself yet; use when='...'"))
    skip_if = staticmethod(_unsupported("skip_if", "a task cannot skip itself yet; use when='...'"))

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)


task = _TaskNamespace()


def setup(*args: Any, **kwargs: Any) -> Any:
    raise UnsupportedFeature("@setup", "use an ordinary upstream task")


def teardown(*args: Any, **kwargs: Any) -> Any:
    raise UnsupportedFeature("@teardown", "use a task with trigger_rule='all_done'")
