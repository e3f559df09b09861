"""Time in a run: timers (retries, pokes, SLAs, the run timeout), sensors, and the end.

Sensor timing (intervals, backoff, timeouts) is ``engine/sensors.py``'s policy; this
module applies it to instance states. A run ends when every task is settled; its phase
is decided by its leaves, as Airflow decides a DAG run.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from kascade.api.pipeline import Notification, NotificationEvent
from kascade.api.runs import AttemptReason, RunPhase, TaskState
from kascade.engine import callbacks, expressions, sensors, templating
from kascade.engine.core import EngineCore
from kascade.engine.decisions import Decisions, Fire, SlaMiss
from kascade.engine.instances import Attempt, Instance
from kascade.engine.plan import PlannedTask
from kascade.engine.timers import TimerKind


def _listing(prefix: str, keys: Iterable[str], suffix: str, limit: int = 5) -> str:
    """``" (blocking: a, b +3 more)"``; empty for no keys."""
    keys = list(keys)
    if not keys:
        return ""
    shown = ", ".join(keys[:limit])
    more = f" +{len(keys) - limit} more" if len(keys) > limit else ""
    return f"{prefix}{shown}{more}{suffix}"


class Lifecycle(EngineCore):
    # -- timers --------------------------------------------------------------------------
    def _on_timer(self, kind: TimerKind, key: str, attempt: int, now: datetime) -> None:
        if kind is TimerKind.RUN_TIMEOUT:
            if self.table.unsettled:
                self._time_out_run(now)
            return
        if kind is TimerKind.SLA_RUN:
            if self.table.unsettled:
                self._sla_miss(None, now)
            return
        if kind is TimerKind.SLA_TASK:
            insts = self.table.of_task(self.plan.index[key])
            if not insts or any(
                i.state not in (TaskState.SUCCESS, TaskState.SKIPPED) for i in insts
            ):
                self._sla_miss(key, now)
            return
        inst = self.instances.get(key)
        if inst is None or inst.attempt != attempt:
            return  # moot: the instance moved on
        if kind is TimerKind.RETRY and inst.state is TaskState.UP_FOR_RETRY:
            self._ready(inst, now)
        elif kind is TimerKind.POKE and inst.state is TaskState.UP_FOR_RESCHEDULE:
            if self._sensor_expired(inst, now):
                self._sensor_timed_out(inst, now)
            else:
                inst.rescheduled = True
                self._move(inst, TaskState.SCHEDULED)
                prio = self.plan.priority[inst.task]
                heapq.heappush(self.queue, (-prio, inst.task, next(self.seq), inst.key))
        elif kind is TimerKind.ENGINE_POKE and inst.state is TaskState.UP_FOR_RESCHEDULE:
            self._engine_poke(inst, now)
        elif kind is TimerKind.START_TIMEOUT and inst.state is TaskState.QUEUED:
            self._start_overdue(inst, now)

    def _start_overdue(self, inst: Instance, now: datetime) -> None:
        """An attempt launched ``startTimeout`` ago that has not started: its driver ends it
        (it knows why the pod is stuck). A later poke of the same attempt has a later due."""
        due = (inst.launched_at or now) + self.plan.tasks[inst.task].start_timeout
        if now < due:
            self.timers.add(due, TimerKind.START_TIMEOUT, inst.key, inst.attempt)
        else:
            self.out.start_timeouts.append((inst.key, inst.attempt))

    # -- sensors -------------------------------------------------------------------------
    def _poke_not_met(self, inst: Instance, now: datetime) -> None:
        policy = self._policy(self.plan.tasks[inst.task])
        inst.pokes += 1
        if inst.first_poke_at and now - inst.first_poke_at >= policy.timeout:
            self._sensor_timed_out(inst, now)
            return
        at = now + policy.wait_after(inst.pokes)
        if inst.first_poke_at:
            at = min(at, inst.first_poke_at + policy.timeout)
        inst.next_try_at = at
        self._move(inst, TaskState.UP_FOR_RESCHEDULE)
        self.timers.add(at, TimerKind.POKE, inst.key, inst.attempt)

    def _sensor_expired(self, inst: Instance, now: datetime) -> bool:
        timeout = self._policy(self.plan.tasks[inst.task]).timeout
        return inst.first_poke_at is not None and now - inst.first_poke_at >= timeout

    def _sensor_timed_out(self, inst: Instance, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        self._release(inst)
        if self._policy(task).soft_fail:
            self._settle(inst, TaskState.SKIPPED, now, "sensor timed out (softFail)")
        else:
            self._settle(inst, TaskState.FAILED, now, "sensor timed out")

    def _engine_poke(self, inst: Instance, now: datetime) -> None:
        """Sensors that need no process: time, datetime, external task."""
        task = self.plan.tasks[inst.task]
        policy = self._policy(task)
        assert task.spec.sensor is not None
        first = inst.first_poke_at or now
        inst.pokes += 1
        ctx = self.renderer.context_for(task, inst)
        try:
            met, next_at = sensors.engine_check(
                task.spec.sensor,
                policy,
                self.ctx,
                timezone=self.plan.spec.timezone,
                render=lambda text: templating.render(text, ctx),
                external=self.external,
                now=now,
            )
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
            self._move(inst, TaskState.UP_FOR_RESCHEDULE)
        self.timers.add(at, TimerKind.ENGINE_POKE, inst.key, inst.attempt)

    # -- SLAs, timeout, notifications ----------------------------------------------------
    def _arm_run_timers(self, since: datetime, missed: Collection[str | None] = ()) -> None:
        """The run timeout (from when the run started) and the SLA deadlines (from the
        data interval's end), but not the SLAs already ``missed`` (None: the run's)."""
        if self.plan.run_timeout is not None:
            self.timers.add(since + self.plan.run_timeout, TimerKind.RUN_TIMEOUT)
        end = self.ctx.interval.end
        if self.plan.sla is not None and None not in missed:
            self.timers.add(end + self.plan.sla, TimerKind.SLA_RUN)
        for task in self.plan.tasks:
            if task.sla is not None and task.id not in missed:
                self.timers.add(end + task.sla, TimerKind.SLA_TASK, task.id)

    def _sla_miss(self, task_id: str | None, now: datetime) -> None:
        blocking = self._blocking(task_id)
        self.out.sla_misses.append(SlaMiss(task_id, now, blocking))
        what = f"run {self.ctx.run_id}" if task_id is None else task_id
        message = f"{what} missed its SLA" + _listing(" (blocking: ", blocking, ")")
        if task_id is None:
            facts = callbacks.run_facts(self.phase.value, self.message, self.started_at, now)
            for n in self.plan.spec.notifications or []:
                if NotificationEvent.SLA_MISS in n.events:
                    self._fire(n, NotificationEvent.SLA_MISS, None, message, facts, blocking)
        else:
            self._notify(
                self.plan.task(task_id), NotificationEvent.SLA_MISS, task_id, message, blocking
            )

    def _blocking(self, task_id: str | None) -> tuple[str, ...]:
        """The instances not done (neither success nor skipped) that hold a deadline up,
        upstream first: for the run, all of them; for a task, its own and its ancestors'
        (Airflow's blocking_tis)."""
        if task_id is None:
            indexes = list(self.plan.order)
        else:
            index = self.plan.index[task_id]
            ancestors = self.plan.graph.ancestors(index)
            indexes = [i for i in self.plan.order if i in ancestors or i == index]
        return tuple(
            inst.key
            for i in indexes
            for inst in self.table.of_task(i)
            if inst.state not in (TaskState.SUCCESS, TaskState.SKIPPED)
        )

    def _time_out_run(self, now: datetime) -> None:
        self.message = f"run timed out after {self.plan.spec.run_timeout}"
        for inst in list(self.instances.values()):
            if inst.holds_slot:
                self._release(inst)
                self.out.kills.append((inst.key, AttemptReason.RUN_TIMEOUT))
        for index in range(len(self.plan.tasks)):
            self._settle_task(index, TaskState.SKIPPED, now, "run timed out")
        self._finish(now, forced=RunPhase.FAILED)

    def interrupt(self, now: datetime, message: str) -> Decisions:
        """Stop the run where it is: its driver is going away (the local runner got Ctrl-C
        or SIGTERM). Each attempt in flight ends failed with ``message`` and is killed;
        nothing else moves (no retry, no downstream reaction, no notification: a person
        stopped the run), and the run is failed with ``message``."""
        for inst in list(self.instances.values()):
            if not inst.holds_slot:
                continue
            self._release(inst)
            self.out.kills.append((inst.key, AttemptReason.INTERRUPTED))
            inst.attempts.append(
                Attempt(
                    inst.attempt,
                    inst.attempt_started_at,  # None: this attempt never started
                    now,
                    None,
                    AttemptReason.INTERRUPTED,
                    message,
                )
            )
            inst.ended_at = now
            inst.message = message
            self._move(inst, TaskState.FAILED)
        self.message = message
        if self.phase not in (RunPhase.SUCCESS, RunPhase.FAILED):
            self.phase = RunPhase.FAILED
            self.out.finished = RunPhase.FAILED
        self.timers.clear()
        return self._flush(now)

    def _notify(
        self,
        task: PlannedTask,
        event: NotificationEvent,
        key: str,
        message: str,
        blocking: tuple[str, ...] = (),
    ) -> None:
        wanted = [n for n in task.notifications if event in n.events]
        if not wanted:
            return
        inst = self.instances.get(key)
        facts = callbacks.task_facts(inst, task.retries) if inst is not None else {}
        for n in wanted:
            self._fire(n, event, key, message, facts, blocking)

    def _fire(
        self,
        n: Notification,
        event: NotificationEvent,
        key: str | None,
        message: str,
        facts: Mapping[str, Any],
        blocking: tuple[str, ...] = (),
    ) -> None:
        ctx = callbacks.context(
            self.renderer.macros, facts, event=event.value, message=message, blocking=blocking
        )
        self.out.notifications.append(Fire(n, event.value, key, message, ctx))

    # -- the end -------------------------------------------------------------------------
    def _leaf_failure(self) -> str | None:
        """Why the run failed, if a leaf ended failed or upstream_failed (Airflow decides a
        run by its leaves), with the first task failure's message (the root cause)."""
        for index, task in enumerate(self.plan.tasks):
            if self.plan.graph.downstream[index]:
                continue
            insts = self.table.of_task(index)
            bad = [i for i in insts if i.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED)]
            if bad:
                why = f"leaf task {task.id} ended {bad[0].state.value}"
                cause = bad[0] if bad[0].state is TaskState.FAILED else self._first_failure()
                if cause is not None and cause.message:
                    who = "" if cause is bad[0] else f"{cause.key} failed: "
                    why += f" ({who}{cause.message})"
                return why
        return None

    def _first_failure(self) -> Instance | None:
        for index in self.plan.order:
            for inst in self.table.of_task(index):
                if inst.state is TaskState.FAILED:
                    return inst
        return None

    def _finish(self, now: datetime, forced: RunPhase | None = None) -> None:
        if self.phase in (RunPhase.SUCCESS, RunPhase.FAILED):
            return
        phase = forced
        if phase is None:
            failure = self._leaf_failure()
            phase = RunPhase.SUCCESS if failure is None else RunPhase.FAILED
            self.message = self.message or failure
        self.phase = phase
        self.out.finished = phase
        event = (
            NotificationEvent.SUCCESS if phase is RunPhase.SUCCESS else NotificationEvent.FAILURE
        )
        wanted = [n for n in self.plan.spec.notifications or [] if event in n.events]
        if wanted:
            message = f"run {self.ctx.run_id} of {self.ctx.pipeline}: {phase.value}"
            if phase is RunPhase.FAILED and self.message:
                message += f" ({self.message})"
            facts = callbacks.run_facts(phase.value, self.message, self.started_at, now)
            for n in wanted:
                self._fire(n, event, None, message, facts)
        self.timers.clear()  # nothing is left to wake up for

    def _flush(self, now: datetime) -> Decisions:
        """Admit what can go, end the run if everything settled, and hand the decisions
        (with the state changes, in order) to the driver."""
        if self.phase is RunPhase.RUNNING:
            self._admit(now)
            if not self.table.unsettled:
                self._finish(now)
        out, self.out = self.out, Decisions()
        out.changes = self.table.drain_changes()
        out.wake_at = self.timers.next_at
        return out
