"""Status projection: what a run's engine shows in its PipelineRun and TaskRun statuses.

Pure functions of the engine's state, built from the ``api/runs`` models (so a status
can only hold what the CRD declares) and dumped whole, None included: a JSON merge
patch then removes what no longer holds (a retried task's old message, a state count
that dropped to zero) instead of leaving it behind.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from kascade.api.base import Condition, Model
from kascade.api.runs import (
    Attempt,
    AttemptReason,
    PipelineRunStatus,
    RunPhase,
    TaskCounts,
    TaskRunStatus,
    TaskState,
)
from kascade.controller import naming
from kascade.engine.instances import TERMINAL, Instance
from kascade.engine.instances import Attempt as EngineAttempt
from kascade.engine.rendering import ITEM
from kascade.engine.run import RunEngine

_WAITS_WITH_TIME = frozenset({TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE})


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def wire(status: Model) -> dict[str, Any]:
    """A status as its patch: camelCase, every field present (None clears it)."""
    return status.model_dump(by_alias=True, mode="json")


def run_status(
    engine: RunEngine,
    *,
    notified: Iterable[str],
    sla_misses: Collection[str],
    generation: int | None,
    now: datetime,
    end: datetime | None = None,
    log_archive_pending: bool = False,
) -> PipelineRunStatus:
    """The PipelineRun's summary: phase, counts, the task map, and its condition once done."""
    states = engine.states()
    counts = TaskCounts()
    for state in states.values():
        setattr(counts, state.value, getattr(counts, state.value) + 1)
    done = sum(1 for state in states.values() if state in TERMINAL)
    phase = engine.phase
    conditions = None
    if phase in (RunPhase.SUCCESS, RunPhase.FAILED):
        ok = phase is RunPhase.SUCCESS
        conditions = [
            Condition(
                type="Succeeded",
                status="True" if ok else "False",
                reason="RunSucceeded" if ok else "RunFailed",
                message=engine.message or phase.value,
                last_transition_time=now,
            )
        ]
    return PipelineRunStatus(
        phase=phase,
        conditions=conditions,
        message=engine.message,
        start_time=iso(engine.started_at),
        end_time=iso(end),
        counts=counts,
        progress=f"{done}/{len(states)}",
        tasks={key: state.value for key, state in states.items()},
        next_wakeup=iso(engine.wake_at()),
        sla_missed=bool(sla_misses),
        sla_misses=sorted(sla_misses) or None,
        notified=sorted(notified),
        observed_generation=generation,
        log_archive_pending=log_archive_pending or None,
    )


def taskrun_status(
    inst: Instance,
    pod: str | None,
    taskrun: str,
    trouble: str | None = None,
    archived: Mapping[int, tuple[bool, str | None]] | None = None,
    *,
    podless: bool = False,
) -> TaskRunStatus:
    """A TaskRun's status: its state, every attempt (with its pod), outputs and timing.

    ``pod`` is the pod of the attempt in flight, if any; ``trouble`` why that pod cannot
    start (image pull, unschedulable), shown while the task is queued. A ``podless`` task
    (sendEmail, triggerPipeline) lists its attempt in flight without a pod: that is how
    a restarted operator knows which attempt to launch again. ``archived``: what the log
    archive did with each attempt's log (number -> archived, why not).
    """
    archived = archived or {}
    attempts = [
        Attempt(
            number=a.number,
            pod_name=(
                None if podless or not _had_pod(a) else naming.pod_name(taskrun, a.number, a.poke)
            ),
            start_time=iso(a.start),
            end_time=iso(a.end),
            exit_code=a.exit_code,
            reason=a.reason,
            message=a.message,
            poke=a.poke or None,
            log_archived=archived[a.number][0] if a.number in archived else None,
            log_archive_message=archived[a.number][1] if a.number in archived else None,
        )
        for a in inst.attempts
    ]
    in_flight = pod or (podless and inst.state in (TaskState.QUEUED, TaskState.RUNNING))
    now_at = (inst.attempt, inst.pokes)
    if in_flight and (not attempts or (attempts[-1].number, attempts[-1].poke or 0) != now_at):
        attempts.append(
            Attempt(
                number=inst.attempt,
                pod_name=pod,
                start_time=iso(inst.attempt_started_at),
                poke=inst.pokes or None,
            )
        )
    message = inst.message
    if trouble and inst.state is TaskState.QUEUED:
        message = f"the pod cannot start: {trouble}"
    return TaskRunStatus(
        state=inst.state,
        attempts=attempts,
        outputs={k: v for k, v in inst.outputs.items() if k != ITEM} or None,
        message=message,
        next_retry_time=iso(inst.next_try_at) if inst.state in _WAITS_WITH_TIME else None,
        ready_time=iso(inst.ready_at),
        pokes=inst.pokes or None,
        first_poke_time=iso(inst.first_poke_at),
    )


def _had_pod(attempt: EngineAttempt) -> bool:
    return attempt.had_pod and attempt.reason is not AttemptReason.POD_LOST


def queued_run(limit: int) -> dict[str, Any]:
    """A run held back by maxActiveRuns (only the fields it changes)."""
    status = PipelineRunStatus(phase=RunPhase.QUEUED, message=f"waiting: maxActiveRuns={limit}")
    return status.model_dump(by_alias=True, mode="json", exclude_unset=True)


def invalid_run(message: str, now: datetime) -> dict[str, Any]:
    """A run that cannot start (its frozen spec is invalid, its pipeline is gone)."""
    status = PipelineRunStatus(
        phase=RunPhase.FAILED,
        message=message[:2000],
        end_time=iso(now),
        conditions=[
            Condition(
                type="Succeeded",
                status="False",
                reason="Invalid",
                message=message[:1000],
                last_transition_time=now,
            )
        ],
    )
    return status.model_dump(by_alias=True, mode="json", exclude_unset=True)


_WARNING_STATES = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.UP_FOR_RETRY})


def task_event(key: str, state: TaskState, message: str | None) -> tuple[str, str, str] | None:
    """The Event for a task state change: (type, reason, message); none for ``scheduled``,
    which the next change (queued) follows at once."""
    if state is TaskState.SCHEDULED:
        return None
    text = f"{key} is {state.value}"
    if message and state in (TaskState.FAILED, TaskState.UP_FOR_RETRY):
        text += f": {message}"
    kind = "Warning" if state in _WARNING_STATES else "Normal"
    reason = "Task" + "".join(part.capitalize() for part in state.value.split("_"))
    return kind, reason, text


def needs_own_taskrun(inst: Instance | None) -> bool:
    """It acted without a launch of the driver's (an attempt that failed before its pod,
    an engine sensor's look): its TaskRun is made with its first change, so that it shows
    why, and a restarted operator finds its attempts and pokes."""
    return bool(inst and (inst.attempts or inst.first_poke_at))
