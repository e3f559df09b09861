"""Prometheus metrics of the operator, all prefixed ``kascade_``.

Labels are bounded: pipeline, task, pool, state and namespace, never run ids
(per-run labels are what blew up Tekton's metrics cardinality).

Every series the operator can know in advance exists from the moment it sees
its Pipeline (or Pool), at zero (:func:`seen_pipeline`): Prometheus' ``increase()``
and ``rate()`` cannot count a series' first sample, so a counter that appears
with its first event (and again on a new leader) loses that event in every
dashboard. Outcome labels are closed sets for the same reason: an attempt is
``success`` or ``failed``, and why it failed is a reason from
:data:`FAILURE_REASONS` on ``kascade_task_failures_total``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

RUNS_STARTED = Counter(
    "kascade_runs_started_total", "PipelineRuns started", ["namespace", "pipeline", "trigger"]
)
RUNS_FINISHED = Counter(
    "kascade_runs_finished_total", "PipelineRuns finished", ["namespace", "pipeline", "state"]
)
RUN_DURATION = Histogram(
    "kascade_run_duration_seconds",
    "Wall time of finished runs",
    ["namespace", "pipeline", "state"],
    buckets=_DURATION_BUCKETS,
)
ACTIVE_RUNS = Gauge("kascade_active_runs", "Runs in flight", ["namespace", "pipeline"])
TASK_ATTEMPTS = Counter(
    "kascade_task_attempts_total",
    "Task attempts by how they ended",
    ["namespace", "pipeline", "task", "state"],
)
TASK_DURATION = Histogram(
    "kascade_task_duration_seconds",
    "Wall time of task attempts",
    ["namespace", "pipeline", "task"],
    buckets=_DURATION_BUCKETS,
)
TASK_RETRIES = Counter(
    "kascade_task_retries_total", "Attempts that will be retried", ["namespace", "pipeline", "task"]
)
TASK_SCHEDULING_DELAY = Histogram(
    "kascade_task_scheduling_delay_seconds",
    "From a task becoming ready to its pod being created",
    ["namespace", "pipeline"],
    buckets=_DELAY_BUCKETS,
)
TASK_POD_START = Histogram(
    "kascade_task_pod_start_seconds",
    "From a task's pod being created to its container running (image pull, scheduling)",
    ["namespace", "pipeline"],
    buckets=_DELAY_BUCKETS,
)
RUN_SCHEDULING_DELAY = Histogram(
    "kascade_run_scheduling_delay_seconds",
    "From a run's scheduled time (its data interval end) to its creation",
    ["namespace", "pipeline"],
    buckets=_DELAY_BUCKETS,
)
QUEUED_TASKS = Gauge(
    "kascade_queued_tasks",
    "Tasks ready and waiting for a slot (their pool, or default_pool: maxActiveTasks)",
    ["namespace", "pool"],
)
TASK_FAILURES = Counter(
    "kascade_task_failures_total",
    "Failed task attempts by reason (Error: a non-zero exit)",
    ["namespace", "pipeline", "reason"],
)
POOL_SLOTS_USED = Gauge("kascade_pool_slots_used", "Pool slots in use", ["namespace", "pool"])
POOL_SLOTS = Gauge("kascade_pool_slots", "Pool size", ["namespace", "pool"])
LOGS_ARCHIVED = Counter(
    "kascade_logs_archived_total",
    "Task attempt logs written to the log archive",
    ["namespace", "pipeline"],
)
LOG_ARCHIVE_FAILURES = Counter(
    "kascade_log_archive_failures_total",
    "Task attempt logs the archive gave up on (store down past its retries, pod gone, queue full)",
    ["namespace", "pipeline"],
)
SLA_MISSES = Counter("kascade_sla_misses_total", "SLA misses", ["namespace", "pipeline", "task"])
RECONCILE_ERRORS = Counter("kascade_reconcile_errors_total", "Errors while reconciling", ["kind"])
for _kind in (
    "Pipeline",
    "PipelineRun",
    "Pod",
    "run",
    "pipeline",
    "status",
):  # handlers, timers, writes
    RECONCILE_ERRORS.labels(_kind)
API_WRITES = Counter(
    "kascade_api_writes_total", "Writes to the Kubernetes API", ["verb", "resource"]
)
NOTIFICATIONS = Counter(
    "kascade_notifications_total",
    "Notifications sent",
    ["namespace", "pipeline", "event", "outcome"],
)
EMAILS = Counter(
    "kascade_emails_total",
    "E-mails by outcome: sent, retried (a transient failure, tried again) or failed (given up)",
    ["namespace", "pipeline", "outcome"],
)
EMAIL_OUTCOMES = ("sent", "retried", "failed")
IS_LEADER = Gauge("kascade_is_leader", "1 when this replica holds the leader Lease")


_PER_PIPELINE = (ACTIVE_RUNS, TASK_SCHEDULING_DELAY, TASK_POD_START, RUN_SCHEDULING_DELAY)
TRIGGERS = ("scheduled", "manual", "backfill", "triggered")
RUN_STATES = ("success", "failed")
ATTEMPT_STATES = ("success", "failed")
FAILURE_REASONS = (
    "Error",
    "Timeout",
    "StartTimeout",
    "Evicted",
    "PodFailed",
    "PodDeleted",
    "PodLost",
    "OutputsTooLarge",
    "BadOutputs",
    "TemplateError",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "PodRejected",
    "ActionFailed",
    "Other",
)
NOTIFICATION_OUTCOMES = ("sent", "error", "refused", "no_url")
_SEEN: dict[tuple[str, str], tuple[Any, list[tuple[Any, tuple[str, ...]]]]] = {}
"""(namespace, pipeline) → (generation, the series initialised for it)."""


def failure_reason(reason: str | None) -> str:
    if reason is None:
        return "Error"
    return reason if reason in FAILURE_REASONS else "Other"


def attempt_ended(namespace: str, pipeline: str, task: str, ok: bool, reason: str | None) -> None:
    """Count an attempt: success or failed per task, and the failure's reason per pipeline."""
    TASK_ATTEMPTS.labels(namespace, pipeline, task, "success" if ok else "failed").inc()
    if not ok:
        TASK_FAILURES.labels(namespace, pipeline, failure_reason(reason)).inc()


