"""Archiving ended attempts' logs, off the reconcile path: a small bounded queue and workers.

When a TaskRun status recording an attempt's end is stored, the driver hands the
attempt here (:meth:`LogArchiver.submit` never waits: a full queue is a reported gap,
never a stalled run). A worker reads the pod's log through the API server (at most the
cap plus one byte) and writes it to the store. A store that is down is tried again with
a backoff (:class:`RetryPolicy`, pure), a bounded number of times; then the gap is
reported: a Warning Event on the TaskRun, ``kascade_log_archive_failures_total``, and
the attempt's ``logArchived: false`` with why. A pod that is already gone cannot be read
again: that is reported at once. Either way the outcome goes back to the driver, which
records it in the TaskRun's status; only then may the pod be deleted (``retention``).

A failed try never holds a worker through its backoff: the job waits for its retry
off the workers (a sleeping task) and is queued again afterwards, so while the store
is down healthy jobs still go through and the queue does not fill behind two sleeping
workers. A waiting job keeps no log bytes (up to the cap for each of a thousand jobs
would be a lot of memory): its retry reads the log again, which it can because the pod
stays until the outcome is recorded. A waiting job keeps its place in the queue's
capacity (queued plus waiting is at most ``QUEUE_SIZE``); a retry that finds no place
is a reported gap, like a submit that does.

Messages name the store's bucket and key and the error's first line, never a credential
(``integrations/objectstore`` strips obstore's request details).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kascade import metrics
from kascade.controller import masking
from kascade.controller.podspec import RunIdentity
from kascade.integrations.log_archive import LogArchive, LogKeyError
from kascade.integrations.objectstore import ObjectStoreError
from kascade.kube.client import Kube, PodLogGone

log = logging.getLogger("kascade.log_archive")

TASK_CONTAINER = "task"
QUEUE_SIZE = 1000
"""Attempts waiting to be archived, over all runs; beyond it an attempt's gap is reported."""
WORKERS = 2


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how soon a failed archive write is tried again (pure: no clock)."""

    tries: int = 5
    first_delay: float = 2.0
    factor: float = 2.0
    max_delay: float = 60.0

    def delay_after(self, failures: int) -> float | None:
        """Seconds to wait after the ``failures``-th failed try, or None: give up."""
        if failures >= self.tries:
            return None
        return min(self.max_delay, self.first_delay * self.factor ** (failures - 1))


@dataclass(frozen=True)
class ArchiveJob:
    """One ended attempt whose log is to be kept."""

    namespace: str
    pipeline: str
    run: str
    key: str
    """The task instance's key (``task`` or ``task[3]``)."""
    attempt: int
    pod: str
    taskrun: dict[str, Any]
    """The TaskRun's object reference (for the Event)."""


@dataclass(frozen=True)
class Outcome:
    archived: bool
    message: str | None = None
    """Why it was not archived (None when it was)."""


class GiveUp(Exception):
    """Trying again cannot help (the pod is gone, a name is invalid)."""


Done = Callable[[ArchiveJob, Outcome], None]
Emit = Callable[[dict[str, Any], str, str, str], None]


