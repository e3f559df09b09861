"""The state a run engine keeps, shared by the modules that make up ``RunEngine``.

``RunEngine`` (``engine/run.py``) is one object assembled from one module per concern:
``propagation`` (trigger rules, expansion, settling, skips), ``admission`` (slots, pools,
launches), ``lifecycle`` (timers, sensors, SLAs, the end), ``restore``. Each works on
the state declared here; the methods one concern calls on another are declared here too,
so every module is checked against the same contract.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Any

from kascade.api.pipeline import NotificationEvent
from kascade.api.runs import RunPhase, TaskState
from kascade.engine.caching import CacheLookup, Refresh
from kascade.engine.context import ExternalLookup, RunContext
from kascade.engine.decisions import Decisions, Result
from kascade.engine.instances import Instance, InstanceTable
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.pools import PoolLedger
from kascade.engine.rendering import Renderer
from kascade.engine.sensors import SensorPolicy
from kascade.engine.slots import TaskSlots
from kascade.engine.timers import Timers
from kascade.engine.trigger_rules import Counts

QueueEntry = tuple[int, int, int, str]
"""(-priority, task index, sequence, instance key): the ready queue's order."""


class EngineCore:
    plan: Plan
    ctx: RunContext
    pools: PoolLedger
    external: ExternalLookup | None
    cache: CacheLookup | None
    """The driver's cache entries (None: this run neither reads nor writes any)."""
    refresh: Refresh
    """Tasks that do not read the cache (``noCache``, cleared tasks)."""
    slots: TaskSlots
    table: InstanceTable
    counts: list[Counts]
    """Per task: its upstream instances by terminal state (the trigger rules' input)."""
    active: int
    active_per_task: list[int]
    queue: list[QueueEntry]
    """Instances ready and waiting for a slot (a heap; entries that moved on are dropped
    when popped)."""
    seq: Iterator[int]
    timers: Timers
    renderer: Renderer
    short_circuited: set[int]
    """Tasks being skipped by a short circuit right now: their trigger rules must wait."""
    deferred: set[int]
    """Tasks a restore has not reached yet: their recorded state decides them, not their
    trigger rule."""
    started_at: datetime | None
    phase: RunPhase
    message: str | None
    out: Decisions
    """What this event decided so far (handed to the driver by ``_flush``)."""

    @property
    def instances(self) -> dict[str, Instance]:
        return self.table.instances

    @property
    def by_task(self) -> list[list[str]]:
        return self.table.by_task

    def _policy(self, task: PlannedTask) -> SensorPolicy:
        assert task.sensor is not None, f"{task.id} is not a sensor"
        return task.sensor

    def _move(self, inst: Instance, state: TaskState) -> None:
        self.table.move(inst, state)

    # -- implemented by the concern modules -------------------------------------------------
    def _evaluate(self, index: int, now: datetime) -> None:
        raise NotImplementedError

    def _ready(self, inst: Instance, now: datetime) -> None:
        raise NotImplementedError

    def _expansion_items(self, index: int) -> list[Any] | str:
        raise NotImplementedError

    def _ended(self, key: str, attempt: int, result: Result, now: datetime) -> bool:
        raise NotImplementedError

    def _arm_run_timers(self, since: datetime, missed: Collection[str | None] = ()) -> None:
        raise NotImplementedError

    def _succeeded(self, inst: Instance, outputs: dict[str, Any], now: datetime) -> None:
        raise NotImplementedError

    def _failed_attempt(self, inst: Instance, message: str, now: datetime) -> None:
        raise NotImplementedError

    def _settle(self, inst: Instance, state: TaskState, now: datetime, message: str | None) -> None:
        raise NotImplementedError

    def _settle_task(
        self,
        index: int,
        state: TaskState,
        now: datetime,
        message: str | None,
        *,
        by_rule: bool = False,
    ) -> None:
        raise NotImplementedError

    def _change_final_state(self, inst: Instance) -> None:
        raise NotImplementedError

    def _admit(self, now: datetime) -> None:
        raise NotImplementedError

    def _release(self, inst: Instance) -> None:
        raise NotImplementedError

    def _hold(self, inst: Instance) -> None:
        raise NotImplementedError

    def _engine_poke(self, inst: Instance, now: datetime) -> None:
        raise NotImplementedError

    def _notify(
        self,
        task: PlannedTask,
        event: NotificationEvent,
        key: str,
        message: str,
        blocking: tuple[str, ...] = (),
    ) -> None:
        raise NotImplementedError

    def _flush(self, now: datetime) -> Decisions:
        raise NotImplementedError

    def _cache_write(self, inst: Instance, now: datetime) -> None:
        raise NotImplementedError
