"""The Pipeline kind: a DAG of container tasks, its schedule and its policies.

Field names follow Airflow's vocabulary in camelCase (``retryDelay`` for
``retry_delay``, ``triggerRule`` for ``trigger_rule``) so that an Airflow user
recognises every concept; container fields follow the Kubernetes pod spec so
that a Kubernetes user recognises those.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from kascade.api import defaults
from kascade.api.base import Condition, Duration, Interval, JsonValue, KubeObject, Model

#: Task and group names: Airflow-style ids; '.' is reserved for group qualification.
Name = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$"),
]
#: A reference to a task or group, possibly qualified by group (``transform.clean``).
Ref = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$",
    ),
]


class TriggerRule(StrEnum):
    """Airflow's trigger rules, with their exact semantics (see docs/concepts.md)."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"


class EnvVar(Model):
    """A container environment variable (as in a pod spec)."""

    name: str = Field(min_length=1)
    value: str | None = None
    """Templated: may use ``{{ ds }}``, ``{{ params.x }}``, ``{{ tasks.t.outputs.o }}``."""
    value_from: KubeObject | None = None
    """Kubernetes ``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef)."""


class SecretKeyRef(Model):
    """A key of a Secret; secrets are referenced, never copied into specs or status."""

    name: str
    key: str


class Webhook(Model):
    """A Slack-compatible webhook (JSON body ``{"text": ...}``)."""

    url: str | None = None
    """The URL, when it is not secret."""
    url_from: SecretKeyRef | None = None
    """Read the URL from a Secret (recommended: webhook URLs are credentials)."""


class NotificationEvent(StrEnum):
    FAILURE = "failure"
    SUCCESS = "success"
    RETRY = "retry"
    SLA_MISS = "slaMiss"


class Notification(Model):
    """Airflow's on_failure/on_success/on_retry/sla_miss callbacks, as webhooks or hook tasks."""

    name: Name
    events: list[NotificationEvent] = Field(min_length=1)
    """The events that fire it (not ``on``: YAML 1.1 reads a bare ``on`` key as true)."""
    webhook: Webhook | None = None
    hook: HookTask | None = None
    """A container run once per event (its env gets KASCADE_EVENT, KASCADE_TASK, ...)."""


class HookTask(Model):
    """A small container run for a notification; it never affects the run's state."""

    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    script: str | None = None
    env: list[EnvVar] | None = None


class SensorKind(StrEnum):
    COMMAND = "command"
    FILE = "file"
    EXTERNAL_TASK = "externalTask"
    TIME = "time"
    DATETIME = "datetime"
    HTTP = "http"


class SensorMode(StrEnum):
    POKE = "poke"
    RESCHEDULE = "reschedule"


class Sensor(Model):
    """Waits for a condition, poking every ``pokeInterval`` until ``timeout``.

    ``command`` sensors run the task's container as the poke; its exit code says:
    0 = condition met, 100 = not yet (poke again later), anything else = error.
    """

    kind: SensorKind = SensorKind.COMMAND
    poke_interval: Duration | None = None
    """Time between pokes (default 60s)."""
    timeout: Duration | None = None
    """Give up after this long (default 7d)."""
    mode: SensorMode = SensorMode.POKE
    """poke: one pod loops; reschedule: the slot and the pod are freed between pokes."""
    soft_fail: bool = False
    """On timeout, mark the task skipped instead of failed."""
    exponential_backoff: bool = False
    path: str | None = None
    """file: a path (glob allowed, templated) that must exist, on a volume of the task."""
    pipeline: str | None = None
    """externalTask: the other pipeline's name."""
    task: Ref | None = None
    """externalTask: a task of that pipeline (omit to wait for the whole run)."""
    states: list[str] | None = None
    """externalTask: accepted states (default [success])."""
    failed_states: list[str] | None = None
    """externalTask: states that fail the sensor at once (default [failed])."""
    logical_date_offset: Duration | None = None
    """externalTask: look at the run whose logical date is this much earlier (e.g. 1d)."""
    target_time: str | None = None
    """time: HH:MM[:SS] on the data interval's end day; datetime: an ISO date-time (templated)."""
    url: str | None = None
    """http: the URL (templated); met when the status is expectedStatus."""
    method: str = defaults.HTTP_METHOD
    expected_status: int = defaults.HTTP_EXPECTED_STATUS
    response_contains: str | None = None


