"""``BaseOperator``: one task of a DAG, with Airflow's arguments and behaviour.

An operator built inside ``with DAG(...)`` joins that DAG (and the innermost
``with TaskGroup(...)``). Its arguments are Airflow's; arguments that change how
a task runs but have no Kascade equivalent raise ``UnsupportedFeature`` here,
while the DAG file is parsed, so a DAG never compiles to something that behaves
differently from what it says. Kascade's own container arguments (``image``,
``volumes``, ``security_context``...) and ``when`` are accepted by every operator
and in ``default_args``.

What a task *becomes* (a container command, a sensor, a Python callable run by
the Kascade runtime) is decided by ``_lower``, which each operator overrides.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk import contexts
from kascade.sdk._defaults import OperatorMeta
from kascade.sdk.dependencies import DependencyMixin
from kascade.sdk.exceptions import AirflowException, DuplicateTaskIdFound, UnsupportedFeature
from kascade.sdk.trigger_rule import TriggerRule, coerce
from kascade.sdk.xcom_arg import PlainXComArg, iter_references

if TYPE_CHECKING:
    from kascade.sdk.dag import DAG
    from kascade.sdk.lowering import Lowerer
    from kascade.sdk.mapped import ExpandInput, OperatorPartial
    from kascade.sdk.taskgroup import TaskGroup

_SDK_DIR = __file__.rsplit("/", 1)[0]

#: Kascade's container and policy fields, accepted by every operator and in default_args.
CONTAINER_ARGS = (
    "image",
    "image_pull_policy",
    "container_resources",
    "volumes",
    "volume_mounts",
    "security_context",
    "service_account_name",
    "node_selector",
    "tolerations",
    "env_from",
)
CALLBACKS = (
    "on_failure_callback",
    "on_success_callback",
    "on_retry_callback",
    "on_execute_callback",
)


def caller_location() -> tuple[str, int]:
    """Where the user's code created the task: the first frame outside kascade.sdk."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_SDK_DIR):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ("<unknown>", 0)
    return (frame.f_code.co_filename, frame.f_lineno)


def _callbacks(value: Any, name: str) -> list[Callable[..., Any]]:
    if value is None:
        return []
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        if not callable(item):
            raise TypeError(f"{name} must be a callable or a list of callables, got {item!r}")
    return items


def _refuse(name: str, value: Any, ok: Callable[[Any], bool], instead: str) -> None:
    if not ok(value):
        raise UnsupportedFeature(f"{name}={value!r}", instead)


