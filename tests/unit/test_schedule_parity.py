"""The operator's scheduler creates exactly the runs the engine's timetable says.

Random schedules (cron, presets, fixed intervals), zones with daylight saving (and a
half-hour one), start/end dates with and without a zone, catchup on and off, and
scheduler passes at random moments: the runs ``controller.scheduling.plan_schedule``
creates pass after pass, with its cursor taken from the runs it made, are the ones the
engine's ``due_intervals`` gives from the same bounds, read here independently
(a date without a zone is in the pipeline's zone).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kascade.api.pipeline import PipelineSpec
from kascade.controller import scheduling
from kascade.engine.schedule import DataInterval, due_intervals, parse_schedule

SCHEDULES = [
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "30 2 * * *",
    "15 1 * * *",
    "0 */3 * * *",
    "*/20 9-17 * * 1-5",
    "45 23 * * 0,3",
    "6h",
    "90m",
    "1d",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
# Near the 2026 transitions of the zones above (March/April, October/November).
ANCHORS = [
    date(2026, 3, 7),
    date(2026, 3, 27),
    date(2026, 4, 4),
    date(2026, 10, 3),
    date(2026, 10, 24),
]


@st.composite
def bounds(draw: st.DrawFn) -> tuple[str, str | None, str, bool]:
    zone = draw(st.sampled_from(ZONES))
    day = draw(st.sampled_from(ANCHORS)) + timedelta(days=draw(st.integers(0, 3)))
    hour = draw(st.integers(0, 23))
    form = draw(st.sampled_from(["date", "naive", "offset"]))
    if form == "date":
        start = day.isoformat()
    elif form == "naive":
        start = f"{day.isoformat()}T{hour:02d}:30"
    else:
        start = f"{day.isoformat()}T{hour:02d}:00:00+05:00"
    end = None
    if draw(st.booleans()):
        end = (day + timedelta(days=draw(st.integers(1, 6)))).isoformat() + "T12:00"
    return zone, end, start, draw(st.booleans())


def _read(value: str | None, zone: str) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value if "T" in value else value + "T00:00")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo(zone))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    schedule=st.sampled_from(SCHEDULES),
    dates=bounds(),
    steps=st.lists(st.integers(1, 60 * 30), min_size=1, max_size=8),
    max_active=st.integers(1, 4),
)
def test_the_operator_schedules_what_the_engine_says(
    schedule: str, dates: tuple[str, str | None, str, bool], steps: list[int], max_active: int
) -> None:
    zone, end, start, catchup = dates
    spec = PipelineSpec.model_validate(
        {
            "schedule": schedule,
            "timezone": zone,
            "startDate": start,
            "endDate": end,
            "catchup": catchup,
            "maxActiveRuns": max_active,
        }
    )
    timetable = parse_schedule(schedule, zone)
    start_at, end_at = _read(start, zone), _read(end, zone)
    assert start_at is not None
    now = start_at.astimezone(UTC) + timedelta(hours=1)
    made: list[DataInterval] = []
    expected: list[DataInterval] = []
    last: DataInterval | None = None
    for minutes in steps:
        now += timedelta(minutes=minutes)
        # The operator: runs it made are finished (so maxActiveRuns only caps a pass).
        runs = [
            scheduling.RunRecord(f"r{i}", "success", "scheduled", iv) for i, iv in enumerate(made)
        ]
        made += scheduling.plan_schedule(spec, runs, None, now).due
        # The engine, from the same bounds, with the same per-pass cap.
        due = due_intervals(
            timetable,
            last=last,
            start_date=start_at,
            end_date=end_at,
            catchup=catchup,
            now=now,
            limit=max_active,
        )
        expected += due
        last = due[-1] if due else last
    assert made == expected
    assert all(a.end <= b.start for a, b in itertools.pairwise(made))
