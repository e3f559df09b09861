"""The compiled pipeline: a flat Plan with every default applied and every duration parsed.

Defaults (``api/defaults.py``) are applied here and only here, when a pipeline is
compiled, so the engine, the local runner and the operator read effective values from
the Plan (Tekton applies its defaults once, in ``SetDefaults``). A value that does not
parse is an issue with the field path where it was written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kascade.api import defaults
from kascade.api.messaging import EmailTemplate
from kascade.api.pipeline import Notification, NotificationEvent, PipelineSpec, Task, TriggerRule
from kascade.engine import durations
from kascade.engine.actions import TriggerPolicy
from kascade.engine.dag import Graph
from kascade.engine.errors import Issue
from kascade.engine.pools import pool_name_problem
from kascade.engine.sensors import SensorPolicy


@dataclass(frozen=True)
class PlannedTask:
    """One task of the plan, with every default applied and durations parsed."""

    id: str
    """Qualified by groups: ``transform.clean``."""
    index: int
    spec: Task
    path: str
    """Where it is declared in the manifest (for error messages)."""
    group: str | None
    inputs: Mapping[str, Any]
    upstream: tuple[str, ...]
    retries: int
    retry_delay: timedelta
    retry_exponential_backoff: bool
    max_retry_delay: timedelta | None
    timeout: timedelta | None
    start_timeout: timedelta
    trigger_rule: TriggerRule
    priority_weight: int
    pool: str | None
    pool_slots: int
    sla: timedelta | None
    notifications: tuple[Notification, ...]
    sensor: SensorPolicy | None = None
    """A sensor's timing, defaults applied and durations parsed."""
    trigger: TriggerPolicy | None = None
    """A trigger task's waiting rules, defaults applied and durations parsed."""
    cache_expiry: timedelta | None = None
    """With ``cache``: how long its entries may be used (None: the task is not cached)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Field name → where an inherited field was written (the defaults or template)."""
    input_paths: Mapping[str, str] = field(default_factory=dict)
    """Template input → where its value was written (the template's use, or its default).
    Inputs are templated like the task's fields, in the same context."""

    def field_path(self, name: str, wire: str) -> str:
        """Where a field's value was written, for messages: ``spec.defaults.pool``."""
        return f"{self.sources.get(name, self.path)}.{wire}"


@dataclass(frozen=True)
class History:
    """How many finished runs a pipeline keeps, and for how long."""

    successful: int
    failed: int
    ttl: timedelta | None


@dataclass(frozen=True)
class Plan:
    name: str
    spec: PipelineSpec
    tasks: tuple[PlannedTask, ...]
    graph: Graph
    index: Mapping[str, int]
    order: tuple[int, ...]
    priority: tuple[int, ...]
    """Effective priority: own weight plus every downstream weight (Airflow's default rule)."""
    groups: Mapping[str, tuple[str, ...]]
    """Group id → its task ids (recursively)."""
    run_timeout: timedelta | None
    sla: timedelta | None
    max_active_runs: int = defaults.MAX_ACTIVE_RUNS
    max_active_tasks: int = defaults.MAX_ACTIVE_TASKS
    history: History = History(defaults.HISTORY_SUCCESSFUL, defaults.HISTORY_FAILED, None)

    def task(self, task_id: str) -> PlannedTask:
        return self.tasks[self.index[task_id]]

    @property
    def smtp_secret(self) -> str:
        """The Secret with the SMTP settings (``spec.smtp``, or the default name)."""
        smtp = self.spec.smtp
        return smtp.secret if smtp is not None else defaults.SMTP_SECRET

    def is_upstream(self, maybe_upstream: str, of: str) -> bool:
        return self.index[maybe_upstream] in self.graph.ancestors(self.index[of])


def duration(value: str | None, path: str, issues: list[Issue]) -> timedelta | None:
    """A duration as written (None when unset); a bad one is an issue at ``path``."""
    if value is None:
        return None
    try:
        return durations.parse_duration(value)
    except ValueError as exc:
        issues.append(Issue(path, str(exc)))
        return None


def _or(value: timedelta | None, default: timedelta) -> timedelta:
    """The default only when unset: ``0s`` is a value (a falsy timedelta is not "unset")."""
    return default if value is None else value


