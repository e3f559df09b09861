"""Airflow timetable semantics: which data intervals a pipeline should run.

A run covers the data interval [start, end) and is created at ``end``; its
logical date is ``start``. Nothing here reads the clock: ``now`` is always
passed in so schedules are reproducible in tests and replays.

Daylight-saving time (cron schedules are evaluated in the pipeline's zone):

* Expressions whose hour field fires every hour (``0 * * * *``,
  ``*/15 * * * 1-5``) fire at every real instant whose local wall-clock time
  matches: hourly runs stay one real hour apart, the repeated hour on
  fall-back day runs twice and the skipped hour on spring-forward day has no
  runs (Airflow behaves the same way for such schedules).
* All other expressions are matched against local wall-clock time and fire
  once per matching local time. An ambiguous time (fall-back) fires only at
  its second occurrence (Airflow's fold=1), so a daily job runs exactly once
  per local day. A
  non-existent time (spring-forward gap, e.g. 02:30 in Europe/Berlin) is
  shifted forward by the length of the gap (02:30 -> 03:30 CEST), matching
  PEP 495 ``fold=0`` and pendulum/Airflow; the day's run is still created.
  Intervals stay contiguous, so that day's interval is 23h (or 25h in autumn).
* Fixed intervals ("6h", "1d") are absolute durations on a grid anchored at
  ``start_date`` (or the Unix epoch without one); "1d" therefore drifts by an
  hour against local midnight across DST. Use cron for wall-clock schedules.

Without ``start_date`` a timetable has no history: it behaves like
``catchup=False`` from the beginning of time, so the most recent complete
interval is due at once. Callers wanting "from now on" pass the resource's
creation time as ``start_date``. Naive ``start_date``/``end_date`` values are
read in the pipeline's timezone (as Airflow does); ``now`` must be aware.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from kascade.engine.cron import CronTimetable
from kascade.engine.durations import parse_duration
from kascade.engine.timetables import (
    DataInterval,
    DeltaTimetable,
    NullTimetable,
    OnceTimetable,
    ScheduleError,
    Timetable,
    require_aware,
)

__all__ = [
    "PRESETS",
    "CronTimetable",
    "DataInterval",
    "DeltaTimetable",
    "NullTimetable",
    "OnceTimetable",
    "ScheduleError",
    "Timetable",
    "due_intervals",
    "next_run_at",
    "parse_schedule",
    "zone",
]

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_NULL_FORMS = frozenset({"", "@none", "none"})


MAX_ZONE_NAME = 64
"""IANA names are at most ~30 characters; a longer one is not a zone (and would be a long
file name to look up)."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ScheduleError for anything else, including names that are
    folders of the zone database (``Europe``) or too long to be a file name."""
    shown = repr(name) if len(name) <= 40 else repr(name[:37] + "...")
    if len(name) > MAX_ZONE_NAME:
        raise ScheduleError(f"unknown timezone {shown}: longer than {MAX_ZONE_NAME} characters")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
        # OSError: "Europe" is a directory of the zone database, not a zone.
        raise ScheduleError(
            f"unknown timezone {shown} (expected an IANA name such as 'Europe/Berlin')"
        ) from None


def _cron(expression: str, tz: ZoneInfo, preset: str | None = None) -> CronTimetable:
    fields = expression.split()
    if len(fields) != 5:
        raise ScheduleError(
            f"invalid schedule {expression!r}: cron needs exactly 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    normalised = " ".join(fields)
    try:
        croniter(normalised, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"invalid cron schedule {expression!r}: {exc}") from None
    return CronTimetable(normalised, tz, preset=preset)


def parse_schedule(expr: str | None, timezone: str = "UTC") -> Timetable:
    """Accepts presets, 5-field cron or a fixed interval ("6h"); see module doc."""
    tz = zone(timezone)
    text = "" if expr is None else expr.strip()
    lowered = text.lower()
    if lowered in _NULL_FORMS:
        return NullTimetable(tz)
    if lowered == "@once":
        return OnceTimetable(tz)
    if lowered in PRESETS:
        return _cron(PRESETS[lowered], tz, preset=lowered)
    if text.startswith("@"):
        raise ScheduleError(
            f"unknown schedule preset {expr!r}; known: @none, @once, " + ", ".join(PRESETS)
        )
    if len(text.split()) == 1:
        # Cron always has spaces, so a single token can only be an interval.
        try:
            return DeltaTimetable(parse_duration(text), tz, text=text)
        except ScheduleError:
            raise
        except ValueError as exc:
            raise ScheduleError(f"invalid schedule {expr!r}: {exc}") from None
    return _cron(text, tz)


def due_intervals(
    tt: Timetable,
    *,
    last: DataInterval | None,
    start_date: datetime | None,
    end_date: datetime | None,
    catchup: bool,
    now: datetime,
    limit: int | None = None,
) -> list[DataInterval]:
    """Intervals whose runs should exist by ``now``, oldest first.

    ``limit`` bounds work after long outages with catchup on; the caller
    picks up the rest on its next pass since ``last`` moves forward.
    """
    now = require_aware(now, "now")
    out: list[DataInterval] = []
    after = last
    while limit is None or len(out) < limit:
        interval = tt.next_interval(
            after, start_date=start_date, end_date=end_date, catchup=catchup, now=now
        )
        if interval is None or tt.run_after(interval) > now:
            break
        if after is not None and interval.start < after.end:
            break
        out.append(interval)
        after = interval
    return out


def next_run_at(
    tt: Timetable,
    *,
    last: DataInterval | None,
    start_date: datetime | None,
    end_date: datetime | None,
    catchup: bool,
    now: datetime,
) -> datetime | None:
    """When the next automated run is created; <= now means it is due already."""
    interval = tt.next_interval(
        last, start_date=start_date, end_date=end_date, catchup=catchup, now=now
    )
    return None if interval is None else tt.run_after(interval)
