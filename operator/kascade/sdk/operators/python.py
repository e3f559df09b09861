"""``PythonOperator``, ``BranchPythonOperator``, ``ShortCircuitOperator``.

The callable runs for real in the task's pod (or local process): the Kascade
runtime runs the DAG file again, finds this task and calls ``execute``, as
Airflow's workers do, so module-level imports, helper functions and closures
built in a loop all work. It gets Airflow's context (``**context``, or only the
names its signature asks for) and its return value becomes the output
``return_value`` (JSON, at most 4 KiB with the other outputs).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.exceptions import UnsupportedFeature

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


def determine_kwargs(
    function: Callable[..., Any], args: Sequence[Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """Airflow's rule: the whole context for ``**kwargs``, else only the names asked for."""
    sig = inspect.signature(function)
    params = list(sig.parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(context)
    positional = {
        p.name
        for p in params[: len(args)]
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    }
    return {
        p.name: context[p.name]
        for p in params
        if p.name in context
        and p.name not in positional
        and p.kind is not inspect.Parameter.POSITIONAL_ONLY
    }


class CallableArgs:
    """A Python callable with Airflow's ``op_args``/``op_kwargs``/``templates_dict``."""

    python_callable: Callable[..., Any]
    op_args: list[Any]
    op_kwargs: dict[str, Any]
    templates_dict: dict[str, Any] | None

    def _set_callable(
        self,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None,
        op_kwargs: Mapping[str, Any] | None,
        templates_dict: dict[str, Any] | None,
    ) -> None:
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def call_with_context(self, context: dict[str, Any]) -> Any:
        """Airflow's PythonOperator call: op_kwargs join the context, the callable picks."""
        context.update(self.op_kwargs)
        context["templates_dict"] = self.templates_dict
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        return self.python_callable(*self.op_args, **kwargs)


def check_callable(python_callable: Any) -> None:
    if not callable(python_callable):
        raise TypeError("`python_callable` param must be callable")


class PythonOperator(CallableArgs, BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        check_callable(python_callable)
        if templates_exts:
            raise UnsupportedFeature(
                "templates_exts", "template files are not read; pass the text itself"
            )
        super().__init__(**kwargs)
        self._set_callable(python_callable, op_args, op_kwargs, templates_dict)
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: dict[str, Any]) -> Any:
        return self.call_with_context(context)

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        return lo.runtime("run")


class BranchPythonOperator(PythonOperator):
    """The callable returns the task id(s) to follow; the other direct downstream tasks skip."""

    ui_color = "#ffefeb"

    def outputs_of(self, result: Any) -> dict[str, Any]:
        out = super().outputs_of(result)
        out["branch"] = branch_choice(result)
        return out

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        return {**lo.runtime("run"), "branch": True}


def branch_choice(result: Any) -> list[str]:
    """None or [] follows nothing (every direct downstream task is skipped), as in Airflow."""
    if result is None:
        return []
    if isinstance(result, str):
        return [result]
    if isinstance(result, list | tuple | set) and all(isinstance(r, str) for r in result):
        return sorted(result) if isinstance(result, set) else list(result)
    raise TypeError(f"a branch callable must return a task id or a list of them, got {result!r}")


class ShortCircuitOperator(PythonOperator):
    """A false result skips every downstream task (Airflow's default behaviour)."""

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not ignore_downstream_trigger_rules:
            raise UnsupportedFeature(
                "ignore_downstream_trigger_rules=False",
                "a false condition skips every downstream task; to skip only the direct "
                "ones, use a branch",
            )

    def outputs_of(self, result: Any) -> dict[str, Any]:
        out = super().outputs_of(result)
        out["condition"] = bool(result)
        return out

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        return {**lo.runtime("run"), "shortCircuit": True}


class _Unsupported(BaseOperator):
    what = ""
    instead = ""

    def __init__(self, **kwargs: Any) -> None:
        raise UnsupportedFeature(self.what, self.instead)


class PythonVirtualenvOperator(_Unsupported):
    what = "PythonVirtualenvOperator"
    instead = "run the callable with @task(image=...) in an image that has the packages"


class ExternalPythonOperator(_Unsupported):
    what = "ExternalPythonOperator"
    instead = "run the callable with @task(image=...) in an image that has that Python"


class BranchPythonVirtualenvOperator(_Unsupported):
    what = "BranchPythonVirtualenvOperator"
    instead = "use @task.branch(image=...) with an image that has the packages"
