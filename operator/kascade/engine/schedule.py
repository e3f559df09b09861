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

import abc
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from kascade.engine.durations import parse_duration

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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_WALL_STEPS = 1000
_PROBE = timedelta(days=7)
_TICK = timedelta(microseconds=1)


class ScheduleError(ValueError):
    """A schedule expression or timezone that cannot be used."""


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class DataInterval:
    """The slice of time a run processes; stored in UTC so equality is exact."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = _require_aware(self.start, "DataInterval.start")
        end = _require_aware(self.end, "DataInterval.end")
        if end < start:
            raise ValueError(
                f"DataInterval end {end.isoformat()} is before start {start.isoformat()}"
            )
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def logical_date(self) -> datetime:
        return self.start


class Timetable(abc.ABC):
    """Shared bounds handling; subclasses only know their own fire times."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    @property
    @abc.abstractmethod
    def description(self) -> str: ...

    @abc.abstractmethod
    def manual_interval(self, at: datetime) -> DataInterval: ...

    @abc.abstractmethod
    def next_interval(
        self,
        after: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DataInterval | None: ...

    def run_after(self, interval: DataInterval) -> datetime:
        return interval.end

    def _bound(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(UTC)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


class NullTimetable(Timetable):
    """Manual-only pipelines: never scheduled, manual runs cover an instant."""

    @property
    def description(self) -> str:
        return "manual only"

    def manual_interval(self, at: datetime) -> DataInterval:
        at = _require_aware(at, "at")
        return DataInterval(at, at)

    def next_interval(
        self,
        after: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DataInterval | None:
        return None


class OnceTimetable(NullTimetable):
    """@once: a single zero-length run at start_date (or at once without one)."""

    @property
    def description(self) -> str:
        return "once"

    def next_interval(
        self,
        after: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DataInterval | None:
        now = _require_aware(now, "now")
        if after is not None:
            return None
        start = self._bound(start_date) or now
        end = self._bound(end_date)
        if end is not None and start > end:
            return None
        return DataInterval(start, start)


class _PeriodicTimetable(Timetable):
    """Airflow's next_dagrun_info, expressed over two primitives: fire times
    strictly after / strictly before an instant."""

    @abc.abstractmethod
    def _next_fire(self, t: datetime) -> datetime: ...

    @abc.abstractmethod
    def _prev_fire(self, t: datetime) -> datetime: ...

    def _align_next(self, t: datetime) -> datetime:
        """First fire time >= t."""
        return self._next_fire(self._prev_fire(t))

    def _align_prev(self, t: datetime) -> datetime:
        """Last fire time <= t."""
        return self._prev_fire(self._next_fire(t))

    def next_interval(
        self,
        after: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DataInterval | None:
        now = _require_aware(now, "now")
        earliest = self._bound(start_date)
        latest = self._bound(end_date)
        if not catchup or earliest is None:
            # Only the most recent complete interval [p2, p1) with p1 <= now.
            latest_start = self._prev_fire(self._align_prev(now))
            earliest = latest_start if earliest is None else max(earliest, latest_start)
        floor = earliest if after is None else max(earliest, after.end)
        start = self._align_next(floor)
        if latest is not None and start > latest:
            return None
        return DataInterval(start, self._next_fire(start))


class CronTimetable(_PeriodicTimetable):
    """Cron fire times in the pipeline's zone; see the module docstring for DST."""

    def __init__(self, expression: str, tz: ZoneInfo, *, preset: str | None = None) -> None:
        super().__init__(tz)
        self.expression = expression
        self.preset = preset
        hours = croniter(expression).expanded[1]
        self._real_time = hours == ["*"] or len(hours) == 24

    @property
    def description(self) -> str:
        prefix = f"{self.preset} = " if self.preset else ""
        return f"{prefix}cron {self.expression} ({self.tz.key})"

    def _step(self, t: datetime, forward: bool) -> datetime:
        if self._real_time:
            return self._instant_next(t) if forward else self._instant_prev(t)
        return self._wall_step(t, forward)

    def _wall_step(self, t: datetime, forward: bool) -> datetime:
        """Match local wall-clock times; gaps shift forward, folds fire once (the second)."""
        # Compare in UTC: datetimes sharing a tzinfo compare by wall time, fold ignored.
        t = t.astimezone(UTC)
        naive = t.astimezone(self.tz).replace(tzinfo=None, fold=0)
        it = croniter(self.expression, naive)
        for _ in range(_MAX_WALL_STEPS):
            cand: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
            aware = self._instant_of_wall(cand)
            if (aware > t) if forward else (aware < t):
                return aware
        raise ScheduleError(f"cron {self.expression!r} has no fire time near {t.isoformat()}")

    def _instant_of_wall(self, wall: datetime) -> datetime:
        """The instant a naive local time stands for, as Airflow's ``make_aware`` picks it.

        A repeated time (fall-back) is its second occurrence (fold=1: Airflow sets it "to
        schedule the run at the time of the second instance of the same clock time"). A
        time in a gap (spring-forward) is shifted forward by the gap, which is what
        zoneinfo's fold=0 gives and pendulum's post-transition rule gives Airflow.
        """
        first = wall.replace(tzinfo=self.tz, fold=0)
        second = wall.replace(tzinfo=self.tz, fold=1)
        # Ambiguous when the offset before the transition is the larger one; in a gap it
        # is the smaller one, and fold=0 is the shifted-forward instant.
        repeated = (first.utcoffset() or timedelta(0)) > (second.utcoffset() or timedelta(0))
        return (second if repeated else first).astimezone(UTC)

    # Every-hour expressions match real instants: within a stretch of constant
    # UTC offset, wall time is instant + offset, so croniter can run on wall
    # time there. When a candidate lands past an offset change, the search
    # restarts at the change with the new offset.

    def _offset(self, t: datetime) -> timedelta:
        return t.astimezone(self.tz).utcoffset() or timedelta(0)

    def _offset_change(
        self, origin: datetime, target: datetime, off: timedelta
    ) -> tuple[datetime, datetime] | None:
        """(last probe with ``off``, first probe without) between origin and target.

        Probing weekly catches a change even when a later one restores the
        offset (e.g. a yearly schedule spanning summer time).
        """
        step = _PROBE if target >= origin else -_PROBE
        inside = origin
        probe = origin + step
        while (probe < target) if step > timedelta(0) else (probe > target):
            if self._offset(probe) != off:
                return inside, probe
            inside, probe = probe, probe + step
        return None if self._offset(target) == off else (inside, target)

    def _boundary(self, inside: datetime, outside: datetime) -> datetime:
        """First instant of the offset stretch nearer ``outside`` (forward) or
        of ``inside``'s stretch (backward); zone transitions are whole seconds."""
        off = self._offset(inside)
        a = math.floor(inside.timestamp())
        b = math.ceil(outside.timestamp()) if outside > inside else math.floor(outside.timestamp())
        while abs(b - a) > 1:
            mid = (a + b) // 2
            if self._offset(datetime.fromtimestamp(mid, UTC)) == off:
                a = mid
            else:
                b = mid
        return datetime.fromtimestamp(max(a, b), UTC)

    def _instant_next(self, t: datetime) -> datetime:
        cur, inclusive = t.astimezone(UTC), False
        for _ in range(_MAX_WALL_STEPS):
            off = self._offset(cur)
            wall = (cur + off).replace(tzinfo=None)
            start = wall - _TICK if inclusive else wall
            cand: datetime = croniter(self.expression, start).get_next(datetime)
            found = (cand - off).replace(tzinfo=UTC)
            change = self._offset_change(cur, found, off)
            if change is None:
                return found
            cur, inclusive = self._boundary(*change), True
        raise ScheduleError(f"cron {self.expression!r} has no fire time after {t.isoformat()}")

    def _instant_prev(self, t: datetime) -> datetime:
        cur = t.astimezone(UTC)
        for _ in range(_MAX_WALL_STEPS):
            off = self._offset(cur - _TICK)
            wall = (cur + off).replace(tzinfo=None)
            cand: datetime = croniter(self.expression, wall).get_prev(datetime)
            found = (cand - off).replace(tzinfo=UTC)
            change = self._offset_change(cur - _TICK, found, off)
            if change is None:
                return found
            cur = self._boundary(*change)
        raise ScheduleError(f"cron {self.expression!r} has no fire time before {t.isoformat()}")

    def _next_fire(self, t: datetime) -> datetime:
        return self._step(t, forward=True)

    def _prev_fire(self, t: datetime) -> datetime:
        return self._step(t, forward=False)

    def manual_interval(self, at: datetime) -> DataInterval:
        end = self._align_prev(_require_aware(at, "at"))
        return DataInterval(self._prev_fire(end), end)


class DeltaTimetable(_PeriodicTimetable):
    """Fixed-length intervals on a grid anchored at start_date (or the epoch)."""

    def __init__(self, delta: timedelta, tz: ZoneInfo, *, text: str | None = None) -> None:
        super().__init__(tz)
        if delta <= timedelta(0):
            raise ScheduleError(f"schedule interval must be positive, got {text or delta!r}")
        self.delta = delta
        self.text = text or str(delta)
        self._anchor = _EPOCH

    @property
    def description(self) -> str:
        return f"every {self.text}"

    def _next_fire(self, t: datetime) -> datetime:
        return self._anchor + ((t - self._anchor) // self.delta + 1) * self.delta

    def _prev_fire(self, t: datetime) -> datetime:
        k, rem = divmod(t - self._anchor, self.delta)
        return self._anchor + (k if rem else k - 1) * self.delta

    def next_interval(
        self,
        after: DataInterval | None,
        *,
        start_date: datetime | None,
        end_date: datetime | None,
        catchup: bool,
        now: datetime,
    ) -> DataInterval | None:
        anchored = self._anchored(start_date)
        return _PeriodicTimetable.next_interval(
            anchored,
            after,
            start_date=start_date,
            end_date=end_date,
            catchup=catchup,
            now=now,
        )

    def _anchored(self, start_date: datetime | None) -> DeltaTimetable:
        if start_date is None:
            return self
        clone = DeltaTimetable(self.delta, self.tz, text=self.text)
        bound = self._bound(start_date)
        assert bound is not None
        clone._anchor = bound
        return clone

    def manual_interval(self, at: datetime) -> DataInterval:
        at = _require_aware(at, "at")
        return DataInterval(at - self.delta, at)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(
            f"unknown timezone {name!r} (expected an IANA name such as 'Europe/Berlin')"
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
    now = _require_aware(now, "now")
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
