"""A run's status writes: coalesced, paced, sent in the order they were chosen, and
retried until written or superseded.

TaskRun statuses are coalesced over ``STATUS_FLUSH_SECONDS``; the PipelineRun's
summary is written at most every ``run_status_interval`` while the run goes on (never
delayed at its start or end, nor when it records a notification sent or an SLA
missed). What to write is chosen under the run's lock, from the status projection
(``status.py``), and sent after the lock is released, in FIFO order, so a pod's end
arriving meanwhile launches the next task at once.

A write that fails (the API server away longer than the client's own retries) is not
dropped: its object is marked to write again, with a backoff, and the next flush chooses
what to write from the engine's state as it is then, so a newer status supersedes the
one that failed. Only a write the server refuses for what it says (a 4xx) is given up,
with an error in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from kascade import metrics
from kascade.kube.client import Kube, refused

log = logging.getLogger("kascade.writer")

STATUS_FLUSH_SECONDS = 1.0
"""TaskRun statuses are coalesced over this window."""
RUN_STATUS_SECONDS = 10.0
"""The PipelineRun's summary is written at most this often while it runs (and at its end)."""
RUN_STATUS_MAX_SECONDS = 60.0
RUN_STATUS_WRITES_PER_SECOND = 2.0
"""What all running summaries may cost together, until each lags RUN_STATUS_MAX_SECONDS."""

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0
"""A status write that failed is tried again after 1 s, 2 s, 4 s... at most 30 s apart."""

Write = tuple[str, str, dict[str, Any], str | None]
"""(plural, name, status, instance key: None for the PipelineRun)."""


