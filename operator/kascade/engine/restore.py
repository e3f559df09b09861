"""Rebuilding a run's engine from what the cluster shows, after an operator restart.

The driver reads TaskRuns, pods and the run's summary into one :class:`Observed` per
instance (``controller/observed.py``, a pure function of those objects);
:meth:`Restoring.restore` turns them into the engine's state. The rules:

* **Records first.** An instance the cluster records as finished (its TaskRun, or the
  run's summary for one settled without running) is settled again, in topological
  order: successes replay their branch and short-circuit choices, so the skips come
  out the same. Its attempt history is the TaskRun's. An instance with nothing
  recorded is decided again by its trigger rule, from its upstream's restored states:
  a waiting task is never launched early.
* **Then the pods.** Pods whose end the TaskRun does not record yet are replayed in the
  order they ended, as if their events had arrived; the last one, if it runs, holds its
  slot again, and its start timeout counts from its pod's creation.
* **Attempt numbers are never reused.** The driver records an attempt's number before
  it creates the pod (the TaskRun's ``kascade.io/attempt``). A launched attempt with no
  pod left was deleted while nobody watched: a failed attempt ``PodDeleted`` (retried by
  policy) if it was seen to start, otherwise ``PodLost``, which uses up its number but
  not a try (its pod may never have been created).
* **The run's clock is kept**: its start time, and the SLAs already missed (the others
  are armed again).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kascade.api.protocol import SENSOR_NOT_MET
from kascade.api.runs import AttemptReason, RunPhase, TaskState, split_instance_key
from kascade.engine.actions import runs_pod
from kascade.engine.core import EngineCore
from kascade.engine.decisions import Decisions, Result
from kascade.engine.instances import TERMINAL, Attempt, Instance
from kascade.engine.rendering import ITEM
from kascade.engine.sensors import Poker
from kascade.engine.timers import TimerKind

S = TaskState


@dataclass(frozen=True)
class PodSeen:
    """A pod whose end its TaskRun does not record yet."""

    attempt: int
    poke: int = 0
    created_at: datetime | None = None
    started_at: datetime | None = None
    """When its container started (None: not yet)."""
    result: Result | None = None
    """How it ended, if it did (a pod being deleted before it ended: ``PodDeleted``)."""
    ended_at: datetime | None = None


@dataclass(frozen=True)
class Observed:
    """One instance as the cluster shows it."""

    state: TaskState
    """As recorded: the TaskRun's state, or the run's summary for an instance without one."""
    attempt: int = 0
    """The attempt the record is about."""
    launched: int = 0
    """The highest attempt number whose pod may have been created (never used again)."""
    history: tuple[Attempt, ...] = ()
    """The attempts the TaskRun records as ended, oldest first."""
    started: bool = False
    """The record shows attempt ``launched`` running (so a missing pod was deleted)."""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    message: str | None = None
    next_try_at: datetime | None = None
    ready_at: datetime | None = None
    first_poke_at: datetime | None = None
    pokes: int = 0
    item: Any = None
    pods: tuple[PodSeen, ...] = ()
    """Pods the record does not account for, oldest (attempt, poke) first."""

    @property
    def decisive(self) -> bool:
        """It says more than "not decided yet" (which the trigger rules decide again)."""
        return self.state not in (S.NONE, S.SCHEDULED) or bool(
            self.launched or self.history or self.pods
        )


def _not_met(attempt: Attempt) -> bool:
    """A poke of a reschedule-mode sensor that found its condition not met (not an end)."""
    return attempt.exit_code == SENSOR_NOT_MET and attempt.reason is None


_Replay = tuple[datetime, int, str]
"""(when the pod ended, order, instance key): the next pod end to replay."""


class Restoring(EngineCore):
    def restore(
        self,
        observed: Mapping[str, Observed],
        now: datetime,
        *,
        started_at: datetime | None = None,
        sla_missed: Collection[str | None] = (),
    ) -> Decisions:
        """Rebuild after a restart from what the cluster shows, then decide what is missing.

        ``started_at`` is when the run started (its status), ``sla_missed`` the SLAs it
        already missed (task ids; None for the run's). The decisions hold only what is new:
        pod ends that happened while nobody watched, and what follows from them; the
        restored states themselves are not changes (their records exist).
        """
        self.started_at = started_at or self.started_at or now
        self.phase = RunPhase.RUNNING
        decisive = {key: obs for key, obs in observed.items() if obs.decisive}
        keys_of: dict[int, list[str]] = {}
        for key in decisive:
            index = self.plan.index.get(split_instance_key(key)[0])
            if index is not None:
                keys_of.setdefault(index, []).append(key)
        self.deferred = set(keys_of)
        pending: dict[str, list[PodSeen]] = {}
        gone: dict[str, bool] = {}  # instances whose launched attempt left no pod: started?
        for index in self.plan.order:
            task = self.plan.tasks[index]
            self.deferred.discard(index)
            keys = keys_of.get(index)
            if not keys:
                if not task.upstream or task.trigger_rule.value == "always":
                    self._evaluate(index, now)
                continue
            if not self.table.expanded[index]:
                self._restore_expansion(index, keys, decisive)
            for inst in self.table.of_task(index):
                obs = decisive.get(inst.key)
                if inst.state in TERMINAL:
                    continue  # skipped meanwhile by a replayed branch or short circuit
                if obs is None:
                    self._ready(inst, now)  # an instance of a mapped task not launched yet
                else:
                    self._restore_one(inst, obs, now, pending, gone)
        # What the pass restored is recorded already: only what follows is new.
        self.table.drain_changes()
        self._replay(pending, now)
        for key, started in gone.items():
            self._gone(self.instances[key], started=started, now=now)
        self._arm_run_timers(self.started_at, sla_missed)
        return self._flush(now)

    # -- the topological pass ---------------------------------------------------------------
    def _restore_expansion(
        self, index: int, keys: list[str], observed: Mapping[str, Observed]
    ) -> None:
        """A mapped task's instances: its items as expanded from its upstream (restored
        already), each one that ran keeping the item its TaskRun records."""
        mapped = {split_instance_key(k)[1]: observed[k] for k in keys}
        if None in mapped:  # settled before it was expanded: its stand-in
            self.table.add(index, None)
            self.table.mark_expanded(index)
            return
        items = self._expansion_items(index)
        indices = set(mapped)
        if isinstance(items, list):
            indices |= set(range(len(items)))
        for down in self.plan.graph.downstream[index]:
            self.counts[down].total += len(indices) - 1
        for i in sorted(i for i in indices if i is not None):
            inst = self.table.add(index, i)
            seen = mapped.get(i)
            fallback = items[i] if isinstance(items, list) and i < len(items) else None
            inst.outputs = {ITEM: seen.item if seen is not None else fallback}
        self.table.mark_expanded(index)

    def _restore_one(
        self,
        inst: Instance,
        obs: Observed,
        now: datetime,
        pending: dict[str, list[PodSeen]],
        gone: dict[str, bool],
    ) -> None:
        inst.ready_at = obs.ready_at or inst.ready_at
        inst.first_poke_at = obs.first_poke_at
        inst.pokes = obs.pokes
        inst.attempts = list(obs.history)
        inst.started_at = next((a.start for a in obs.history if a.start is not None), None)
        inst.lost = sum(1 for a in obs.history if a.reason is AttemptReason.POD_LOST)
        ended = max((a.number for a in obs.history if not _not_met(a)), default=0)
        if obs.state is S.UP_FOR_RETRY:
            ended = max(ended, obs.attempt)  # waiting to retry: its attempt ended
        inst.attempt = max([obs.attempt, *(a.number for a in obs.history)])
        inst.message = obs.message
        if obs.state is S.SUCCESS:
            self._succeeded(inst, dict(obs.outputs), now)
            return
        if obs.state in TERMINAL:
            self._settle(inst, obs.state, now, obs.message)
            return
        launched = max([obs.launched, inst.attempt, *(p.attempt for p in obs.pods)])
        # A reschedule-mode sensor between two pokes of attempt `launched`.
        poking = bool(obs.history) and _not_met(obs.history[-1]) and inst.attempt == launched
        if obs.pods:
            self._resume(inst, obs.pods[0], now)
            pending[inst.key] = list(obs.pods)
        elif launched > ended and not poking and not runs_pod(self.plan.tasks[inst.task].spec):
            # Done by the operator itself (an e-mail, a triggered run, an engine sensor's
            # look), so no pod records it: done again under the same attempt number. A
            # triggered run is named after its attempt, so it is not made twice.
            inst.attempt = launched - 1
            self._ready(inst, now)
        elif launched > ended and not poking:
            # Launched, and neither its pod nor a record of its end is left.
            self._resume(inst, PodSeen(launched, inst.pokes, now), now)
            gone[inst.key] = obs.started
        elif obs.state is S.UP_FOR_RETRY:
            self._wait(inst, S.UP_FOR_RETRY, TimerKind.RETRY, obs.next_try_at or now)
        elif obs.state is S.UP_FOR_RESCHEDULE:
            task = self.plan.tasks[inst.task]
            engine = task.sensor is not None and task.sensor.poker is Poker.ENGINE
            kind = TimerKind.ENGINE_POKE if engine else TimerKind.POKE
            self._wait(inst, S.UP_FOR_RESCHEDULE, kind, obs.next_try_at or now)
        else:
            # Decided and never launched, an engine sensor between two looks, or a poke
            # whose pod is gone (poked again: a poke is a look, not a try).
            inst.rescheduled = poking
            self._ready(inst, now)

    def _wait(self, inst: Instance, state: TaskState, kind: TimerKind, at: datetime) -> None:
        self.table.move(inst, state, record=False)
        inst.next_try_at = at
        self.timers.add(at, kind, inst.key, inst.attempt)

    def _resume(self, inst: Instance, pod: PodSeen, now: datetime) -> None:
        """Put an instance back in flight with one of its pods (as its launch did)."""
        if inst.state in (S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE):
            self.table.move(inst, S.SCHEDULED, record=False)
        if inst.state is not S.QUEUED:
            self.table.move(inst, S.QUEUED, record=False)
        inst.rescheduled = False
        inst.attempt = pod.attempt
        inst.pokes = max(inst.pokes, pod.poke)
        inst.launched_at = pod.created_at or now
        inst.attempt_started_at = pod.started_at
        inst.started_at = inst.started_at or pod.started_at
        self._hold(inst)
        task = self.plan.tasks[inst.task]
        if task.pool is not None:
            self.pools.hold(task.pool, task.pool_slots)
        if pod.started_at is not None:
            self.table.move(inst, S.RUNNING, record=False)
        else:
            due = inst.launched_at + task.start_timeout
            self.timers.add(due, TimerKind.START_TIMEOUT, inst.key, inst.attempt)

    # -- what happened while nobody watched ---------------------------------------------------
    def _replay(self, pending: Mapping[str, list[PodSeen]], now: datetime) -> None:
        """Replay pod ends in the order they happened; an instance whose next attempt (or
        poke) had been launched goes on with that pod."""
        heap: list[_Replay] = []
        order = 0
        for key, pods in pending.items():
            if pods and pods[0].result is not None:
                heapq.heappush(heap, (min(pods[0].ended_at or now, now), order, key))
                order += 1
        while heap:
            at, _, key = heapq.heappop(heap)
            pods = pending[key]
            pod = pods.pop(0)
            assert pod.result is not None
            self._ended(key, pod.attempt, pod.result, at)
            inst = self.instances[key]
            if pods and inst.state not in TERMINAL:
                self._resume(inst, pods[0], now)
                if pods[0].result is not None:
                    heapq.heappush(heap, (min(pods[0].ended_at or now, now), order, key))
                    order += 1

    def _gone(self, inst: Instance, *, started: bool, now: datetime) -> None:
        """The pod of a launched attempt is gone without a trace of how it ended."""
        number = inst.attempt
        if started:
            message = f"the pod of attempt {number} was deleted while the operator was down"
            result = Result(None, reason=AttemptReason.POD_DELETED, message=message)
            self._ended(inst.key, number, result, now)
            return
        self._release(inst)
        inst.lost += 1
        message = (
            f"the pod of attempt {number} is gone and was never seen to start (the operator "
            "stopped while creating it, or it was deleted meanwhile); not counted as a try"
        )
        inst.attempts.append(
            Attempt(number, None, now, None, AttemptReason.POD_LOST, message, inst.pokes)
        )
        inst.message = message
        self._move(inst, S.UP_FOR_RETRY)  # at once: a lost attempt has no retry delay
        self._ready(inst, now)
