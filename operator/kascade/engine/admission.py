"""Admission: which ready instances get a slot now, and their launches.

A ready instance waits in a priority queue (Airflow's ``downstream`` weight rule) until
maxActiveTasks (shared by the pipeline's runs), its mapped task's ``maxParallel`` and its
pool (``engine/pools.py``) all have room. Each launch renders the task's fields for that
attempt; a template that does not render is a failed attempt without a process. A task
with ``cache`` whose rendered key has a fresh entry succeeds here with the entry's
outputs, and gives its slot back at once (``engine/caching.py``).
"""

from __future__ import annotations

import heapq
from datetime import datetime

from kascade.api.runs import AttemptReason, TaskState
from kascade.engine import caching, expressions
from kascade.engine.caching import CacheEntry
from kascade.engine.core import EngineCore, QueueEntry
from kascade.engine.decisions import Launch
from kascade.engine.instances import Attempt, Instance
from kascade.engine.plan import PlannedTask
from kascade.engine.rendering import ITEM
from kascade.engine.timers import TimerKind


class Admission(EngineCore):
    def _admit(self, now: datetime) -> None:
        blocked: list[QueueEntry] = []
        while self.queue and self.slots.free():
            entry = heapq.heappop(self.queue)
            inst = self.instances.get(entry[3])
            if inst is None or inst.state is not TaskState.SCHEDULED:
                continue  # moved on since it was queued
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
                        self.out.waits.append((inst.key, why))
                    blocked.append(entry)
                    continue
            inst.waiting_for = None
            self._launch(inst, task, now)
        for entry in blocked:
            heapq.heappush(self.queue, entry)

    def _launch(self, inst: Instance, task: PlannedTask, now: datetime) -> None:
        if inst.rescheduled:
            inst.rescheduled = False  # another poke of the same attempt, as in Airflow
        else:
            inst.attempt += 1
        try:
            hit = self._cache_hit(task, inst, now)
            spec = task.spec if hit is not None else self.renderer.render(task, inst)
        except expressions.ExpressionError as exc:
            if task.pool is not None:
                self.pools.release(task.pool, task.pool_slots)
            # Airflow renders templates inside the task's try, so a rendering error is an
            # ordinary failed attempt and retries apply. No pod ran; the attempt is still
            # recorded, so that a restored run counts it against `retries`.
            message = f"template: {exc}"
            reason = AttemptReason.TEMPLATE_ERROR
            inst.attempts.append(Attempt(inst.attempt, None, now, None, reason, message))
            self._failed_attempt(inst, message, now)
            return
        if hit is not None:
            if task.pool is not None:
                self.pools.release(task.pool, task.pool_slots)
            self._served_from_cache(inst, hit, now)
            return
        self._hold(inst)
        self._move(inst, TaskState.QUEUED)
        inst.attempt_started_at = None  # each attempt (and poke) is a pod of its own
        inst.launched_at = now
        self.timers.add(now + task.start_timeout, TimerKind.START_TIMEOUT, inst.key, inst.attempt)
        timeout = task.timeout
        sensor = spec.sensor
        if sensor is not None:
            inst.first_poke_at = inst.first_poke_at or now
            left = inst.first_poke_at + self._policy(task).timeout - now
            timeout = left if timeout is None else min(timeout, left)
        self.out.launches.append(
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
                trigger_policy=task.trigger,
            )
        )

    # -- the cache -------------------------------------------------------------------------
    def _cache_hit(self, task: PlannedTask, inst: Instance, now: datetime) -> CacheEntry | None:
        """The fresh entry for this attempt's key, if the run reads the cache; raises
        ExpressionError (naming ``cache.key``) when the key does not render."""
        if task.cache_expiry is None:
            return None
        try:
            inst.cache_key = self.renderer.cache_key(task, inst)
        except expressions.ExpressionError as exc:
            raise expressions.ExpressionError(f"cache.key: {exc}") from None
        if self.cache is None or task.id in self.refresh:
            return None
        return self.cache.get(task.id, inst.cache_key, now)

    def _served_from_cache(self, inst: Instance, entry: CacheEntry, now: datetime) -> None:
        message = caching.hit_message(entry)
        reason = AttemptReason.CACHED
        inst.attempts.append(Attempt(inst.attempt, now, now, None, reason, message))
        self._succeeded(inst, dict(entry.outputs), now)
        inst.message = message  # the success says where its outputs came from

    def _cache_write(self, inst: Instance, now: datetime) -> None:
        """A successful attempt of a cached task leaves an entry for later runs."""
        task = self.plan.tasks[inst.task]
        if task.cache_expiry is None or inst.state is not TaskState.SUCCESS:
            return
        key = inst.cache_key
        if key is None:  # launched before a restart: the same context renders it again
            try:
                key = self.renderer.cache_key(task, inst)
            except expressions.ExpressionError:
                return
        outputs = {k: v for k, v in inst.outputs.items() if k != ITEM}
        self.out.cache_writes.append(
            CacheEntry(
                task=task.id,
                key=key,
                outputs=outputs,
                created=now,
                expires=now + task.cache_expiry,
                run_id=self.ctx.run_id,
                attempt=inst.attempt,
            )
        )

    def _hold(self, inst: Instance) -> None:
        """Count an attempt in flight against maxActiveTasks and maxParallel (its pool
        slots are taken by admission, or held again by a restore)."""
        inst.holds_slot = True
        self.active += 1
        self.slots.take()
        self.active_per_task[inst.task] += 1

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
