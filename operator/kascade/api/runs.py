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
from kascade.api.templates import PinnedTaskTemplate


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
    """scheduled, manual, backfill or triggered."""
    by: str | None = None
    """Who or what started it (user, pipeline/run name)."""


DataIntervalSpec = Interval


class PipelineRunSpec(Model):
    """Which pipeline to run, with which spec, for which data interval and params."""

    pipeline_ref: ObjectRef
    """The Pipeline this is a run of (it must exist when the run is created)."""
    pipeline_spec: Annotated[
        PipelineSpec | None,
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ] = None
    """A spec of the run's own to execute (approved by the admission webhook); omitted, the
    run executes its Pipeline's spec as frozen in a PipelineSnapshot (``snapshot``)."""
    snapshot: str | None = None
    """The PipelineSnapshot whose spec this run executes: its Pipeline's spec when the run
    was created, shared by every run of that version (set by the operator when omitted)."""
    spec_hash: str | None = None
    """A hash of the spec the run executes, to tell runs of different versions apart."""
    logical_date: str | None = None
    """ISO date-time, UTC unless it has an offset (default: when the run was created)."""
    data_interval: DataIntervalSpec | None = None
    """Scheduled runs and backfills carry theirs; without one, a manual run covers the
    schedule's latest complete interval ending at or before its logical date."""
    params: dict[str, JsonValue] | None = None
    """Param values for this run (checked against the spec's params)."""
    trigger: Trigger | None = None
    """Why the run exists (schedule, a person, a backfill, another pipeline)."""
    run_id: str | None = Field(default=None, min_length=1, max_length=250)
    """The run's id (``{{ run_id }}``); default ``<trigger kind>__<logical date>``."""
    no_cache: bool | None = None
    """Run every task with a ``cache``: read no entry (new ones are still written)."""
    no_cache_tasks: list[str] | None = None
    """These tasks read no cache entry (``kascade clear`` adds the tasks it clears)."""
    task_templates: Annotated[
        list[PinnedTaskTemplate] | None,
        WithJsonSchema(
            {
                "type": "array",
                "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            }
        ),
    ] = None
    """The TaskTemplates the spec uses, as they were when the run started (copied by the
    operator before the first task; filled in when omitted)."""


class PipelineSnapshotSpec(Model):
    """A Pipeline's spec, frozen and named after its content, for the runs of that version."""

    pipeline_ref: ObjectRef
    """The Pipeline this is a version of."""
    spec_hash: str
    """The hash of ``pipelineSpec`` (also the end of the snapshot's name)."""
    pipeline_spec: Annotated[
        PipelineSpec,
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ]
    """The Pipeline's spec as it was (with the approval of its Pipeline in the annotations)."""


class TaskCounts(Model):
    """How many tasks are in each state (Airflow's state names)."""

    success: int = 0
    """Tasks that succeeded."""
    failed: int = 0
    """Tasks that failed."""
    skipped: int = 0
    """Tasks skipped (branching, short-circuit, when, trigger rules)."""
    upstream_failed: int = 0
    """Tasks not run because an upstream failed."""
    up_for_retry: int = 0
    """Tasks waiting to retry."""
    up_for_reschedule: int = 0
    """Sensors in reschedule mode waiting for their next poke."""
    running: int = 0
    """Tasks running."""
    queued: int = 0
    """Tasks whose pod is created but not running yet."""
    scheduled: int = 0
    """Tasks ready and waiting for a slot."""
    none: int = 0
    """Not yet decided."""


class PipelineRunStatus(Model):
    """The run as the operator sees it: phase, per-state counts and a task → state map."""

    phase: RunPhase | None = None
    """queued, running, success or failed."""
    conditions: list[Condition] | None = None
    """Succeeded: True or False once the run ended."""
    message: str | None = None
    """Why the run is in its phase (why it failed, why it waits)."""
    start_time: str | None = None
    """When the run started."""
    end_time: str | None = None
    """When the run ended."""
    counts: TaskCounts | None = None
    """How many tasks are in each state."""
    progress: str | None = None
    """done/total, for printer columns."""
    tasks: dict[str, str] | None = None
    """Task id → state: the compact per-task summary (details are in TaskRuns)."""
    next_wakeup: str | None = None
    """When the run next acts without an event: a retry, a poke, an SLA or its timeout."""
    sla_missed: bool | None = None
    """The run or one of its tasks missed its SLA."""
    sla_misses: list[str] | None = None
    """What missed its SLA: task ids, and ``(run)`` for the run's own (so that a restarted
    operator does not report a miss twice)."""
    notified: list[str] | None = None
    """Notifications already sent (event/task keys), so a restart never sends one twice."""
    observed_generation: int | None = None
    """The PipelineRun's metadata.generation this status was written for."""
    log_archive_pending: bool | None = None
    """With a log archive: some ended attempt's log was neither archived nor given up when
    the run ended (cleared once every outcome is in its TaskRun). An operator that
    restarts looks at such a run's TaskRuns again, so no log is forgotten."""


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
    """Its pod was deleted before it ended (by a user, an eviction, a node's removal)."""
    POD_LOST = "PodLost"
    """Its pod may have been created, but no trace of it is left (the operator stopped while
    creating it, or it was deleted while the operator was down, before it was seen to
    start): the number is never used again, and the attempt does not count as a try."""
    POD_REJECTED = "PodRejected"
    """The API server refused to create its pod (an invalid field, a Pod Security violation,
    a missing ServiceAccount, a quota); the message has the server's reason."""
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
    INTERRUPTED = "Interrupted"
    """Locally: the runner was stopped (Ctrl-C, SIGTERM) and killed the attempt."""
    ACTION_FAILED = "ActionFailed"
    """A task without a pod (sendEmail, triggerPipeline) could not do its work: the e-mail
    was not sent, the run could not be made, or it ended in a failed state."""
    CACHED = "Cached"
    """Not run: a fresh cache entry with the same key gave its outputs (``cache``)."""
    OUTPUTS_STORE_ERROR = "OutputsStoreError"
    """Its outputs could not be written to (or read from) the object store."""


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
    """The attempt's number, from 1."""
    pod_name: str | None = None
    """The pod of this attempt (kept for ``kubectl logs`` until the run is deleted)."""
    start_time: str | None = None
    """When its container started."""
    end_time: str | None = None
    """When it ended."""
    exit_code: int | None = None
    """The container's exit code."""
    reason: str | None = None
    """Why it ended, when not by exiting: an ``AttemptReason`` (Timeout, StartTimeout,
    TemplateError, Evicted, PodDeleted, PodFailed, OutputsTooLarge...)."""
    message: str | None = None
    """What happened, in words."""
    poke: int | None = None
    """Reschedule-mode sensors: which poke of the attempt this pod was (none: the first)."""
    log_archived: bool | None = None
    """With a log archive: true once the attempt's log is in the object store, false when
    it could not be kept (``logArchiveMessage`` says why); unset while it is being written
    or without an archive."""
    log_archive_message: str | None = None
    """Why the attempt's log is not in the archive."""


class TaskRunSpec(Model):
    """Which task of which run this is (and, for a mapped task, which item)."""

    pipeline_run_ref: ObjectRef
    """The PipelineRun this task belongs to."""
    task_name: str
    """The qualified task id (``transform.clean``)."""
    map_index: int | None = None
    """For mapped tasks, which item this is."""
    item: JsonValue | None = None
    """For mapped tasks, the item itself (so a restarted operator can retry it)."""


class TaskRunStatus(Model):
    """The task's state, its attempts and its outputs."""

    state: TaskState = TaskState.NONE
    """The task's state (Airflow's task instance states)."""
    attempts: list[Attempt] | None = None
    """Every attempt, oldest first."""
    outputs: dict[str, JsonValue] | None = None
    """The task's outputs (XCom), with the values of Secrets it used masked as ***."""
    next_retry_time: str | None = None
    """When the next attempt starts (up_for_retry)."""
    message: str | None = None
    """Why the task is in its state."""
    ready_time: str | None = None
    """When its upstream allowed it to run (for the scheduling-delay metric)."""
    pokes: int | None = None
    """Sensors: pokes so far."""
    first_poke_time: str | None = None
    """Sensors: when the first poke happened (the timeout counts from it)."""