class LogArchiver:
    """The operator's one archiver: ``submit`` from the driver, workers on the event loop."""

    def __init__(
        self,
        kube: Kube,
        archive: LogArchive,
        *,
        emit: Emit,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        queue_size: int = QUEUE_SIZE,
        workers: int = WORKERS,
    ) -> None:
        self.kube = kube
        self.archive = archive
        self.emit = emit
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        """Injected: tests run the backoff on a fake clock."""
        self.capacity = queue_size
        """Jobs held at once, queued or waiting for a retry; beyond it a job is a gap."""
        self.queue: asyncio.Queue[tuple[ArchiveJob, Done, int]] = asyncio.Queue()
        """Unbounded itself: :attr:`capacity` bounds it together with :attr:`retries`."""
        self.retries: set[asyncio.Task[None]] = set()
        """Jobs waiting for their next try, each in a task that sleeps then queues it."""
        self.worker_count = workers
        self.tasks: list[asyncio.Task[None]] = []

    def submit(self, job: ArchiveJob, done: Done) -> None:
        """Queue ``job``; ``done`` is called (on the loop) once it is archived or given up.

        Never waits: with the queue full the attempt's gap is reported at once."""
        self._start()
        if self._held() >= self.capacity:
            self._gap(job, done, self._full())
            return
        self.queue.put_nowait((job, done, 0))

    async def drain(self) -> None:
        """Wait until every job is done, also those waiting for a retry (tests, shutdown):
        a job counts as unfinished in the queue from its submit to its outcome."""
        await self.queue.join()

    def stop(self) -> None:
        """Cancel the workers and the waiting retries (their jobs get no outcome: the
        next operator finds their attempts unsettled and archives them)."""
        for task in self.tasks:
            task.cancel()
        for task in self.retries:
            task.cancel()
            self.queue.task_done()  # its job is over: drain() does not wait for it
        self.tasks = []
        self.retries = set()

    def _held(self) -> int:
        return self.queue.qsize() + len(self.retries)

    def _full(self) -> str:
        return f"the archive queue is full ({self.capacity} logs waiting)"

    def _start(self) -> None:
        if self.tasks:
            return
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self._work()) for _ in range(self.worker_count)]

    async def _work(self) -> None:
        while True:
            job, done, failures = await self.queue.get()
            retrying = False
            try:
                retrying = await self._try(job, done, failures)
            except Exception:  # a bug must not stop the worker: the gap is still reported
                log.exception("archiving the log of %s failed", _what(job))
                self._gap(job, done, "internal error (see the operator's log)")
            finally:
                if not retrying:  # else the retry's task marks it done once it is queued
                    self.queue.task_done()

    async def _try(self, job: ArchiveJob, done: Done, failures: int) -> bool:
        """One try after ``failures`` failed ones: archived or given up (False), or to be
        tried again later (True). The log is read on every try, never kept between them."""
        try:
            data, secrets = await asyncio.to_thread(self._read, job)
            await asyncio.to_thread(self._write, job, data, secrets)
        except GiveUp as exc:
            self._gap(job, done, str(exc))
            return False
        except Exception as exc:  # the store or the API server: try again later
            failures += 1
            delay = self.policy.delay_after(failures)
            if delay is None:
                self._gap(job, done, f"{_reason(exc)} (after {failures} tries)")
                return False
            if self._held() >= self.capacity:  # the retry's place is taken now, not later
                why = f"{_reason(exc)} (after {failures} tries; no retry: {self._full()})"
                self._gap(job, done, why)
                return False
            log.info("log of %s not archived yet (%s); again in %.0fs", _what(job), exc, delay)
            self._retry_later(job, done, failures, delay)
            return True
        metrics.LOGS_ARCHIVED.labels(job.namespace, job.pipeline).inc()
        done(job, Outcome(True))
        return False

    def _retry_later(self, job: ArchiveJob, done: Done, failures: int, delay: float) -> None:
        task = asyncio.get_running_loop().create_task(self._wait(job, done, failures, delay))
        self.retries.add(task)

    async def _wait(self, job: ArchiveJob, done: Done, failures: int, delay: float) -> None:
        """Sleep off the backoff, then queue the job again (its place was kept)."""
        me = asyncio.current_task()
        try:
            await self.sleep(delay)
        except Exception:  # a broken clock must not lose the job: report its gap
            log.exception("waiting to archive the log of %s again failed", _what(job))
            self.retries.discard(me)
            try:
                self._gap(job, done, "internal error (see the operator's log)")
            finally:
                self.queue.task_done()
            return
        # in one step: the job is never counted twice, and stays unfinished for drain()
        self.retries.discard(me)
        self.queue.put_nowait((job, done, failures))
        self.queue.task_done()  # the failed try's

    def _read(self, job: ArchiveJob) -> tuple[bytes, list[str]]:
        """The log (at most the cap plus one byte), and the values of the Secrets its pod
        uses: they are masked in what is kept, as in outputs (``masking.py``)."""
        try:
            data = self.kube.read_log_bytes(
                job.namespace, job.pod, TASK_CONTAINER, self.archive.max_bytes + 1
            )
        except PodLogGone as exc:
            raise GiveUp(f"the pod's log could not be read: {exc}") from None
        return data, self.kube.secret_values(job.namespace, job.pod)

    def _write(self, job: ArchiveJob, data: bytes, secrets: list[str]) -> None:
        def mask(kept: bytes) -> bytes:
            return masking.mask_bytes(kept, secrets)

        try:
            self.archive.write(
                job.namespace, job.run, job.key, job.attempt, data, mask=mask if secrets else None
            )
        except LogKeyError as exc:
            raise GiveUp(str(exc)) from None

    def _gap(self, job: ArchiveJob, done: Done, why: str) -> None:
        message = f"the log of attempt {job.attempt} (pod {job.pod}) was not archived: {why}"
        log.warning("%s: %s", _what(job), message)
        metrics.LOG_ARCHIVE_FAILURES.labels(job.namespace, job.pipeline).inc()
        self.emit(job.taskrun, "Warning", "LogNotArchived", message)
        done(job, Outcome(False, why))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ObjectStoreError):
        return f"the store did not take it: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _what(job: ArchiveJob) -> str:
    return f"TaskRun {job.namespace}/{job.taskrun.get('metadata', {}).get('name', job.key)}"


