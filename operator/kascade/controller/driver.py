"""A RunDriver applies one PipelineRun's engine decisions to the cluster.

The engine lives in memory for speed (an upstream pod's end leads to the next
pod's creation without re-reading anything), and is rebuilt from TaskRuns and
pods after a restart (``boot``), so memory is a cache, never the truth.
All decisions of one event are applied under the run's lock, in order: the
TaskRun before its pod (the pod is owned by it), status last and coalesced.
"""

from __future__ import annotations

import asyncio
import logging
import os
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
    retention,
)
from kascade.controller.actions import ClusterActions, PodlessAttempts
from kascade.controller.cache import ClusterCache
from kascade.controller.launching import Launching
from kascade.controller.mailing import Mailer
from kascade.controller.podspec import (
    ANN_ATTEMPT,
    ANN_KEY,
    LABEL_PIPELINE,
    LABEL_RUN,
    RunIdentity,
)
from kascade.controller.rebuilding import RUN_SLA, Rebuilding
from kascade.controller.reporting import Reporting
from kascade.controller.status import (
    iso,
    needs_own_taskrun,
    run_status,
    taskrun_status,
    wire,
)
from kascade.controller.writer import StatusWriter, run_status_interval
from kascade.engine.actions import runs_pod
from kascade.engine.context import RunContext
from kascade.engine.decisions import Decisions, Result
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.integrations import mailing
from kascade.kube.client import Kube

__all__ = ["RunDriver", "iso", "run_status_interval"]

log = logging.getLogger("kascade.driver")
RUNNING_WRITE_SECONDS = 10.0
"""A TaskRun's running state is written once it has lasted this long; a shorter one is
folded into the write of the attempt's end. A pod that is starting normally is not
written at all (the run's summary shows the task queued); one that cannot start
(image pull, unschedulable) is written at once, with why."""


