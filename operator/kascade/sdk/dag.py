"""``DAG`` and ``@dag``: Airflow's DAG object, as a context manager or a decorator.

A DAG here holds only what its file declares: tasks, groups, edges and
settings. ``kascade compile`` turns it into a Pipeline; the Kascade runtime
re-creates it in the task's pod by running the same file, to find the task's
callable (closures and helpers included), as Airflow's workers do.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from kascade.sdk import contexts
from kascade.sdk.exceptions import AirflowDagCycleException, UnsupportedFeature
from kascade.sdk.param import NOTSET, Param, as_param
from kascade.sdk.taskgroup import TaskGroup
from kascade.sdk.xcom_arg import DagParam

if TYPE_CHECKING:
    from kascade.sdk.baseoperator import BaseOperator

_NOT_SUPPORTED: dict[str, str] = {
    "timetable": "use schedule= with a cron string, a preset or a timedelta",
    "template_searchpath": "template files are not read; put the text in the argument",
    "user_defined_macros": "templates use Kascade's macros (docs/concepts.md#templating)",
    "user_defined_filters": "templates use Kascade's filters (docs/concepts.md#expressions)",
    "jinja_environment_kwargs": "templates are not Jinja (docs/concepts.md#expressions)",
    "access_control": "use Kubernetes RBAC on Pipelines and PipelineRuns",
    "template_undefined": "undefined template values are always errors",
}


class DAG:
    """``DAG(dag_id, ...)`` with Airflow's arguments; see docs/python-sdk.md for the mapping."""

    def __init__(
        self,
        dag_id: str | None = None,
        description: str | None = None,
        schedule: Any = NOTSET,
        schedule_interval: Any = NOTSET,
        start_date: Any = None,
        end_date: Any = None,
        default_args: dict[str, Any] | None = None,
        concurrency: int | None = None,
        max_active_tasks: int = 16,
        max_active_runs: int = 16,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        sla_miss_callback: Callable[..., Any] | None = None,
        catchup: bool = False,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        doc_md: str | None = None,
        params: dict[str, Any] | None = None,
        is_paused_upon_creation: bool | None = None,
        render_template_as_native_obj: bool = False,
        tags: list[str] | None = None,
        auto_register: bool = True,
        fail_stop: bool = False,
        dag_display_name: str | None = None,
        default_view: str | None = None,
        orientation: str | None = None,
        owner_links: dict[str, str] | None = None,
        full_filepath: str | None = None,
        # Kascade's own:
        variables: str | list[str] | None = None,
        connections: dict[str, str] | None = None,
        timezone: str | None = None,
        sla: timedelta | None = None,
        smtp_secret: str | None = None,
        **unsupported: Any,
    ) -> None:
        for name, value in unsupported.items():
            if name in _NOT_SUPPORTED:
                if value is not None:
                    raise UnsupportedFeature(f"DAG({name}=...)", _NOT_SUPPORTED[name])
            else:
                raise TypeError(f"DAG() got an unexpected keyword argument {name!r}")
        if not isinstance(dag_id, str) or not dag_id:
            raise ValueError(f"dag_id must be a non-empty string, got {dag_id!r}")
        if render_template_as_native_obj:
            raise UnsupportedFeature(
                "render_template_as_native_obj=True",
                "rendered templates are text; pass values as XComArgs to get them typed",
            )
        if fail_stop:
            raise UnsupportedFeature("fail_stop=True", "not yet; use trigger rules")
        if max_consecutive_failed_dag_runs:
            raise UnsupportedFeature("max_consecutive_failed_dag_runs", "not yet")
        if schedule is not NOTSET and schedule_interval is not NOTSET:
            raise ValueError("give schedule or schedule_interval, not both")
        self.dag_id = dag_id
        self.description = description
        chosen = schedule if schedule is not NOTSET else schedule_interval
        # Airflow 3's default: no schedule unless one is given (Airflow 2 defaulted to daily).
        self.schedule = None if chosen is NOTSET else chosen
        self.default_args = dict(default_args or {})
        self.start_date = start_date or self.default_args.get("start_date")
        self.end_date = end_date or self.default_args.get("end_date")
        self.max_active_tasks = concurrency or max_active_tasks
        self.max_active_runs = max_active_runs
        self.dagrun_timeout = dagrun_timeout
        self.sla = sla
        self.sla_miss_callback = sla_miss_callback
        self.catchup = catchup
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.doc_md = doc_md
        self.params: dict[str, Param] = {k: as_param(v) for k, v in (params or {}).items()}
        self.is_paused_upon_creation = is_paused_upon_creation
        self.tags = list(tags or [])
        self.auto_register = auto_register
        self.display_name = dag_display_name
        self.variables = [variables] if isinstance(variables, str) else list(variables or [])
        self.connections = dict(connections or {})
        self.timezone = timezone
        self.smtp_secret = smtp_secret
        """The Secret with the SMTP settings (Airflow's smtp_default connection)."""
        from kascade.sdk.baseoperator import caller_location

        self._location = caller_location()
        self.fileloc: str | None = full_filepath or self._location[0]
        self.task_dict: dict[str, BaseOperator] = {}
        self.group_dict: dict[str, TaskGroup] = {}
        self.task_group = TaskGroup(None, dag=self)

    # -- building ----------------------------------------------------------------------
    def add_task(self, task: BaseOperator, group: TaskGroup | None = None) -> None:
        from kascade.sdk.baseoperator import add_to_dag

        add_to_dag(task, self)
        task.task_group = group or self.task_group
        task.task_group.add(task)

    def add_tasks(self, tasks: list[BaseOperator]) -> None:
        for t in tasks:
            self.add_task(t)

    def param(self, name: str, default: Any = NOTSET) -> DagParam:
        """Airflow's ``dag.param(name)``: the run's value of a param, as an argument."""
        if name not in self.params:
            self.params[name] = Param(default)
        return DagParam(self, name)

    def __enter__(self) -> DAG:
        contexts.push_dag(self)
        return self

    def __exit__(self, *exc: object) -> None:
        contexts.pop_dag()

    # -- reading -----------------------------------------------------------------------
    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    def get_task(self, task_id: str) -> BaseOperator:
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise KeyError(f"Task {task_id} not found in DAG {self.dag_id}") from None

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks in dependency order (declaration order among equals); a cycle is an error."""
        order: list[BaseOperator] = []
        state: dict[str, int] = {}
        for start in self.task_dict:
            if state.get(start):
                continue
            stack = [(start, iter(sorted(self.task_dict[start].upstream_task_ids)))]
            state[start] = 1
            while stack:
                node, ups = stack[-1]
                nxt = next(ups, None)
                if nxt is None:
                    stack.pop()
                    state[node] = 2
                    order.append(self.task_dict[node])
                elif state.get(nxt) == 1:
                    path = [n for n, _ in stack]
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise AirflowDagCycleException(
                        f"cycle in DAG {self.dag_id!r}: {' -> '.join(reversed(cycle))}"
                    )
                elif not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, iter(sorted(self.task_dict[nxt].upstream_task_ids))))
        return order

    def test(self, logical_date: Any = None, run_conf: dict[str, Any] | None = None) -> str:
        """Run this DAG once on this machine, like ``airflow dags test`` (returns the phase)."""
        from kascade.sdk.compiler.local_run import test_dag

        return test_dag(self, logical_date=logical_date, run_conf=run_conf)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"


def dag(dag_id: str | Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@dag`` / ``@dag(schedule=...)``: calling the function builds the DAG.

    The function's parameters become DAG params (their defaults the params'
    defaults) and it receives them as ``dag.param(...)`` references, as in Airflow.
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., DAG]:
        sig = inspect.signature(function)

        @functools.wraps(function)
        def factory(*args: Any, **fkwargs: Any) -> DAG:
            bound = sig.bind_partial(*args, **fkwargs)
            bound.apply_defaults()
            options = dict(kwargs)
            options.setdefault("doc_md", function.__doc__)
            params = dict(options.pop("params", None) or {})
            for name, value in bound.arguments.items():
                if value is inspect.Parameter.empty:
                    continue
                params[name] = value if isinstance(value, Param) else Param(value)
            for name, p in sig.parameters.items():
                if name not in params and p.default is inspect.Parameter.empty:
                    params[name] = Param()
            name = dag_id if isinstance(dag_id, str) else function.__name__
            the_dag = DAG(name, **options, params=params)
            with the_dag:
                function(**{name: the_dag.param(name) for name in sig.parameters})
            return the_dag

        return factory

    if callable(dag_id):
        function, dag_id = dag_id, None
        return decorate(function)
    return decorate
