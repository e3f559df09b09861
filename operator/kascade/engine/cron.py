"""Cron timetables in a pipeline's zone, with Airflow's daylight-saving rules.

See ``engine/schedule.py`` for the rules in words.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from kascade.engine.timetables import DataInterval, PeriodicTimetable, ScheduleError, require_aware

_MAX_WALL_STEPS = 1000
_PROBE = timedelta(days=7)
_TICK = timedelta(microseconds=1)


class CronTimetable(PeriodicTimetable):
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
        end = self._align_prev(require_aware(at, "at"))
        return DataInterval(self._prev_fire(end), end)
