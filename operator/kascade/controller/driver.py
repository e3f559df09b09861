"""A RunDriver applies one PipelineRun's engine decisions to the cluster.

The engine lives in memory for speed (an upstream pod's end leads to the next
pod's creation without re-reading anything), and is rebuilt from TaskRuns and
pods after a restart (``boot``), so memory is a cache, never the truth.
All decisions of one event are applied under the run's lock, in order: the
TaskRun before its pod (the pod is owned by it), status last and coalesced.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kascade import metrics
from kascade.api.runs import AttemptReason, PipelineRunStatus, RunPhase, TaskState
from kascade.controller import (
    config,
    large_outputs,
    log_archiving,
    naming,
    notify,
    observe,
    observed,
)
from kascade.controller.cache import ClusterCache
from kascade.controller.podspec import (
    ANN_ATTEMPT,
    ANN_KEY,
    LABEL_PIPELINE,
    LABEL_RUN,
    RunIdentity,
    build_pod,
    taskrun_manifest,
)
from kascade.controller.status import (
    attempt_without_pod,
    iso,
    run_status,
    task_event,
    taskrun_status,
    wire,
)
from kascade.controller.writer import StatusWriter, run_status_interval
from kascade.engine.context import RunContext
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.kube.client import Kube

__all__ = ["RunDriver", "iso", "run_status_interval"]

log = logging.getLogger("kascade.driver")
LAUNCHER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="launch")
"""TaskRun and pod creation have threads of their own: the next task's pod is never
queued behind status patches (which use the loop's default executor)."""


async def _launching(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(LAUNCHER, fn, *args)


RUNNING_WRITE_SECONDS = 10.0
"""A TaskRun's running state is written once it has lasted this long; a shorter one is
folded into the write of the attempt's end. A pod that is starting normally is not
written at all (the run's summary shows the task queued); one that cannot start
(image pull, unschedulable) is written at once, with why."""


class RunDriver:
    def __init__(
        self,
        kube: Kube,
        run: dict[str, Any],
        plan: Plan,
        ctx: RunContext,
        engine: RunEngine,
        *,
        on_wake: Callable[[RunDriver], None],
        emit: Callable[[dict[str, Any], str, str, str], None],
        active_runs: Callable[[], int] = lambda: 1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: ClusterCache | None = None,
    ) -> None:
        meta = run["metadata"]
        self.kube = kube
        self.name: str = meta["name"]
        self.namespace: str = meta["namespace"]
        self.uid: str = meta["uid"]
        self.run = run
        self.plan = plan
        self.ctx = ctx
        self.engine = engine
        self.lock = asyncio.Lock()
        self.on_wake = on_wake
        self.emit = emit
        self.active_runs = active_runs
        self.clock = clock
        """Now (injected: tests and the operator share one clock)."""
        self.cache = cache
        """The pipeline's task cache (its TaskCache), when a task has ``cache``."""
        self.taskruns: dict[str, dict[str, Any]] = {}  # key → TaskRun metadata (name, uid)
        self.pods: dict[str, str] = {}  # key → pod name of the attempt in flight
        self.pod_created: dict[str, datetime] = {}
        self.notified: set[str] = set((run.get("status") or {}).get("notified") or [])
        self.sla_missed = bool((run.get("status") or {}).get("slaMissed"))
        self.writer = StatusWriter(
            kube,
            self.namespace,
            self.name,
            lock=self.lock,
            taskrun_status=self._taskrun_status,
            run_status=lambda: wire(self.run_status()),
            active_runs=active_runs,
            written=self._taskrun_written,
        )
        self.logs = log_archiving.RunLogs()
        """Which attempts' logs the archive holds (or gave up on)."""
        self.finished = False
        self.reload_token: str | None = None
        self.pool_version_seen = -1
        self.run_label = naming.label_value(self.name)
        self.waiting: dict[str, str] = {}  # key → why its pod is not running yet
        self.trouble: dict[str, str | None] = {}  # key → why its pod cannot start, as shown
        self.identity = RunIdentity(
            namespace=self.namespace,
            pipeline=plan.name,
            run=self.name,
            run_id=ctx.run_id,
            logical_date=ctx.logical_date,
        )
        self.labels = {LABEL_PIPELINE: naming.label_value(plan.name)}

    # -- life cycle ----------------------------------------------------------------
    async def boot(self, now: datetime) -> None:
        """Start fresh, or rebuild from the cluster after an operator restart."""
        async with self.lock:
            taskruns = await asyncio.to_thread(
                self.kube.list_objects,
                "taskruns",
                self.namespace,
                f"{LABEL_RUN}={naming.label_value(self.name)}",
            )
            pods = await asyncio.to_thread(
                self.kube.list_pods, self.namespace, f"{LABEL_RUN}={naming.label_value(self.name)}"
            )
            status = self.run.get("status") or {}
            if not taskruns and not status.get("tasks"):
                metrics.RUNS_STARTED.labels(self.namespace, self.plan.name, self._trigger()).inc()
                decisions = self.engine.start(now)
            else:
                self.logs.restore(taskruns)
                found = observed.observe(taskruns, pods, status)
                self.taskruns.update(found.taskruns)
                self.pods.update(found.pods)
                decisions = self.engine.restore(found.instances, now)
            self.writer.run_changed()
            await self._apply(decisions, now)
            for tr in taskruns:  # attempts that ended while no operator archived their logs
                key = log_archiving.key_of(tr)
                if key is not None and tr.get("status"):
                    self._taskrun_written(key, tr["status"])
        for pod in pods:  # pods that ended while we were away
            await self.on_pod(pod, deleted=False, now=now)

    def _trigger(self) -> str:
        return str(((self.run.get("spec") or {}).get("trigger") or {}).get("kind", "manual"))

    # -- events ----------------------------------------------------------------------
    async def on_pod(self, pod: dict[str, Any], *, deleted: bool, now: datetime) -> None:
        ann = pod["metadata"].get("annotations") or {}
        key, attempt = ann.get(ANN_KEY), int(ann.get(ANN_ATTEMPT, "0"))
        if key is None:
            return
        async with self.lock:
            if self.pods.get(key) != pod["metadata"]["name"]:
                return  # an older attempt's pod, or one we already handled
            seen = observe.view(pod, deleted=deleted)
            if seen.started:
                inst = self.engine.instances.get(key)
                before = inst.state if inst else None
                self.engine.started(key, attempt, now)
                created = self.pod_created.pop(key, None)
                if created is not None:  # as Airflow's task.queued_duration
                    metrics.TASK_POD_START.labels(self.namespace, self.plan.name).observe(
                        max(0.0, (now - created).total_seconds())
                    )
                if inst is not None and inst.state is not before:
                    # "running" is written only if it lasts: a short task gets one
                    # status write (its end) instead of two.
                    self._event(key, inst.state)
                    self._write_if_still(RUNNING_WRITE_SECONDS, key, attempt, TaskState.RUNNING)
            if seen.result is None:
                if seen.waiting_reason:
                    detail = seen.waiting_message or ""
                    self.waiting[key] = f"{seen.waiting_reason} {detail}".strip()
                stuck = observe.trouble(seen)
                if stuck != self.trouble.get(key):
                    # A pod that cannot start is shown on its TaskRun at once; one that
                    # is merely starting is not written (the run's summary shows queued).
                    self.trouble[key] = stuck
                    self.writer.taskrun_changed(key)
                self.writer.schedule()
                return
            self.trouble.pop(key, None)
            self.waiting.pop(key, None)
            self.pods.pop(key, None)
            self.pod_created.pop(key, None)
            result = seen.result
            if seen.large_outputs is not None:
                result = await large_outputs.collect(
                    self.kube,
                    config.CONFIG.outputs,
                    pod,
                    seen.large_outputs,
                    run=self.identity,
                    key=key,
                    attempt=attempt,
                )
            inst = self.engine.instances.get(key)
            task_id = self.plan.tasks[inst.task].id if inst else key
            metrics.attempt_ended(self.namespace, self.plan.name, task_id, result.ok, result.reason)
            if inst and inst.started_at:
                metrics.TASK_DURATION.labels(self.namespace, self.plan.name, task_id).observe(
                    (now - inst.started_at).total_seconds()
                )
            decisions = self.engine.finished(key, attempt, result, now)
            await self._apply(decisions, now)
            if not deleted and result.reason not in ("PodDeleted",):
                pass  # finished pods stay for `kubectl logs`; the TaskRun owns them

    def _write_if_still(self, delay: float, key: str, attempt: int, state: TaskState) -> None:
        """Write a transient state (queued, running) only if it lasts.

        A short attempt then costs one TaskRun status write (its end) instead of three;
        a long one still shows its pod and state in `kubectl get` after `delay`.
        """

        def check() -> None:
            inst = self.engine.instances.get(key)
            if inst is not None and inst.attempt == attempt and inst.state is state:
                self.writer.taskrun_changed(key)
                self.writer.schedule()

        asyncio.get_running_loop().call_later(delay, check)

    async def tick(self, now: datetime) -> None:
        async with self.lock:
            await self._apply(self.engine.tick(now), now)

    async def check_start_timeouts(self, now: datetime) -> None:
        """Fail attempts whose pod never started (unschedulable, image missing...)."""
        async with self.lock:
            for key, created in list(self.pod_created.items()):
                inst = self.engine.instances.get(key)
                if inst is None or inst.state is not TaskState.QUEUED:
                    self.pod_created.pop(key, None)
                    continue
                limit = self.plan.tasks[inst.task].start_timeout.total_seconds()
                if (now - created).total_seconds() < limit:
                    continue
                pod = self.pods.pop(key, None)
                self.pod_created.pop(key, None)
                why = self.waiting.pop(key, "the pod was not scheduled or its image not found")
                message = f"the pod did not start within {int(limit)}s: {why}"
                result = Result(None, reason=AttemptReason.START_TIMEOUT, message=message)
                decisions = self.engine.finished(key, inst.attempt, result, now)
                if pod:
                    await asyncio.to_thread(self.kube.delete_pod, self.namespace, pod)
                await self._apply(decisions, now)

    # -- applying decisions ---------------------------------------------------------------
    async def _apply(self, d: Decisions, now: datetime) -> None:
        if d.launches:  # independent: create them all at once
            await asyncio.gather(*(self._launch(launch, now) for launch in d.launches))
        for key, reason in d.kills:
            pod = self.pods.pop(key, None)
            if pod:
                log.info("Stopping pod %s of %s: %s", pod, self.name, reason)
                await asyncio.to_thread(self.kube.delete_pod, self.namespace, pod)
        for key, state in d.changes:
            if state in _QUIET:
                continue  # scheduled/queued are not written; running is handled in on_pod
            if key not in self.taskruns and attempt_without_pod(self.engine.instances.get(key)):
                # A template error fails an attempt before any pod: its TaskRun still
                # shows why, and keeps the attempt count for a restore.
                await self._ensure_taskrun(key)
            self.writer.taskrun_changed(key)
            self.writer.run_changed()
            self._event(key, state)
            if state is TaskState.UP_FOR_RETRY:
                inst = self.engine.instances[key]
                metrics.TASK_RETRIES.labels(
                    self.namespace, self.plan.name, self.plan.tasks[inst.task].id
                ).inc()
        for fire in d.notifications:
            ident = f"{fire.notification.name}/{fire.event}/{fire.task or '-'}"
            if fire.task is not None and fire.event in ("retry", "failure"):
                about = self.engine.instances.get(fire.task)
                ident += f"/{about.attempt if about else 0}"
            if ident in self.notified:
                continue
            self.notified.add(ident)
            self.writer.run_changed()
            asyncio.get_running_loop().create_task(
                notify.send(
                    self.kube,
                    self.namespace,
                    self.plan.name,
                    self.ctx.run_id,
                    fire,
                    self._owner_ref(),
                )
            )
        for key, why in d.waits:
            self.emit(self.run, "Warning", "TaskWaiting", f"{key} waits: {why}")
        if d.cache_writes and self.cache is not None:
            self.cache.keep(d.cache_writes, now)
        for miss in d.sla_misses:
            self.sla_missed = True
            metrics.SLA_MISSES.labels(self.namespace, self.plan.name, miss.task or "").inc()
            self.emit(self.run, "Warning", "SlaMissed", f"{miss.task or 'run'} missed its SLA")
            self.writer.run_changed()
        if d.finished is not None:
            await self._finish(d.finished, now)
        else:
            self.writer.schedule()
        self.on_wake(self)

    def _event(self, key: str, state: TaskState) -> None:
        """Every state change is an Event: on the TaskRun, or on the run if it has none."""
        inst = self.engine.instances.get(key)
        event = task_event(key, state, inst.message if inst else None)
        if event is None:
            return
        kind, reason, message = event
        meta = self.taskruns.get(key)
        if meta is not None:
            target = {
                "apiVersion": "kascade.io/v1alpha1",
                "kind": "TaskRun",
                "metadata": {"name": meta["name"], "namespace": self.namespace, "uid": meta["uid"]},
            }
            self.emit(target, kind, reason, message)
        else:
            self.emit(self.run, kind, reason, message)

    async def _launch(self, launch: Launch, now: datetime) -> None:
        """The TaskRun and the pod are created together: neither waits for the other.

        The pod is owned by the PipelineRun (its name is derived from the TaskRun's,
        which is deterministic), so the TaskRun's uid is not needed first; this keeps
        one API round trip, not two, between an upstream's end and the next pod.
        """
        trname = self.taskruns[launch.key]["name"] if launch.key in self.taskruns else None
        trname = trname or naming.taskrun_name(self.name, launch.key)
        name = naming.pod_name(trname, launch.attempt, launch.poke)
        body = build_pod(
            launch, name=name, run=self.identity, pipeline=self.plan.spec, owner=self._owner_ref()
        )
        self.pods[launch.key] = name
        self.pod_created[launch.key] = now
        await asyncio.gather(
            self._ensure_taskrun(launch.key),
            _launching(self.kube.create_pod, self.namespace, body),
        )
        if launch.ready_at is not None:
            metrics.TASK_SCHEDULING_DELAY.labels(self.namespace, self.plan.name).observe(
                max(0.0, (self.clock() - launch.ready_at).total_seconds())
            )
        self.trouble.pop(launch.key, None)

    async def _ensure_taskrun(self, key: str) -> dict[str, Any]:
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
            )
            created = await _launching(self.kube.create, "taskruns", self.namespace, body)
            if created is None:
                created = await asyncio.to_thread(self.kube.get, "taskruns", self.namespace, name)
            assert created is not None
            meta = created["metadata"]
            self.taskruns[key] = meta
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

    # -- status ---------------------------------------------------------------------------
    async def flush(self) -> None:
        await self.writer.flush()

    def _taskrun_status(self, key: str) -> tuple[str, dict[str, Any]] | None:
        meta = self.taskruns.get(key)
        inst = self.engine.instances.get(key)
        if meta is None or inst is None:
            return None
        status = taskrun_status(
            inst, self.pods.get(key), meta["name"], self.trouble.get(key), self.logs.of(key)
        )
        return meta["name"], wire(status)

    def _taskrun_written(self, key: str, status: dict[str, Any]) -> None:
        """A TaskRun status is stored: the logs of the attempts it records as ended are
        archived, off this path (a sensor's pokes say only "not yet": not archived)."""
        inst = self.engine.instances.get(key)
        if inst is not None and self.plan.tasks[inst.task].sensor is None:
            log_archiving.archive_ended(
                self.logs, self.identity, key, self.taskruns.get(key), status, self._log_archived
            )

    def _log_archived(self, job: log_archiving.ArchiveJob, outcome: log_archiving.Outcome) -> None:
        """The archive kept the log (or gave up): the attempt's status says so."""
        self.logs.settle(job.key, job.attempt, outcome)
        self.writer.taskrun_changed(job.key)
        self.writer.schedule()

    def run_status(self, end: datetime | None = None) -> PipelineRunStatus:
        return run_status(
            self.engine,
            notified=self.notified,
            sla_missed=self.sla_missed,
            generation=self.run["metadata"].get("generation"),
            now=self.clock(),
            end=end,
        )

    async def _finish(self, phase: RunPhase, now: datetime) -> None:
        self.finished = True
        await self.writer.write_final(wire(self.run_status(end=now)))
        metrics.RUNS_FINISHED.labels(self.namespace, self.plan.name, phase.value).inc()
        if self.engine.started_at:
            metrics.RUN_DURATION.labels(self.namespace, self.plan.name, phase.value).observe(
                (now - self.engine.started_at).total_seconds()
            )
        kind = "Normal" if phase is RunPhase.SUCCESS else "Warning"
        self.emit(
            self.run, kind, f"Run{phase.value.capitalize()}", self.engine.message or phase.value
        )


_QUIET = frozenset({TaskState.NONE, TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING})
