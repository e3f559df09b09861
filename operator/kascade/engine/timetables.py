"""Timetables: which data intervals a schedule has (Airflow's timetable classes).

Nothing here reads the clock: ``now`` is an argument. Cron schedules, with their
daylight-saving rules, are ``engine/cron.py``; parsing a schedule is ``engine/schedule.py``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScheduleError(ValueError):
    """A schedule expression or timezone that cannot be used."""


def require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class DataInterval:
    """The slice of time a run processes; stored in UTC so equality is exact."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = require_aware(self.start, "DataInterval.start")
        end = require_aware(self.end, "DataInterval.end")
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
        at = require_aware(at, "at")
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
        now = require_aware(now, "now")
        if after is not None:
            return None
        start = self._bound(start_date) or now
        end = self._bound(end_date)
        if end is not None and start > end:
            return None
        return DataInterval(start, start)


class PeriodicTimetable(Timetable):
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
        now = require_aware(now, "now")
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


class DeltaTimetable(PeriodicTimetable):
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
        return PeriodicTimetable.next_interval(
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
        at = require_aware(at, "at")
        return DataInterval(at - self.delta, at)
