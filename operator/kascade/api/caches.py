"""The TaskCache kind: the cache entries of one Pipeline's tasks (``cache`` on a task).

One object per pipeline, named after it and owned by it (deleted with it), written only
by the operator (its status): which task, which rendered key, the outputs to reuse, and
until when. The rules are the engine's (``engine/caching.py``); a dedicated kind keeps the
operator's RBAC to its own objects (it needs no right on ConfigMaps).
"""

from __future__ import annotations

from pydantic import Field

from kascade.api.base import JsonValue, Model, ObjectRef


class TaskCacheSpec(Model):
    """Which pipeline this is the cache of."""

    pipeline_ref: ObjectRef
    """The Pipeline whose tasks wrote these entries."""


class CacheEntry(Model):
    """One successful attempt's outputs, reusable by later attempts with the same key."""

    task: str
    """The task id (``group.task``)."""
    key: str
    """The rendered cache key."""
    outputs: dict[str, JsonValue] | None = None
    """The outputs given to a task that hits this entry (large ones as references)."""
    created: str
    """When the attempt that wrote it succeeded."""
    expires: str
    """After this it is not used (``cache.expiresAfter`` after ``created``)."""
    run_id: str = Field(default="")
    """The run of that attempt."""
    attempt: int = 1
    """Its attempt number."""


class TaskCacheStatus(Model):
    """The entries, by a hash of (task, key); at most 500, expired ones pruned."""

    entries: dict[str, CacheEntry | None] | None = None
    """Entry id → entry (a null removes one, in a merge patch)."""
