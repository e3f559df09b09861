"""The run engine: one PipelineRun as an incremental state machine.

Events (an attempt started or ended, time passed) go in; ``Decisions`` come out.
Upstream states are kept as per-task counts, so an event costs time in
proportion to the finished task's downstream neighbourhood, never to the DAG.
The clock is an argument: the same code runs a simulated 10,000-task run in a
benchmark, the local runner, and the operator.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any, Protocol

from kascade.api.pipeline import NotificationEvent, SensorKind, Task
from kascade.api.protocol import BRANCH_OUTPUT, CONDITION_OUTPUT, SENSOR_NOT_MET
from kascade.api.runs import RunPhase, TaskState
from kascade.engine import expressions, templating
from kascade.engine.compile import Plan, PlannedTask
from kascade.engine.decisions import Decisions, Fire, Instance, Launch, Result, SlaMiss
from kascade.engine.pools import PoolLedger, UnlimitedPools
from kascade.engine.retries import retry_delay
from kascade.engine.schedule import DataInterval, zone
from kascade.engine.sensors import Poker, SensorPolicy
from kascade.engine.slots import RunSlots, TaskSlots
from kascade.engine.trigger_rules import Counts, Verdict, decide

TERMINAL = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED, TaskState.UPSTREAM_FAILED}
)
_TEMPLATED_FIELDS = ("image", "command", "args", "script", "working_dir")


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


TEMPLATE_ERROR = "TemplateError"
"""The reason of an attempt whose fields could not be rendered (it has no pod)."""


class ExternalLookup(Protocol):
    """Answers an externalTask sensor: the state of another pipeline's run or task."""

    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None: ...


@dataclass(frozen=True)
class RunContext:
    """What a run is: its interval, params and identity (the macros' inputs)."""

    run_id: str
    logical_date: datetime
    interval: DataInterval
    params: Mapping[str, Any]
    pipeline: str
    namespace: str = "default"


