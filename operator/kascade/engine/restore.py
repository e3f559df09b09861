"""Rebuilding a run's engine from what the cluster shows, after an operator restart.

The driver turns TaskRuns, pods and the run's summary into one :class:`Observed` per
instance (``controller/observed.py``); :meth:`Restoring.restore` replays them into a
fresh engine. This module is the seam where restore lives, and only restore.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kascade.api.runs import RunPhase, TaskState, split_instance_key
from kascade.engine.core import EngineCore
from kascade.engine.decisions import Decisions
from kascade.engine.instances import TERMINAL, Instance
from kascade.engine.rendering import ITEM
from kascade.engine.sensors import Poker
from kascade.engine.timers import TimerKind


@dataclass(frozen=True)
class Observed:
    """One instance as the cluster shows it (TaskRun status, or the run's summary)."""

    state: TaskState
    attempt: int = 0
    outputs: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None
    next_try_at: datetime | None = None
    ready_at: datetime | None = None
    first_poke_at: datetime | None = None
    pokes: int = 0
    launched: bool = False
    """A pod of the current attempt exists (so the attempt is really in flight)."""
    item: Any = None


class Restoring(EngineCore):
    def restore(self, observed: Mapping[str, Observed], now: datetime) -> Decisions:
        """Rebuild after a restart from what the cluster shows, then decide what is missing.

        Instances are replayed in topological order: terminal ones settle (successes
        replay branch and short-circuit choices, deterministically), launched ones
        hold their slot again, retries and pokes get their timers back. Anything the
        replay makes ready that was never launched is launched now. Notifications
        re-emitted by the replay must be de-duplicated by the driver.
        """
        self.started_at = self.started_at or now
        self.phase = RunPhase.RUNNING
        # An instance seen only as "none" (in the run's summary) was never decided: its
        # trigger rule decides it again, from its upstream's replayed states.
        observed = {
            key: obs
            for key, obs in observed.items()
            if obs.state is not TaskState.NONE or obs.attempt or obs.launched
        }
        keys_of: dict[str, list[str]] = {}
        for key in observed:
            keys_of.setdefault(split_instance_key(key)[0], []).append(key)
        for index in self.plan.order:
            task = self.plan.tasks[index]
            keys = keys_of.get(task.id, [])
            if not keys:
                if not task.upstream or task.trigger_rule.value == "always":
                    self._evaluate(index, now)
                continue
            if task.spec.expand is not None and not self.table.expanded[index]:
                self._restore_expansion(index, keys, observed)
            for inst in self.table.of_task(index):
                if inst.key in observed:
                    self._restore_one(inst, observed[inst.key], now)
        if self.plan.run_timeout is not None:
            self.timers.add(self.started_at + self.plan.run_timeout, TimerKind.RUN_TIMEOUT)
        return self._flush(now)

    def _restore_expansion(
        self, index: int, keys: list[str], observed: Mapping[str, Observed]
    ) -> None:
        mapped = sorted(
            (k for k in keys if split_instance_key(k)[1] is not None),
            key=lambda k: split_instance_key(k)[1] or 0,
        )
        if mapped:
            for down in self.plan.graph.downstream[index]:
                self.counts[down].total += len(mapped) - 1
            for key in mapped:
                inst = self.table.add(index, split_instance_key(key)[1])
                inst.outputs = {ITEM: observed[key].item}
        else:
            self.table.add(index, None)
        self.table.mark_expanded(index)

    def _restore_one(self, inst: Instance, obs: Observed, now: datetime) -> None:
        inst.attempt = obs.attempt
        inst.message = obs.message
        inst.ready_at = obs.ready_at
        inst.first_poke_at = obs.first_poke_at
        inst.pokes = obs.pokes
        state = obs.state
        task = self.plan.tasks[inst.task]
        if state is TaskState.SUCCESS:
            self._succeeded(inst, dict(obs.outputs), now)
        elif state in TERMINAL:
            self._settle(inst, state, now, obs.message)
        elif state in (TaskState.QUEUED, TaskState.RUNNING) and obs.launched:
            self.table.move(inst, state, record=False)
            self._hold(inst)
            if task.pool is not None:
                self.pools.hold(task.pool, task.pool_slots)
        elif state is TaskState.UP_FOR_RETRY and obs.next_try_at is not None:
            self.table.move(inst, state, record=False)
            inst.next_try_at = obs.next_try_at
            self.timers.add(obs.next_try_at, TimerKind.RETRY, inst.key, inst.attempt)
        elif state is TaskState.UP_FOR_RESCHEDULE and obs.next_try_at is not None:
            self.table.move(inst, state, record=False)
            inst.next_try_at = obs.next_try_at
            engine_sensor = task.sensor is not None and task.sensor.poker is Poker.ENGINE
            kind = TimerKind.ENGINE_POKE if engine_sensor else TimerKind.POKE
            self.timers.add(obs.next_try_at, kind, inst.key, inst.attempt)
        else:
            # Decided but never launched (or its pod is gone before it started):
            # launch the same attempt number again; pod names make that idempotent.
            inst.attempt = (
                max(0, obs.attempt - 1)
                if state in (TaskState.QUEUED, TaskState.RUNNING)
                else obs.attempt
            )
            self._ready(inst, now)
