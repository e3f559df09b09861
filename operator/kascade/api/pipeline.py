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
from kascade.api.base import Duration, JsonValue, KubeObject, Model
from kascade.api.fields import EnvVar as EnvVar
from kascade.api.fields import Name as Name
from kascade.api.fields import Ref as Ref
from kascade.api.fields import SecretKeyRef as SecretKeyRef
from kascade.api.messaging import EmailTemplate, SmtpRef, TriggerPipeline
from kascade.api.names import ObjectName, PoolName
from kascade.api.notifications import HookTask as HookTask
from kascade.api.notifications import Notification as Notification
from kascade.api.notifications import NotificationEvent as NotificationEvent
from kascade.api.notifications import Webhook as Webhook
from kascade.api.pipeline_status import PipelineStatus as PipelineStatus
from kascade.api.pipeline_status import ResolvedDate as ResolvedDate
from kascade.api.pipeline_status import RunSummary as RunSummary
from kascade.api.sensors import Sensor as Sensor
from kascade.api.sensors import SensorKind as SensorKind
from kascade.api.sensors import SensorMode as SensorMode
from kascade.api.trigger_rules import TriggerRule as TriggerRule


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


TaskGroup.model_rebuild()