def seen_pipeline(body: dict[str, Any]) -> None:
    """Create every series of this pipeline at zero (once per generation; dropped on delete)."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    if meta.get("deletionTimestamp"):
        forget_pipeline(*key)
        return
    generation = meta.get("generation")
    if key in _SEEN and _SEEN[key][0] == generation:
        return
    from kascade.engine.validation import validate_document  # the CLI never needs it here

    _, plan, _ = validate_document(body)
    series: list[tuple[Any, tuple[str, ...]]] = []
    ns, name = key
    series += [(RUNS_STARTED, (ns, name, t)) for t in TRIGGERS]
    series += [(m, (ns, name, s)) for m in (RUNS_FINISHED, RUN_DURATION) for s in RUN_STATES]
    series += [(m, (ns, name)) for m in _PER_PIPELINE]
    series += [(TASK_FAILURES, (ns, name, r)) for r in FAILURE_REASONS]
    if plan is not None:
        for task in plan.tasks:
            series += [(TASK_ATTEMPTS, (ns, name, task.id, s)) for s in ATTEMPT_STATES]
            series += [(TASK_DURATION, (ns, name, task.id)), (TASK_RETRIES, (ns, name, task.id))]
            if task.sla is not None:
                series.append((SLA_MISSES, (ns, name, task.id)))
        if plan.sla is not None:
            series.append((SLA_MISSES, (ns, name, "")))
        events = {
            e.value
            for n in [
                *(plan.spec.notifications or []),
                *(x for t in plan.tasks for x in t.notifications),
            ]
            for e in n.events
        }
        series += [(NOTIFICATIONS, (ns, name, e, o)) for e in events for o in NOTIFICATION_OUTCOMES]
        if _sends_email(plan):
            series += [(EMAILS, (ns, name, o)) for o in EMAIL_OUTCOMES]
    for metric, labels in series:
        metric.labels(*labels)
    QUEUED_TASKS.labels(
        ns, DEFAULT_POOL
    )  # shared by the namespace: never removed with one pipeline
    _SEEN[key] = (generation, series)


def _sends_email(plan: Any) -> bool:
    notifications = [
        *(plan.spec.notifications or []),
        *(n for t in plan.tasks for n in t.notifications),
    ]
    return any(n.email is not None for n in notifications) or any(
        t.spec.send_email is not None for t in plan.tasks
    )


def forget_pipeline(namespace: str, name: str) -> None:
    """A deleted pipeline's series go (a pipeline of the same name starts again from zero)."""
    _, series = _SEEN.pop((namespace, name), (None, []))
    for metric, labels in series:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)