class Expand(Model):
    """Dynamic task mapping (Airflow ``expand``, Argo ``withItems``/``withParam``)."""

    items: list[JsonValue] | None = None
    """A literal list."""
    param: str | None = None
    """An expression giving a list, e.g. ``params.customers`` or ``tasks.list.outputs.files``."""
    max_parallel: Annotated[int, Field(ge=1)] | None = None
    """At most this many mapped instances run at once."""


class ContainerFields(Model):
    """The container part of a task; also what ``defaults`` may set."""

    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = None
    """Templated. With ``script``: the interpreter (default ``[sh, -e]``)."""
    args: list[str] | None = None
    """Templated."""
    script: str | None = None
    """An inline script (templated), run by ``command`` or its shebang."""
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[KubeObject] | None = None
    resources: KubeObject | None = None
    volumes: list[KubeObject] | None = None
    """Pod volumes (emptyDir, configMap, secret, persistentVolumeClaim, ...)."""
    volume_mounts: list[KubeObject] | None = None
    security_context: KubeObject | None = None
    service_account_name: str | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[KubeObject] | None = None


class TaskPolicy(Model):
    """Per-task policies that ``defaults`` (Airflow's default_args) can also set."""

    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay: Duration | None = None
    """Delay before a retry (default 5m, like Airflow)."""
    retry_exponential_backoff: bool | None = None
    max_retry_delay: Duration | None = None
    timeout: Duration | None = None
    """Execution timeout of one attempt (Airflow execution_timeout)."""
    start_timeout: Duration | None = None
    """Fail an attempt whose pod is not running after this long (unschedulable, bad image)."""
    trigger_rule: TriggerRule | None = None
    priority_weight: int | None = None
    """Higher runs first when tasks are queued for slots."""
    pool: Name | None = None
    pool_slots: Annotated[int, Field(ge=1)] | None = None
    sla: Duration | None = None
    """The task should be done this long after the data interval's end."""
    notifications: list[Notification] | None = None


class TaskDefaults(ContainerFields, TaskPolicy):
    """Airflow's default_args: applied to every task that does not set the field."""


class TemplateUse(Model):
    """Instantiate a reusable task or group template."""

    name: Name
    """The template's name (``spec.templates[].name``)."""
    inputs: dict[str, JsonValue] | None = None
    """Values of the template's inputs, visible as ``{{ inputs.x }}``."""


class TaskBody(ContainerFields, TaskPolicy):
    """Everything a task sets but its name (what a task template holds)."""

    description: str | None = None
    depends_on: list[Ref] | None = None
    """Upstream tasks or groups (sibling names, or qualified like ``extract.orders``)."""
    template: TemplateUse | None = None
    """Take fields from a template; fields set here win."""
    branch: bool = False
    """BranchPythonOperator: the task's ``branch`` output names the downstream task(s) to follow."""
    branch_targets: list[Ref] | None = None
    """The direct downstream tasks or groups a branch may choose (default: all of them)."""
    short_circuit: bool = False
    """ShortCircuitOperator: a false ``condition`` output skips everything downstream."""
    when: str | None = None
    """An expression on params and upstream outputs; false → the task is skipped."""
    sensor: Sensor | None = None
    expand: Expand | None = None
    outputs: list[Name] | None = None
    """Declared outputs (optional): references to undeclared ones are then rejected."""


class Task(TaskBody):
    """One task: one pod per attempt on Kubernetes, one process in the local runner."""

    name: Name


