"""What fills the store: shared watches on a cluster, or the local history on disk.

``ClusterFeed`` runs one watcher per kind and namespace scope (pipelines, runs,
pools, SLA-miss events) for the whole server, plus a TaskRun watcher per run
that someone has open, stopped a minute after the last viewer left.
``HistoryFeed`` rescans ``$KASCADE_HOME/local-runs`` once a second (file stats,
no API at all) and loads the records that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from kascade.local.history import LocalHistory, read_record
from kascade.ui.store import Key, Store

RUN_WATCH_IDLE_SECONDS = 60.0
SYNC_WAIT_SECONDS = 5.0
SCAN_SECONDS = 1.0
SLA_SELECTOR = "reason=SlaMissed"


class ClusterFeed:
    def __init__(self, kube: Any, store: Store, namespaces: list[str] | None) -> None:
        """``namespaces``: the scopes to watch; None for the whole cluster."""
        self.kube = kube
        self.store = store
        self.namespaces = namespaces
        self.watchers: list[Any] = []
        self.run_watchers: dict[Key, Any] = {}
        self.last_used: dict[Key, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None

    def _sink(self, resource: str, scope: Any) -> Any:
        loop = self.loop
        assert loop is not None
        store = self.store

        async def apply_page(obj: Any) -> None:
            store.apply(resource, scope, "PAGE", obj)

        def on_event(kind: str, obj: Any) -> None:
            if kind == "PAGE":  # wait: one page of a big list in memory at a time
                future = asyncio.run_coroutine_threadsafe(apply_page(obj), loop)
                with contextlib.suppress(Exception):  # the server is stopping
                    future.result(timeout=60)
            else:
                loop.call_soon_threadsafe(store.apply, resource, scope, kind, obj)

        return on_event

    async def start(self) -> None:
        from kascade.kube.watching import Watcher

        self.loop = asyncio.get_running_loop()
        scopes: list[str | None] = [*self.namespaces] if self.namespaces else [None]
        for ns in scopes:
            for resource in ("pipelines", "pipelineruns", "pools"):
                self.watchers.append(
                    Watcher(self.kube, resource, ns, self._sink(resource, ns)).start()
                )
            self.watchers.append(
                Watcher(
                    self.kube, "events", ns, self._sink("events", ns), field_selector=SLA_SELECTOR
                ).start()
            )
        self._reaper = asyncio.create_task(self._reap())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for w in [*self.watchers, *self.run_watchers.values()]:
            w.stop()

    def errors(self) -> list[str]:
        return [f"{w.resource}: {w.error}" for w in self.watchers if w.error]

    def watching(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    async def wait_synced(self, timeout: float = SYNC_WAIT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        for w in self.watchers:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.to_thread(w.synced.wait, left)

    async def open_run(self, namespace: str, run: str) -> None:
        """Make sure the run's TaskRuns are watched (and loaded) before a page reads them."""
        from kascade.controller import naming
        from kascade.controller.podspec import LABEL_RUN
        from kascade.kube.watching import Watcher

        key = (namespace, run)
        self.last_used[key] = time.monotonic()
        watcher = self.run_watchers.get(key)
        if watcher is None:
            watcher = Watcher(
                self.kube,
                "taskruns",
                namespace,
                self._sink("taskruns", key),
                label_selector=f"{LABEL_RUN}={naming.label_value(run)}",
            ).start()
            self.run_watchers[key] = watcher
        if not watcher.synced.is_set():
            await asyncio.to_thread(watcher.synced.wait, SYNC_WAIT_SECONDS)

    def keep_open(self, namespace: str, run: str) -> None:
        """A live page still shows this run."""
        if (namespace, run) in self.run_watchers:
            self.last_used[(namespace, run)] = time.monotonic()

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(RUN_WATCH_IDLE_SECONDS / 4)
            now = time.monotonic()
            for key, used in list(self.last_used.items()):
                if now - used > RUN_WATCH_IDLE_SECONDS:
                    self.last_used.pop(key, None)
                    watcher = self.run_watchers.pop(key, None)
                    if watcher is not None:
                        watcher.stop()
                    self.store.taskruns.pop(key, None)


class HistoryFeed:
    """Local runs: the records under $KASCADE_HOME, rescanned by file modification time."""

    namespaces = None

    def __init__(self, store: Store, history: LocalHistory | None = None) -> None:
        self.store = store
        self.history = history or LocalHistory()
        self.seen: dict[Path, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.scan()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def errors(self) -> list[str]:
        return []

    def watching(self, namespace: str) -> bool:
        return namespace == ""

    async def wait_synced(self, timeout: float = SYNC_WAIT_SECONDS) -> None:
        return None

    async def open_run(self, namespace: str, run: str) -> None:
        return None

    def keep_open(self, namespace: str, run: str) -> None:
        return None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(SCAN_SECONDS)
            self.scan()

    def scan(self) -> None:
        now: dict[Path, float] = {}
        for pipeline in self.history.pipelines():
            for path in (self.history.root / pipeline).glob("*.json"):
                try:
                    now[path] = path.stat().st_mtime
                except OSError:
                    continue
        for path, mtime in now.items():
            if self.seen.get(path) != mtime:
                record = read_record(path)
                if record is not None:
                    self.store.put_record((path.parent.name, record["ref"]), record)
        for path in set(self.seen) - set(now):
            self.store.put_record((path.parent.name, path.stem), None)
        self.seen = now