def seen_pool(namespace: str, name: str) -> None:
    POOL_SLOTS_USED.labels(namespace, name)
    QUEUED_TASKS.labels(namespace, name)


DEFAULT_POOL = "default_pool"
"""The ``pool`` label of tasks waiting for no Pool but for maxActiveTasks (Airflow's name)."""

RunKey = tuple[str, str]
"""(namespace, run name)."""


class RunGauges:
    """The gauges that are sums or minimums over the active runs.

    Each run reports its own part after every change (``report``) and takes it back when
    it ends or its driver goes away (``forget``), so nothing stale is left behind:
    ``kascade_queued_tasks`` (summed by pool) and ``kascade_time_to_sla_seconds`` (the
    nearest deadline per pipeline, turned into seconds left when Prometheus scrapes).
    """

    def __init__(self) -> None:
        self._queued: dict[RunKey, dict[str, int]] = {}
        self._totals: dict[tuple[str, str], int] = {}
        self._deadlines: dict[RunKey, tuple[str, float]] = {}
        self.sla_deadlines: Mapping[tuple[str, str], float] = {}
        """(namespace, pipeline) -> nearest deadline (epoch seconds); replaced, never
        mutated, so the scrape thread can read it while the loop updates it."""

    def report(
        self,
        run: RunKey,
        pipeline: str,
        queued: Mapping[str | None, int],
        sla_deadline: datetime | None,
    ) -> None:
        self._set_queued(run, {pool or DEFAULT_POOL: n for pool, n in queued.items() if n})
        old = self._deadlines.get(run)
        new = (pipeline, sla_deadline.timestamp()) if sla_deadline is not None else None
        if new != old:
            if new is None:
                self._deadlines.pop(run, None)
            else:
                self._deadlines[run] = new
            self._publish_deadlines()

    def queued(self, namespace: str, pool: str) -> int:
        """Instances of the namespace's runs waiting for a slot of ``pool``."""
        return self._totals.get((namespace, pool), 0)

    def forget(self, run: RunKey) -> None:
        self._set_queued(run, {})
        if self._deadlines.pop(run, None) is not None:
            self._publish_deadlines()

    def _set_queued(self, run: RunKey, counts: dict[str, int]) -> None:
        old = self._queued.pop(run, {})
        if counts:
            self._queued[run] = counts
        if old == counts:
            return
        for pool in old.keys() | counts.keys():
            key = (run[0], pool)
            total = self._totals.get(key, 0) - old.get(pool, 0) + counts.get(pool, 0)
            self._totals[key] = total
            QUEUED_TASKS.labels(run[0], pool).set(total)

    def _publish_deadlines(self) -> None:
        nearest: dict[tuple[str, str], float] = {}
        for (namespace, _), (pipeline, at) in self._deadlines.items():
            key = (namespace, pipeline)
            nearest[key] = min(at, nearest.get(key, at))
        self.sla_deadlines = nearest


RUN_GAUGES = RunGauges()


class _TimeToSla(Collector):
    """``kascade_time_to_sla_seconds``: computed when scraped, so it never goes stale."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "kascade_time_to_sla_seconds",
            "Seconds left before the nearest SLA deadline of a pipeline's active runs "
            "(negative: missed)",
            labels=["namespace", "pipeline"],
        )
        now = time.time()
        for (namespace, pipeline), at in self.source().items():
            family.add_metric([namespace, pipeline], at - now)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("kascade_time_to_sla_seconds", "", labels=["namespace", "pipeline"])

    @staticmethod
    def source() -> Mapping[tuple[str, str], float]:
        return RUN_GAUGES.sla_deadlines


REGISTRY.register(_TimeToSla())


def serve(port: int) -> None:
    start_http_server(port)
