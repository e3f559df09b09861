"""Launching an attempt: its number recorded on its TaskRun, then its pod created.

A mixin of ``RunDriver`` (``driver.py``). The attempt's number is written before its pod
can exist (the TaskRun's creation carries the first one, a retry patches it on): a
restarted operator that finds neither the pod nor a record of its end knows the number
may have been used, and never uses it again (``observed.py``, ``engine/restore.py``).
Pods are named after the TaskRun and the attempt (and poke), so creating one twice
answers AlreadyExists. A pod the API server refuses is the attempt's result
(``PodRejected``); a launch the API server missed is tried again, with the same number.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from kascade import metrics
from kascade.api.runs import TaskState
from kascade.controller import naming, observe, observed
from kascade.controller.actions import PodlessAttempts
from kascade.controller.podspec import RunIdentity, build_pod, taskrun_manifest
from kascade.controller.writer import StatusWriter
from kascade.engine.actions import runs_pod
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.instances import Instance
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.kube.client import Kube, Refused

log = logging.getLogger("kascade.driver")
LAUNCHER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="launch")
"""TaskRun and pod creation have threads of their own: the next task's pod is never
queued behind status patches (which use the loop's default executor)."""


async def _launching(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(LAUNCHER, fn, *args)


RELAUNCH_FIRST_SECONDS = 1.0
RELAUNCH_MAX_SECONDS = 30.0
"""A launch the API server missed is tried again after 1 s, 2 s, 4 s... at most 30 s."""


def _still(inst: Instance | None, launch: Launch) -> bool:
    """The instance still waits for this launch (nothing ended or killed it meanwhile)."""
    return (
        inst is not None
        and inst.attempt == launch.attempt
        and inst.pokes == launch.poke
        and inst.holds_slot
        and inst.state is TaskState.QUEUED
    )


class Launching:
    kube: Kube
    name: str
    namespace: str
    uid: str
    run: dict[str, Any]
    plan: Plan
    engine: RunEngine
    identity: RunIdentity
    labels: dict[str, str]
    lock: asyncio.Lock
    finished: bool
    clock: Callable[[], datetime]
    emit: Callable[[dict[str, Any], str, str, str], None]
    taskruns: dict[str, dict[str, Any]]
    pods: dict[str, str]
    pod_created: dict[str, datetime]
    trouble: dict[str, str | None]
    launched: dict[str, int]
    relaunch_wait: dict[str, float]
    podless: PodlessAttempts
    writer: StatusWriter

    def _emit_on(self, key: str, kind: str, reason: str, message: str) -> None:
        raise NotImplementedError

    def _count_end(self, key: str, result: Result, now: datetime) -> None:
        raise NotImplementedError

    def _apply(self, d: Decisions, now: datetime) -> Awaitable[None]:
        raise NotImplementedError

    async def _launch(self, launch: Launch, now: datetime) -> tuple[str, int, Result] | None:
        """Record the attempt on its TaskRun, then create its pod.

        The attempt's number is written before its pod can exist (the TaskRun's creation
        carries the first): a restarted operator that finds neither the pod nor a record
        of its end knows the number may have been used, and never uses it again. The pod
        is owned by the PipelineRun and named after the TaskRun (deterministic), so
        creating it twice answers AlreadyExists. Returns the attempt's result when the API
        server refuses the pod (``PodRejected``).
        """
        if not runs_pod(launch.spec):
            await self._launch_podless(launch, now)
            return None
        trname = self.taskruns[launch.key]["name"] if launch.key in self.taskruns else None
        trname = trname or naming.taskrun_name(self.name, launch.key)
        name = naming.pod_name(trname, launch.attempt, launch.poke)
        body = build_pod(
            launch, name=name, run=self.identity, pipeline=self.plan.spec, owner=self._owner_ref()
        )
        self.pods[launch.key] = name
        self.pod_created[launch.key] = now
        try:
            await self._ensure_taskrun(launch.key, launched=launch.attempt)
            await _launching(self.kube.create_pod, self.namespace, body)
        except Refused as refusal:
            self.pods.pop(launch.key, None)
            self.pod_created.pop(launch.key, None)
            result = observe.rejected(refusal.status, refusal.reason, refusal.message)
            why = (result.message or "").removeprefix("PodRejected: ")
            self.emit(self.run, "Warning", "PodRejected", f"{launch.key}: {why}")
            self._emit_on(launch.key, "Warning", "PodRejected", why)
            return launch.key, launch.attempt, result
        except Exception as exc:  # the API server is away: the same attempt, later
            log.warning(
                "PipelineRun %s/%s: launching %s failed (%s); trying again",
                self.namespace,
                self.name,
                name,
                exc,
            )
            self._launch_later(launch)
            return None
        self.relaunch_wait.pop(launch.key, None)
        if launch.ready_at is not None:
            metrics.TASK_SCHEDULING_DELAY.labels(self.namespace, self.plan.name).observe(
                max(0.0, (self.clock() - launch.ready_at).total_seconds())
            )
        self.trouble.pop(launch.key, None)
        return None

    async def _launch_podless(self, launch: Launch, now: datetime) -> None:
        """The operator does the task's work itself (sendEmail, triggerPipeline). Its
        number is recorded on its TaskRun as a pod's is; with no pod to find, a restarted
        operator launches the same attempt again, which finds the run it made
        (``controller/actions.py``, ``engine/restore.py``)."""
        await self._ensure_taskrun(launch.key, launched=launch.attempt)
        self.engine.started(launch.key, launch.attempt, now)
        self.writer.taskrun_changed(launch.key)
        self.podless.start(launch)

    async def _podless_ended(self, launch: Launch, result: Result) -> None:
        async with self.lock:
            if self.finished:
                return
            now = self.clock()
            ok, reason = result.ok, result.reason
            metrics.attempt_ended(self.namespace, self.plan.name, launch.task_id, ok, reason)
            await self._apply(self.engine.finished(launch.key, launch.attempt, result, now), now)

    def stop(self) -> None:
        """The run is deleted or reloaded: its podless attempts in flight stop here, and it
        writes nothing more."""
        self.podless.stop()
        self.writer.close()

    def _launch_later(self, launch: Launch) -> None:
        """Try a launch again after a backoff, unless the attempt moved on meanwhile."""
        wait = self.relaunch_wait.get(launch.key)
        wait = RELAUNCH_FIRST_SECONDS if wait is None else min(RELAUNCH_MAX_SECONDS, wait * 2)
        self.relaunch_wait[launch.key] = wait
        name = self.pods.get(launch.key)

        async def again() -> None:
            await asyncio.sleep(wait)
            async with self.lock:
                inst = self.engine.instances.get(launch.key)
                if self.finished or not _still(inst, launch) or self.pods.get(launch.key) != name:
                    return
                refused = await self._launch(launch, self.clock())
            if refused is not None:
                async with self.lock:
                    now = self.clock()
                    self._count_end(refused[0], refused[2], now)
                    await self._apply(self.engine.finished(*refused, now), now)

        asyncio.get_running_loop().create_task(again())

    async def _ensure_taskrun(self, key: str, launched: int = 0) -> dict[str, Any]:
        """The instance's TaskRun, made if new; ``launched`` is the attempt about to be
        launched, recorded on it first (its ``kascade.io/attempt`` annotation)."""
        meta = self.taskruns.get(key)
        if meta is None:
            inst = self.engine.instances[key]
            name = naming.taskrun_name(self.name, key)
            body = taskrun_manifest(
                name=name,
                namespace=self.namespace,
                run=self.name,
                key=key,
                task_id=self.plan.tasks[inst.task].id,
                map_index=inst.map_index,
                item=inst.item,
                labels=self.labels,
                owner=self._owner_ref(),
                launched=launched,
            )
            created = await _launching(self.kube.create, "taskruns", self.namespace, body)
            if created is None:
                created = await asyncio.to_thread(self.kube.get, "taskruns", self.namespace, name)
            assert created is not None
            meta = created["metadata"]
            self.taskruns[key] = meta
            self.launched[key] = observed.launched_of(meta)
        if launched > self.launched.get(key, 0):
            marker = {"metadata": {"annotations": {observed.ANN_LAUNCHED: str(launched)}}}
            await _launching(self.kube.patch, "taskruns", self.namespace, meta["name"], marker)
            self.launched[key] = launched
        return {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "TaskRun",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _owner_ref(self) -> dict[str, Any]:
        return {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "PipelineRun",
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
