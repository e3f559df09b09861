"""The engine's timers: what it must do at a given time, without an event to wake it."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from datetime import datetime
from enum import Enum


class TimerKind(Enum):
    RUN_TIMEOUT = "run_timeout"
    SLA_RUN = "sla_run"
    SLA_TASK = "sla_task"
    """The key is the task id."""
    RETRY = "retry"
    POKE = "poke"
    """A reschedule-mode sensor's next poke (another launch)."""
    ENGINE_POKE = "engine_poke"
    """The engine's own next look at a time, datetime or externalTask sensor."""
    START_TIMEOUT = "start_timeout"
    """A launched attempt that has not started by now is ended (``startTimeout``)."""


class Timers:
    """A heap of (time, kind, instance key, attempt); a timer that became moot (its
    instance moved on) is dropped when it fires, by the engine's own checks."""

    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, TimerKind, str, int]] = []
        self._seq = itertools.count()

    def add(self, at: datetime, kind: TimerKind, key: str = "", attempt: int = 0) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, key, attempt))

    def due(self, now: datetime) -> Iterator[tuple[TimerKind, str, int]]:
        """Pop the timers due by ``now``, earliest first (ones added meanwhile included)."""
        while self._heap and self._heap[0][0] <= now:
            _, _, kind, key, attempt = heapq.heappop(self._heap)
            yield kind, key, attempt

    @property
    def next_at(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap = []
