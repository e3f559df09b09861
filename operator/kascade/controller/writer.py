"""A run's status writes: coalesced, paced, and sent in the order they were chosen.

TaskRun statuses are coalesced over ``STATUS_FLUSH_SECONDS``; the PipelineRun's
summary is written at most every ``run_status_interval`` while the run goes on (never
delayed at its start or end). What to write is chosen under the run's lock, from the
status projection (``status.py``), and sent after the lock is released, in FIFO order,
so a pod's end arriving meanwhile launches the next task at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kascade.kube.client import Kube

STATUS_FLUSH_SECONDS = 1.0
"""TaskRun statuses are coalesced over this window."""
RUN_STATUS_SECONDS = 10.0
"""The PipelineRun's summary is written at most this often while it runs (and at its end)."""
RUN_STATUS_MAX_SECONDS = 60.0
RUN_STATUS_WRITES_PER_SECOND = 2.0
"""What all running summaries may cost together, until each lags RUN_STATUS_MAX_SECONDS."""

Write = tuple[str, str, dict[str, Any], str | None]
"""(plural, name, status, the instance key of a TaskRun)."""


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
        """Called with (instance key, status) once a TaskRun status is stored."""
        self.write_lock = asyncio.Lock()  # patches, in the order they were chosen
        self.dirty_keys: set[str] = set()
        self.run_dirty = False
        self.written: dict[str, dict[str, Any]] = {}  # last TaskRun status patched, per key
        self.written_run: dict[str, Any] | None = None
        self.run_written_at = -RUN_STATUS_MAX_SECONDS
        self.flush_handle: asyncio.TimerHandle | None = None

    def taskrun_changed(self, key: str) -> None:
        self.dirty_keys.add(key)

    def run_changed(self) -> None:
        self.run_dirty = True

    def schedule(self, delay: float = STATUS_FLUSH_SECONDS) -> None:
        """One pending flush; a sooner need (a TaskRun to write) pulls it forward.

        The run's summary may wait tens of seconds (run_status_interval); the TaskRuns
        must not wait with it.
        """
        if not (self.dirty_keys or self.run_dirty):
            return
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
            writes = self._choose()
        await self._send(writes)

    async def write_final(self, status: dict[str, Any]) -> None:
        """The run's last summary (and the TaskRuns still to write), never delayed."""
        self.cancel()
        await self._send(self._choose(final=status))

    async def _send(self, writes: list[Write]) -> None:
        """Patch in the order chosen: the write lock is FIFO, so a summary chosen earlier
        never lands after a later one (the run's final status, say)."""
        if not writes:
            return
        async with self.write_lock:
            for resource, name, status, key in writes:
                await asyncio.to_thread(
                    self.kube.patch_status, resource, self.namespace, name, status
                )
                if key is not None:
                    self.on_written(key, status)

    def _choose(self, final: dict[str, Any] | None = None) -> list[Write]:
        """What differs from what was last written (most flushes write one object)."""
        writes: list[Write] = []
        keys, self.dirty_keys = self.dirty_keys, set()
        for key in sorted(keys):
            found = self.taskrun_status(key)
            if found is None:
                continue
            name, status = found
            if self.written.get(key) == status:
                continue
            self.written[key] = status
            writes.append(("taskruns", name, status, key))
        if final is None and self.run_dirty:
            lag = run_status_interval(self.active_runs())
            wait = lag - (time.monotonic() - self.run_written_at)
            if wait > 0:  # the run's summary is written at most every few seconds
                self.schedule(wait)
                return writes
        if final is not None or self.run_dirty:
            self.run_dirty = False
            self.run_written_at = time.monotonic()
            run_status = final or self.run_status()
            if run_status != self.written_run:
                self.written_run = run_status
                writes.append(("pipelineruns", self.run, run_status, None))
        return writes
