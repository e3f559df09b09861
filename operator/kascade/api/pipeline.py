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
from kascade.api.messaging import EmailTemplate, SmtpRef, TriggerPipeline
from kascade.api.names import ObjectName, PoolName
from kascade.api.trigger_rules import TriggerRule as TriggerRule

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


class EnvVar(Model):
    """A container environment variable (as in a pod spec)."""

    name: str = Field(min_length=1)
    """The variable's name."""
    value: str | None = None
    """Templated: may use ``{{ ds }}``, ``{{ params.x }}``, ``{{ tasks.t.outputs.o }}``."""
    value_from: KubeObject | None = None
    """Kubernetes ``valueFrom`` (secretKeyRef, configMapKeyRef, fieldRef)."""


class SecretKeyRef(Model):
    """A key of a Secret; secrets are referenced, never copied into specs or status."""

    name: ObjectName
    """The Secret's name (in the pipeline's namespace)."""
    key: str
    """The key of the Secret's data."""


class Webhook(Model):
    """An HTTP POST of a JSON body: Slack, Teams, PagerDuty or any JSON webhook."""

    url: str | None = None
    """The URL, when it is not secret."""
    url_from: SecretKeyRef | None = None
    """Read the URL from a Secret (recommended: webhook URLs are credentials)."""
    body: JsonValue | None = None
    """The JSON to post: every string in it is a template over the callback context
    (``{{ task.id }}``, ``{{ exception }}``, ``{{ log_url }}``...). Default:
    ``{"text": "[kascade] {{ pipeline.name }}: {{ message }}"}`` (Slack's simplest form)."""


class NotificationEvent(StrEnum):
    FAILURE = "failure"
    SUCCESS = "success"
    RETRY = "retry"
    SLA_MISS = "slaMiss"


class Notification(Model):
    """Airflow's on_failure/on_success/on_retry/sla_miss callbacks, as webhooks or hook tasks."""

    name: Name
    """A name for the notification, unique in its list."""
    events: list[NotificationEvent] = Field(min_length=1)
    """The events that fire it (not ``on``: YAML 1.1 reads a bare ``on`` key as true)."""
    webhook: Webhook | None = None
    """Post a JSON message to a webhook (Slack, Teams, PagerDuty...)."""
    hook: HookTask | None = None
    """A container run once per event (its env gets KASCADE_EVENT, KASCADE_TASK, ...)."""
    email: EmailTemplate | None = None
    """Send an e-mail (subject and body default to an alert like Airflow's)."""


class HookTask(Model):
    """A small container run for a notification; it never affects the run's state."""

    image: str
    """The container image."""
    command: list[str] | None = None
    """The entrypoint (with ``script``: the interpreter, default ``[sh, -e]``)."""
    args: list[str] | None = None
    """Arguments to the command."""
    script: str | None = None
    """An inline script, run by ``command``."""
    env: list[EnvVar] | None = None
    """Extra environment variables (KASCADE_EVENT, KASCADE_TASK, KASCADE_MESSAGE are set)."""


class SensorKind(StrEnum):
    COMMAND = "command"
    FILE = "file"
    EXTERNAL_TASK = "externalTask"
    TIME = "time"
    DATETIME = "datetime"
    HTTP = "http"
    SQL = "sql"
    S3 = "s3"


class SensorMode(StrEnum):
    POKE = "poke"
    RESCHEDULE = "reschedule"


class Sensor(Model):
    """Waits for a condition, poking every ``pokeInterval`` until ``timeout``.

    ``command`` sensors run the task's container as the poke; its exit code says:
    0 = condition met, 100 = not yet (poke again later), anything else = error.
    """

    kind: SensorKind = SensorKind.COMMAND
    """command (the task's container pokes), file, http, sql, s3, externalTask, time or
    datetime."""
    poke_interval: Duration | None = None
    """Time between pokes (default 60s)."""
    timeout: Duration | None = None
    """Give up after this long (default 7d)."""
    mode: SensorMode = SensorMode.POKE
    """poke: one pod loops; reschedule: the slot and the pod are freed between pokes."""
    soft_fail: bool = False
    """On timeout, mark the task skipped instead of failed."""
    exponential_backoff: bool = False
    """Double the time between pokes after each one (capped at the timeout)."""
    path: str | None = None
    """file: a path (glob allowed, templated) that must exist, on a volume of the task."""
    pipeline: ObjectName | None = None
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
    """http: the request method."""
    expected_status: int = defaults.HTTP_EXPECTED_STATUS
    """http: the status code that means the condition is met."""
    response_contains: str | None = None
    """http: the body must also contain this text."""
    connection: Name | None = None
    """sql, s3: the pipeline connection (``spec.connections[].name``) whose Secret holds the
    PostgreSQL or object store settings (docs/integrations.md)."""
    sql: str | None = None
    """sql: the query (templated); met when the first cell of the first row is not 0, '0',
    '', false or NULL (Airflow's SqlSensor). It runs read-only, with a statement timeout."""
    parameters: list[str] | None = None
    """sql: values bound to the query's ``%s`` placeholders (templated): pass ``{{ ds }}``
    here rather than into the SQL text."""
    bucket: str | None = None
    """s3: the bucket (templated; default: the connection's ``bucket``)."""
    key: str | None = None
    """s3: met when an object exists at this key (templated)."""
    prefix: str | None = None
    """s3: met when any object's key starts with this (templated)."""
    wildcard: str | None = None
    """s3: met when any key matches this shell pattern, ``*`` also crossing ``/`` (templated)."""