def bare(value: Any) -> Any:
    """A status without its empty fields: what the API server keeps of a merge patch."""
    if isinstance(value, dict):
        return {k: bare(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [bare(v) for v in value]
    return value


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


class StatusWriter:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        run: str,
        *,
        lock: asyncio.Lock,
        taskrun_status: Callable[[str], tuple[str, dict[str, Any]] | None],
        run_status: Callable[[], dict[str, Any]],
        active_runs: Callable[[], int],
        written: Callable[[str, dict[str, Any]], None] = lambda key, status: None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.run = run
        self.lock = lock
        """The run's lock: writes are chosen under it."""
        self.taskrun_status = taskrun_status
        """Instance key -> (TaskRun name, its status), or None when it has no TaskRun."""
        self.run_status = run_status
        self.active_runs = active_runs
        self.on_written = written
        """Told of each TaskRun status once it is stored (what it records is durable)."""
        self.write_lock = asyncio.Lock()  # patches, in the order they were chosen
        self.dirty_keys: set[str] = set()
        self.run_dirty = False
        self.written: dict[str, dict[str, Any]] = {}  # last TaskRun status patched, per key
        self.written_run: dict[str, Any] | None = None
        self.run_written_at = -RUN_STATUS_MAX_SECONDS
        self.run_urgent = False
        self.flush_handle: asyncio.TimerHandle | None = None
        self.final: dict[str, Any] | None = None
        """The run's last summary, until it is written."""
        self.failures = 0
        """Flushes that failed in a row (the backoff)."""
        self.closed = False

    def seed(self, stored: Mapping[str, dict[str, Any]]) -> None:
        """What the TaskRuns hold (read at a restart): writing the same again is skipped."""
        for key, status in stored.items():
            self.written[key] = bare(status)

    def taskrun_changed(self, key: str) -> None:
        self.dirty_keys.add(key)

    def run_changed(self, *, urgent: bool = False) -> None:
        """The summary changed; ``urgent``: it records something a restart must not redo
        (a notification sent, an SLA missed), so it is not held back by the pacing."""
        self.run_dirty = True
        self.run_urgent = self.run_urgent or urgent

    def close(self) -> None:
        """Superseded (the run was reloaded or deleted): write nothing more."""
        self.closed = True
        self.cancel()

    def schedule(self, delay: float | None = None) -> None:
        """One pending flush; a sooner need (a TaskRun to write) pulls it forward.

        The run's summary may wait tens of seconds (run_status_interval); the TaskRuns
        must not wait with it.
        """
        if self.closed or not (self.dirty_keys or self.run_dirty or self.final is not None):
            return
        delay = STATUS_FLUSH_SECONDS if delay is None else delay
        if self.failures:
            backoff = RETRY_FIRST_SECONDS * 2 ** (self.failures - 1)
            delay = max(delay, min(RETRY_MAX_SECONDS, backoff))
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if self.flush_handle is not None:
            if self.flush_handle.when() <= when:
                return
            self.flush_handle.cancel()
        self.flush_handle = loop.call_at(when, lambda: loop.create_task(self.flush()))

    def cancel(self) -> None:
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None

    async def flush(self) -> None:
        """Write what changed: TaskRun statuses, then one PipelineRun status patch."""
        async with self.lock:
            self.flush_handle = None
            writes = self._choose(final=self.final)
        await self._send(writes)

    async def write_final(self, status: dict[str, Any]) -> None:
        """The run's last summary (and the TaskRuns still to write), never delayed."""
        self.cancel()
        self.final = status
        await self._send(self._choose(final=status))

    async def _send(self, writes: list[Write]) -> None:
        """Patch in the order chosen: the write lock is FIFO, so a summary chosen earlier
        never lands after a later one (the run's final status, say). The first write that
        fails stops the rest (they would land out of order): all of them are chosen again
        at the next try."""
        if not writes or self.closed:
            return
        async with self.write_lock:
            for i, (resource, name, status, key) in enumerate(writes):
                try:
                    await asyncio.to_thread(
                        self.kube.patch_status, resource, self.namespace, name, status
                    )
                except Exception as exc:
                    self._failed(writes[i:], exc)
                    return
                if key is None and status is self.final:
                    self.final = None
                elif key is not None:
                    self.on_written(key, status)
            self.failures = 0

    def _failed(self, writes: list[Write], exc: Exception) -> None:
        metrics.RECONCILE_ERRORS.labels("status").inc()
        names = ", ".join(f"{resource}/{name}" for resource, name, _, _ in writes)
        if refused(exc):  # the server will not take it as it is: trying again cannot help
            log.error("Status of %s refused (%s); not written: %s", writes[0][1], exc, names)
            writes = writes[1:]
        else:
            log.warning(
                "PipelineRun %s/%s: status writes failed (%s); trying again: %s",
                self.namespace,
                self.run,
                exc,
                names,
            )
        for _, _, _, key in writes:
            if key is None:
                self.written_run = None
                self.run_dirty = self.run_urgent = True
            else:
                self.written.pop(key, None)
                self.dirty_keys.add(key)
        self.failures += 1
        self.schedule()

    def _choose(self, final: dict[str, Any] | None = None) -> list[Write]:
        """What differs from what was last written (most flushes write one object)."""
        writes: list[Write] = []
        keys, self.dirty_keys = self.dirty_keys, set()
        for key in sorted(keys):
            found = self.taskrun_status(key)
            if found is None:
                continue
            name, status = found
            stripped = bare(status)
            if self.written.get(key) == stripped:
                continue
            self.written[key] = stripped
            writes.append(("taskruns", name, status, key))
        if final is None and self.run_dirty and not self.run_urgent:
            lag = run_status_interval(self.active_runs())
            wait = lag - (time.monotonic() - self.run_written_at)
            if wait > 0:  # the run's summary is written at most every few seconds
                self.schedule(wait)
                return writes
        if final is not None or self.run_dirty:
            self.run_dirty = self.run_urgent = False
            self.run_written_at = time.monotonic()
            run_status = final or self.run_status()
            if run_status != self.written_run:
                self.written_run = run_status
                writes.append(("pipelineruns", self.run, run_status, None))
            elif final is not None:
                self.final = None  # written already
        return writes


class EndedRunWriters:
    """The writers of runs whose driver finished, while they may still have to write.

    A finished run still writes: its last summary until it is stored (``retired``), and
    the outcome of its attempts' log archive, which comes after the end. The watch event
    of the final summary may arrive before the driver has even retired; the run ended, it
    was not superseded, so its writer stays open. Only a delete or a reload (a clear)
    closes it: a new driver, restored from the stored statuses, writes from then on.

    Writers are held weakly once their summary is stored: a writer lives as long as
    something may still write through it (an archive job's callback), never longer.
    """

    def __init__(self) -> None:
        self.retired: dict[tuple[str, str], StatusWriter] = {}
        """Finished runs whose last summary is not stored yet (retried until it is)."""
        self.open: weakref.WeakValueDictionary[tuple[str, str], StatusWriter] = (
            weakref.WeakValueDictionary()
        )
        self.ended_by_us: set[tuple[str, str]] = set()
        """Runs whose end a driver of this process decided (until deleted or reloaded)."""

    def finished(self, key: tuple[str, str], writer: StatusWriter) -> None:
        """The run's driver decided its end."""
        self.open[key] = writer
        self.ended_by_us.add(key)
        if writer.final is not None:
            self.retired[key] = writer

    def ended(self, key: tuple[str, str], writer: StatusWriter | None) -> None:
        """The run's final summary came back from the API server: no summary to retry;
        the writer stays open for what still follows the end."""
        self.retired.pop(key, None)
        if writer is not None:  # its driver, finished here, had not retired yet
            self.open[key] = writer
            self.ended_by_us.add(key)

    def ended_here(self, key: tuple[str, str]) -> bool:
        """A driver of this process decided the run's end (and writes what follows it)."""
        return key in self.ended_by_us

    def superseded(self, key: tuple[str, str]) -> None:
        """The run was deleted or reloaded: its old writers write nothing more."""
        self.ended_by_us.discard(key)
        for writer in (self.retired.pop(key, None), self.open.pop(key, None)):
            if writer is not None:
                writer.close()