class RunEngine:
    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        *,
        pools: PoolLedger | None = None,
        external: ExternalLookup | None = None,
        max_active_tasks: int | None = None,
        slots: TaskSlots | None = None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.pools = pools if pools is not None else UnlimitedPools()
        """The pools' ledger, shared with the other runs of the namespace; without one
        (simulations, benchmarks) pools do not limit anything."""
        self.external = external
        self.slots = slots or RunSlots(max_active_tasks or plan.spec.max_active_tasks)
        n = len(plan.tasks)
        self.instances: dict[str, Instance] = {}
        self.by_task: list[list[str]] = [[] for _ in range(n)]
        self.expanded = [plan.tasks[i].spec.expand is None for i in range(n)]
        self.counts = [Counts(total=len(t.upstream)) for t in plan.tasks]
        self.active = 0
        self.active_per_task = [0] * n
        self.unsettled = n  # tasks whose instances are not all terminal (or not expanded)
        self.settled_per_task = [0] * n
        self._queue: list[tuple[int, int, int, str]] = []
        self._timers: list[tuple[datetime, int, str, str, int]] = []
        self._seq = itertools.count()
        self._outputs: dict[str, dict[str, Any]] = {}
        self._short_circuited: set[int] = set()
        self._scheduled: dict[str | None, int] = {}  # pool -> instances waiting for a slot
        self._macros = templating.macro_context(
            logical_date=ctx.logical_date,
            interval=ctx.interval,
            run_id=ctx.run_id,
            pipeline_name=ctx.pipeline,
            namespace=ctx.namespace,
            params=ctx.params,
            task_outputs={},
        )
        self.started_at: datetime | None = None
        self.phase: RunPhase = RunPhase.QUEUED
        self.message: str | None = None
        self._out = Decisions()
        for i, task in enumerate(plan.tasks):
            if task.spec.expand is None:
                self._new_instance(task.id, i, None)

    # -- public events ----------------------------------------------------------
    def start(self, now: datetime) -> Decisions:
        self.started_at = self.started_at or now
        self.phase = RunPhase.RUNNING
        for i, task in enumerate(self.plan.tasks):
            if not task.upstream or task.trigger_rule.value == "always":
                self._evaluate(i, now)
        if self.plan.run_timeout is not None:
            self._timer(now + self.plan.run_timeout, "run_timeout", "", 0)
        deadline_base = self.ctx.interval.end
        if self.plan.sla is not None:
            self._timer(deadline_base + self.plan.sla, "sla_run", "", 0)
        for task in self.plan.tasks:
            if task.sla is not None:
                self._timer(deadline_base + task.sla, "sla_task", task.id, 0)
        return self._flush(now)

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
        by_task: dict[str, list[str]] = {}
        for k in observed:
            base = k[: k.rindex("[")] if k.endswith("]") else k
            by_task.setdefault(base, []).append(k)
        for index in self.plan.order:
            task = self.plan.tasks[index]
            keys = by_task.get(task.id, [])
            if not keys:
                if not task.upstream or task.trigger_rule.value == "always":
                    self._evaluate(index, now)
                continue
            if task.spec.expand is not None and not self.expanded[index]:
                mapped = sorted(
                    (k for k in keys if k != task.id), key=lambda k: int(k[len(task.id) + 1 : -1])
                )
                self.expanded[index] = True
                if mapped:
                    for down in self.plan.graph.downstream[index]:
                        self.counts[down].total += len(mapped) - 1
                    for k in mapped:
                        inst = self._new_instance(k, index, int(k[len(task.id) + 1 : -1]))
                        inst.outputs = {"__item__": observed[k].item}
                else:
                    self._new_instance(task.id, index, None)
            for key in self.by_task[index]:
                if key in observed:
                    self._restore_one(self.instances[key], observed[key], now)
        if self.plan.run_timeout is not None:
            self._timer(self.started_at + self.plan.run_timeout, "run_timeout", "", 0)
        return self._flush(now)

    def _restore_one(self, inst: Instance, obs: Observed, now: datetime) -> None:
        inst.attempt = obs.attempt
        inst.message = obs.message
        inst.ready_at = obs.ready_at
        inst.first_poke_at = obs.first_poke_at
        inst.pokes = obs.pokes
        state = obs.state
        if state is TaskState.SUCCESS:
            self._succeeded(inst, dict(obs.outputs), now)
        elif state in TERMINAL:
            self._settle(inst, state, now, obs.message)
        elif state in (TaskState.QUEUED, TaskState.RUNNING) and obs.launched:
            task = self.plan.tasks[inst.task]
            inst.state = state
            inst.holds_slot = True
            self.active += 1
            self.slots.take()
            self.active_per_task[inst.task] += 1
            if task.pool is not None:
                self.pools.hold(task.pool, task.pool_slots)
        elif state is TaskState.UP_FOR_RETRY and obs.next_try_at is not None:
            inst.state = state
            inst.next_try_at = obs.next_try_at
            self._timer(obs.next_try_at, "retry", inst.key, inst.attempt)
        elif state is TaskState.UP_FOR_RESCHEDULE and obs.next_try_at is not None:
            inst.state = state
            inst.next_try_at = obs.next_try_at
            kind = "engine_poke" if self._is_engine_sensor(inst) else "poke"
            self._timer(obs.next_try_at, kind, inst.key, inst.attempt)
        else:
            # Decided but never launched (or its pod is gone before it started):
            # launch the same attempt number again; pod names make that idempotent.
            inst.attempt = (
                max(0, obs.attempt - 1)
                if state in (TaskState.QUEUED, TaskState.RUNNING)
                else obs.attempt
            )
            self._ready(inst, now)

    def _is_engine_sensor(self, inst: Instance) -> bool:
        policy = self.plan.tasks[inst.task].sensor
        return policy is not None and policy.poker is Poker.ENGINE

    def started(self, key: str, attempt: int, now: datetime) -> None:
        inst = self.instances[key]
        if inst.attempt == attempt and inst.state is TaskState.QUEUED:
            inst.state = TaskState.RUNNING
            inst.started_at = inst.started_at or now
            self._out.changes.append((key, TaskState.RUNNING))

    def finished(self, key: str, attempt: int, result: Result, now: datetime) -> Decisions:
        inst = self.instances.get(key)
        if inst is None or inst.attempt != attempt or not inst.holds_slot:
            return self._flush(now)  # a late or duplicate report: already decided
        self._release(inst)
        inst.ended_at = now
        inst.exit_code = result.exit_code
        task = self.plan.tasks[inst.task]
        inst.attempts.append(
            {
                "number": attempt,
                "start": inst.started_at,
                "end": now,
                "exitCode": result.exit_code,
                "reason": result.reason,
                "message": result.message,
            }
        )
        sensor = task.spec.sensor
        if sensor is not None and result.exit_code == SENSOR_NOT_MET and result.reason is None:
            self._poke_not_met(inst, now)
        elif (
            sensor is not None
            and result.reason in ("Timeout", "SensorTimeout")
            and (self._sensor_expired(inst, now))
        ):
            self._sensor_timed_out(inst, now)
        elif result.ok:
            self._succeeded(inst, result.outputs or {}, now)
        else:
            msg = result.message or result.reason or f"exit code {result.exit_code}"
            self._failed_attempt(inst, msg, now)
        return self._flush(now)

    def tick(self, now: datetime) -> Decisions:
        while self._timers and self._timers[0][0] <= now:
            _, _, kind, key, attempt = heapq.heappop(self._timers)
            self._on_timer(kind, key, attempt, now)
        return self._flush(now)

    def mark(self, key: str, state: TaskState, now: datetime, message: str = "") -> Decisions:
        """Force an instance's state (``kascade mark``); downstream follows the new state."""
        inst = self.instances[key]
        if inst.state in TERMINAL:
            # Re-marking a finished instance (Airflow's "mark success" on a failed task):
            # undo what its first settle counted, then settle it again in the new state.
            if inst.state is not state:
                self._change_final_state(inst)
                self._settle(inst, state, now, message or f"marked {state.value} by a user")
            return self._flush(now)
        if inst.holds_slot:
            self._release(inst)
            self._out.kills.append((key, "MarkedByUser"))
        spec = self.plan.tasks[inst.task].spec
        if state is TaskState.SUCCESS and not (spec.branch or spec.short_circuit):
            self._succeeded(inst, inst.outputs, now)
        else:
            self._settle(inst, state, now, message or f"marked {state.value} by a user")
        return self._flush(now)

    # -- queries ------------------------------------------------------------------
    @property
    def has_queued(self) -> bool:
        """Instances are ready but wait for a slot (another run may free one)."""
        return bool(self._queue)

    @property
    def done(self) -> bool:
        return self.unsettled == 0

    def queued_by_pool(self) -> dict[str | None, int]:
        """Instances ready and waiting for a slot (scheduled), by pool (None: in no pool,
        waiting for maxActiveTasks or maxParallel)."""
        return {pool: n for pool, n in self._scheduled.items() if n}

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
            keys = self.by_task[task.index]
            if not keys or any(
                self.instances[k].state not in (TaskState.SUCCESS, TaskState.SKIPPED) for k in keys
            ):
                deadlines.append(end + task.sla)
        return min(deadlines, default=None)

    def wake_at(self) -> datetime | None:
        return self._timers[0][0] if self._timers else None

    def states(self) -> dict[str, TaskState]:
        return {k: i.state for k, i in self.instances.items()}

    def outputs_of(self, task_id: str) -> Mapping[str, Any]:
        return self._outputs.get(task_id, {})

    # -- internals: state changes ----------------------------------------------------
    def _new_instance(self, key: str, task: int, map_index: int | None) -> Instance:
        inst = Instance(key=key, task=task, map_index=map_index)
        self.instances[key] = inst
        self.by_task[task].append(key)
        return inst

    def _set(self, inst: Instance, state: TaskState) -> None:
        if (inst.state is TaskState.SCHEDULED) is not (state is TaskState.SCHEDULED):
            pool = self.plan.tasks[inst.task].pool
            self._scheduled[pool] = self._scheduled.get(pool, 0) + (
                1 if state is TaskState.SCHEDULED else -1
            )
        inst.state = state
        self._out.changes.append((inst.key, state))

    def _evaluate(self, index: int, now: datetime) -> None:
        """Apply the trigger rule of a task whose upstream counts changed."""
        if index in self._short_circuited:
            return
        task = self.plan.tasks[index]
        keys = self.by_task[index]
        if self.expanded[index]:
            if not keys or self.instances[keys[0]].state is not TaskState.NONE:
                return
        elif keys:
            return  # expansion already happened
        if task.upstream and task.trigger_rule.value != "always":
            verdict = decide(task.trigger_rule, self.counts[index])
        else:
            verdict = Verdict.RUN
        if verdict is Verdict.WAIT:
            return
        if verdict is not Verdict.RUN:
            state = TaskState(verdict.value)
            self._settle_task(
                index, state, now, f"trigger rule {task.trigger_rule.value}", by_rule=True
            )
            return
        if task.spec.when is not None:
            try:
                go = expressions.truthy(
                    expressions.evaluate(task.spec.when, self._ctx_for(task, None))
                )
            except expressions.ExpressionError as exc:
                self._settle_task(index, TaskState.FAILED, now, f"when: {exc}")
                return
            if not go:
                self._settle_task(index, TaskState.SKIPPED, now, f"when is false: {task.spec.when}")
                return
        if not self.expanded[index]:
            self._expand(index, now)
            return
        self._ready(self.instances[keys[0]], now)

    def _expand(self, index: int, now: datetime) -> None:
        task = self.plan.tasks[index]
        spec = task.spec.expand
        assert spec is not None
        items: Any = spec.items
        if spec.param is not None:
            try:
                items = expressions.evaluate(spec.param, self._ctx_for(task, None))
            except expressions.ExpressionError as exc:
                self.expanded[index] = True
                self._new_instance(task.id, index, None)
                self._settle_task(index, TaskState.FAILED, now, f"expand: {exc}")
                return
        self.expanded[index] = True
        if not isinstance(items, list):
            self._new_instance(task.id, index, None)
            self._settle_task(
                index, TaskState.FAILED, now, f"expand: expected a list, got {type(items).__name__}"
            )
            return
        if not items:
            self._new_instance(task.id, index, None)
            self._settle_task(index, TaskState.SKIPPED, now, "expand: the list is empty")
            return
        extra = len(items) - 1
        for down in self.plan.graph.downstream[index]:
            self.counts[down].total += extra
        created = []
        for i, item in enumerate(items):
            inst = self._new_instance(f"{task.id}[{i}]", index, i)
            inst.outputs = {"__item__": item}
            created.append(inst)
        for inst in created:  # all exist before any settles, so completion counts are right
            self._ready(inst, now)

    def _ready(self, inst: Instance, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        inst.ready_at = inst.ready_at or now
        if task.sensor is not None and task.sensor.poker is Poker.ENGINE:
            inst.first_poke_at = inst.first_poke_at or now
            self._set(inst, TaskState.RUNNING)
            self._engine_poke(inst, now)
            return
        self._set(inst, TaskState.SCHEDULED)
        prio = self.plan.priority[inst.task]
        heapq.heappush(self._queue, (-prio, inst.task, next(self._seq), inst.key))

    def _succeeded(self, inst: Instance, outputs: dict[str, Any], now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        spec = task.spec
        follow: set[int] | None = None
        if spec.branch:
            choice = self._branch_choice(task, outputs)
            if isinstance(choice, str):
                # Airflow's BranchPythonOperator raises here, which is an ordinary task
                # failure: retries apply, and the attempt's outputs never count.
                self._failed_attempt(inst, choice, now)
                return
            follow = choice
        item = inst.outputs.get("__item__")
        inst.outputs = dict(outputs)
        if inst.map_index is not None:
            inst.outputs["__item__"] = item
        self._record_outputs(inst)
        # Skips are made before the success propagates, so that nothing downstream is
        # scheduled and then unscheduled.
        if follow is not None:
            self._skip_unfollowed(task, follow, now)
        elif spec.short_circuit and not expressions.truthy(outputs.get(CONDITION_OUTPUT)):
            # Airflow skips every descendant in one update. Skipped one by one, a later
            # descendant would meanwhile be decided by its own trigger rule (say
            # upstream_failed, below a failed upstream outside the short circuit).
            doomed = self.plan.graph.descendants(task.index)
            self._short_circuited |= doomed
            for down in sorted(doomed):
                self._skip_task(down, now, f"short-circuited by {task.id}")
            self._short_circuited -= doomed
        self._settle(inst, TaskState.SUCCESS, now, None)

    def _failed_attempt(self, inst: Instance, message: str, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        inst.message = message
        if inst.attempt <= task.retries:
            delay = retry_delay(
                inst.attempt,
                delay=task.retry_delay,
                exponential=task.retry_exponential_backoff,
                max_delay=task.max_retry_delay,
            )
            inst.next_try_at = now + delay
            self._set(inst, TaskState.UP_FOR_RETRY)
            self._timer(inst.next_try_at, "retry", inst.key, inst.attempt)
            self._notify(
                task,
                NotificationEvent.RETRY,
                inst.key,
                f"{inst.key} failed: {message}; retry at {inst.next_try_at.isoformat()}",
            )
            return
        self._settle(inst, TaskState.FAILED, now, message)

    def _settle_task(
        self,
        index: int,
        state: TaskState,
        now: datetime,
        message: str | None,
        *,
        by_rule: bool = False,
    ) -> None:
        if not self.by_task[index]:
            self.expanded[index] = True
            self._new_instance(self.plan.tasks[index].id, index, None)
        for key in list(self.by_task[index]):
            inst = self.instances[key]
            if inst.state not in TERMINAL:
                if inst.holds_slot:
                    self._release(inst)
                    self._out.kills.append((key, "Skipped"))
                inst.settled_by_rule = by_rule
                self._settle(inst, state, now, message)

    def _skip_task(self, index: int, now: datetime, message: str) -> None:
        """A branch or short-circuit skip: it wins over upstream_failed.

        Airflow's skip sets every state but running, success and failed, so a task that
        another failure settled first ends skipped all the same. Tasks below it that their
        trigger rule settled without running are decided again, so the outcome does not
        depend on which upstream finished first.
        """
        for key in list(self.by_task[index]):
            inst = self.instances[key]
            if inst.state is TaskState.UPSTREAM_FAILED:
                self._change_final_state(inst)
        self._settle_task(index, TaskState.SKIPPED, now, message)

    def _change_final_state(self, inst: Instance) -> None:
        """Take back a terminal state, and every decision that its trigger-rule descendants
        made from it; the caller settles the instance again."""
        self._retract_decided_below(inst.task)
        self._unsettle(inst)
        inst.settled_by_rule = False

    def _retract_decided_below(self, index: int) -> None:
        """Undo the trigger-rule settlements downstream of ``index``, deepest first."""
        for down in self.plan.graph.downstream[index]:
            keys = self.by_task[down]
            if not keys or not all(
                self.instances[k].settled_by_rule and self.instances[k].state in TERMINAL
                for k in keys
            ):
                continue
            self._retract_decided_below(down)
            for key in list(keys):
                inst = self.instances[key]
                self._unsettle(inst)
                inst.settled_by_rule = False
                inst.message = None
                inst.ended_at = None
                self._out.changes.append((key, TaskState.NONE))
                if self.plan.tasks[down].spec.expand is not None and inst.map_index is None:
                    # Settled before it was expanded: it expands when it is decided again.
                    del self.instances[key]
                    self.by_task[down].remove(key)
                    self.expanded[down] = False

    def _settle(self, inst: Instance, state: TaskState, now: datetime, message: str | None) -> None:
        """Make an instance terminal and let its downstream react (iteratively, not recursively)."""
        if inst.state in TERMINAL:
            return
        inst.ended_at = inst.ended_at or now
        if message:
            inst.message = message
        self._set(inst, state)
        task = self.plan.tasks[inst.task]
        if state is TaskState.SUCCESS:
            self._notify(task, NotificationEvent.SUCCESS, inst.key, f"{inst.key} succeeded")
        else:
            if state is TaskState.FAILED:
                self._notify(
                    task, NotificationEvent.FAILURE, inst.key, f"{inst.key} failed: {message}"
                )
            self._record_no_outputs(task)
        index = inst.task
        self.settled_per_task[index] += 1
        if self.settled_per_task[index] == len(self.by_task[index]) and self.expanded[index]:
            self.unsettled -= 1
        downstream = self.plan.graph.downstream[index]
        for down in downstream:
            c = self.counts[down]
            if state is TaskState.SUCCESS:
                c.success += 1
            elif state is TaskState.SKIPPED:
                c.skipped += 1
            elif state is TaskState.FAILED:
                c.failed += 1
            else:
                c.upstream_failed += 1
        # Counted for every downstream task before any reacts: a reaction settles more
        # tasks, and one of them may share this downstream task, which must then see
        # this state too, as Airflow's scheduler sees all states at once.
        for down in downstream:
            self._evaluate(down, now)

    def _unsettle(self, inst: Instance) -> None:
        index = inst.task
        if self.settled_per_task[index] == len(self.by_task[index]) and self.expanded[index]:
            self.unsettled += 1
        self.settled_per_task[index] -= 1
        name = {
            TaskState.SUCCESS: "success",
            TaskState.SKIPPED: "skipped",
            TaskState.FAILED: "failed",
        }.get(inst.state, "upstream_failed")
        for down in self.plan.graph.downstream[index]:
            c = self.counts[down]
            setattr(c, name, getattr(c, name) - 1)
        inst.state = TaskState.NONE

    # -- branching --------------------------------------------------------------
    def _branch_choice(self, task: PlannedTask, outputs: Mapping[str, Any]) -> set[int] | str:
        """The tasks a branch follows, as Airflow 3's ``skip_all_except`` reads its choice.

        No choice (no output, null, an empty list) follows nothing: every direct
        downstream task is skipped. A name is a task or a group (its root tasks) anywhere
        in the pipeline, resolved from the branch's own group outwards as dependsOn is;
        only a name that is neither fails the branch task (a string, the error).
        """
        raw = outputs.get(BRANCH_OUTPUT)
        if raw is None:
            return set()
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return f"branch output must be a task name or a list of names, got {raw!r}"
        parts = task.id.split(".")[:-1]
        scopes = [".".join(parts[:depth]) + "." for depth in range(len(parts), 0, -1)] + [""]
        follow: set[int] = set()
        for name in names:
            targets = self._resolve_branch_name(name, scopes)
            if targets is None:
                direct = self.plan.graph.downstream[task.index]
                options = ", ".join(self.plan.tasks[d].id for d in sorted(direct))
                return (
                    f"branch chose {name!r}, which is not a task or group of this pipeline "
                    f"(the tasks directly downstream of {task.id}: {options})"
                )
            follow |= targets
        return follow

    def _resolve_branch_name(self, name: str, scopes: list[str]) -> set[int] | None:
        for candidate in (scope + name for scope in scopes):
            if candidate in self.plan.index:
                return {self.plan.index[candidate]}
            members = self.plan.groups.get(candidate)
            if members:
                inside = {self.plan.index[m] for m in members}
                return {m for m in inside if not inside & set(self.plan.graph.upstream[m])}
        return None

    def _skip_unfollowed(self, task: PlannedTask, follow: set[int], now: datetime) -> None:
        keep = set(follow)
        for f in follow:
            keep |= self.plan.graph.descendants(f)
        for down in self.plan.graph.downstream[task.index]:
            if down not in keep:
                self._skip_task(down, now, f"not chosen by branch {task.id}")

    # -- sensors ----------------------------------------------------------------
    def _sensor_policy(self, task: PlannedTask) -> SensorPolicy:
        assert task.sensor is not None
        return task.sensor

    def _poke_not_met(self, inst: Instance, now: datetime) -> None:
        policy = self._sensor_policy(self.plan.tasks[inst.task])
        inst.pokes += 1
        if inst.first_poke_at and now - inst.first_poke_at >= policy.timeout:
            self._sensor_timed_out(inst, now)
            return
        at = now + policy.wait_after(inst.pokes)
        if inst.first_poke_at:
            at = min(at, inst.first_poke_at + policy.timeout)
        inst.next_try_at = at
        self._set(inst, TaskState.UP_FOR_RESCHEDULE)
        self._timer(at, "poke", inst.key, inst.attempt)

    def _sensor_expired(self, inst: Instance, now: datetime) -> bool:
        timeout = self._sensor_policy(self.plan.tasks[inst.task]).timeout
        return inst.first_poke_at is not None and now - inst.first_poke_at >= timeout

    def _sensor_timed_out(self, inst: Instance, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        if inst.holds_slot:
            self._release(inst)
        if self._sensor_policy(task).soft_fail:
            self._settle(inst, TaskState.SKIPPED, now, "sensor timed out (softFail)")
        else:
            self._settle(inst, TaskState.FAILED, now, "sensor timed out")

    def _engine_poke(self, inst: Instance, now: datetime) -> None:
        """Sensors that need no process: time, datetime, external task."""
        task = self.plan.tasks[inst.task]
        policy = self._sensor_policy(task)
        first = inst.first_poke_at or now
        inst.pokes += 1
        try:
            met, next_at = self._engine_sensor_state(task, inst, now)
        except (ValueError, expressions.ExpressionError) as exc:
            self._settle(inst, TaskState.FAILED, now, f"sensor: {exc}")
            return
        if met is True:
            self._settle(inst, TaskState.SUCCESS, now, None)
            return
        if met is False:
            self._settle(inst, TaskState.FAILED, now, "the external task reached a failed state")
            return
        if now - first >= policy.timeout:
            self._sensor_timed_out(inst, now)
            return
        at = min(next_at or now + policy.wait_after(inst.pokes), first + policy.timeout)
        inst.next_try_at = at
        if inst.state is not TaskState.UP_FOR_RESCHEDULE:
            self._set(inst, TaskState.UP_FOR_RESCHEDULE)
        self._timer(at, "engine_poke", inst.key, inst.attempt)

    def _engine_sensor_state(
        self, task: PlannedTask, inst: Instance, now: datetime
    ) -> tuple[bool | None, datetime | None]:
        sensor = task.spec.sensor
        assert sensor is not None
        ctx = self._ctx_for(task, inst)
        if sensor.kind is SensorKind.TIME:
            target_time = time.fromisoformat(templating.render(sensor.target_time or "", ctx))
            # The time of day is in the pipeline's timezone, as Airflow's TimeSensor reads it
            # in the DAG's timezone.
            tz = zone(self.plan.spec.timezone)  # a ScheduleError is a ValueError
            day = self.ctx.interval.end.astimezone(tz)
            target = datetime.combine(day.date(), target_time, tzinfo=tz)
            return (True, None) if now >= target else (None, target)
        if sensor.kind is SensorKind.DATETIME:
            target = datetime.fromisoformat(templating.render(sensor.target_time or "", ctx))
            if target.tzinfo is None:
                target = target.replace(tzinfo=self.ctx.interval.end.tzinfo)
            return (True, None) if now >= target else (None, target)
        if self.external is None:
            raise ValueError("externalTask sensors need a driver that can look up other runs")
        offset = self._sensor_policy(task).logical_date_offset
        state = self.external.state(
            sensor.pipeline or "", sensor.task, self.ctx.logical_date - offset
        )
        if state is not None and state in (sensor.states or ["success"]):
            return True, None
        if state is not None and state in (sensor.failed_states or ["failed"]):
            return False, None
        return None, None

    # -- admission --------------------------------------------------------------
    def _admit(self, now: datetime) -> None:
        blocked: list[tuple[int, int, int, str]] = []
        while self._queue and self.slots.free():
            entry = heapq.heappop(self._queue)
            inst = self.instances[entry[3]]
            if inst.state is not TaskState.SCHEDULED:
                continue
            task = self.plan.tasks[inst.task]
            expand = task.spec.expand
            limit = expand.max_parallel if expand is not None else None
            if limit is not None and self.active_per_task[inst.task] >= limit:
                blocked.append(entry)
                continue
            if task.pool is not None:
                admission = self.pools.admit(task.pool, task.pool_slots)
                if not admission.granted:
                    why = self.pools.why_waiting(admission, task.pool, task.pool_slots)
                    if why is not None and inst.waiting_for != why:
                        inst.waiting_for = why
                        self._out.waits.append((inst.key, why))
                    blocked.append(entry)
                    continue
            inst.waiting_for = None
            self._launch(inst, task, now)
        for entry in blocked:
            heapq.heappush(self._queue, entry)

    def _launch(self, inst: Instance, task: PlannedTask, now: datetime) -> None:
        if inst.rescheduled:
            inst.rescheduled = False  # another poke of the same attempt, as in Airflow
        else:
            inst.attempt += 1
        try:
            spec = self._render(task, inst)
        except expressions.ExpressionError as exc:
            if task.pool is not None:
                self.pools.release(task.pool, task.pool_slots)
            # Airflow renders templates inside the task's try, so a rendering error is an
            # ordinary failed attempt and retries apply. No pod ran; the attempt is still
            # recorded, so that a restored run counts it against `retries`.
            message = f"template: {exc}"
            inst.attempts.append(
                {
                    "number": inst.attempt,
                    "start": None,
                    "end": now,
                    "exitCode": None,
                    "reason": TEMPLATE_ERROR,
                    "message": message,
                }
            )
            self._failed_attempt(inst, message, now)
            return
        self.active += 1
        self.slots.take()
        self.active_per_task[inst.task] += 1
        inst.holds_slot = True
        self._set(inst, TaskState.QUEUED)
        timeout = task.timeout
        sensor = spec.sensor
        if sensor is not None:
            inst.first_poke_at = inst.first_poke_at or now
            left = inst.first_poke_at + self._sensor_policy(task).timeout - now
            timeout = left if timeout is None else min(timeout, left)
        self._out.launches.append(
            Launch(
                key=inst.key,
                task_id=task.id,
                map_index=inst.map_index,
                attempt=inst.attempt,
                spec=spec,
                timeout=timeout,
                sensor=sensor,
                pool=task.pool,
                pool_slots=task.pool_slots,
                ready_at=inst.ready_at,
                poke=inst.pokes,
                sensor_policy=task.sensor,
            )
        )

    def _release(self, inst: Instance) -> None:
        if not inst.holds_slot:
            return
        inst.holds_slot = False
        task = self.plan.tasks[inst.task]
        self.active -= 1
        self.active_per_task[inst.task] -= 1
        if task.pool is not None:
            self.pools.release(task.pool, task.pool_slots)
        self.slots.give()

    def release_all(self) -> None:
        """Give back every slot this run holds: its driver is going away unfinished.

        A run deleted in flight, or reloaded (a new engine restores it and takes its
        slots again), must not keep counting against the pools and maxActiveTasks.
        """
        for inst in self.instances.values():
            self._release(inst)

    # -- templating -----------------------------------------------------------------
    def _record_outputs(self, inst: Instance) -> None:
        task = self.plan.tasks[inst.task]
        visible = {k: v for k, v in inst.outputs.items() if k != "__item__"}
        if inst.map_index is None:
            self._outputs[task.id] = visible
        else:
            collected = self._outputs.setdefault(task.id, {})
            size = len(self.by_task[inst.task])
            for name, value in visible.items():
                values = collected.setdefault(name, [None] * size)
                values[inst.map_index] = value
        self._task_node(task.id)["outputs"] = self._outputs[task.id]

    def _record_no_outputs(self, task: PlannedTask) -> None:
        """Let ``tasks.<id>.outputs.<name>`` read null once the task ended unsuccessfully.

        Airflow's ``xcom_pull`` gives None for a skipped or failed task, so a downstream
        task that still runs (a join after a branch, an ``all_done`` cleanup) renders
        instead of failing on an undefined path. Outputs a successful instance of the
        task recorded (a mapped task's other instances) are kept.
        """
        if task.id not in self._outputs:
            node = self._task_node(task.id)
            if not isinstance(node.get("outputs"), expressions.NullMap):
                node["outputs"] = expressions.NullMap()

    def _task_node(self, task_id: str) -> dict[str, Any]:
        node: dict[str, Any] = self._macros["tasks"]
        for part in task_id.split("."):
            node = node.setdefault(part, {})
        return node

    def _ctx_for(self, task: PlannedTask, inst: Instance | None) -> dict[str, Any]:
        ctx = dict(self._macros)
        if task.group is not None:
            # Sibling outputs resolve relative to the group, as dependsOn does, so a
            # group template can say ``tasks.a.outputs.x`` wherever it is instantiated.
            # Every enclosing group is merged, outermost first, so the innermost wins.
            node: Any = ctx["tasks"]
            merged = dict(node)
            for part in task.group.split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
                merged.update(node)
            ctx["tasks"] = merged
        ctx["inputs"] = dict(task.inputs)
        ctx["task"] = {
            "id": task.id,
            "try_number": inst.attempt if inst else 0,
            "map_index": inst.map_index if inst else None,
        }
        if inst is not None and inst.map_index is not None:
            ctx["item"] = inst.outputs.get("__item__")
            ctx["map_index"] = inst.map_index
        return ctx

    def _render(self, task: PlannedTask, inst: Instance) -> Task:
        spec = task.spec
        if not _needs_render(spec):
            return spec
        ctx = self._ctx_for(task, inst)
        update: dict[str, Any] = {}
        for name in _TEMPLATED_FIELDS:
            value = getattr(spec, name)
            if value is not None:
                update[name] = templating.render_value(value, ctx)
        if spec.env:
            update["env"] = [
                e.model_copy(update={"value": templating.render(e.value, ctx)}) if e.value else e
                for e in spec.env
            ]
        if spec.sensor is not None:
            s = spec.sensor
            update["sensor"] = s.model_copy(
                update={
                    k: templating.render(getattr(s, k), ctx)
                    for k in ("path", "url", "target_time")
                    if getattr(s, k)
                }
            )
        return spec.model_copy(update=update)

    # -- timers, notifications, the end ------------------------------------------------
    def _timer(self, at: datetime, kind: str, key: str, attempt: int) -> None:
        heapq.heappush(self._timers, (at, next(self._seq), kind, key, attempt))

    def _on_timer(self, kind: str, key: str, attempt: int, now: datetime) -> None:
        if kind == "run_timeout":
            if not self.done:
                self._time_out_run(now)
            return
        if kind == "sla_run":
            if not self.done:
                self._sla_miss(None, now)
            return
        if kind == "sla_task":
            index = self.plan.index[key]
            keys = self.by_task[index]
            if not keys or any(
                self.instances[k].state not in (TaskState.SUCCESS, TaskState.SKIPPED) for k in keys
            ):
                self._sla_miss(key, now)
            return
        inst = self.instances.get(key)
        if inst is None or inst.attempt != attempt:
            return
        if kind == "retry" and inst.state is TaskState.UP_FOR_RETRY:
            self._ready(inst, now)
        elif kind == "poke" and inst.state is TaskState.UP_FOR_RESCHEDULE:
            if self._sensor_expired(inst, now):
                self._sensor_timed_out(inst, now)
            else:
                inst.rescheduled = True
                self._set(inst, TaskState.SCHEDULED)
                prio = self.plan.priority[inst.task]
                heapq.heappush(self._queue, (-prio, inst.task, next(self._seq), inst.key))
        elif kind == "engine_poke" and inst.state is TaskState.UP_FOR_RESCHEDULE:
            self._engine_poke(inst, now)

    def _sla_miss(self, task_id: str | None, now: datetime) -> None:
        self._out.sla_misses.append(SlaMiss(task_id, now))
        if task_id is None:
            for n in self.plan.spec.notifications or []:
                if NotificationEvent.SLA_MISS in n.events:
                    self._out.notifications.append(
                        Fire(n, "slaMiss", None, f"run {self.ctx.run_id} missed its SLA")
                    )
        else:
            self._notify(
                self.plan.task(task_id),
                NotificationEvent.SLA_MISS,
                task_id,
                f"{task_id} missed its SLA",
            )

    def _time_out_run(self, now: datetime) -> None:
        self.message = f"run timed out after {self.plan.spec.run_timeout}"
        for inst in list(self.instances.values()):
            if inst.holds_slot:
                self._release(inst)
                self._out.kills.append((inst.key, "RunTimeout"))
        for index in range(len(self.plan.tasks)):
            self._settle_task(index, TaskState.SKIPPED, now, "run timed out")
        self._finish(now, forced=RunPhase.FAILED)

    def _notify(self, task: PlannedTask, event: NotificationEvent, key: str, message: str) -> None:
        for n in task.notifications:
            if event in n.events:
                self._out.notifications.append(Fire(n, event.value, key, message))

    def _finish(self, now: datetime, forced: RunPhase | None = None) -> None:
        if self.phase in (RunPhase.SUCCESS, RunPhase.FAILED):
            return
        if forced is not None:
            phase = forced
        else:
            phase = RunPhase.SUCCESS
            for index, task in enumerate(self.plan.tasks):
                if self.plan.graph.downstream[index]:
                    continue  # Airflow decides a run by its leaves
                if any(
                    self.instances[k].state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)
                    for k in self.by_task[index]
                ):
                    phase = RunPhase.FAILED
                    failed = [
                        k
                        for k in self.by_task[index]
                        if self.instances[k].state is not TaskState.SUCCESS
                    ]
                    self.message = (
                        self.message
                        or f"leaf task {task.id} ended {self.instances[failed[0]].state.value}"
                    )
                    break
        self.phase = phase
        self._out.finished = phase
        event = (
            NotificationEvent.SUCCESS if phase is RunPhase.SUCCESS else NotificationEvent.FAILURE
        )
        for n in self.plan.spec.notifications or []:
            if event in n.events:
                self._out.notifications.append(
                    Fire(
                        n,
                        event.value,
                        None,
                        f"run {self.ctx.run_id} of {self.ctx.pipeline}: {phase.value}",
                    )
                )
        self._timers = []  # nothing is left to wake up for

    def _flush(self, now: datetime) -> Decisions:
        if self.phase is RunPhase.RUNNING:
            self._admit(now)
            if self.done:
                self._finish(now)
        out, self._out = self._out, Decisions()
        out.wake_at = self.wake_at()
        return out


def _needs_render(spec: Task) -> bool:
    for name in _TEMPLATED_FIELDS:
        value = getattr(spec, name)
        if isinstance(value, str) and "{{" in value:
            return True
        if isinstance(value, list) and any("{{" in v for v in value):
            return True
    if spec.env and any(e.value and "{{" in e.value for e in spec.env):
        return True
    sensor = spec.sensor
    return sensor is not None and any(
        isinstance(v, str) and "{{" in v for v in (sensor.path, sensor.url, sensor.target_time)
    )