class Expand(Model):
    """Dynamic task mapping (Airflow ``expand``, Argo ``withItems``/``withParam``)."""

    items: list[JsonValue] | None = None
    """A literal list."""
    param: str | None = None
    """An expression giving a list, e.g. ``params.customers`` or ``tasks.list.outputs.files``."""
    max_parallel: Annotated[int, Field(ge=1)] | None = None
    """At most this many mapped instances run at once."""


class Cache(Model):
    """Reuse a successful attempt's outputs instead of running (Prefect's cache_key_fn and
    cache_expiration, Flyte's and KFP's task cache)."""

    key: str = Field(min_length=1, max_length=1024)
    """Templated like the task's fields (``{{ ds }}-{{ params.region }}``). When a fresh
    entry of this task has the same rendered key, the task succeeds with its outputs and
    runs nothing."""
    expires_after: Duration | None = None
    """How long an entry may be used after the attempt that wrote it (default 1d)."""


class ContainerFields(Model):
    """The container part of a task; also what ``defaults`` may set."""

    image: str | None = None
    """The container image (templated). Required, here or in defaults."""
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    """Always, IfNotPresent (default) or Never."""
    command: list[str] | None = None
    """Templated. With ``script``: the interpreter (default ``[sh, -e]``)."""
    args: list[str] | None = None
    """Templated."""
    script: str | None = None
    """An inline script (templated), run by ``command`` or its shebang."""
    working_dir: str | None = None
    """The container's working directory (an absolute path)."""
    env: list[EnvVar] | None = None
    """Environment variables of the task's container (values templated)."""
    env_from: list[KubeObject] | None = None
    """Kubernetes envFrom: every key of a ConfigMap or Secret as a variable. A Secret needs its
    author to be allowed to read it."""
    resources: KubeObject | None = None
    """Kubernetes resources: requests and limits (cpu, memory)."""
    volumes: list[KubeObject] | None = None
    """Pod volumes (emptyDir, configMap, secret, persistentVolumeClaim, ...)."""
    volume_mounts: list[KubeObject] | None = None
    """Where the task's volumes are mounted in its container."""
    security_context: KubeObject | None = None
    """Kubernetes container securityContext, merged over the restricted default (non-root, no
    privilege escalation, no capabilities). Loosening it needs its author to be allowed to
    create such pods."""
    service_account_name: ObjectName | None = None
    """Run the task's pod as this ServiceAccount (its token is then mounted). Needs its author to
    be allowed to create pods, or to use this ServiceAccount."""
    node_selector: dict[str, str] | None = None
    """Kubernetes nodeSelector of the task's pod."""
    tolerations: list[KubeObject] | None = None
    """Kubernetes tolerations of the task's pod."""


class TaskPolicy(Model):
    """Per-task policies that ``defaults`` (Airflow's default_args) can also set."""

    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    """How many times a failed attempt is retried (default 0)."""
    retry_delay: Duration | None = None
    """Delay before a retry (default 5m, like Airflow)."""
    retry_exponential_backoff: bool | None = None
    """Double the retry delay after each retry (up to maxRetryDelay)."""
    max_retry_delay: Duration | None = None
    """The longest retry delay with exponential backoff."""
    timeout: Duration | None = None
    """Execution timeout of one attempt (Airflow execution_timeout)."""
    start_timeout: Duration | None = None
    """Fail an attempt whose pod is not running after this long (unschedulable, bad image)."""
    trigger_rule: TriggerRule | None = None
    """When the task runs, given its upstream states (default all_success)."""
    priority_weight: int | None = None
    """Higher runs first when tasks are queued for slots."""
    pool: PoolName | None = None
    """The Pool whose slots the task takes while it runs."""
    pool_slots: Annotated[int, Field(ge=1)] | None = None
    """How many of the pool's slots it takes (default 1)."""
    sla: Duration | None = None
    """The task should be done this long after the data interval's end."""
    notifications: list[Notification] | None = None
    """Callbacks on this task's events (failure, success, retry, slaMiss)."""
    email: Annotated[list[str], Field(max_length=100)] | None = None
    """Airflow's ``email``: addresses alerted by e-mail on failure and retry (see
    emailOnFailure, emailOnRetry)."""
    email_on_failure: bool | None = None
    """E-mail ``email`` when the task fails (default true, as in Airflow)."""
    email_on_retry: bool | None = None
    """E-mail ``email`` when an attempt fails and will be retried (default true)."""