def task_policies(task: Task, at: Callable[[str, str], str], issues: list[Issue]) -> dict[str, Any]:
    """A task's effective policies; ``at(field, wire)`` says where a field was written."""
    return {
        "retries": task.retries if task.retries is not None else defaults.RETRIES,
        "retry_delay": _or(
            duration(task.retry_delay, at("retry_delay", "retryDelay"), issues),
            defaults.RETRY_DELAY,
        ),
        "retry_exponential_backoff": bool(task.retry_exponential_backoff),
        "max_retry_delay": duration(
            task.max_retry_delay, at("max_retry_delay", "maxRetryDelay"), issues
        ),
        "timeout": duration(task.timeout, at("timeout", "timeout"), issues),
        "start_timeout": _or(
            duration(task.start_timeout, at("start_timeout", "startTimeout"), issues),
            defaults.START_TIMEOUT,
        ),
        "trigger_rule": TriggerRule(task.trigger_rule or defaults.TRIGGER_RULE),
        "priority_weight": (
            task.priority_weight if task.priority_weight is not None else defaults.PRIORITY_WEIGHT
        ),
        "pool": _pool(task.pool, at("pool", "pool"), issues),
        "pool_slots": task.pool_slots or defaults.POOL_SLOTS,
        "sla": duration(task.sla, at("sla", "sla"), issues),
        "notifications": (
            *(_addressed(n, task) for n in task.notifications or ()),
            *email_notifications(task),
        ),
        "sensor": _sensor_policy(task, at("sensor", "sensor"), issues),
        "trigger": _trigger_policy(task, at("trigger_pipeline", "triggerPipeline"), issues),
        "cache_expiry": _cache_expiry(task, at("cache", "cache"), issues),
    }


EMAIL_NOTIFICATION = "email"
"""The name of the notification that a task's ``email`` addresses make."""


def email_notifications(task: Task) -> tuple[Notification, ...]:
    """Airflow's ``email`` + ``email_on_failure``/``email_on_retry`` as one notification
    (both default to true, as in Airflow)."""
    if not task.email:
        return ()
    events = []
    on_failure = task.email_on_failure
    if on_failure if on_failure is not None else defaults.EMAIL_ON_FAILURE:
        events.append(NotificationEvent.FAILURE)
    on_retry = task.email_on_retry
    if on_retry if on_retry is not None else defaults.EMAIL_ON_RETRY:
        events.append(NotificationEvent.RETRY)
    if not events:
        return ()
    return (
        Notification(name=EMAIL_NOTIFICATION, events=events, email=EmailTemplate(to=task.email)),
    )


def _addressed(n: Notification, task: Task) -> Notification:
    """A notification's e-mail without ``to`` writes to the task's ``email`` addresses."""
    if n.email is None or n.email.to or not task.email:
        return n
    return n.model_copy(update={"email": n.email.model_copy(update={"to": task.email})})


def _trigger_policy(task: Task, path: str, issues: list[Issue]) -> TriggerPolicy | None:
    trigger = task.trigger_pipeline
    if trigger is None:
        return None
    try:
        return TriggerPolicy.of(trigger)
    except ValueError as exc:
        issues.append(Issue(f"{path}.pokeInterval", str(exc)))
        return None


def run_policies(spec: PipelineSpec, issues: list[Issue]) -> dict[str, Any]:
    """The pipeline's effective run policies."""
    history = spec.history
    return {
        "run_timeout": duration(spec.run_timeout, "spec.runTimeout", issues),
        "sla": duration(spec.sla, "spec.sla", issues),
        "max_active_runs": spec.max_active_runs,
        "max_active_tasks": spec.max_active_tasks,
        "history": History(
            successful=(
                history.successful
                if history is not None and history.successful is not None
                else defaults.HISTORY_SUCCESSFUL
            ),
            failed=(
                history.failed
                if history is not None and history.failed is not None
                else defaults.HISTORY_FAILED
            ),
            ttl=duration(history.ttl, "spec.history.ttl", issues) if history else None,
        ),
    }


def _pool(name: str | None, path: str, issues: list[Issue]) -> str | None:
    problem = pool_name_problem(name) if name is not None else None
    if problem is not None:
        issues.append(Issue(path, problem))
    return name


def _cache_expiry(task: Task, path: str, issues: list[Issue]) -> timedelta | None:
    if task.cache is None:
        return None
    given = duration(task.cache.expires_after, f"{path}.expiresAfter", issues)
    return _or(given, defaults.CACHE_EXPIRY)


def _sensor_policy(task: Task, path: str, issues: list[Issue]) -> SensorPolicy | None:
    sensor = task.sensor
    if sensor is None:
        return None
    before = len(issues)
    for name, wire in (
        ("poke_interval", "pokeInterval"),
        ("timeout", "timeout"),
        ("logical_date_offset", "logicalDateOffset"),
    ):
        duration(getattr(sensor, name), f"{path}.{wire}", issues)
    return SensorPolicy.of(sensor) if len(issues) == before else None


def priorities(graph: Graph, order: list[int], weights: list[int]) -> list[int]:
    """Airflow's ``downstream`` weight rule: own weight plus all descendants' weights."""
    masks = graph.descendant_masks(order)
    if all(w == 1 for w in weights):
        return [1 + m.bit_count() for m in masks]
    out = []
    for node, mask in enumerate(masks):
        total = weights[node]
        while mask:
            low = mask & -mask
            total += weights[low.bit_length() - 1]
            mask ^= low
        out.append(total)
    return out
