"""The run engine: one PipelineRun as an incremental state machine.

Events (an attempt started or ended, time passed) go in; ``Decisions`` come out.
Upstream states are kept as per-task counts, so an event costs time in
proportion to the finished task's downstream neighbourhood, never to the DAG.
The clock is an argument: the same code runs a simulated 10,000-task run in a
benchmark, the local runner, and the operator.

The engine is assembled from one module per concern (see ``engine/core.py``):
``propagation``, ``admission``, ``lifecycle`` and ``restore``; the instances and their
states are ``engine/instances.py``'s table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kascade.api.protocol import SENSOR_NOT_MET
from kascade.api.runs import AttemptReason, RunPhase, TaskState
from kascade.engine.admission import Admission
from kascade.engine.caching import NO_REFRESH, CacheLookup, Refresh
from kascade.engine.context import ExternalLookup, RunContext, ValueStore
from kascade.engine.decisions import Decisions, Result
from kascade.engine.instances import TERMINAL, Attempt, InstanceTable
from kascade.engine.lifecycle import Lifecycle
from kascade.engine.plan import Plan
from kascade.engine.pools import PoolLedger, UnlimitedPools
from kascade.engine.propagation import Propagation
from kascade.engine.rendering import Renderer
from kascade.engine.restore import Restoring
from kascade.engine.slots import RunSlots, TaskSlots
from kascade.engine.timers import Timers
from kascade.engine.trigger_rules import Counts

_SENSOR_TIMEOUTS = frozenset({AttemptReason.TIMEOUT, AttemptReason.SENSOR_TIMEOUT})


class RunEngine(Propagation, Admission, Lifecycle, Restoring):
    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        *,
        pools: PoolLedger | None = None,
        external: ExternalLookup | None = None,
        max_active_tasks: int | None = None,
        slots: TaskSlots | None = None,
        cache: CacheLookup | None = None,
        refresh: Refresh = NO_REFRESH,
        values: ValueStore | None = None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.cache = cache
        self.refresh = refresh
        self.pools = pools if pools is not None else UnlimitedPools()
        """The pools' ledger, shared with the other runs of the namespace; without one
        (simulations, benchmarks) pools do not limit anything."""
        self.external = external
        self.slots = slots or RunSlots(max_active_tasks or plan.spec.max_active_tasks)
        self.table = InstanceTable(plan)
        self.counts = [Counts(total=len(t.upstream)) for t in plan.tasks]
        self.active = 0
        self.active_per_task = [0] * len(plan.tasks)
        self.queue = []
        self.seq = itertools.count()
        self.timers = Timers()
        self.renderer = Renderer(plan, ctx, values)
        self.short_circuited = set()
        self.deferred = set()
        self.started_at = None
        self.phase = RunPhase.QUEUED
        self.message = None
        self.out = Decisions()

    # -- events ---------------------------------------------------------------------------
    def start(self, now: datetime) -> Decisions:
        self.started_at = self.started_at or now
        self.phase = RunPhase.RUNNING
        for i, task in enumerate(self.plan.tasks):
            if not task.upstream or task.trigger_rule.value == "always":
                self._evaluate(i, now)
        self._arm_run_timers(now)
        return self._flush(now)

    def started(self, key: str, attempt: int, now: datetime) -> None:
        """The attempt's process or pod runs (the state change comes with the next flush)."""
        inst = self.instances[key]
        if inst.attempt == attempt and inst.state is TaskState.QUEUED:
            inst.started_at = inst.started_at or now
            inst.attempt_started_at = inst.attempt_started_at or now
            self._move(inst, TaskState.RUNNING)

    def finished(self, key: str, attempt: int, result: Result, now: datetime) -> Decisions:
        self._ended(key, attempt, result, now)
        return self._flush(now)

    def _ended(self, key: str, attempt: int, result: Result, now: datetime) -> bool:
        """Record how an attempt ended and decide what follows (retry, downstream...);
        False for a late or duplicate report (already decided)."""
        inst = self.instances.get(key)
        if inst is None or inst.attempt != attempt or not inst.holds_slot:
            return False
        self._release(inst)
        inst.ended_at = now
        inst.exit_code = result.exit_code
        inst.attempts.append(
            Attempt(
                attempt,
                inst.attempt_started_at,  # None: this attempt never started
                now,
                result.exit_code,
                result.reason,
                result.message,
                inst.pokes,  # the poke this pod was (pokes grow only after it)
            )
        )
        sensor = self.plan.tasks[inst.task].sensor
        if sensor is not None and result.exit_code == SENSOR_NOT_MET and result.reason is None:
            self._poke_not_met(inst, now)
        elif (
            sensor is not None
            and result.reason in _SENSOR_TIMEOUTS
            and self._sensor_expired(inst, now)
        ):
            self._sensor_timed_out(inst, now)
        elif result.ok:
            self._succeeded(inst, result.outputs or {}, now)
            self._cache_write(inst, now)
        else:
            msg = result.message or result.reason or f"exit code {result.exit_code}"
            if result.retryable:
                self._failed_attempt(inst, msg, now)
            else:
                self._settle(inst, TaskState.FAILED, now, msg)
        return True

    def tick(self, now: datetime) -> Decisions:
        for kind, key, attempt in self.timers.due(now):
            self._on_timer(kind, key, attempt, now)
        return self._flush(now)

    def mark(self, key: str, state: TaskState, now: datetime, message: str = "") -> Decisions:
        """Force an instance's state (``kascade mark``); downstream follows the new state."""
        inst = self.instances[key]
        message = message or f"marked {state.value} by a user"
        if inst.state in TERMINAL:
            # Re-marking a finished instance (Airflow's "mark success" on a failed task):
            # undo what its first settle counted, then settle it again in the new state.
            if inst.state is not state:
                self._change_final_state(inst)
                self._settle(inst, state, now, message)
            return self._flush(now)
        if inst.holds_slot:
            self._release(inst)
            self.out.kills.append((key, AttemptReason.MARKED_BY_USER))
        spec = self.plan.tasks[inst.task].spec
        if state is TaskState.SUCCESS and not (spec.branch or spec.short_circuit):
            self._succeeded(inst, inst.outputs, now)
        else:
            self._settle(inst, state, now, message)
        return self._flush(now)

    # -- queries ----------------------------------------------------------------------------
    @property
    def has_queued(self) -> bool:
        """Instances are ready but wait for a slot (another run may free one)."""
        return bool(self.queue)

    @property
    def done(self) -> bool:
        return self.table.unsettled == 0

    def queued_by_pool(self) -> dict[str | None, int]:
        """Instances ready and waiting for a slot (scheduled), by pool (None: in no pool,
        waiting for maxActiveTasks or maxParallel)."""
        return {pool: n for pool, n in self.table.scheduled.items() if n}

    def sla_deadline(self) -> datetime | None:
        """The nearest SLA deadline not yet met (past ones included: they were missed), or
        None once the run and every task with an SLA are done."""
        if self.phase in (RunPhase.SUCCESS, RunPhase.FAILED):
            return None
        end = self.ctx.interval.end
        deadlines = [end + self.plan.sla] if self.plan.sla is not None else []
        for task in self.plan.tasks:
            if task.sla is None:
                continue
            insts = self.table.of_task(task.index)
            if not insts or any(
                i.state not in (TaskState.SUCCESS, TaskState.SKIPPED) for i in insts
            ):
                deadlines.append(end + task.sla)
        return min(deadlines, default=None)

    def wake_at(self) -> datetime | None:
        return self.timers.next_at

    def states(self) -> dict[str, TaskState]:
        return self.table.states()

    def outputs_of(self, task_id: str) -> Mapping[str, Any]:
        return self.renderer.outputs_of(task_id)