class TaskDefaults(ContainerFields, TaskPolicy):
    """Airflow's default_args: applied to every task that does not set the field."""


class TemplateKind(StrEnum):
    TEMPLATE = "Template"
    TASK_TEMPLATE = "TaskTemplate"


class TemplateUse(Model):
    """Instantiate a reusable task or group template."""

    name: Name
    """The template's name (``spec.templates[].name``, or a TaskTemplate's)."""
    kind: TemplateKind = TemplateKind.TEMPLATE
    """Template (one of ``spec.templates``) or TaskTemplate (a TaskTemplate of the
    namespace, shared by its pipelines; a run uses the version it started with)."""
    inputs: dict[str, JsonValue] | None = None
    """Values of the template's inputs, visible as ``{{ inputs.x }}`` (templated: params,
    macros and upstream outputs are rendered for each attempt)."""


class TaskBody(ContainerFields, TaskPolicy):
    """Everything a task sets but its name (what a task template holds)."""

    description: str | None = None
    """What the task does (shown in the graph)."""
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
    """Make the task a sensor: it waits for a condition."""
    expand: Expand | None = None
    """Run one instance of the task per item (dynamic task mapping)."""
    send_email: EmailTemplate | None = None
    """Airflow's EmailOperator: the task sends this e-mail (no pod runs)."""
    trigger_pipeline: TriggerPipeline | None = None
    """Airflow's TriggerDagRunOperator: the task starts a run of another pipeline, and
    may wait for it (no pod runs)."""
    outputs: list[Name] | None = None
    """Declared outputs (optional): references to undeclared ones are then rejected."""
    cache: Cache | None = None
    """Skip the task when a fresh successful attempt had the same cache key (its outputs
    are reused; the attempt shows ``Cached``)."""


class Task(TaskBody):
    """One task: one pod per attempt on Kubernetes, one process in the local runner."""

    name: Name
    """The task's name, unique among its siblings (letters, digits, - and _)."""


class TaskGroup(Model):
    """Airflow TaskGroup: tasks (and nested groups) whose ids are qualified by the group."""

    name: Name
    """The group's name; its tasks' ids are qualified by it (group.task)."""
    description: str | None = None
    """What the group does."""
    depends_on: list[Ref] | None = None
    """Upstream of every root task of the group (``extract >> transform``)."""
    defaults: TaskDefaults | None = None
    """Group-level default_args, over the pipeline's."""
    tasks: list[Task] | None = None
    """The group's tasks."""
    groups: list[TaskGroup] | None = None
    """Nested groups."""
    template: TemplateUse | None = None
    """Instantiate a group template (a task group factory)."""


class TemplateInput(Model):
    name: Name
    """The input's name, used as ``{{ inputs.<name> }}``."""
    default: JsonValue | None = None
    """Its value when a use of the template does not give one."""
    description: str | None = None
    """What the input is for."""


class TemplateBody(Model):
    """A template but its name: what a ``spec.templates`` entry and a TaskTemplate hold."""

    description: str | None = None
    """What the template does."""
    inputs: list[TemplateInput] | None = None
    """The template's inputs, read as ``{{ inputs.<name> }}`` (templated at each use)."""
    task: TaskBody | None = None
    """A task template: the fields a task that uses it gets (its own fields win)."""
    tasks: list[Task] | None = None
    """A group template: these tasks form the group that uses it."""
    groups: list[TaskGroup] | None = None
    """A group template: these nested groups form the group too."""


class Template(TemplateBody):
    """A reusable task (Airflow custom operator) or group (task group factory)."""

    name: Name
    """The template's name, used by ``template.name``."""


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
    """string (default), integer, number, boolean, array or object."""
    default: JsonValue | None = None
    """The value when a run gives none (must fit type, enum and bounds)."""
    enum: list[JsonValue] | None = None
    """The only values allowed."""
    description: str | None = None
    """What the param is for (shown when triggering)."""
    minimum: float | None = None
    """The smallest number allowed."""
    maximum: float | None = None
    """The largest number allowed."""
    required: bool = False
    """A run must give a value (no default)."""