class TaskGroup(Model):
    """Airflow TaskGroup: tasks (and nested groups) whose ids are qualified by the group."""

    name: Name
    description: str | None = None
    depends_on: list[Ref] | None = None
    """Upstream of every root task of the group (``extract >> transform``)."""
    defaults: TaskDefaults | None = None
    """Group-level default_args, over the pipeline's."""
    tasks: list[Task] | None = None
    groups: list[TaskGroup] | None = None
    template: TemplateUse | None = None
    """Instantiate a group template (a task group factory)."""


class TemplateInput(Model):
    name: Name
    default: JsonValue | None = None
    description: str | None = None


class Template(Model):
    """A reusable task (Airflow custom operator) or group (task group factory)."""

    name: Name
    description: str | None = None
    inputs: list[TemplateInput] | None = None
    task: TaskBody | None = None
    """A task template."""
    tasks: list[Task] | None = None
    """A group template: these tasks form the group."""
    groups: list[TaskGroup] | None = None


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"


class Param(Model):
    """A typed run parameter (Airflow Param), overridable per run."""

    type: ParamType = ParamType.STRING
    default: JsonValue | None = None
    enum: list[JsonValue] | None = None
    description: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    """A run must give a value (no default)."""


class Variables(Model):
    """Airflow Variables: a ConfigMap whose keys become env vars of every task."""

    config_map: str
    prefix: str = "VAR_"


class Connection(Model):
    """Airflow Connection: a Secret whose keys become env vars ``CONN_<NAME>_<KEY>``."""

    name: Name
    secret: str


class History(Model):
    """How many finished runs to keep, and for how long."""

    successful: Annotated[int, Field(ge=0)] | None = None
    """Successful runs kept (default 10)."""
    failed: Annotated[int, Field(ge=0)] | None = None
    """Failed runs kept (default 10)."""
    ttl: Duration | None = None
    """Delete finished runs older than this."""


class PipelineSpec(Model):
    """A pipeline: its DAG, schedule and policies (an Airflow DAG as a manifest)."""

    description: str | None = None
    schedule: str | None = None
    """Cron (5 fields), a preset (@once @hourly @daily @weekly @monthly @yearly),
    an interval (6h), or unset for manual runs only."""
    timezone: str = defaults.TIMEZONE
    start_date: str | None = None
    """ISO date or date-time; no scheduled run has an interval starting before it."""
    end_date: str | None = None
    catchup: bool = False
    """Create runs for every missed interval since startDate (else the latest only)."""
    max_active_runs: Annotated[int, Field(ge=1)] = defaults.MAX_ACTIVE_RUNS
    max_active_tasks: Annotated[int, Field(ge=1)] = defaults.MAX_ACTIVE_TASKS
    run_timeout: Duration | None = None
    """Fail a run that lasts longer (Airflow dagrun_timeout)."""
    suspend: bool = False
    """Pause: no new scheduled runs; manual runs still allowed."""
    sla: Duration | None = None
    """The whole run should be done this long after the data interval's end."""
    params: dict[str, Param] | None = None
    defaults: TaskDefaults | None = None
    tasks: list[Task] | None = None
    groups: list[TaskGroup] | None = None
    templates: list[Template] | None = None
    variables: list[Variables] | None = None
    connections: list[Connection] | None = None
    notifications: list[Notification] | None = None
    """Run-level notifications (events of the run as a whole)."""
    history: History | None = None
    tags: list[str] | None = None


class RunSummary(Model):
    name: str
    phase: str
    logical_date: str | None = None
    start_time: str | None = None
    end_time: str | None = None


class PipelineStatus(Model):
    """What the operator observed: validity, schedule and recent runs."""

    conditions: list[Condition] | None = None
    errors: list[str] | None = None
    """Every validation error, each with its field path."""
    observed_generation: int | None = None
    task_count: int | None = None
    next_run: str | None = None
    last_scheduled_interval: Interval | None = None
    """The schedule cursor: the data interval of the latest scheduled run."""
    last_run: str | None = None
    last_runs: list[RunSummary] | None = None
    active_runs: int | None = None
    runs_succeeded: int | None = None
    runs_failed: int | None = None


HookTask.model_rebuild()
Notification.model_rebuild()
TaskGroup.model_rebuild()