class RunDriver(Reporting, Launching, Rebuilding):
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
        status = run.get("status") or {}
        self.notified: set[str] = set(status.get("notified") or [])
        self.sla_misses: set[str] = set(status.get("slaMisses") or [])
        if status.get("slaMissed") and not self.sla_misses:  # written before slaMisses
            self.sla_misses = {RUN_SLA, *(t.id for t in plan.tasks if t.sla is not None)}
        self.launched: dict[str, int] = {}  # key → the attempt its TaskRun says was launched
        self.relaunch_wait: dict[str, float] = {}  # key → backoff of a launch the API missed
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
        self.finished_pods = retention.FinishedPods(retention.keep_from_env())
        self.logs = log_archiving.RunLogs()
        """Which attempts' logs the archive holds (or gave up on)."""
        self.finished = False
        self.log_flag: str | None = None
        """``set``: the run's final summary says logArchivePending; ``clearing``: no more."""
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
        self.mailer = Mailer(
            kube,
            run,
            plan.name,
            plan.smtp_secret,
            emit,
            mailing.retry_delays(os.environ, mailing.RETRY_DELAYS),
        )
        self.podless = PodlessAttempts(
            ClusterActions(kube, run, ctx.run_id, self.mailer, clock), self._podless_ended
        )
        """Attempts of tasks without a pod (sendEmail, triggerPipeline), run here."""

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
            if not taskruns and not status.get("tasks") and not pods:
                metrics.RUNS_STARTED.labels(self.namespace, self.plan.name, self._trigger()).inc()
                decisions = self.engine.start(now)
            else:
                decisions = self._restore(observed.observe_run(taskruns, pods, status), now)
            self.writer.run_changed()
            await self._apply(decisions, now)

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
            self._count_end(key, result, now)
            await self._apply(self.engine.finished(key, attempt, result, now), now)

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

    # -- applying decisions ---------------------------------------------------------------
    async def _apply(self, d: Decisions, now: datetime) -> None:
        ended: list[tuple[str, int, Result]] = []  # attempts to end once `d` is applied
        if d.launches:  # independent: create them all at once
            refusals = await asyncio.gather(*(self._launch(launch, now) for launch in d.launches))
            ended += [r for r in refusals if r is not None]
        for key, reason in d.kills:
            if self.podless.cancel(key):
                continue
            pod = self.pods.pop(key, None)
            if pod:
                log.info("Stopping pod %s of %s: %s", pod, self.name, reason)
                await asyncio.to_thread(self.kube.delete_pod, self.namespace, pod)
        for key, attempt in d.start_timeouts:
            ended.append((key, attempt, await self._start_timed_out(key)))
        for key, state in d.changes:
            if state in _QUIET:
                continue  # scheduled/queued are not written; running is handled in on_pod
            if key not in self.taskruns and needs_own_taskrun(self.engine.instances.get(key)):
                # A template error or a refused pod fails an attempt before any pod, and an
                # engine sensor has none: its TaskRun still shows why, and keeps the
                # attempts and pokes for a restore.
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
            # Sent at once, recorded at once: a restart re-sends only what it cannot know
            # was sent (at least once, and a duplicate only within one status write).
            self.writer.run_changed(urgent=True)
            asyncio.get_running_loop().create_task(
                notify.send(
                    self.kube,
                    self.namespace,
                    self.plan.name,
                    self.name,
                    fire,
                    self._owner_ref(),
                    self.mailer,
                )
            )
        for key, why in d.waits:
            self.emit(self.run, "Warning", "TaskWaiting", f"{key} waits: {why}")
        if d.cache_writes and self.cache is not None:
            self.cache.keep(d.cache_writes, now)
        for miss in d.sla_misses:
            self.sla_misses.add(miss.task or RUN_SLA)
            metrics.SLA_MISSES.labels(self.namespace, self.plan.name, miss.task or "").inc()
            blocking = f" (blocking: {', '.join(miss.blocking[:20])})" if miss.blocking else ""
            message = f"{miss.task or 'run'} missed its SLA{blocking}"
            self.emit(self.run, "Warning", "SlaMissed", message)
            self.writer.run_changed(urgent=True)
        if d.finished is not None:
            await self._finish(d.finished, now)
        else:
            self.writer.schedule()
        self.on_wake(self)
        for key, attempt, result in ended:
            self._count_end(key, result, now)
            await self._apply(self.engine.finished(key, attempt, result, now), now)

    async def _start_timed_out(self, key: str) -> Result:
        """An attempt whose pod did not start in time: stop the pod, and say why it did not."""
        inst = self.engine.instances[key]
        limit = int(self.plan.tasks[inst.task].start_timeout.total_seconds())
        pod = self.pods.pop(key, None)
        self.pod_created.pop(key, None)
        why = self.waiting.pop(key, "the pod was not scheduled or its image not found")
        if pod:
            await asyncio.to_thread(self.kube.delete_pod, self.namespace, pod)
        message = f"the pod did not start within {limit}s: {why}"
        return Result(None, reason=AttemptReason.START_TIMEOUT, message=message)

    # -- status ---------------------------------------------------------------------------
    async def flush(self) -> None:
        await self.writer.flush()

    def _taskrun_status(self, key: str) -> tuple[str, dict[str, Any]] | None:
        meta = self.taskruns.get(key)
        inst = self.engine.instances.get(key)
        if meta is None or inst is None:
            return None
        podless = not runs_pod(self.plan.tasks[inst.task].spec)
        status = taskrun_status(
            inst,
            self.pods.get(key),
            meta["name"],
            self.trouble.get(key),
            self.logs.of(key),
            podless=podless,
        )
        return meta["name"], wire(status)

    def run_status(
        self, end: datetime | None = None, *, log_archive_pending: bool = False
    ) -> PipelineRunStatus:
        return run_status(
            self.engine,
            notified=self.notified,
            sla_misses=self.sla_misses,
            generation=self.run["metadata"].get("generation"),
            now=self.clock(),
            end=end,
            log_archive_pending=log_archive_pending,
        )

    async def _finish(self, phase: RunPhase, now: datetime) -> None:
        self.finished = True
        self.log_flag = "set" if self._logs_unsettled() else None
        final = self.run_status(end=now, log_archive_pending=self.log_flag is not None)
        await self.writer.write_final(wire(final))
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
