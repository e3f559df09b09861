"""The local runner's task cache: one JSON file per pipeline beside its run history.

``$KASCADE_HOME/task-cache/<pipeline>/cache.json`` holds the entries the engine's
cache rules (``engine/caching.py``) wrote, so a second ``kascade run`` of the same file
reuses a task's outputs as the operator does from the pipeline's TaskCache. The file is
read once when the run starts; each write merges with what is on disk (another run may
have written meanwhile), prunes, and replaces the file atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from kascade.engine import caching
from kascade.engine.caching import CacheEntry
from kascade.local.history import path_part

FILE = "cache.json"


def cache_folder(runs: Path, pipeline: str) -> Path:
    """``$KASCADE_HOME/task-cache/<pipeline>``, given the run history's root: beside the
    history, not in it, as run ids name the files and folders there (a run with the id
    ``cache`` must neither overwrite the entries nor be overwritten by them)."""
    return runs.parent / "task-cache" / path_part(pipeline)


class LocalCache:
    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE
        self.entries = self._read()

    def _read(self) -> dict[str, CacheEntry]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        found = (caching.entry_of(e) for e in (data.get("entries") or {}).values())
        return {e.id: e for e in found if e is not None}

    def get(self, task: str, key: str, now: datetime) -> CacheEntry | None:
        entry = self.entries.get(caching.entry_id(task, key))
        return entry if entry is not None and entry.fresh(now) else None

    def keep(self, writes: Iterable[CacheEntry], now: datetime) -> None:
        """Add the entries, merged with the file's, pruned; an unwritable file only loses
        the cache (the run goes on)."""
        writes = list(writes)
        if not writes:
            return
        merged = {**self._read(), **self.entries}
        merged.update({e.id: e for e in writes})
        self.entries = caching.pruned(merged.values(), now)
        body = {"entries": {i: caching.entry_wire(e) for i, e in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body, indent=1) + "\n")
            tmp.replace(self.path)
        except OSError:
            pass
