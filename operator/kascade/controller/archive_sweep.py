"""Logs of runs that ended while their archiving was still under way, and whose operator
stopped before it was done: a restarted operator finishes the job.

A run's driver decides its end and writes its last summary; the logs of the attempts that
ended last are archived after that (``log_archiving.py``), and their outcome is written
in the TaskRuns later still. An operator that stops in between would leave those
attempts neither archived nor reported, and their pods kept for ever (the retention waits
for the outcome). So the last summary says ``logArchivePending: true`` while outcomes
are missing, and the driver clears it once every outcome is stored. The next operator
sees a finished run that still says so and was not ended by itself: it reads the run's
TaskRuns (one LIST, only for such runs), queues what is missing in the same archive, and
writes each outcome into its TaskRun, then clears the mark. Idempotent: an attempt whose
TaskRun already records an outcome is never archived again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from kascade.api.runs import TaskRunStatus, instance_key
from kascade.controller import log_archiving, naming
from kascade.controller.log_archiving import ArchiveJob, Outcome, RunLogs
from kascade.controller.podspec import LABEL_RUN
from kascade.kube.client import Kube

log = logging.getLogger("kascade.log_archive")

Key = tuple[str, str]


class FinishedRunLogs:
    """The operator's sweeper of finished runs marked ``logArchivePending``."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.seen: set[Key] = set()
        """Runs swept (or being swept) by this process; forgotten when a run is deleted."""
        self.open: dict[Key, int] = {}
        """Runs being swept -> outcomes still to write."""

    def consider(self, key: Key, body: dict[str, Any], *, ended_here: bool) -> None:
        """A finished run's watch event. ``ended_here``: this process's driver ended it,
        and writes its outcomes itself."""
        status = body.get("status") or {}
        if ended_here or key in self.seen or not status.get("logArchivePending"):
            return
        if log_archiving.ARCHIVER is None:
            return  # no archive configured now: the mark stays for an operator that has one
        self.seen.add(key)
        pipeline = ((body.get("spec") or {}).get("pipelineRef") or {}).get("name", "")
        asyncio.get_running_loop().create_task(self._sweep(key, str(pipeline)))

    def forget(self, key: Key) -> None:
        self.seen.discard(key)

    async def _sweep(self, key: Key, pipeline: str) -> None:
        namespace, run = key
        try:
            selector = f"{LABEL_RUN}={naming.label_value(run)}"
            taskruns = await asyncio.to_thread(
                self.kube.list_objects, "taskruns", namespace, selector
            )
        except Exception as exc:  # the next operator start tries again
            log.warning("PipelineRun %s/%s: TaskRuns not read: %s", namespace, run, exc)
            self.seen.discard(key)
            return
        jobs = list(_missing(namespace, pipeline, run, taskruns))
        archiver = log_archiving.ARCHIVER
        if not jobs or archiver is None:
            await self._clear(key)
            return
        log.info("PipelineRun %s/%s: archiving %d logs left over", namespace, run, len(jobs))
        self.open[key] = len(jobs)
        for job in jobs:
            archiver.submit(job, self._done)

    def _done(self, job: ArchiveJob, outcome: Outcome) -> None:
        asyncio.get_running_loop().create_task(self._record(job, outcome))

    async def _record(self, job: ArchiveJob, outcome: Outcome) -> None:
        """The outcome into the attempt's TaskRun (read again: the list is replaced)."""
        name = job.taskrun["metadata"]["name"]
        try:
            await asyncio.to_thread(self._write_outcome, job, outcome)
        except Exception as exc:  # the mark stays: the next operator start tries again
            log.warning("TaskRun %s/%s: log outcome not written: %s", job.namespace, name, exc)
            self.open.pop((job.namespace, job.run), None)
            return
        key = (job.namespace, job.run)
        if key in self.open:
            self.open[key] -= 1
            if self.open[key] == 0:
                del self.open[key]
                await self._clear(key)

    def _write_outcome(self, job: ArchiveJob, outcome: Outcome) -> None:
        name = job.taskrun["metadata"]["name"]
        current = self.kube.get("taskruns", job.namespace, name)
        if current is None:
            return  # deleted meanwhile: nothing to record on
        status = TaskRunStatus.model_validate(current.get("status") or {})
        for attempt in status.attempts or []:
            if attempt.number == job.attempt and attempt.log_archived is None:
                attempt.log_archived = outcome.archived
                attempt.log_archive_message = outcome.message
                attempts = [a.dump() for a in status.attempts or []]  # a list is replaced whole
                self.kube.patch_status("taskruns", job.namespace, name, {"attempts": attempts})
                return

    async def _clear(self, key: Key) -> None:
        try:
            await asyncio.to_thread(
                self.kube.patch_status, "pipelineruns", *key, {"logArchivePending": None}
            )
        except Exception as exc:
            log.warning("PipelineRun %s/%s: logArchivePending not cleared: %s", *key, exc)


def _missing(
    namespace: str, pipeline: str, run: str, taskruns: list[dict[str, Any]]
) -> list[ArchiveJob]:
    """The ended attempts whose TaskRun records no outcome (``RunLogs.due``)."""
    jobs = []
    book = RunLogs()
    for tr in taskruns:
        spec, meta = tr.get("spec") or {}, tr["metadata"]
        key = instance_key(spec.get("taskName", ""), spec.get("mapIndex"))
        ref = {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "TaskRun",
            "metadata": {"name": meta["name"], "namespace": namespace, "uid": meta.get("uid")},
        }
        status = tr.get("status") or {}
        if status.get("pokes") is not None:
            continue  # a sensor's pokes say only "not yet" (not archived, as in the driver)
        for number, pod in book.due(key, status):
            jobs.append(ArchiveJob(namespace, pipeline, run, key, number, pod, ref))
    return jobs
