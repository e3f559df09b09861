"""Task caching: a task whose cache key matches a fresh successful attempt does not run.

Prefect's ``cache_key_fn``/``cache_expiration``, Flyte's and KFP's task cache, written
``cache: {key: <template>, expiresAfter: <duration>}``. The rules, the same in both
drivers:

* The key is a template rendered for the attempt (params, macros, upstream outputs,
  inputs, a mapped instance's item); it is scoped to the task (two tasks with the same
  key never share an entry) and to the pipeline.
* A hit is a fresh entry of this task with this key: the instance succeeds with the
  entry's outputs, without a process or a pod, and its attempt says ``Cached``.
* A successful attempt writes its entry (outputs, when, which run), fresh for
  ``expiresAfter`` (default 1 day). A hit writes nothing.
* A run with ``noCache`` (``kascade run --no-cache``, ``kascade trigger --no-cache``), or
  a task cleared with ``kascade clear``, does not read the cache, and refreshes it.
* Entries are pruned when written: expired ones go, and at most :data:`MAX_ENTRIES`
  (newest first) stay per pipeline.

Where the entries live is the driver's business (``controller/cache.py``: a TaskCache
object per pipeline; ``local/cache.py``: a file beside the local run history); the engine
asks through :class:`CacheLookup` and hands writes over in ``Decisions.cache_writes``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

MAX_ENTRIES = 500
"""Entries kept per pipeline (the newest); with 4 KiB of inline outputs at most each, a
pipeline's cache stays well below an etcd object's 1.5 MiB."""


@dataclass(frozen=True)
class CacheEntry:
    """One successful attempt's outputs, reusable until ``expires``."""

    task: str
    key: str
    outputs: Mapping[str, Any]
    created: datetime
    expires: datetime
    run_id: str
    """The run whose attempt wrote it."""
    attempt: int = 1

    @property
    def id(self) -> str:
        return entry_id(self.task, self.key)

    def fresh(self, now: datetime) -> bool:
        return now < self.expires


def entry_id(task: str, key: str) -> str:
    """A stable name for (task, key), fit for a map key in an object's status."""
    return hashlib.sha256(f"{task}\0{key}".encode()).hexdigest()[:40]


class CacheLookup(Protocol):
    """The entries a driver keeps; ``get`` answers from memory (no I/O in the engine)."""

    def get(self, task: str, key: str, now: datetime) -> CacheEntry | None: ...


@dataclass(frozen=True)
class Refresh:
    """Which tasks of a run do not read the cache (they run, and write a new entry)."""

    everything: bool = False
    tasks: frozenset[str] = frozenset()

    def __contains__(self, task: str) -> bool:
        return self.everything or task in self.tasks


NO_REFRESH = Refresh()


def hit_message(entry: CacheEntry) -> str:
    return f"cached: key {entry.key!r}, from run {entry.run_id}"


def pruned(entries: Iterable[CacheEntry], now: datetime) -> dict[str, CacheEntry]:
    """The entries to keep: fresh ones, the newest :data:`MAX_ENTRIES`, by id."""
    fresh = sorted((e for e in entries if e.fresh(now)), key=lambda e: e.created, reverse=True)
    kept: dict[str, CacheEntry] = {}
    for entry in fresh:
        if entry.id not in kept and len(kept) < MAX_ENTRIES:
            kept[entry.id] = entry
    return kept


def entry_wire(entry: CacheEntry) -> dict[str, Any]:
    """The JSON form both drivers store (the TaskCache's status, the local cache file)."""
    return {
        "task": entry.task,
        "key": entry.key,
        "outputs": dict(entry.outputs),
        "created": entry.created.isoformat(),
        "expires": entry.expires.isoformat(),
        "runId": entry.run_id,
        "attempt": entry.attempt,
    }


def entry_of(data: Mapping[str, Any]) -> CacheEntry | None:
    """An entry read back; None for one that does not parse (it is dropped, not fatal)."""
    try:
        return CacheEntry(
            task=str(data["task"]),
            key=str(data["key"]),
            outputs=dict(data.get("outputs") or {}),
            created=datetime.fromisoformat(str(data["created"])),
            expires=datetime.fromisoformat(str(data["expires"])),
            run_id=str(data.get("runId") or ""),
            attempt=int(data.get("attempt") or 1),
        )
    except (KeyError, TypeError, ValueError):
        return None
