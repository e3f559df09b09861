"""Dates, durations and schedules as Airflow DAG files write them, in the API's forms.

``timedelta(minutes=5)`` becomes ``5m``, ``datetime(2024, 1, 1)`` becomes
``2024-01-01``, ``schedule=timedelta(hours=6)`` becomes ``6h``. ``days_ago(n)``
(Airflow 1/2) returns a date that moves every day; it is marked so that the
compiler writes the relative ``startDate: -<n>d`` instead (see ``RollingDate``), which
the operator resolves once, and the manifest stays the same every day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from kascade.sdk.exceptions import UnsupportedFeature

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))
PRESETS = frozenset(
    {"@once", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@none"}
)


class RollingDate(datetime):
    """A ``days_ago()`` date: a different value every day the file is parsed.

    ``relative`` is the API's relative start date for it (``-1d``), which the
    operator resolves once, when it first sees the pipeline; None when it has a time
    of day (``days_ago(1, hour=6)``), which a relative date cannot say.
    """

    relative: str | None = None


def days_ago(n: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """Airflow's ``days_ago``: midnight UTC (or the given time) ``n`` days ago."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"days_ago: n must be a whole number of days >= 0, got {n!r}")
    today = datetime.now(UTC).replace(hour=hour, minute=minute, second=second, microsecond=0)
    moved = today - timedelta(days=n)
    rolling = RollingDate(
        moved.year, moved.month, moved.day, moved.hour, moved.minute, moved.second, tzinfo=UTC
    )
    if (hour, minute, second) == (0, 0, 0):
        rolling.relative = f"-{n}d"
    return rolling


def seconds_of(value: Any, what: str) -> float:
    """Seconds from a ``timedelta`` or a number of seconds (Airflow accepts both)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return seconds


def duration(value: Any, what: str) -> str | None:
    """The API's duration text (``1h30m``, ``45s``, ``0.5s``) for a timedelta or seconds."""
    if value is None:
        return None
    seconds = seconds_of(value, what)
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        parts.append(f"{rest}s")
    return "".join(parts)


def zone_name(tz: tzinfo | None) -> str | None:
    """An IANA zone name for a zoneinfo/pendulum zone; None for UTC or a fixed offset."""
    if tz is None:
        return None
    name = getattr(tz, "key", None) or getattr(tz, "name", None)
    if isinstance(name, str) and "/" in name:
        return name
    return None


def iso_date(value: Any, what: str) -> str | None:
    """``2024-01-01`` for a midnight date, else an ISO date-time (UTC unless a zone is named)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None and zone_name(value.tzinfo) is None:
            value = value.astimezone(UTC)
        naive: datetime = value.replace(tzinfo=None)
        if naive.time() == time(0):
            return naive.date().isoformat()
        return naive.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{what} must be a datetime, a date or an ISO string, got {value!r}")


def schedule_text(schedule: Any) -> str | None:
    """The API's ``schedule`` for Airflow's cron strings, presets, timedeltas and None."""
    if schedule is None:
        return None
    if isinstance(schedule, str):
        text = schedule.strip()
        if text == "@continuous":
            raise UnsupportedFeature(
                "schedule='@continuous'", "use a short interval such as timedelta(minutes=1)"
            )
        return text
    if isinstance(schedule, timedelta):
        if schedule <= timedelta(0):
            raise ValueError(f"schedule must be a positive timedelta, got {schedule!r}")
        return duration(schedule, "schedule")
    kind = type(schedule).__name__
    raise UnsupportedFeature(
        f"schedule={kind}(...)",
        "timetables, assets and datasets have no Kascade equivalent yet; use a cron "
        "string, a preset such as '@daily', a timedelta or None",
    )
