"""A Pipeline's task cache on the cluster: its TaskCache object, kept in memory.

The engine asks :meth:`ClusterCache.get` synchronously (no I/O in the engine), so the
entries are read from the TaskCache once, before the first run of the pipeline that has a
cached task starts, and answered from memory afterwards. Writes go to memory at once
(a mapped task's later instances hit what an earlier one wrote) and to the TaskCache's
status soon after, coalesced, as a merge patch of the entries that changed (pruned ones
are removed). An operator that dies before a write loses at most those entries: the
tasks run again. The object is owned by its Pipeline, so it goes with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kascade.api.base import API_VERSION, ObjectRef
from kascade.api.caches import CacheEntry as WireEntry
from kascade.api.caches import TaskCacheSpec, TaskCacheStatus
from kascade.controller.naming import label_value
from kascade.controller.podspec import LABEL_PIPELINE, MANAGED_BY
from kascade.engine import caching
from kascade.engine.caching import CacheEntry
from kascade.engine.plan import Plan
from kascade.kube.client import Kube

log = logging.getLogger("kascade.cache")
PLURAL = "taskcaches"


class ClusterCache:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        pipeline: str,
        owner: Callable[[], dict[str, Any] | None],
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.pipeline = pipeline
        self.owner = owner
        """The Pipeline's metadata (for the owner reference), if it is known."""
        self.entries: dict[str, CacheEntry] = {}
        self.loaded = False
        self._changed: dict[str, CacheEntry | None] = {}
        self._exists = False
        self._writing: asyncio.Task[None] | None = None

    async def load(self) -> None:
        """Read the TaskCache once (entries that do not parse are dropped)."""
        if self.loaded:
            return
        body = await asyncio.to_thread(self.kube.get, PLURAL, self.namespace, self.pipeline)
        self._exists = body is not None
        stored = ((body or {}).get("status") or {}).get("entries") or {}
        for data in stored.values():
            entry = caching.entry_of(data) if isinstance(data, dict) else None
            if entry is not None:
                self.entries[entry.id] = entry
        self.loaded = True

    def get(self, task: str, key: str, now: datetime) -> CacheEntry | None:
        entry = self.entries.get(caching.entry_id(task, key))
        return entry if entry is not None and entry.fresh(now) else None

    def keep(self, writes: Iterable[CacheEntry], now: datetime) -> None:
        """Remember the entries now, prune, and write the changes back soon."""
        merged = dict(self.entries)
        merged.update({e.id: e for e in writes})
        kept = caching.pruned(merged.values(), now)
        for gone in set(self.entries) - set(kept):
            self._changed[gone] = None
        for entry_id, entry in kept.items():
            if self.entries.get(entry_id) is not entry:
                self._changed[entry_id] = entry
        self.entries = kept
        if self._changed and (self._writing is None or self._writing.done()):
            self._writing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Write what changed (the next changes go in the next write)."""
        while self._changed:
            changed, self._changed = self._changed, {}
            try:
                await asyncio.to_thread(self._write, changed)
            except Exception:
                log.exception("TaskCache %s/%s: entries not written", self.namespace, self.pipeline)
                return

    def _write(self, changed: dict[str, CacheEntry | None]) -> None:
        if not self._exists:
            self.kube.create(PLURAL, self.namespace, self._manifest())
            self._exists = True
        status = TaskCacheStatus(
            entries={
                entry_id: None
                if entry is None
                else WireEntry.model_validate(caching.entry_wire(entry))
                for entry_id, entry in changed.items()
            }
        )
        self.kube.patch_status(
            PLURAL, self.namespace, self.pipeline, status.model_dump(by_alias=True, mode="json")
        )

    def _manifest(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.pipeline,
            "namespace": self.namespace,
            "labels": {**MANAGED_BY, LABEL_PIPELINE: label_value(self.pipeline)},
        }
        pipeline = self.owner()
        if pipeline and pipeline.get("uid"):
            meta["ownerReferences"] = [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Pipeline",
                    "name": self.pipeline,
                    "uid": pipeline["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ]
        spec = TaskCacheSpec(pipeline_ref=ObjectRef(name=self.pipeline))
        return {
            "apiVersion": API_VERSION,
            "kind": "TaskCache",
            "metadata": meta,
            "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }


class Caches:
    """The World's caches, one per pipeline that has a cached task, loaded on first use."""

    def __init__(self, kube: Kube, pipeline: Callable[[tuple[str, str]], dict[str, Any] | None]):
        self.kube = kube
        self.pipeline = pipeline
        """The Pipeline object the World knows by key (its uid owns the TaskCache)."""
        self.by_pipeline: dict[tuple[str, str], ClusterCache] = {}

    async def for_plan(self, pkey: tuple[str, str], plan: Plan) -> ClusterCache | None:
        if all(task.cache_expiry is None for task in plan.tasks):
            return None
        cache = self.by_pipeline.get(pkey)
        if cache is None:
            cache = self.by_pipeline[pkey] = ClusterCache(
                self.kube, pkey[0], pkey[1], lambda: (self.pipeline(pkey) or {}).get("metadata")
            )
        await cache.load()
        return cache

    def forget(self, pkey: tuple[str, str]) -> None:
        self.by_pipeline.pop(pkey, None)
