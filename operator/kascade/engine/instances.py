"""The task instances of a run, as an explicit state table.

Every state change goes through :meth:`InstanceTable.move`, which checks it against
:data:`TRANSITIONS` (Airflow's task instance life cycle), keeps the counts the engine
asks about in O(1) (tasks not yet settled, instances waiting for a slot per pool), and
records the change for the driver. A change the table does not allow is a bug in the
engine, and raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kascade.api.runs import AttemptReason, TaskState, instance_key
from kascade.engine.plan import Plan

S = TaskState
POD_LESS = frozenset(
    {AttemptReason.TEMPLATE_ERROR, AttemptReason.POD_REJECTED, AttemptReason.CACHED}
)
"""Attempts that ended before any pod existed (a cache hit needs none)."""
TERMINAL = frozenset({S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED})
TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    # Decided by its trigger rule, made ready, or (restored) found in flight.
    S.NONE: frozenset({S.SCHEDULED, S.RUNNING, S.QUEUED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE})
    | TERMINAL,
    # Waiting for a slot: launched, or its template failed to render (a failed attempt).
    S.SCHEDULED: frozenset({S.QUEUED, S.UP_FOR_RETRY}) | TERMINAL,
    S.QUEUED: frozenset({S.RUNNING, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE}) | TERMINAL,
    S.RUNNING: frozenset({S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE}) | TERMINAL,
    # Its retry (or next poke) is due: ready again (engine sensors poke at once).
    S.UP_FOR_RETRY: frozenset({S.SCHEDULED, S.RUNNING}) | TERMINAL,
    S.UP_FOR_RESCHEDULE: frozenset({S.SCHEDULED}) | TERMINAL,
    # Only taken back to be decided again (a skip over upstream_failed, a mark).
    **{state: frozenset({S.NONE}) for state in TERMINAL},
}


@dataclass
class Attempt:
    """One try of an instance, as the engine records it (a TaskRun's attempt)."""

    number: int
    start: datetime | None
    end: datetime
    exit_code: int | None
    reason: AttemptReason | None
    message: str | None
    poke: int = 0
    """Reschedule-mode sensors: which poke of the attempt (each is a pod of its own)."""

    @property
    def had_pod(self) -> bool:
        """It ended after its pod was made (a template error or a refused pod had none)."""
        return self.reason not in POD_LESS


@dataclass
class Instance:
    """The engine's record of one task instance (what a TaskRun's status holds)."""

    key: str
    task: int
    map_index: int | None = None
    state: TaskState = TaskState.NONE
    attempt: int = 0
    ready_at: datetime | None = None
    started_at: datetime | None = None
    """When its first attempt started."""
    attempt_started_at: datetime | None = None
    """When its current (or latest) attempt's process or container started."""
    launched_at: datetime | None = None
    """When the current attempt (or poke) was launched: its start timeout counts from it."""
    ended_at: datetime | None = None
    next_try_at: datetime | None = None
    first_poke_at: datetime | None = None
    pokes: int = 0
    outputs: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    exit_code: int | None = None
    attempts: list[Attempt] = field(default_factory=list)
    lost: int = 0
    """Attempts whose pod was lost before it was seen to start (``PodLost``): their numbers
    are used up, but they do not count against ``retries``."""
    holds_slot: bool = False
    """Launched and not yet ended: counts against maxActiveTasks and its pool."""
    rescheduled: bool = False
    """The next launch is another poke of the same attempt (reschedule-mode sensor)."""
    waiting_for: str | None = None
    """Why it cannot get a slot, when that is worth telling (see Decisions.waits)."""
    cache_key: str | None = None
    """The rendered cache key of its latest attempt (tasks with ``cache``)."""
    settled_by_rule: bool = False
    """Settled by its trigger rule without running: decided again if an upstream's final
    state is overridden (a branch or short-circuit skip over upstream_failed, a mark)."""

    @property
    def item(self) -> Any:
        """A mapped instance's element of the list it was expanded from."""
        return self.outputs.get("__item__")


class IllegalTransition(AssertionError):
    """The engine tried a state change the life cycle does not have: a bug."""


class InstanceTable:
    """Every instance of a run, by key and by task, with the counts kept as states move."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        n = len(plan.tasks)
        self.instances: dict[str, Instance] = {}
        self.by_task: list[list[str]] = [[] for _ in range(n)]
        self.expanded = [task.spec.expand is None for task in plan.tasks]
        """A mapped task has no instances until it is expanded (or settled unexpanded)."""
        self.settled_per_task = [0] * n
        self.unsettled = n
        """Tasks whose instances are not all terminal, or that are not expanded yet."""
        self.scheduled: dict[str | None, int] = {}
        """Pool (None: no pool) -> instances waiting for a slot."""
        self.changes: list[tuple[str, TaskState]] = []
        """State changes since the engine last handed them to its driver, in order."""
        for index, task in enumerate(plan.tasks):
            if task.spec.expand is None:
                self.add(index, None)

    def add(self, task: int, map_index: int | None) -> Instance:
        key = instance_key(self.plan.tasks[task].id, map_index)
        inst = Instance(key=key, task=task, map_index=map_index)
        self.instances[key] = inst
        self.by_task[task].append(key)
        return inst

    def remove(self, inst: Instance) -> None:
        """Drop the stand-in of a mapped task settled before it was expanded: it is decided
        again, and expands then."""
        del self.instances[inst.key]
        self.by_task[inst.task].remove(inst.key)
        self.expanded[inst.task] = False

    def of_task(self, task: int) -> list[Instance]:
        return [self.instances[key] for key in self.by_task[task]]

    def move(self, inst: Instance, state: TaskState, *, record: bool = True) -> None:
        """Change an instance's state: checked, counted and recorded (not recorded when a
        restore puts back a state the driver already wrote)."""
        old = inst.state
        if state not in TRANSITIONS[old]:
            raise IllegalTransition(f"{inst.key}: {old.value} -> {state.value}")
        if (old is S.SCHEDULED) is not (state is S.SCHEDULED):
            pool = self.plan.tasks[inst.task].pool
            self.scheduled[pool] = self.scheduled.get(pool, 0) + (1 if state is S.SCHEDULED else -1)
        if (old in TERMINAL) is not (state in TERMINAL):
            self._count_settled(inst.task, 1 if state in TERMINAL else -1)
        inst.state = state
        if record:
            self.changes.append((inst.key, state))

    def mark_expanded(self, task: int) -> None:
        """The task's instances are all added: from now on it is settled when they are."""
        was = self.task_settled(task)
        self.expanded[task] = True
        if self.task_settled(task) and not was:
            self.unsettled -= 1

    def task_settled(self, task: int) -> bool:
        return self.expanded[task] and self.settled_per_task[task] == len(self.by_task[task])

    def _count_settled(self, task: int, delta: int) -> None:
        was = self.task_settled(task)
        self.settled_per_task[task] += delta
        now = self.task_settled(task)
        if was is not now:
            self.unsettled += -1 if now else 1

    def drain_changes(self) -> list[tuple[str, TaskState]]:
        changes, self.changes = self.changes, []
        return changes

    def states(self) -> dict[str, TaskState]:
        return {key: inst.state for key, inst in self.instances.items()}