class Variables(Model):
    """Airflow Variables: a ConfigMap whose keys become env vars of every task."""

    config_map: ObjectName
    """The ConfigMap's name (its author must be allowed to read it)."""
    prefix: str = "VAR_"
    """Prefix of the variables' names (default VAR_)."""


class Connection(Model):
    """Airflow Connection: a Secret whose keys become env vars ``CONN_<NAME>_<KEY>``."""

    name: Name
    """The connection's name (variables CONN_<NAME>_<KEY>)."""
    secret: ObjectName
    """The Secret holding it (its author must be allowed to read it)."""


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
    """What the pipeline does."""
    schedule: str | None = None
    """Cron (5 fields), a preset (@once @hourly @daily @weekly @monthly @yearly),
    an interval (6h), or unset for manual runs only."""
    timezone: str = defaults.TIMEZONE
    """The IANA time zone of the schedule (default UTC)."""
    start_date: str | None = None
    """ISO date or date-time; no scheduled run has an interval starting before it. Or a
    relative date, a minus sign and a duration (``-1d``: Airflow's ``days_ago(1)``),
    resolved once when the operator first sees the pipeline and kept in
    ``status.resolvedStartDate`` (whole days from midnight in ``timezone``)."""
    end_date: str | None = None
    """No scheduled run has an interval starting after it (ISO date or date-time)."""
    catchup: bool = False
    """Create runs for every missed interval since startDate (else the latest only)."""
    max_active_runs: Annotated[int, Field(ge=1)] = defaults.MAX_ACTIVE_RUNS
    """At most this many runs at once; more wait, queued (default 16)."""
    max_active_tasks: Annotated[int, Field(ge=1)] = defaults.MAX_ACTIVE_TASKS
    """At most this many running tasks across the pipeline's runs (default 16)."""
    run_timeout: Duration | None = None
    """Fail a run that lasts longer (Airflow dagrun_timeout)."""
    suspend: bool = False
    """Pause: no new scheduled runs; manual runs still allowed."""
    sla: Duration | None = None
    """The whole run should be done this long after the data interval's end."""
    params: dict[str, Param] | None = None
    """Run parameters by name (Airflow Params), overridable per run."""
    defaults: TaskDefaults | None = None
    """Values every task gets unless it sets them (Airflow default_args)."""
    tasks: list[Task] | None = None
    """The tasks; dependsOn makes the DAG."""
    groups: list[TaskGroup] | None = None
    """Task groups (Airflow TaskGroup)."""
    templates: list[Template] | None = None
    """Reusable tasks and groups, used by ``template``."""
    variables: list[Variables] | None = None
    """ConfigMaps whose keys become environment variables of every task."""
    connections: list[Connection] | None = None
    """Secrets whose keys become CONN_<NAME>_<KEY> variables of every task."""
    notifications: list[Notification] | None = None
    """Run-level notifications (events of the run as a whole)."""
    smtp: SmtpRef | None = None
    """The SMTP settings for e-mail (default: the Secret kascade-smtp)."""
    history: History | None = None
    """How many finished runs to keep, and for how long."""
    tags: list[str] | None = None
    """Free-form labels for people (Airflow tags)."""


class RunSummary(Model):
    name: str
    """The run's name."""
    phase: str
    """queued, running, success or failed."""
    logical_date: str | None = None
    """The run's logical date."""
    start_time: str | None = None
    """When it started."""
    end_time: str | None = None
    """When it ended."""


class ResolvedDate(Model):
    """A relative date as written, and the date it was resolved to (once)."""

    written: str
    """The spec's value (``-1d``); a different value is resolved again."""
    date: str
    """The ISO date-time it stands for."""


class PipelineStatus(Model):
    """What the operator observed: validity, schedule and recent runs."""

    conditions: list[Condition] | None = None
    """Valid: whether the spec passed validation (and approval)."""
    errors: list[str] | None = None
    """Every validation error, each with its field path."""
    observed_generation: int | None = None
    """The generation these conditions were computed for."""
    task_count: int | None = None
    """How many tasks the compiled DAG has."""
    next_run: str | None = None
    """When the next scheduled run is due."""
    last_scheduled_interval: Interval | None = None
    """The schedule cursor: the data interval of the latest scheduled run."""
    resolved_start_date: ResolvedDate | None = None
    """A relative startDate (``-1d``), resolved when the pipeline was first seen."""
    last_run: str | None = None
    """The newest run's name."""
    last_runs: list[RunSummary] | None = None
    """The latest runs, newest first."""
    active_runs: int | None = None
    """Runs queued or running."""
    runs_succeeded: int | None = None
    """Kept runs that succeeded."""
    runs_failed: int | None = None
    """Kept runs that failed."""


HookTask.model_rebuild()
Notification.model_rebuild()
TaskGroup.model_rebuild()
