"""What the operator writes in a Pipeline's status: validity, schedule and recent runs."""

from __future__ import annotations

from kascade.api.base import Condition, Interval, Model


class RunSummary(Model):
    name: str
    """The run's name."""
    phase: str
    """queued, running, success or failed."""
    logical_date: str | None = None
    """The run's logical date."""
    start_time: str | None = None
    """When it started."""
    end_time: str | None = None
    """When it ended."""


class ResolvedDate(Model):
    """A relative date as written, and the date it was resolved to (once)."""

    written: str
    """The spec's value (``-1d``); a different value is resolved again."""
    date: str
    """The ISO date-time it stands for."""


class PipelineStatus(Model):
    """What the operator observed: validity, schedule and recent runs."""

    conditions: list[Condition] | None = None
    """Valid: whether the spec passed validation (and approval)."""
    errors: list[str] | None = None
    """Every validation error, each with its field path."""
    observed_generation: int | None = None
    """The generation these conditions were computed for."""
    task_count: int | None = None
    """How many tasks the compiled DAG has."""
    next_run: str | None = None
    """When the next scheduled run is due."""
    last_scheduled_interval: Interval | None = None
    """The schedule cursor: the data interval of the latest scheduled run."""
    resolved_start_date: ResolvedDate | None = None
    """A relative startDate (``-1d``), resolved when the pipeline was first seen."""
    last_run: str | None = None
    """The newest run's name."""
    last_runs: list[RunSummary] | None = None
    """The latest runs, newest first."""
    active_runs: int | None = None
    """Runs queued or running."""
    runs_succeeded: int | None = None
    """Kept runs that succeeded."""
    runs_failed: int | None = None
    """Kept runs that failed."""
