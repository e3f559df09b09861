"""maxActiveTasks: how many task attempts may be in flight at once.

Airflow's ``max_active_tasks`` counts the task instances running across *all* active
runs of a DAG, so a backfill of 30 days with a limit of 4 runs 4 tasks, not 120. The
engine only sees its own run, so the count lives behind this small interface: the
local runner (one run at a time) counts inside the run, and the operator hands the
runs of one pipeline a shared counter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class TaskSlots(Protocol):
    def free(self) -> bool: ...

    def take(self) -> None: ...

    def give(self) -> None: ...


class RunSlots:
    """The limit counted inside one run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def free(self) -> bool:
        return self.used < self.limit

    def take(self) -> None:
        self.used += 1

    def give(self) -> None:
        self.used = max(0, self.used - 1)


class SharedSlots:
    """One pipeline's attempts in flight, counted across its runs.

    Each run checks the count against the limit of the spec it runs (a run keeps the
    spec it started with, so a lowered limit applies as the older runs drain).
    ``on_give`` lets the owner wake the other runs, whose queued tasks may now go.
    """

    def __init__(self, on_give: Callable[[], None] = lambda: None) -> None:
        self.used = 0
        self.on_give = on_give

    def for_run(self, limit: int) -> SharedSlotsOfRun:
        return SharedSlotsOfRun(self, limit)


class SharedSlotsOfRun:
    def __init__(self, shared: SharedSlots, limit: int) -> None:
        self.shared = shared
        self.limit = limit

    def free(self) -> bool:
        return self.shared.used < self.limit

    def take(self) -> None:
        self.shared.used += 1

    def give(self) -> None:
        self.shared.used = max(0, self.shared.used - 1)
        self.shared.on_give()
