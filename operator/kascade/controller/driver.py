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
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kascade import metrics
from kascade.api.runs import AttemptReason, RunPhase, TaskState, instance_key
from kascade.controller import naming, notify, observe
from kascade.controller.podspec import (
    ANN_ATTEMPT,
    ANN_KEY,
    LABEL_PIPELINE,
    LABEL_RUN,
    LABEL_TASK,
    MANAGED_BY,
    RunIdentity,
    build_pod,
)
from kascade.engine.context import RunContext
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.instances import Instance
from kascade.engine.plan import Plan
from kascade.engine.restore import Observed
from kascade.engine.run import RunEngine
from kascade.kube.client import Kube

log = logging.getLogger("kascade.driver")
LAUNCHER = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="launch")
"""TaskRun and pod creation have threads of their own: the next task's pod is never
queued behind status patches (which use the loop's default executor)."""


async def _launching(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(LAUNCHER, fn, *args)


STATUS_FLUSH_SECONDS = 1.0
"""TaskRun statuses are coalesced over this window."""
RUN_STATUS_SECONDS = 10.0
"""The PipelineRun's summary is written at most this often while it runs (and at its end)."""
RUN_STATUS_MAX_SECONDS = 60.0
RUN_STATUS_WRITES_PER_SECOND = 2.0
"""What all running summaries may cost together, until each lags RUN_STATUS_MAX_SECONDS."""


def run_status_interval(active_runs: int) -> float:
    """How long a running PipelineRun's summary may lag, given how many runs are active.

    The TaskRuns carry each task's state as it happens; the run's summary (phase,
    progress, the task map) is a convenience for `kubectl get`. With many runs in flight
    the summaries would dominate the operator's writes, so together they are held to
    RUN_STATUS_WRITES_PER_SECOND: 10 s for up to 20 active runs, 25 s for 50, at most
    60 s. The first and the last summary of a run are never delayed by this.
    """
    spread = active_runs / RUN_STATUS_WRITES_PER_SECOND
    return min(RUN_STATUS_MAX_SECONDS, max(RUN_STATUS_SECONDS, spread))


RUNNING_WRITE_SECONDS = 10.0
"""A TaskRun's running state is written once it has lasted this long; a shorter one is
folded into the write of the attempt's end. A pod that is starting normally is not
written at all (the run's summary shows the task queued); one that cannot start
(image pull, unschedulable) is written at once, with why."""


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def parse_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


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
        self.write_lock = asyncio.Lock()  # status patches, in the order they were chosen
        self.on_wake = on_wake
        self.emit = emit
        self.active_runs = active_runs
        self.taskruns: dict[str, dict[str, Any]] = {}  # key → TaskRun metadata (name, uid)
        self.pods: dict[str, str] = {}  # key → pod name of the attempt in flight
        self.pod_created: dict[str, datetime] = {}
        self.notified: set[str] = set((run.get("status") or {}).get("notified") or [])
        self.sla_missed = bool((run.get("status") or {}).get("slaMissed"))
        self.dirty_keys: set[str] = set()
        self.status_dirty = False
        self.written: dict[str, dict[str, Any]] = {}  # last TaskRun status patched, per key
        self.written_run: dict[str, Any] | None = None
        self.run_written_at = -RUN_STATUS_MAX_SECONDS
        self.flush_handle: asyncio.TimerHandle | None = None
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
                observed = self._observed(taskruns, pods, status)
                decisions = self.engine.restore(observed, now)
            self.status_dirty = True
            await self._apply(decisions, now)
        for pod in pods:  # pods that ended while we were away
            await self.on_pod(pod, deleted=False, now=now)

    def _trigger(self) -> str:
        return str(((self.run.get("spec") or {}).get("trigger") or {}).get("kind", "manual"))

    def _observed(
        self, taskruns: list[dict[str, Any]], pods: list[dict[str, Any]], status: dict[str, Any]
    ) -> dict[str, Observed]:
        live: dict[str, tuple[int, str]] = {}
        for pod in pods:
            ann = pod["metadata"].get("annotations") or {}
            key, attempt = ann.get(ANN_KEY), int(ann.get(ANN_ATTEMPT, "0"))
            if key and attempt >= live.get(key, (0, ""))[0]:
                live[key] = (attempt, pod["metadata"]["name"])
        observed: dict[str, Observed] = {}
        for key, state in (status.get("tasks") or {}).items():
            observed[key] = Observed(state=TaskState(state))
        for tr in taskruns:
            key = instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex"))
            self.taskruns[key] = tr["metadata"]
            st = tr.get("status") or {}
            attempts = st.get("attempts") or []
            attempt = max([a.get("number", 0) for a in attempts] + [live.get(key, (0, ""))[0]])
            state = TaskState(st.get("state", "none"))
            launched = key in live and live[key][0] == attempt
            if launched:
                self.pods[key] = live[key][1]
                if state not in (TaskState.QUEUED, TaskState.RUNNING) and not _final(state):
                    state = TaskState.QUEUED
            observed[key] = Observed(
                state=state,
                attempt=attempt,
                outputs=st.get("outputs") or {},
                message=st.get("message"),
                next_try_at=parse_iso(st.get("nextRetryTime")),
                ready_at=parse_iso(st.get("readyTime")),
                first_poke_at=parse_iso(st.get("firstPokeTime")),
                pokes=st.get("pokes") or 0,
                launched=launched,
                item=(tr["spec"].get("item")),
            )
        return observed

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
                    self.dirty_keys.add(key)
                self._schedule_flush()
                return
            self.trouble.pop(key, None)
            self.waiting.pop(key, None)
            self.pods.pop(key, None)
            self.pod_created.pop(key, None)
            result = seen.result
            inst = self.engine.instances.get(key)
            task_id = self.plan.tasks[inst.task].id if inst else key
            state = "success" if result.ok else (result.reason or "failed")
            metrics.TASK_ATTEMPTS.labels(self.namespace, self.plan.name, task_id, state).inc()
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
                self.dirty_keys.add(key)
                self._schedule_flush()

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
            if key not in self.taskruns and _attempt_without_pod(self.engine.instances.get(key)):
                # A template error fails an attempt before any pod: its TaskRun still
                # shows why, and keeps the attempt count for a restore.
                await self._ensure_taskrun(key)
            self.dirty_keys.add(key)
            self.status_dirty = True
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
            self.status_dirty = True
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
        for miss in d.sla_misses:
            self.sla_missed = True
            metrics.SLA_MISSES.labels(self.namespace, self.plan.name, miss.task or "").inc()
            self.emit(self.run, "Warning", "SlaMissed", f"{miss.task or 'run'} missed its SLA")
            self.status_dirty = True
        if d.finished is not None:
            await self._finish(d.finished, now)
        else:
            self._schedule_flush()
        self.on_wake(self)

    def _event(self, key: str, state: TaskState) -> None:
        """Every state change is an Event: on the TaskRun, or on the run if it has none."""
        if state is TaskState.SCHEDULED:
            return  # transient: the next change (queued) follows at once
        inst = self.engine.instances.get(key)
        message = f"{key} is {state.value}"
        if inst is not None and inst.message and state.value in ("failed", "up_for_retry"):
            message += f": {inst.message}"
        kind = (
            "Warning" if state.value in ("failed", "upstream_failed", "up_for_retry") else "Normal"
        )
        reason = "Task" + "".join(p.capitalize() for p in state.value.split("_"))
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
                max(0.0, (datetime.now(UTC) - launch.ready_at).total_seconds())
            )
        self.trouble.pop(launch.key, None)

    async def _ensure_taskrun(self, key: str) -> dict[str, Any]:
        meta = self.taskruns.get(key)
        if meta is None:
            inst = self.engine.instances[key]
            task_id = self.plan.tasks[inst.task].id
            name = naming.taskrun_name(self.name, key)
            spec: dict[str, Any] = {
                "pipelineRunRef": {"name": self.name},
                "taskName": task_id,
            }
            if inst.map_index is not None:
                spec["mapIndex"] = inst.map_index
                spec["item"] = inst.outputs.get("__item__")
            body = {
                "apiVersion": "kascade.io/v1alpha1",
                "kind": "TaskRun",
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {
                        **MANAGED_BY,
                        **self.labels,
                        LABEL_RUN: naming.label_value(self.name),
                        LABEL_TASK: naming.label_value(key),
                    },
                    "ownerReferences": [self._owner_ref()],
                },
                "spec": spec,
            }
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
    def _schedule_flush(self, delay: float = STATUS_FLUSH_SECONDS) -> None:
        """One pending flush; a sooner need (a TaskRun to write) pulls it forward.

        The run's summary may wait tens of seconds (run_status_interval); the TaskRuns
        must not wait with it.
        """
        if not (self.dirty_keys or self.status_dirty):
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if self.flush_handle is not None:
            if self.flush_handle.when() <= when:
                return
            self.flush_handle.cancel()
        self.flush_handle = loop.call_at(when, lambda: loop.create_task(self.flush()))

    async def flush(self) -> None:
        """Write what changed: TaskRun statuses, then one PipelineRun status patch.

        The writes are chosen under the run's lock but sent after it is released: a
        pod's end arriving meanwhile launches the next task at once instead of waiting
        for status round trips (they made the tail of the scheduling delay).
        """
        async with self.lock:
            self.flush_handle = None
            writes = self._status_writes()
        await self._send(writes)

    async def _write_status(self, final: dict[str, Any] | None = None) -> None:
        await self._send(self._status_writes(final))

    async def _send(self, writes: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Patch in the order chosen: the write lock is FIFO, so a summary chosen earlier
        never lands after a later one (the run's final status, say)."""
        if not writes:
            return
        async with self.write_lock:
            for resource, name, status in writes:
                await asyncio.to_thread(
                    self.kube.patch_status, resource, self.namespace, name, status
                )

    def _status_writes(
        self, final: dict[str, Any] | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """What differs from what was last written (most flushes write one object)."""
        writes: list[tuple[str, str, dict[str, Any]]] = []
        keys, self.dirty_keys = self.dirty_keys, set()
        for key in sorted(keys):
            meta = self.taskruns.get(key)
            inst = self.engine.instances.get(key)
            if meta is None or inst is None:
                continue
            status = _taskrun_status(inst, self.pods.get(key), meta["name"], self.trouble.get(key))
            if self.written.get(key) == status:
                continue
            self.written[key] = status
            writes.append(("taskruns", meta["name"], status))
        if final is None and self.status_dirty:
            lag = run_status_interval(self.active_runs())
            wait = lag - (time.monotonic() - self.run_written_at)
            if wait > 0:  # the run's summary is written at most every few seconds
                self._schedule_flush(wait)
                return writes
        if final is not None or self.status_dirty:
            self.status_dirty = False
            self.run_written_at = time.monotonic()
            run_status = final or self.run_status()
            if run_status != self.written_run:
                self.written_run = run_status
                writes.append(("pipelineruns", self.name, run_status))
        return writes

    def run_status(self) -> dict[str, Any]:
        states = self.engine.states()
        counts: dict[str, int] = {}
        for state in states.values():
            counts[state.value] = counts.get(state.value, 0) + 1
        done = sum(counts.get(s, 0) for s in ("success", "failed", "skipped", "upstream_failed"))
        phase = self.engine.phase
        status: dict[str, Any] = {
            "phase": phase.value,
            "startTime": iso(self.engine.started_at),
            "counts": counts,
            "progress": f"{done}/{len(states)}",
            "tasks": {k: v.value for k, v in states.items()},
            "notified": sorted(self.notified),
            "nextWakeup": iso(self.engine.wake_at()),
            "slaMissed": self.sla_missed,
            "observedGeneration": self.run["metadata"].get("generation"),
        }
        if self.engine.message:
            status["message"] = self.engine.message
        if phase in (RunPhase.SUCCESS, RunPhase.FAILED):
            status["conditions"] = [
                {
                    "type": "Succeeded",
                    "status": "True" if phase is RunPhase.SUCCESS else "False",
                    "reason": "RunSucceeded" if phase is RunPhase.SUCCESS else "RunFailed",
                    "message": self.engine.message or phase.value,
                    "lastTransitionTime": iso(datetime.now(UTC)),
                }
            ]
        return status

    async def _finish(self, phase: RunPhase, now: datetime) -> None:
        self.finished = True
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        status = self.run_status()
        status["endTime"] = iso(now)
        await self._write_status(final=status)
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


def _attempt_without_pod(inst: Instance | None) -> bool:
    return bool(inst and inst.attempts and inst.attempts[-1].reason is AttemptReason.TEMPLATE_ERROR)


def _final(state: TaskState) -> bool:
    return state in (
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.SKIPPED,
        TaskState.UPSTREAM_FAILED,
    )


def _taskrun_status(
    inst: Instance, pod: str | None, taskrun: str, trouble: str | None = None
) -> dict[str, Any]:
    attempts = [
        {
            "number": a.number,
            "podName": None
            if a.reason is AttemptReason.TEMPLATE_ERROR
            else naming.pod_name(taskrun, a.number),
            "startTime": iso(a.start),
            "endTime": iso(a.end),
            "exitCode": a.exit_code,
            "reason": a.reason,
            "message": a.message,
        }
        for a in inst.attempts
    ]
    if pod and (not attempts or attempts[-1]["number"] != inst.attempt):
        attempts.append({"number": inst.attempt, "podName": pod, "startTime": iso(inst.started_at)})
    status: dict[str, Any] = {
        "state": inst.state.value,
        "attempts": attempts,
        "outputs": {k: v for k, v in inst.outputs.items() if k != "__item__"} or None,
        "message": (
            f"the pod cannot start: {trouble}"
            if trouble and inst.state is TaskState.QUEUED
            else inst.message
        ),
        "nextRetryTime": iso(inst.next_try_at) if inst.state.value.startswith("up_for") else None,
        "readyTime": iso(inst.ready_at),
        "pokes": inst.pokes or None,
        "firstPokeTime": iso(inst.first_poke_at),
    }
    return status