class RunLogs:
    """One run's book of archived logs: which attempts are done, given up, or in the queue.

    Pure (the driver submits what :meth:`due` returns). What is settled lives in the
    TaskRuns' status (``logArchived``), so a restarted operator neither archives a log
    twice nor forgets a gap (:meth:`restore`).
    """

    def __init__(self) -> None:
        self.settled: dict[str, dict[int, tuple[bool, str | None]]] = {}
        self.pending: set[tuple[str, int]] = set()
        self.durable: dict[str, set[int]] = {}
        """Per key, the attempts whose outcome a stored TaskRun status records."""

    def restore(self, stored: Mapping[str, dict[str, Any]]) -> None:
        """From the stored TaskRun statuses (instance key -> status)."""
        for key, status in stored.items():
            for attempt in status.get("attempts") or []:
                if attempt.get("logArchived") is not None:
                    book = self.settled.setdefault(key, {})
                    book[int(attempt["number"])] = (
                        bool(attempt["logArchived"]),
                        attempt.get("logArchiveMessage"),
                    )
        for key, status in stored.items():
            self.stored(key, status)

    def stored(self, key: str, status: dict[str, Any]) -> None:
        """A TaskRun status is stored: the outcomes it records are durable."""
        for attempt in status.get("attempts") or []:
            if attempt.get("logArchived") is not None and attempt.get("number"):
                self.durable.setdefault(key, set()).add(int(attempt["number"]))

    def all_durable(self) -> bool:
        """Nothing queued, and every outcome known is in a stored TaskRun status."""
        return not self.pending and all(
            set(book) <= self.durable.get(key, set()) for key, book in self.settled.items()
        )

    def due(self, key: str, status: dict[str, Any]) -> list[tuple[int, str]]:
        """(attempt, pod) of the attempts the stored ``status`` records as ended whose logs
        are neither archived, given up nor queued; they count as queued from now on.

        An attempt that never started its pod (start timeout, template error, a cache
        hit) has no log to keep."""
        found = []
        settled = self.settled.get(key, {})
        for attempt in status.get("attempts") or []:
            number, pod = attempt.get("number"), attempt.get("podName")
            if not (pod and number and attempt.get("startTime") and attempt.get("endTime")):
                continue
            if attempt.get("logArchived") is not None or number in settled:
                continue
            if (key, number) in self.pending:
                continue
            self.pending.add((key, number))
            found.append((int(number), str(pod)))
        return found

    def settle(self, key: str, number: int, outcome: Outcome) -> None:
        self.pending.discard((key, number))
        self.settled.setdefault(key, {})[number] = (outcome.archived, outcome.message)

    def of(self, key: str) -> dict[int, tuple[bool, str | None]]:
        return self.settled.get(key, {})


def archive_ended(
    logs: RunLogs,
    run: RunIdentity,
    key: str,
    taskrun: dict[str, Any] | None,
    status: dict[str, Any],
    done: Done,
) -> None:
    """Queue the logs of the attempts a just-stored TaskRun ``status`` records as ended
    (nothing without an archive)."""
    archiver = ARCHIVER
    if archiver is None or taskrun is None:
        return
    ref = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "TaskRun",
        "metadata": {"name": taskrun["name"], "namespace": run.namespace, "uid": taskrun["uid"]},
    }
    for number, pod in logs.due(key, status):
        job = ArchiveJob(run.namespace, run.pipeline, run.run, key, number, pod, ref)
        archiver.submit(job, done)


ARCHIVER: LogArchiver | None = None
"""The operator's archiver (set at start-up when a store is configured; None: logs live
as long as their pods)."""


def configure(archiver: LogArchiver | None) -> None:
    global ARCHIVER
    if ARCHIVER is not None and ARCHIVER is not archiver:
        ARCHIVER.stop()
    ARCHIVER = archiver
