"""What the operator reads from a PipelineRun: its dates, and the other runs an
externalTask sensor asks about."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from kascade.api.resources import PipelineRun
from kascade.engine.run_dates import RunDates, read_date, run_dates
from kascade.engine.schedule import DataInterval, parse_schedule

if TYPE_CHECKING:
    from kascade.controller.world import World


def run_dates_of(run: PipelineRun, body: dict[str, Any], now: datetime) -> RunDates:
    """A PipelineRun's dates by the engine's rule; a manual run without a logical date is
    dated by its creation time, so that a restarted operator finds the same dates."""
    assert run.spec.pipeline_spec is not None
    spec = run.spec.pipeline_spec
    given = run.spec.data_interval
    created = body["metadata"].get("creationTimestamp")
    return run_dates(
        parse_schedule(spec.schedule, spec.timezone),
        logical_date=read_date(run.spec.logical_date) if run.spec.logical_date else None,
        interval=DataInterval(read_date(given.start), read_date(given.end)) if given else None,
        requested_at=read_date(created) if created else now,
    )


class WatchedRuns:
    """Answers externalTask sensors from the runs the operator already watches."""

    def __init__(self, world: World, namespace: str) -> None:
        self.world = world
        self.namespace = namespace

    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None:
        for name, record in self.world.runs.get((self.namespace, pipeline), {}).items():
            if record.logical_date is None or record.logical_date != logical_date:
                continue
            if task is None:
                return record.phase
            return self.world.run_tasks.get((self.namespace, name), {}).get(task)
        return None
