"""When a run happens and what it covers, as every driver reads a pipeline.

The rules here used to be copied by each entry point (the local runner, ``kascade
trigger``, the operator's scheduler and run start, the test helpers) and the copies
drifted. They live here once:

* ``startDate``/``endDate`` without a zone are read in ``spec.timezone``
  (:class:`PipelineSchedule`); a logical date without a zone is UTC (:func:`parse_date`).
* A manual run's logical date and data interval (:func:`manual_run`), Airflow's rule:
  the logical date is the date given, or the moment of the trigger; the data interval
  is the schedule's latest complete interval ending at or before it
  (``Timetable.infer_manual_data_interval``). For ``@daily`` and 2024-01-15 that is
  [2024-01-14, 2024-01-15), as Airflow 3's ``dag.test`` gives.
* A run's id: ``<trigger>__<logical date in UTC, ISO>`` (:func:`run_id`).
* A relative ``startDate`` (``-1d``, Airflow's ``days_ago(1)``) is resolved once, when the
  operator first sees the Pipeline, and kept in its status so that it never moves
  (:func:`resolve_start_date`): whole days go back to midnight in ``spec.timezone``, as
  ``days_ago`` does; other durations (``-6h``) count back from that moment, to the second.

Nothing here reads the clock: ``now`` is always an argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from kascade.api.pipeline import PipelineSpec
from kascade.engine.durations import parse_duration
from kascade.engine.errors import Issue, shown
from kascade.engine.schedule import (
    DataInterval,
    Timetable,
    due_intervals,
    next_run_at,
    parse_schedule,
    zone,
)

MIN_YEAR, MAX_YEAR = 1900, 2999
"""Every date a pipeline or a run names (startDate, endDate, a logical date, a datetime
sensor's target) lies in these years: with durations capped at 100 years
(``durations.MAX_DURATION``), date arithmetic then stays far inside ``datetime``'s
calendar (years 1 to 9999) instead of overflowing at run time."""


def read_date(value: str, default_zone: tzinfo = UTC) -> datetime:
    """An ISO date or date-time; one without a zone is read in ``default_zone``.

    Raises ValueError with a message fit for a user.
    """
    text = value.strip()
    quoted = shown(value)
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{quoted} is not an ISO date (2026-01-31) or date-time") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise ValueError(
            f"{quoted} is out of range: dates must be in the years {MIN_YEAR}-{MAX_YEAR}"
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_zone)


def parse_date(
    value: str, path: str, issues: list[Issue], default_zone: tzinfo = UTC
) -> datetime | None:
    """:func:`read_date` that records a problem under ``path`` instead of raising."""
    try:
        return read_date(value, default_zone)
    except ValueError as exc:
        issues.append(Issue(path, str(exc)))
        return None


RELATIVE_HINT = (
    "write an ISO date (2024-01-01), or a relative one: a minus sign and a duration "
    "(-1d for Airflow's days_ago(1), -2w, -6h)"
)


def is_relative(value: str) -> bool:
    """``-1d``: an offset back from when the operator first sees the pipeline (an ISO date
    never starts with a minus sign)."""
    return value.strip().startswith("-")


def relative_offset(value: str) -> timedelta:
    """How far back a relative start date goes; ValueError (with what to write) otherwise."""
    text = value.strip().removeprefix("-").strip()
    try:
        offset = parse_duration(text)
    except ValueError:
        raise ValueError(f"{value!r} is not a relative date: {RELATIVE_HINT}") from None
    return offset


def resolve_start_date(value: str, now: datetime, tz: tzinfo = UTC) -> datetime:
    """The date a ``startDate`` stands for at ``now``: an absolute one as written (read in
    ``tz``), a relative one counted back from ``now`` (whole days from midnight in ``tz``,
    like ``days_ago``). Raises ValueError with what to write instead."""
    if not is_relative(value):
        return read_date(value, tz)
    offset = relative_offset(value)
    if offset % timedelta(days=1) == timedelta(0):
        midnight = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - offset
    return (now - offset).astimezone(tz).replace(microsecond=0)


@dataclass(frozen=True)
class PipelineSchedule:
    """A pipeline's timetable with its bounds, read once from its spec."""

    timetable: Timetable
    start_date: datetime | None
    end_date: datetime | None
    catchup: bool

    @classmethod
    def of(cls, spec: PipelineSpec, resolved_start: datetime | None = None) -> PipelineSchedule:
        """Raises ValueError (a ScheduleError for the schedule) on a spec that does not parse;
        validation reports the same problems with their field paths. A relative
        ``startDate`` needs the date it was resolved to (``resolved_start``)."""
        timetable = parse_schedule(spec.schedule, spec.timezone)
        tz = zone(spec.timezone)
        start = None
        if spec.start_date and is_relative(spec.start_date):
            if resolved_start is None:
                raise ValueError(f"startDate {spec.start_date!r} is relative and not resolved yet")
            start = resolved_start
        elif spec.start_date:
            start = read_date(spec.start_date, tz)
        end = read_date(spec.end_date, tz) if spec.end_date else None
        return cls(timetable, start, end, spec.catchup)

    def due(
        self, *, last: DataInterval | None, now: datetime, limit: int | None = None
    ) -> list[DataInterval]:
        """The scheduled runs that should exist by ``now`` after ``last``, oldest first."""
        return due_intervals(self.timetable, last=last, now=now, limit=limit, **self._bounds())

    def next_run(self, *, last: DataInterval | None, now: datetime) -> datetime | None:
        """When the next scheduled run is created (<= now: due already)."""
        return next_run_at(self.timetable, last=last, now=now, **self._bounds())

    def _bounds(self) -> dict[str, Any]:
        return {
            "start_date": self.start_date,
            "end_date": self.end_date,
            "catchup": self.catchup,
        }


@dataclass(frozen=True)
class RunDates:
    """A run's logical date (in UTC) and data interval."""

    logical_date: datetime
    interval: DataInterval


def manual_run(timetable: Timetable, *, logical_date: datetime | None, now: datetime) -> RunDates:
    """A manual run's logical date and data interval (see the module docstring)."""
    at = logical_date if logical_date is not None else now
    return RunDates(at.astimezone(UTC), timetable.manual_interval(at))


def run_dates(
    timetable: Timetable,
    *,
    logical_date: datetime | None,
    interval: DataInterval | None,
    requested_at: datetime,
) -> RunDates:
    """The dates of a PipelineRun as written: a given interval is kept (scheduled runs and
    backfills carry theirs); anything else is a manual run requested at ``requested_at``
    (the run's creation time), so that a restarted operator computes the same dates."""
    if interval is not None:
        start = logical_date if logical_date is not None else interval.start
        return RunDates(start.astimezone(UTC), interval)
    return manual_run(timetable, logical_date=logical_date, now=requested_at)


def run_id(trigger: str, logical_date: datetime) -> str:
    """``manual__2024-01-15T00:00:00+00:00``: Airflow's run id, with the date in UTC."""
    return f"{trigger}__{logical_date.astimezone(UTC).isoformat()}"
