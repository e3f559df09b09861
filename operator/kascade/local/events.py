"""What the local runner reports while it runs, for whoever displays progress.

The runner never prints: it emits these, so the same run can feed a live
terminal display, plain log lines, or nothing (``--quiet``, tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kascade.api.runs import TaskState


@dataclass(frozen=True)
class Event:
    kind: str
    """``state`` (an instance changed state), ``sla`` or ``notice`` (a warning for the user)."""
    at: datetime
    key: str | None = None
    state: TaskState | None = None
    attempt: int = 0
    duration: float | None = None
    """Seconds of the attempt that just ended, for terminal states."""
    message: str | None = None


OnEvent = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default sink: a run without a display (tests, ``--quiet``)."""
