"""How a settled instance moves its downstream: trigger rules, ``when``, expansion, skips.

Upstream states are kept as per-task counts (``EngineCore.counts``), so a task ending
touches only its downstream neighbours. Propagation is iterative in the sense that each
settle counts its state for every downstream task before any of them reacts, as
Airflow's scheduler sees all states at once.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from typing import Any

from kascade.api.pipeline import NotificationEvent
from kascade.api.protocol import CONDITION_OUTPUT
from kascade.api.runs import AttemptReason, TaskState
from kascade.engine import branching, expressions
from kascade.engine.core import EngineCore
from kascade.engine.instances import TERMINAL, Instance
from kascade.engine.rendering import ITEM
from kascade.engine.retries import retry_delay
from kascade.engine.sensors import Poker
from kascade.engine.timers import TimerKind
from kascade.engine.trigger_rules import Verdict, decide

_COUNTED = {
    TaskState.SUCCESS: "success",
    TaskState.SKIPPED: "skipped",
    TaskState.FAILED: "failed",
    TaskState.UPSTREAM_FAILED: "upstream_failed",
}


class Propagation(EngineCore):
    def _evaluate(self, index: int, now: datetime) -> None:
        """Apply the trigger rule of a task whose upstream counts changed."""
        if index in self.short_circuited or index in self.deferred:
            return
        task = self.plan.tasks[index]
        keys = self.by_task[index]
        if self.table.expanded[index]:
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
                ctx = self.renderer.context_for(task, None)
                go = expressions.truthy(expressions.evaluate(task.spec.when, ctx))
            except expressions.ExpressionError as exc:
                self._settle_task(index, TaskState.FAILED, now, f"when: {exc}")
                return
            if not go:
                self._settle_task(index, TaskState.SKIPPED, now, f"when is false: {task.spec.when}")
                return
        if not self.table.expanded[index]:
            self._expand(index, now)
            return
        self._ready(self.instances[keys[0]], now)

    def _expansion_items(self, index: int) -> list[Any] | str:
        """The list a mapped task expands over, or why there is none."""
        task = self.plan.tasks[index]
        spec = task.spec.expand
        assert spec is not None
        items: Any = spec.items
        if spec.param is not None:
            try:
                items = expressions.evaluate(spec.param, self.renderer.context_for(task, None))
            except expressions.ExpressionError as exc:
                return f"expand: {exc}"
        if not isinstance(items, list):
            return f"expand: expected a list, got {type(items).__name__}"
        return items

    def _expand(self, index: int, now: datetime) -> None:
        items = self._expansion_items(index)
        if isinstance(items, str):
            self._settle_task(index, TaskState.FAILED, now, items)
            return
        if not items:
            self._settle_task(index, TaskState.SKIPPED, now, "expand: the list is empty")
            return
        for down in self.plan.graph.downstream[index]:
            self.counts[down].total += len(items) - 1
        created = []
        for i, item in enumerate(items):
            inst = self.table.add(index, i)
            inst.outputs = {ITEM: item}
            created.append(inst)
        self.table.mark_expanded(index)
        for inst in created:  # all exist before any settles, so completion counts are right
            self._ready(inst, now)

    def _ready(self, inst: Instance, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        inst.ready_at = inst.ready_at or now
        if task.sensor is not None and task.sensor.poker is Poker.ENGINE:
            inst.first_poke_at = inst.first_poke_at or now
            self._move(inst, TaskState.RUNNING)
            self._engine_poke(inst, now)
            return
        self._move(inst, TaskState.SCHEDULED)
        prio = self.plan.priority[inst.task]
        heapq.heappush(self.queue, (-prio, inst.task, next(self.seq), inst.key))

    def _succeeded(self, inst: Instance, outputs: dict[str, Any], now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        spec = task.spec
        follow: set[int] | None = None
        if spec.branch:
            chosen = branching.choice(self.plan, task, outputs)
            if isinstance(chosen, str):
                # Airflow raises here, which is an ordinary task failure: retries apply,
                # and the attempt's outputs never count.
                self._failed_attempt(inst, chosen, now)
                return
            follow = chosen
        item = inst.item
        inst.outputs = dict(outputs)
        if inst.map_index is not None:
            inst.outputs[ITEM] = item
        self.renderer.record_outputs(inst, len(self.by_task[inst.task]))
        # Skips are made before the success propagates, so that nothing downstream is
        # scheduled and then unscheduled.
        if follow is not None:
            for down in branching.not_followed(self.plan, task, follow):
                self._skip_task(down, now, f"not chosen by branch {task.id}")
        elif spec.short_circuit and not expressions.truthy(outputs.get(CONDITION_OUTPUT)):
            # Airflow skips every descendant in one update. Skipped one by one, a later
            # descendant would meanwhile be decided by its own trigger rule (say
            # upstream_failed, below a failed upstream outside the short circuit).
            doomed = self.plan.graph.descendants(task.index)
            self.short_circuited |= doomed
            for down in sorted(doomed):
                self._skip_task(down, now, f"short-circuited by {task.id}")
            self.short_circuited -= doomed
        inst.message = None  # a failed attempt's message is its own record's, not the task's
        self._settle(inst, TaskState.SUCCESS, now, None)

    def _failed_attempt(self, inst: Instance, message: str, now: datetime) -> None:
        task = self.plan.tasks[inst.task]
        inst.message = message
        if inst.attempt - inst.lost <= task.retries:
            delay = retry_delay(
                inst.attempt,
                delay=task.retry_delay,
                exponential=task.retry_exponential_backoff,
                max_delay=task.max_retry_delay,
            )
            inst.next_try_at = now + delay
            self._move(inst, TaskState.UP_FOR_RETRY)
            self.timers.add(inst.next_try_at, TimerKind.RETRY, inst.key, inst.attempt)
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
        """Settle every unfinished instance of a task (one stands in for an unexpanded
        mapped task), stopping the ones in flight."""
        if not self.by_task[index]:
            self.table.add(index, None)
            self.table.mark_expanded(index)
        for inst in self.table.of_task(index):
            if inst.state not in TERMINAL:
                if inst.holds_slot:
                    self._release(inst)
                    self.out.kills.append((inst.key, AttemptReason.SKIPPED))
                inst.settled_by_rule = by_rule
                self._settle(inst, state, now, message)

    def _skip_task(self, index: int, now: datetime, message: str) -> None:
        """A branch or short-circuit skip: it wins over upstream_failed.

        Airflow's skip sets every state but running, success and failed, so a task that
        another failure settled first ends skipped all the same. Tasks below it that their
        trigger rule settled without running are decided again, so the outcome does not
        depend on which upstream finished first.
        """
        for inst in self.table.of_task(index):
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
            insts = self.table.of_task(down)
            if not insts or not all(i.settled_by_rule and i.state in TERMINAL for i in insts):
                continue
            self._retract_decided_below(down)
            for inst in insts:
                self._unsettle(inst)
                inst.settled_by_rule = False
                inst.message = None
                inst.ended_at = None
                if self.plan.tasks[down].spec.expand is not None and inst.map_index is None:
                    self.table.remove(inst)  # settled unexpanded: it expands when decided

    def _settle(self, inst: Instance, state: TaskState, now: datetime, message: str | None) -> None:
        """Make an instance terminal and let its downstream react."""
        if inst.state in TERMINAL:
            return
        inst.ended_at = inst.ended_at or now
        if message:
            inst.message = message
        self._move(inst, state)
        task = self.plan.tasks[inst.task]
        if state is TaskState.SUCCESS:
            self._notify(task, NotificationEvent.SUCCESS, inst.key, f"{inst.key} succeeded")
        else:
            if state is TaskState.FAILED:
                self._notify(
                    task, NotificationEvent.FAILURE, inst.key, f"{inst.key} failed: {message}"
                )
            self.renderer.record_no_outputs(task)
        downstream = self.plan.graph.downstream[inst.task]
        name = _COUNTED[state]
        for down in downstream:
            counts = self.counts[down]
            setattr(counts, name, getattr(counts, name) + 1)
        # Counted for every downstream task before any reacts: a reaction settles more
        # tasks, and one of them may share this downstream task, which must then see
        # this state too, as Airflow's scheduler sees all states at once.
        for down in downstream:
            self._evaluate(down, now)

    def _unsettle(self, inst: Instance) -> None:
        name = _COUNTED[inst.state]
        for down in self.plan.graph.downstream[inst.task]:
            counts = self.counts[down]
            setattr(counts, name, getattr(counts, name) - 1)
        self._move(inst, TaskState.NONE)
