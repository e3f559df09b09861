"""PipelineRun and TaskRun: one execution of a pipeline, and one task of it.

A PipelineRun copies the pipeline spec it runs (``spec.pipelineSpec``), so that
editing a Pipeline never changes a run in flight. Per-task detail lives in
TaskRuns; the PipelineRun status keeps only a compact summary, so a run of
thousands of tasks stays far below the etcd object size limit.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, WithJsonSchema

from kascade.api.base import Condition, Interval, JsonValue, Model, ObjectRef
from kascade.api.pipeline import PipelineSpec


class TriggerKind(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    TRIGGERED = "triggered"
    """Started by another pipeline (Airflow TriggerDagRunOperator)."""


class RunPhase(StrEnum):
    """Airflow's DAG run states."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class Trigger(Model):
    kind: TriggerKind = TriggerKind.MANUAL
    by: str | None = None
    """Who or what started it (user, pipeline/run name)."""


DataIntervalSpec = Interval


class PipelineRunSpec(Model):
    pipeline_ref: ObjectRef
    pipeline_spec: Annotated[
        PipelineSpec | None,
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ] = None
    """The spec this run executes, copied at creation (filled in by the operator when omitted)."""
    spec_hash: str | None = None
    logical_date: str | None = None
    """ISO date-time, UTC unless it has an offset (default: when the run was created)."""
    data_interval: DataIntervalSpec | None = None
    """Scheduled runs and backfills carry theirs; without one, a manual run covers the
    schedule's latest complete interval ending at or before its logical date."""
    params: dict[str, JsonValue] | None = None
    trigger: Trigger | None = None


class TaskCounts(Model):
    """How many tasks are in each state (Airflow's state names)."""

    success: int = 0
    failed: int = 0
    skipped: int = 0
    upstream_failed: int = 0
    up_for_retry: int = 0
    up_for_reschedule: int = 0
    running: int = 0
    queued: int = 0
    scheduled: int = 0
    none: int = 0
    """Not yet decided."""


class PipelineRunStatus(Model):
    phase: RunPhase | None = None
    conditions: list[Condition] | None = None
    message: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    counts: TaskCounts | None = None
    progress: str | None = None
    """done/total, for printer columns."""
    tasks: dict[str, str] | None = None
    """Task id → state: the compact per-task summary (details are in TaskRuns)."""
    next_wakeup: str | None = None
    """When the run next acts without an event: a retry, a poke, an SLA or its timeout."""
    sla_missed: bool | None = None
    """The run or one of its tasks missed its SLA."""
    notified: list[str] | None = None
    """Notifications already sent (event/task keys), so a restart never sends one twice."""
    observed_generation: int | None = None
    """The PipelineRun's metadata.generation this status was written for."""


class TaskState(StrEnum):
    """Airflow's task instance states."""

    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"


class AttemptReason(StrEnum):
    """Why an attempt ended other than by its process exiting (``Attempt.reason``)."""

    TIMEOUT = "Timeout"
    """It ran past its ``timeout`` (a pod's ``activeDeadlineSeconds``)."""
    SENSOR_TIMEOUT = "SensorTimeout"
    START_TIMEOUT = "StartTimeout"
    """Its pod was not running after ``startTimeout``."""
    TEMPLATE_ERROR = "TemplateError"
    """Its fields could not be rendered; no pod was made."""
    OUTPUTS_TOO_LARGE = "OutputsTooLarge"
    BAD_OUTPUTS = "BadOutputs"
    EVICTED = "Evicted"
    POD_DELETED = "PodDeleted"
    POD_FAILED = "PodFailed"
    """The pod failed without its container ending (the message has Kubernetes' reason)."""
    IMAGE_NEVER_PULL = "ErrImageNeverPull"
    INVALID_IMAGE_NAME = "InvalidImageName"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    START_ERROR = "StartError"
    """Locally: the process could not be started."""
    RUNNER_ERROR = "RunnerError"
    MARKED_BY_USER = "MarkedByUser"
    """Stopped because a user set the task's state."""
    RUN_TIMEOUT = "RunTimeout"
    """Stopped because the run hit its ``runTimeout``."""
    SKIPPED = "Skipped"
    """Stopped because a branch or short circuit skipped the task while it ran."""


def instance_key(task_id: str, map_index: int | None) -> str:
    """A task instance's key: the task id, or ``task[3]`` for a mapped instance."""
    return task_id if map_index is None else f"{task_id}[{map_index}]"


def split_instance_key(key: str) -> tuple[str, int | None]:
    """``task[3]`` → (``task``, 3); ``task`` → (``task``, None)."""
    if key.endswith("]") and "[" in key:
        cut = key.rindex("[")
        index = key[cut + 1 : -1]
        if index.isdigit():
            return key[:cut], int(index)
    return key, None


class Attempt(Model):
    """One try of a task: one pod (none if its fields could not be rendered)."""

    number: Annotated[int, Field(ge=1)]
    pod_name: str | None = None
    """The pod of this attempt (kept for ``kubectl logs`` until the run is deleted)."""
    start_time: str | None = None
    end_time: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    """Why it ended, when not by exiting: an ``AttemptReason`` (Timeout, StartTimeout,
    TemplateError, Evicted, PodDeleted, PodFailed, OutputsTooLarge...)."""
    message: str | None = None


class TaskRunSpec(Model):
    pipeline_run_ref: ObjectRef
    task_name: str
    """The qualified task id (``transform.clean``)."""
    map_index: int | None = None
    """For mapped tasks, which item this is."""
    item: JsonValue | None = None
    """For mapped tasks, the item itself (so a restarted operator can retry it)."""


class TaskRunStatus(Model):
    state: TaskState = TaskState.NONE
    attempts: list[Attempt] | None = None
    outputs: dict[str, JsonValue] | None = None
    next_retry_time: str | None = None
    message: str | None = None
    ready_time: str | None = None
    """When its upstream allowed it to run (for the scheduling-delay metric)."""
    pokes: int | None = None
    """Sensors: pokes so far."""
    first_poke_time: str | None = None