class BaseOperator(DependencyMixin, metaclass=OperatorMeta):
    """Airflow's BaseOperator arguments; subclasses implement ``execute`` (or ``_lower``)."""

    template_fields: ClassVar[Sequence[str]] = ()
    template_ext: ClassVar[Sequence[str]] = ()
    ui_color: ClassVar[str] = "#fff"
    #: Set by operators whose task runs without the Kascade Python runtime.
    _native_execute: ClassVar[Any] = None

    def __init__(
        self,
        *,
        task_id: str,
        owner: str | None = None,
        email: str | Sequence[str] | None = None,
        email_on_retry: bool | None = None,
        email_on_failure: bool | None = None,
        retries: int | None = None,
        retry_delay: timedelta | float | None = None,
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        start_date: Any = None,
        end_date: Any = None,
        depends_on_past: bool = False,
        ignore_first_depends_on_past: bool = True,
        wait_for_past_depends_before_skipping: bool = False,
        wait_for_downstream: bool = False,
        dag: DAG | None = None,
        params: dict[str, Any] | None = None,
        default_args: dict[str, Any] | None = None,
        priority_weight: int = 1,
        weight_rule: str = "downstream",
        queue: str | None = None,
        pool: str | None = None,
        pool_slots: int = 1,
        sla: timedelta | None = None,
        execution_timeout: timedelta | float | None = None,
        on_execute_callback: Any = None,
        on_failure_callback: Any = None,
        on_success_callback: Any = None,
        on_retry_callback: Any = None,
        on_skipped_callback: Any = None,
        pre_execute: Callable[..., Any] | None = None,
        post_execute: Callable[..., Any] | None = None,
        trigger_rule: str | TriggerRule = TriggerRule.ALL_SUCCESS,
        resources: Any = None,
        run_as_user: str | None = None,
        task_concurrency: int | None = None,
        max_active_tis_per_dag: int | None = None,
        max_active_tis_per_dagrun: int | None = None,
        executor: str | None = None,
        executor_config: dict[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        inlets: Any = None,
        outlets: Any = None,
        task_group: TaskGroup | None = None,
        doc: str | None = None,
        doc_md: str | None = None,
        doc_json: str | None = None,
        doc_yaml: str | None = None,
        doc_rst: str | None = None,
        task_display_name: str | None = None,
        logger_name: str | None = None,
        allow_nested_operators: bool = True,
        provide_context: bool | None = None,
        # Kascade's own (also valid in default_args):
        image: str | None = None,
        image_pull_policy: str | None = None,
        container_resources: dict[str, Any] | None = None,
        volumes: list[dict[str, Any]] | None = None,
        volume_mounts: list[dict[str, Any]] | None = None,
        security_context: dict[str, Any] | None = None,
        service_account_name: str | None = None,
        node_selector: dict[str, str] | None = None,
        tolerations: list[dict[str, Any]] | None = None,
        env_from: list[dict[str, Any]] | None = None,
        start_timeout: timedelta | float | None = None,
        when: str | None = None,
        cache_key: str | None = None,
        cache_expiration: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            shown = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
            raise AirflowException(
                f"Invalid arguments were passed to {type(self).__name__} "
                f"(task_id: {task_id}). Invalid arguments were: {shown}"
            )
        if not isinstance(task_id, str) or not task_id:
            raise ValueError(f"task_id must be a non-empty string, got {task_id!r}")
        self._location = caller_location()
        self._refuse_unsupported(locals())
        self.owner = owner
        self.email = [email] if isinstance(email, str) else list(email) if email else None
        self.email_on_failure = email_on_failure
        self.email_on_retry = email_on_retry
        self.retries = retries
        self.retry_delay = retry_delay
        self.retry_exponential_backoff = retry_exponential_backoff
        self.max_retry_delay = max_retry_delay
        self.start_date, self.end_date = start_date, end_date
        self.params = dict(params or {})
        self.priority_weight = priority_weight
        self.pool = None if pool in (None, "default_pool") else pool
        self.pool_slots = pool_slots
        self.sla = sla
        self.execution_timeout = execution_timeout
        self.on_execute_callback = _callbacks(on_execute_callback, "on_execute_callback")
        self.on_failure_callback = _callbacks(on_failure_callback, "on_failure_callback")
        self.on_success_callback = _callbacks(on_success_callback, "on_success_callback")
        self.on_retry_callback = _callbacks(on_retry_callback, "on_retry_callback")
        self.pre_execute_hook = pre_execute
        self.post_execute_hook = post_execute
        self.trigger_rule = coerce(trigger_rule)
        self.max_active_tis_per_dag = max_active_tis_per_dag
        self.do_xcom_push = do_xcom_push
        self.multiple_outputs = multiple_outputs
        self.doc_md = doc_md or doc or doc_rst or doc_json or doc_yaml
        self.task_display_name = task_display_name
        self.container: dict[str, Any] = {
            name: value
            for name, value in (
                ("image", image),
                ("image_pull_policy", image_pull_policy),
                ("container_resources", container_resources),
                ("volumes", volumes),
                ("volume_mounts", volume_mounts),
                ("security_context", security_context),
                ("service_account_name", service_account_name),
                ("node_selector", node_selector),
                ("tolerations", tolerations),
                ("env_from", env_from),
            )
            if value is not None
        }
        self.start_timeout = start_timeout
        self.when = when
        if cache_expiration is not None and cache_key is None:
            raise ValueError(f"{task_id}: cache_expiration needs a cache_key")
        self.cache_key = cache_key
        """Prefect's cache_key_fn, as a template: a fresh result with the same rendered key
        is reused instead of running (the API's ``cache``)."""
        self.cache_expiration = cache_expiration
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self.expand_input: ExpandInput | None = None
        self._label = task_id
        self.dag: DAG | None = None
        self.task_group: TaskGroup | None = None
        dag = dag or (task_group.dag if task_group is not None else None) or contexts.current_dag()
        group = task_group or contexts.current_group(dag)
        self.task_id = group.child_id(task_id) if group is not None else task_id
        if dag is not None:
            dag.add_task(self, group)

    @staticmethod
    def _refuse_unsupported(args: dict[str, Any]) -> None:
        """Arguments that would change behaviour and that Kascade cannot honour (yet)."""
        _refuse(
            "depends_on_past",
            args["depends_on_past"],
            lambda v: not v,
            "runs do not wait for the previous run yet; order runs with max_active_runs=1",
        )
        _refuse("wait_for_downstream", args["wait_for_downstream"], lambda v: not v, "not yet")
        emails = args["email"]
        if emails is not None and not (
            isinstance(emails, str)
            or (isinstance(emails, list | tuple) and all(isinstance(e, str) for e in emails))
        ):
            raise TypeError(f"email must be an address or a list of addresses, got {emails!r}")
        _refuse(
            "weight_rule",
            args["weight_rule"],
            lambda v: str(getattr(v, "value", v)) == "downstream",
            "Kascade uses Airflow's default 'downstream' weight rule",
        )
        for name, instead in (
            ("queue", "use node_selector=... to choose where the task runs"),
            ("run_as_user", "use security_context={'runAsUser': ...}"),
            ("executor", "every task runs as a pod (or a local process)"),
            ("executor_config", "use image=, container_resources=, volumes=, ... directly"),
            ("resources", "use container_resources={'requests': ..., 'limits': ...}"),
            ("task_concurrency", "use a Pool"),
            ("max_active_tis_per_dagrun", "use a Pool"),
            ("on_skipped_callback", "no skip event is reported yet"),
        ):
            if args[name] not in (None, {}):
                raise UnsupportedFeature(f"{name}={args[name]!r}", instead)
        for name in ("inlets", "outlets"):
            if args[name]:
                raise UnsupportedFeature(f"{name}=...", "assets/datasets are not supported yet")

    def _after_init(self) -> None:
        """Once the outermost ``__init__`` ran: XComArgs in templated fields become edges."""
        for field in self.template_fields:
            for upstream in iter_references(getattr(self, field, None)):
                self.set_upstream(upstream)

    # -- graph ---------------------------------------------------------------------
    @property
    def roots(self) -> list[BaseOperator]:
        return [self]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [self]

    @property
    def label(self) -> str:
        return self._label

    @property
    def dag_id(self) -> str | None:
        return self.dag.dag_id if self.dag is not None else None

    @property
    def output(self) -> PlainXComArg:
        """This task's return value as an XComArg (``t.output``, ``t.output["key"]``)."""
        return PlainXComArg(self)

    @property
    def is_mapped(self) -> bool:
        return self.expand_input is not None

    @property
    def upstream_list(self) -> list[BaseOperator]:
        assert self.dag is not None
        return [self.dag.task_dict[t] for t in sorted(self.upstream_task_ids)]

    @property
    def downstream_list(self) -> list[BaseOperator]:
        assert self.dag is not None
        return [self.dag.task_dict[t] for t in sorted(self.downstream_task_ids)]

    def get_direct_relative_ids(self, upstream: bool = False) -> set[str]:
        return set(self.upstream_task_ids if upstream else self.downstream_task_ids)

    def iter_mapped_dependants(self) -> Iterator[BaseOperator]:
        return iter(())

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # -- mapping (Airflow's .partial().expand()) ------------------------------------------
    @classmethod
    def partial(cls, **kwargs: Any) -> OperatorPartial:
        from kascade.sdk.mapped import OperatorPartial

        return OperatorPartial(cls, kwargs)

    # -- execution (in the task's pod or process) -----------------------------------------
    def execute(self, context: dict[str, Any]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    def pre_execute(self, context: dict[str, Any]) -> None:
        if self.pre_execute_hook is not None:
            self.pre_execute_hook(context)

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        if self.post_execute_hook is not None:
            self.post_execute_hook(context, result)

    def render_template_fields(self, context: dict[str, Any], jinja_env: Any = None) -> None:
        """Templates are rendered by the engine before the task starts (see the runtime)."""

    def runs_in_runtime(self) -> bool:
        """True when the task runs Python code (``execute``) through the Kascade runtime."""
        return type(self).execute is not type(self)._native_execute

    def outputs_of(self, result: Any) -> dict[str, Any]:
        """The outputs a finished ``execute`` writes besides pushed XComs (branch, condition)."""
        if not self.do_xcom_push or result is None:
            return {}
        out = {"return_value": result}
        if self.multiple_outputs:
            if not isinstance(result, dict):
                raise TypeError(
                    f"task {self.task_id!r} has multiple_outputs=True, so it must return a "
                    f"dict, not {type(result).__name__}"
                )
            for key, value in result.items():
                out[str(key)] = value
        return out

    # -- compilation ------------------------------------------------------------------------
    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        """The task's API fields (wire form) besides the common policy fields."""
        if not self.runs_in_runtime():
            raise NotImplementedError(f"{type(self).__name__} has no Kascade lowering")
        return lo.runtime("run")


def add_to_dag(op: BaseOperator, dag: DAG) -> None:
    if op.task_id in dag.task_dict and dag.task_dict[op.task_id] is not op:
        raise DuplicateTaskIdFound(f"Task id {op.task_id!r} has already been added to the DAG")
    dag.task_dict[op.task_id] = op
    op.dag = dag
