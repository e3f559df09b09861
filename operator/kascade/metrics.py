"""Prometheus metrics of the operator, all prefixed ``kascade_``.

Labels are bounded: pipeline, task, pool, state and namespace, never run ids
(per-run labels are what blew up Tekton's metrics cardinality).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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
    "kascade_queued_tasks", "Tasks ready and waiting for a slot", ["namespace", "pool"]
)
POOL_SLOTS_USED = Gauge("kascade_pool_slots_used", "Pool slots in use", ["namespace", "pool"])
POOL_SLOTS = Gauge("kascade_pool_slots", "Pool size", ["namespace", "pool"])
SLA_MISSES = Counter("kascade_sla_misses_total", "SLA misses", ["namespace", "pipeline", "task"])
TIME_TO_SLA = Gauge(
    "kascade_time_to_sla_seconds",
    "Seconds left before the nearest SLA deadline of a pipeline's active runs (negative: missed)",
    ["namespace", "pipeline"],
)
RECONCILE_ERRORS = Counter("kascade_reconcile_errors_total", "Errors while reconciling", ["kind"])
API_WRITES = Counter(
    "kascade_api_writes_total", "Writes to the Kubernetes API", ["verb", "resource"]
)
NOTIFICATIONS = Counter(
    "kascade_notifications_total",
    "Notifications sent",
    ["namespace", "pipeline", "event", "outcome"],
)
IS_LEADER = Gauge("kascade_is_leader", "1 when this replica holds the leader Lease")


def serve(port: int) -> None:
    start_http_server(port)
