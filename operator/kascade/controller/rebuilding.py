"""Rebuilding a run's driver after an operator restart; archiving the logs of ended
attempts, then deleting their finished pods.

A mixin of ``RunDriver`` (``driver.py``): the engine's state comes back from what the
cluster shows (``observed.py`` reads it, ``engine/restore.py`` decides), and the finished
pods a run keeps (``retention.py``) are counted again from the TaskRuns, so the pod
retention goes on where it was. With a log archive (``log_archiving.py``) a stored TaskRun
status hands its ended attempts to the archive, whose outcome is written in the status
in turn; only that second write lets the retention delete the pod.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kascade import metrics
from kascade.api.runs import TaskState, split_instance_key
from kascade.controller import log_archiving, observed, retention
from kascade.controller.podspec import RunIdentity
from kascade.controller.writer import StatusWriter
from kascade.engine.actions import runs_pod
from kascade.engine.decisions import Decisions
from kascade.engine.plan import Plan
from kascade.engine.run import RunEngine
from kascade.kube.client import Kube

log = logging.getLogger("kascade.driver")
RUN_SLA = "(run)"
"""The run's own SLA in ``status.slaMisses`` (task ids cannot have parentheses)."""


class Rebuilding:
    kube: Kube
    name: str
    namespace: str
    plan: Plan
    engine: RunEngine
    writer: StatusWriter
    taskruns: dict[str, dict[str, Any]]
    launched: dict[str, int]
    pods: dict[str, str]
    pod_created: dict[str, datetime]
    waiting: dict[str, str]
    sla_misses: set[str]
    finished_pods: retention.FinishedPods
    logs: log_archiving.RunLogs
    identity: RunIdentity
    clock: Callable[[], datetime]
    finished: bool
    log_flag: str | None

    def _restore(self, found: observed.Observation, now: datetime) -> Decisions:
        """Rebuild the engine from what the cluster shows (``engine/restore.py``)."""
        self.taskruns.update(found.taskruns)
        self.launched.update(found.launched)
        missed = {None if m == RUN_SLA else m for m in self.sla_misses}
        decisions = self.engine.restore(
            found.instances,
            now,
            started_at=found.started_at,
            sla_missed=missed,
        )
        for key, inst in self.engine.instances.items():
            pod = found.pods.get((key, inst.attempt, inst.pokes))
            if inst.holds_slot and pod is not None:
                self.pods[key] = pod
                if inst.state is TaskState.QUEUED and inst.launched_at is not None:
                    self.pod_created[key] = inst.launched_at
                    why = found.waiting.get((key, inst.attempt, inst.pokes))
                    if why is not None:
                        self.waiting[key] = why
        for key, obs in found.instances.items():  # attempts that ended while nobody watched
            task_id = split_instance_key(key)[0]
            for pod_seen in obs.pods:
                if pod_seen.result is not None:
                    ok, reason = pod_seen.result.ok, pod_seen.result.reason
                    metrics.attempt_ended(self.namespace, self.plan.name, task_id, ok, reason)
        # Every TaskRun is checked against what the engine now holds (its history rebuilt,
        # the ends replayed); only those that differ from what is stored are written.
        self.logs.restore(found.stored)
        self.writer.seed(found.stored)
        for key in found.taskruns:
            self.writer.taskrun_changed(key)
        # The finished pods kept so far, oldest first: the retention goes on from them.
        existing = set(found.pods.values())
        archiving = log_archiving.ARCHIVER is not None
        for key, status in sorted(found.stored.items(), key=lambda kv: _last_end(kv[1])):
            self._archive_logs(key, status)  # attempts that ended while nobody archived them
            for pod in self.finished_pods.written(status, self._is_sensor(key), archiving):
                if pod in existing:
                    asyncio.get_running_loop().create_task(self._delete_finished(pod))
        return decisions

    def _taskrun_written(self, key: str, status: dict[str, Any]) -> None:
        """A TaskRun status is stored: the logs of the attempts it records as ended go to
        the archive (off this path); pods it records as succeeded, and archived, may go."""
        self._archive_logs(key, status)
        self.logs.stored(key, status)
        archiving = log_archiving.ARCHIVER is not None
        for pod in self.finished_pods.written(status, self._is_sensor(key), archiving):
            asyncio.get_running_loop().create_task(self._delete_finished(pod))
        if self.log_flag == "set" and self.logs.all_durable() and not self._logs_unsettled():
            self.log_flag = "clearing"
            asyncio.get_running_loop().create_task(self._clear_log_flag())

    def _logs_unsettled(self) -> bool:
        """With an archive: some ended attempt (of a task with a pod, not a sensor's poke)
        whose log is neither archived nor given up yet."""
        if log_archiving.ARCHIVER is None:
            return False
        for key, inst in self.engine.instances.items():
            task = self.plan.tasks[inst.task]
            if task.sensor is not None or not runs_pod(task.spec):
                continue
            settled = self.logs.of(key)
            if any(a.start and a.had_pod and a.number not in settled for a in inst.attempts):
                return True
        return False

    async def _clear_log_flag(self) -> None:
        """Every outcome is stored: the run's ``logArchivePending`` goes. After the
        summary that set it (the write lock is FIFO); if this fails, a restarted operator
        looks at the TaskRuns again and finds nothing to do."""
        async with self.writer.write_lock:
            if self.writer.closed:
                return
            try:
                await asyncio.to_thread(
                    self.kube.patch_status,
                    "pipelineruns",
                    self.namespace,
                    self.name,
                    {"logArchivePending": None},
                )
            except Exception as exc:
                log.warning(
                    "PipelineRun %s/%s: logArchivePending not cleared: %s",
                    self.namespace,
                    self.name,
                    exc,
                )

    def _archive_logs(self, key: str, status: dict[str, Any]) -> None:
        if not self._is_sensor(key):  # a sensor's pokes say only "not yet"
            log_archiving.archive_ended(
                self.logs, self.identity, key, self.taskruns.get(key), status, self._log_archived
            )

    def _log_archived(self, job: log_archiving.ArchiveJob, outcome: log_archiving.Outcome) -> None:
        """The archive kept the log (or gave up): the attempt's status says so."""
        self.logs.settle(job.key, job.attempt, outcome)
        self.writer.taskrun_changed(job.key)
        self.writer.schedule()

    def _is_sensor(self, key: str) -> bool:
        inst = self.engine.instances.get(key)
        return inst is not None and self.plan.tasks[inst.task].sensor is not None

    async def _delete_finished(self, pod: str) -> None:
        try:
            await asyncio.to_thread(self.kube.delete_pod, self.namespace, pod)
        except Exception as exc:  # it stays; nothing depends on its going
            log.warning(
                "PipelineRun %s/%s: pod %s not deleted: %s", self.namespace, self.name, pod, exc
            )


def _last_end(status: dict[str, Any]) -> str:
    """When a TaskRun's last recorded attempt ended (ISO text sorts in time order)."""
    return max((str(a.get("endTime") or "") for a in status.get("attempts") or []), default="")
