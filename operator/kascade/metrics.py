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
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from kascade.api.runs import TaskState

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
TASK_FAILURES = Counter(
    "kascade_task_failures_total",
    "Failed task attempts by reason (Error: a non-zero exit)",
    ["namespace", "pipeline", "reason"],
)
POOL_SLOTS_USED = Gauge("kascade_pool_slots_used", "Pool slots in use", ["namespace", "pool"])
POOL_SLOTS = Gauge("kascade_pool_slots", "Pool size", ["namespace", "pool"])
SLA_MISSES = Counter("kascade_sla_misses_total", "SLA misses", ["namespace", "pipeline", "task"])
RECONCILE_ERRORS = Counter("kascade_reconcile_errors_total", "Errors while reconciling", ["kind"])
for _kind in ("Pipeline", "PipelineRun", "Pod", "run", "pipeline"):  # handlers' and timers' kinds
    RECONCILE_ERRORS.labels(_kind)
API_WRITES = Counter(
    "kascade_api_writes_total", "Writes to the Kubernetes API", ["verb", "resource"]
)
NOTIFICATIONS = Counter(
    "kascade_notifications_total",
    "Notifications sent",
    ["namespace", "pipeline", "event", "outcome"],
)
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
    "OutputsTooLarge",
    "BadOutputs",
    "TemplateError",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "PodRejected",
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
    for metric, labels in series:
        metric.labels(*labels)
    _SEEN[key] = (generation, series)


def forget_pipeline(namespace: str, name: str) -> None:
    """A deleted pipeline's series go (a pipeline of the same name starts again from zero)."""
    _, series = _SEEN.pop((namespace, name), (None, []))
    for metric, labels in series:
        with contextlib.suppress(KeyError):
            metric.remove(*labels)


def seen_pool(namespace: str, name: str) -> None:
    POOL_SLOTS_USED.labels(namespace, name)


# -- gauges read from the operator's memory at scrape time ----------------------------------
# Queue depth and time to SLA are states, not events: computed when Prometheus asks.
# ``kascade_queued_tasks`` counts the instances ready and waiting for a slot (their pool, or
# ``default_pool`` for the pipeline's own maxActiveTasks, Airflow's name), with a zero for
# every Pool the operator knows; ``kascade_time_to_sla_seconds`` is the nearest SLA deadline
# of a pipeline's active runs, from now (negative: missed).
DEFAULT_POOL = "default_pool"
_DONE = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED}
)


class WorldGauges(Collector):
    def __init__(self, world: Callable[[], Any], clock: Callable[[], datetime]) -> None:
        self.world = world
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        world = self.world()
        queued = GaugeMetricFamily(
            "kascade_queued_tasks",
            "Tasks ready and waiting for a slot (pool, or default_pool: maxActiveTasks)",
            labels=["namespace", "pool"],
        )
        to_sla = GaugeMetricFamily(
            "kascade_time_to_sla_seconds",
            "Seconds left before the nearest SLA deadline of a pipeline's active runs "
            "(negative: missed)",
            labels=["namespace", "pipeline"],
        )
        if world is None:
            yield queued
            yield to_sla
            return
        waiting: Tally[tuple[str, str]] = Tally()
        for namespace, pool in list(world.pools.sizes):
            waiting[(namespace, pool)] += 0
        for namespace, _ in list(world.pipelines):
            waiting[(namespace, DEFAULT_POOL)] += 0
        nearest: dict[tuple[str, str], datetime] = {}
        for driver in list(world.drivers.values()):
            waiting[(driver.namespace, DEFAULT_POOL)] += 0
            plan, engine = driver.plan, driver.engine
            for inst in list(engine.instances.values()):
                if inst.state is TaskState.SCHEDULED:
                    waiting[(driver.namespace, plan.tasks[inst.task].pool or DEFAULT_POOL)] += 1
            deadline = _nearest_sla(driver)
            key = (driver.namespace, plan.name)
            if deadline is not None and (key not in nearest or deadline < nearest[key]):
                nearest[key] = deadline
        for (namespace, pool), count in sorted(waiting.items()):
            queued.add_metric([namespace, pool], count)
        now = self.clock()
        for (namespace, pipeline), deadline in sorted(nearest.items()):
            to_sla.add_metric([namespace, pipeline], (deadline - now).total_seconds())
        yield queued
        yield to_sla


def _nearest_sla(driver: Any) -> datetime | None:
    """The earliest SLA deadline of a run that is not met yet (the run's, or an open task's)."""
    if driver.finished:
        return None
    plan, base = driver.plan, driver.ctx.interval.end
    deadlines: list[timedelta] = [plan.sla] if plan.sla is not None else []
    open_tasks = {inst.task for inst in driver.engine.instances.values() if inst.state not in _DONE}
    deadlines += [plan.tasks[i].sla for i in open_tasks if plan.tasks[i].sla is not None]
    return base + min(deadlines) if deadlines else None


_WORLD: list[Callable[[], Any]] = [lambda: None]


def watch_world(world: Callable[[], Any]) -> None:
    """Where the scrape-time gauges read from (the leader's World; None on a standby)."""
    _WORLD[0] = world


REGISTRY.register(WorldGauges(lambda: _WORLD[0](), lambda: datetime.now(UTC)))


def serve(port: int) -> None:
    start_http_server(port)
