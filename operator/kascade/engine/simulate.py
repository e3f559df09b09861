"""Drive a RunEngine on a virtual clock with scripted outcomes.

Used by the property tests and the benchmarks: it is the smallest possible
driver, so anything it finds wrong is the engine's fault, not a driver's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kascade.api.runs import RunPhase
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.run import RunEngine

Outcome = Callable[[Launch], Result]
"""What an attempt does: given the launch, how it ends."""


@dataclass
class Trace:
    phase: RunPhase | None = None
    launches: list[Launch] = field(default_factory=list)
    events: int = 0
    end: datetime | None = None


def simulate(
    engine: RunEngine,
    outcome: Outcome,
    *,
    start: datetime,
    duration: timedelta | Callable[[Launch], timedelta] = timedelta(seconds=1),
    max_events: int = 1_000_000,
    observe: Callable[[datetime, Decisions], None] | None = None,
) -> Trace:
    """Run to the end: every launched attempt takes ``duration`` then ends by ``outcome``.

    ``duration`` may depend on the launch; ``observe`` sees every Decisions with its time
    (the unit tests' recorder keeps them).
    """
    took = duration if callable(duration) else (lambda _launch: duration)
    trace = Trace()
    now = start
    running: list[tuple[datetime, int, Launch]] = []
    seq = 0
    decisions = engine.start(now)
    while trace.events < max_events:
        trace.events += 1
        if observe is not None:
            observe(now, decisions)
        for launch in decisions.launches:
            trace.launches.append(launch)
            engine.started(launch.key, launch.attempt, now)
            running.append((now + took(launch), seq, launch))
            seq += 1
        if decisions.finished is not None:
            trace.phase = decisions.finished
            trace.end = now
            return trace
        running.sort(key=lambda r: (r[0], r[1]))
        candidates = [t for t in (decisions.wake_at, running[0][0] if running else None) if t]
        if not candidates:
            trace.end = now
            return trace  # stuck: nothing running and nothing to wait for
        now = max(now, min(candidates))
        if running and running[0][0] <= now:
            _, _, launch = running.pop(0)
            decisions = engine.finished(launch.key, launch.attempt, outcome(launch), now)
        else:
            decisions = engine.tick(now)
    raise RuntimeError(f"no end after {max_events} events")
