"""What the run engine tells its driver (the local runner or the operator) to do.

The engine never acts: it returns these records, and the driver turns them into
processes, pods, status patches, events and webhooks. That is what lets one
engine serve both drivers and be tested without either.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kascade.api.pipeline import Notification, Sensor, Task
from kascade.api.runs import AttemptReason, RunPhase, TaskState
from kascade.engine.actions import TriggerPolicy
from kascade.engine.caching import CacheEntry
from kascade.engine.sensors import SensorPolicy


@dataclass(frozen=True)
class Launch:
    """Start attempt ``attempt`` of an instance: a process locally, a pod on Kubernetes."""

    key: str
    """Instance id: the task id, or ``task[3]`` for a mapped instance."""
    task_id: str
    map_index: int | None
    attempt: int
    spec: Task
    """The task with its templated fields rendered."""
    timeout: timedelta | None
    """Kill the attempt after this long (execution timeout, or what is left of a sensor's)."""
    sensor: Sensor | None
    pool: str | None
    pool_slots: int
    ready_at: datetime | None
    poke: int = 0
    """Reschedule-mode sensors: which poke of the attempt this launch is."""
    sensor_policy: SensorPolicy | None = None
    """The sensor's timing (interval, backoff), for a driver that pokes in a loop."""
    trigger_policy: TriggerPolicy | None = None
    """A trigger task's waiting rules (``spec.trigger_pipeline`` holds what to trigger)."""


@dataclass(frozen=True)
class Fire:
    """A notification to send once."""

    notification: Notification
    event: str
    task: str | None
    """The instance it is about, or None for the run."""
    message: str
    context: Mapping[str, Any] = field(default_factory=dict)
    """Airflow's callback context as plain data (``engine/callbacks.py``): what a webhook
    body, an e-mail and a hook task get."""


@dataclass(frozen=True)
class SlaMiss:
    task: str | None
    deadline: datetime
    blocking: tuple[str, ...] = ()
    """The instances not done yet that hold the deadline up (Airflow's blocking_tis)."""


@dataclass
class Decisions:
    launches: list[Launch] = field(default_factory=list)
    changes: list[tuple[str, TaskState]] = field(default_factory=list)
    """State transitions made, in order (for status, events and progress)."""
    kills: list[tuple[str, AttemptReason]] = field(default_factory=list)
    """(instance, reason): attempts to stop now."""
    notifications: list[Fire] = field(default_factory=list)
    sla_misses: list[SlaMiss] = field(default_factory=list)
    waits: list[tuple[str, str]] = field(default_factory=list)
    """(instance, why): a ready instance cannot get a slot for a reason worth telling
    (its pool does not exist, or is too small); said once per reason."""
    start_timeouts: list[tuple[str, int]] = field(default_factory=list)
    """(instance, attempt): launched more than the task's ``startTimeout`` ago and not
    started. The driver ends each (with ``finished``, giving why it did not start) and
    stops what it launched; a driver whose launches start at once never sees one."""
    wake_at: datetime | None = None
    finished: RunPhase | None = None
    cache_writes: list[CacheEntry] = field(default_factory=list)
    """Entries of attempts that succeeded just now, for the driver to keep (``cache``)."""


@dataclass(frozen=True)
class Result:
    """How an attempt ended, as its driver observed it."""

    exit_code: int | None
    outputs: dict[str, Any] | None = None
    reason: AttemptReason | None = None
    """Set when the attempt did not simply exit: Timeout, Evicted, PodDeleted, OutputsTooLarge..."""
    message: str | None = None
    retryable: bool = True
    """False when trying again cannot help (a pod the API server refuses for a field that
    is wrong): the task fails at once, whatever its ``retries``."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.reason is None
