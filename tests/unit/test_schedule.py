import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from kascade.engine.schedule import (
    CronTimetable,
    DataInterval,
    DeltaTimetable,
    NullTimetable,
    OnceTimetable,
    ScheduleError,
    Timetable,
    due_intervals,
    next_run_at,
    parse_schedule,
)

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def iv(start: datetime, end: datetime) -> DataInterval:
    return DataInterval(start, end)


def due(
    tt: Timetable,
    *,
    now: datetime,
    start_date: datetime | None = None,
    last: DataInterval | None = None,
    end_date: datetime | None = None,
    catchup: bool = True,
    limit: int | None = None,
) -> list[DataInterval]:
    return due_intervals(
        tt,
        last=last,
        start_date=start_date,
        end_date=end_date,
        catchup=catchup,
        now=now,
        limit=limit,
    )


# --- parsing -----------------------------------------------------------------


@pytest.mark.parametrize("expr", [None, "", "  ", "@none", "none", "None"])
def test_null_forms(expr: str | None) -> None:
    tt = parse_schedule(expr)
    assert isinstance(tt, NullTimetable)
    assert not isinstance(tt, OnceTimetable)
    assert tt.description == "manual only"
    assert due(tt, now=utc(2026, 1, 1), start_date=utc(2020, 1, 1)) == []
    assert (
        next_run_at(
            tt, last=None, start_date=None, end_date=None, catchup=True, now=utc(2026, 1, 1)
        )
        is None
    )


@pytest.mark.parametrize(
    ("preset", "cron"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ],
)
def test_presets(preset: str, cron: str) -> None:
    tt = parse_schedule(preset)
    assert isinstance(tt, CronTimetable)
    assert tt.expression == cron
    assert tt.description == f"{preset.lower()} = cron {cron} (UTC)"


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        # weekly: Sunday 2026-01-04 is a Sunday
        ("@weekly", utc(2026, 1, 7), iv(utc(2025, 12, 28), utc(2026, 1, 4))),
        ("@monthly", utc(2026, 3, 15), iv(utc(2026, 2, 1), utc(2026, 3, 1))),
        ("@yearly", utc(2026, 3, 15), iv(utc(2025, 1, 1), utc(2026, 1, 1))),
        ("*/15 * * * *", utc(2026, 1, 1, 10, 7), iv(utc(2026, 1, 1, 9, 45), utc(2026, 1, 1, 10))),
        ("0 9-17/4 * * *", utc(2026, 1, 1, 16), iv(utc(2026, 1, 1, 9), utc(2026, 1, 1, 13))),
        ("0 0 * * mon-fri", utc(2026, 1, 5, 12), iv(utc(2026, 1, 2), utc(2026, 1, 5))),
        ("0 0 * * MON,WED", utc(2026, 1, 8), iv(utc(2026, 1, 5), utc(2026, 1, 7))),
        ("0 0 1 jan,jul *", utc(2026, 8, 1), iv(utc(2026, 1, 1), utc(2026, 7, 1))),
        (
            "5,35 * * * *",
            utc(2026, 1, 1, 10, 40),
            iv(utc(2026, 1, 1, 10, 5), utc(2026, 1, 1, 10, 35)),
        ),
        ("  0   3 * * *  ", utc(2026, 1, 2, 3), iv(utc(2026, 1, 1, 3), utc(2026, 1, 2, 3))),
    ],
)
def test_cron_fields(expr: str, at: datetime, expected: DataInterval) -> None:
    assert parse_schedule(expr).manual_interval(at) == expected


def test_cron_description_and_timezone() -> None:
    tt = parse_schedule("0 2 * * *", "Europe/Berlin")
    assert tt.description == "cron 0 2 * * * (Europe/Berlin)"
    assert "Europe/Berlin" in repr(tt)


@pytest.mark.parametrize(
    ("expr", "delta"),
    [
        ("6h", timedelta(hours=6)),
        ("30m", timedelta(minutes=30)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(minutes=90)),
        ("90", timedelta(seconds=90)),
    ],
)
def test_delta_forms(expr: str, delta: timedelta) -> None:
    tt = parse_schedule(expr)
    assert isinstance(tt, DeltaTimetable)
    assert tt.delta == delta
    assert tt.description == f"every {expr}"


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 0 * * * *", "exactly 5 fields"),
        ("0 0 0 * * * 2026", "exactly 5 fields"),
        ("0 0 *", "exactly 5 fields"),
        ("61 * * * *", "'61 * * * *'"),
        ("0 25 * * *", "'0 25 * * *'"),
        ("0 0 * foo *", "'0 0 * foo *'"),
        ("0 0 31 2 *", "'0 0 31 2 *'"),
        ("@fortnightly", "'@fortnightly'"),
        ("0s", "'0s'"),
        ("0", "'0'"),
        ("-5m", "'-5m'"),
        ("daily", "'daily'"),
    ],
)
def test_schedule_errors(expr: str, fragment: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expr)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unknown_timezone() -> None:
    with pytest.raises(ScheduleError, match="'Mars/Olympus'"):
        parse_schedule("@daily", "Mars/Olympus")
    with pytest.raises(ScheduleError, match=r"'\.\./etc/passwd'"):
        parse_schedule("@daily", "../etc/passwd")


def test_data_interval_normalises_to_utc_and_validates() -> None:
    d = DataInterval(datetime(2026, 1, 1, 1, tzinfo=BERLIN), datetime(2026, 1, 1, 2, tzinfo=BERLIN))
    assert d.start == utc(2026, 1, 1, 0)
    assert d.start.tzinfo is UTC
    assert d.logical_date == d.start
    with pytest.raises(ValueError, match="timezone-aware"):
        DataInterval(datetime(2026, 1, 1), utc(2026, 1, 1))
    with pytest.raises(ValueError, match="before start"):
        DataInterval(utc(2026, 1, 2), utc(2026, 1, 1))


# --- cron scheduling -----------------------------------------------------------


def test_cron_catchup_runs_every_missed_interval() -> None:
    tt = parse_schedule("@daily")
    got = due(tt, start_date=utc(2026, 1, 1), now=utc(2026, 1, 4, 12))
    assert got == [
        iv(utc(2026, 1, 1), utc(2026, 1, 2)),
        iv(utc(2026, 1, 2), utc(2026, 1, 3)),
        iv(utc(2026, 1, 3), utc(2026, 1, 4)),
    ]
    assert due(tt, start_date=utc(2026, 1, 1), now=utc(2026, 1, 4, 12), limit=2) == got[:2]
    # With the last run recorded only the newer ones remain.
    assert due(tt, start_date=utc(2026, 1, 1), last=got[1], now=utc(2026, 1, 4, 12)) == got[2:]
    assert due(tt, start_date=utc(2026, 1, 1), last=got[2], now=utc(2026, 1, 4, 12)) == []
    assert next_run_at(
        tt,
        last=got[2],
        start_date=utc(2026, 1, 1),
        end_date=None,
        catchup=True,
        now=utc(2026, 1, 4, 12),
    ) == utc(2026, 1, 5)


def test_cron_unaligned_start_date_aligns_forward() -> None:
    tt = parse_schedule("@daily")
    assert tt.next_interval(
        None, start_date=utc(2026, 1, 1, 6), end_date=None, catchup=True, now=utc(2026, 1, 1, 7)
    ) == iv(utc(2026, 1, 2), utc(2026, 1, 3))


def test_cron_run_created_at_interval_end() -> None:
    tt = parse_schedule("@daily")
    interval = iv(utc(2026, 1, 1), utc(2026, 1, 2))
    assert tt.run_after(interval) == utc(2026, 1, 2)
    # Exactly at the boundary the run is due.
    assert due(tt, start_date=utc(2026, 1, 1), now=utc(2026, 1, 2)) == [interval]
    assert due(tt, start_date=utc(2026, 1, 1), now=utc(2026, 1, 1, 23, 59, 59)) == []


def test_cron_without_catchup_runs_only_latest() -> None:
    tt = parse_schedule("@daily")
    got = due(tt, start_date=utc(2026, 1, 1), now=utc(2026, 1, 10, 12), catchup=False)
    assert got == [iv(utc(2026, 1, 9), utc(2026, 1, 10))]
    # Never re-run the last one, the next is created tomorrow.
    assert (
        due(tt, start_date=utc(2026, 1, 1), last=got[0], now=utc(2026, 1, 10, 23), catchup=False)
        == []
    )
    assert next_run_at(
        tt,
        last=got[0],
        start_date=utc(2026, 1, 1),
        end_date=None,
        catchup=False,
        now=utc(2026, 1, 10, 23),
    ) == utc(2026, 1, 11)
    # An old last run is skipped over, not caught up.
    old = iv(utc(2026, 1, 2), utc(2026, 1, 3))
    assert (
        due(tt, start_date=utc(2026, 1, 1), last=old, now=utc(2026, 1, 10, 12), catchup=False)
        == got
    )


def test_cron_without_catchup_respects_start_date() -> None:
    tt = parse_schedule("@daily")
    # start_date after the latest complete interval began: first run is the
    # one starting at the first fire time >= start_date.
    got = tt.next_interval(
        None,
        start_date=utc(2026, 1, 9, 12),
        end_date=None,
        catchup=False,
        now=utc(2026, 1, 10, 12),
    )
    assert got == iv(utc(2026, 1, 10), utc(2026, 1, 11))
    assert due(tt, start_date=utc(2026, 1, 9, 12), now=utc(2026, 1, 10, 12), catchup=False) == []


def test_start_date_in_future() -> None:
    tt = parse_schedule("0 6 * * *")
    for catchup in (True, False):
        assert due(tt, start_date=utc(2026, 6, 1), now=utc(2026, 1, 1), catchup=catchup) == []
        assert next_run_at(
            tt,
            last=None,
            start_date=utc(2026, 6, 1),
            end_date=None,
            catchup=catchup,
            now=utc(2026, 1, 1),
        ) == utc(2026, 6, 2, 6)


def test_no_start_date_means_no_history() -> None:
    tt = parse_schedule("@hourly")
    for catchup in (True, False):
        assert due(tt, now=utc(2026, 1, 1, 10, 30), catchup=catchup) == [
            iv(utc(2026, 1, 1, 9), utc(2026, 1, 1, 10))
        ]


def test_end_date() -> None:
    tt = parse_schedule("@daily")
    got = due(tt, start_date=utc(2026, 1, 1), end_date=utc(2026, 1, 3), now=utc(2026, 2, 1))
    # The interval starting exactly at end_date still runs; later ones do not.
    assert got == [
        iv(utc(2026, 1, 1), utc(2026, 1, 2)),
        iv(utc(2026, 1, 2), utc(2026, 1, 3)),
        iv(utc(2026, 1, 3), utc(2026, 1, 4)),
    ]
    assert (
        next_run_at(
            tt,
            last=got[-1],
            start_date=utc(2026, 1, 1),
            end_date=utc(2026, 1, 3),
            catchup=True,
            now=utc(2026, 2, 1),
        )
        is None
    )
    assert (
        due(
            tt,
            start_date=utc(2026, 1, 1),
            end_date=utc(2026, 1, 3),
            now=utc(2026, 2, 1),
            catchup=False,
        )
        == []
    )


def test_naive_bounds_use_pipeline_timezone() -> None:
    tt = parse_schedule("0 2 * * *", "Europe/Berlin")
    got = tt.next_interval(
        None, start_date=datetime(2026, 1, 1), end_date=None, catchup=True, now=utc(2026, 1, 5)
    )
    assert got == iv(utc(2026, 1, 1, 1), utc(2026, 1, 2, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        due(tt, start_date=None, now=datetime(2026, 1, 1))


# --- DST -----------------------------------------------------------------------


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def test_berlin_daily_spring_forward() -> None:
    tt = parse_schedule("0 2 * * *", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 3, 27), now=utc(2026, 4, 1))
    assert got == [
        iv(utc(2026, 3, 27, 1), utc(2026, 3, 28, 1)),  # 02:00 CET
        iv(utc(2026, 3, 28, 1), utc(2026, 3, 29, 1)),  # 02:00 does not exist -> 03:00 CEST
        iv(utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)),  # 23h interval, back to 02:00 CEST
        iv(utc(2026, 3, 30, 0), utc(2026, 3, 31, 0)),
        iv(utc(2026, 3, 31, 0), utc(2026, 4, 1, 0)),  # due exactly at now
    ]


def test_berlin_nonexistent_time_shifts_forward_by_gap() -> None:
    tt = parse_schedule("30 2 * * *", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 3, 28), now=utc(2026, 3, 31))
    assert [i.end for i in got] == [
        utc(2026, 3, 29, 1, 30),  # 03:30 CEST: the non-existent 02:30 + 1h gap
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]
    assert got[0].start == utc(2026, 3, 28, 1, 30)  # 02:30 CET


def test_berlin_daily_fall_back_runs_once() -> None:
    tt = parse_schedule("30 2 * * *", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 10, 24), now=utc(2026, 10, 27))
    assert got == [
        iv(utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 1, 30)),  # 25h, to 02:30 CET (second)
        iv(utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)),
    ]


def test_berlin_midnight_daily_across_both_transitions_one_per_day() -> None:
    tt = parse_schedule("@daily", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 1, 1), now=utc(2027, 1, 1))
    assert len(got) == 365
    local_days = [i.start.astimezone(BERLIN) for i in got]
    assert all(d.hour == 0 and d.minute == 0 for d in local_days)
    assert len({d.date() for d in local_days}) == 365
    assert all(a.end == b.start for a, b in itertools.pairwise(got))


def test_berlin_hourly_spring_forward() -> None:
    tt = parse_schedule("@hourly", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 3, 29, 0), now=local(BERLIN, 2026, 3, 29, 5))
    assert got == [
        iv(utc(2026, 3, 28, 23), utc(2026, 3, 29, 0)),  # 00:00-01:00 CET
        iv(utc(2026, 3, 29, 0), utc(2026, 3, 29, 1)),  # 01:00 CET-03:00 CEST
        iv(utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)),  # 03:00-04:00 CEST
        iv(utc(2026, 3, 29, 2), utc(2026, 3, 29, 3)),  # 04:00-05:00 CEST
    ]


def test_berlin_hourly_fall_back_runs_repeated_hour() -> None:
    tt = parse_schedule("@hourly", "Europe/Berlin")
    got = due(tt, start_date=local(BERLIN, 2026, 10, 25, 1), now=local(BERLIN, 2026, 10, 25, 4))
    assert got == [
        iv(utc(2026, 10, 24, 23), utc(2026, 10, 25, 0)),  # 01:00-02:00 CEST
        iv(utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)),  # 02:00 CEST-02:00 CET
        iv(utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)),  # 02:00-03:00 CET
        iv(utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)),  # 03:00-04:00 CET
    ]


def test_new_york_daily_spring_forward_and_fall_back() -> None:
    tt = parse_schedule("30 2 * * *", "America/New_York")
    spring = due(tt, start_date=local(NY, 2026, 3, 7), now=utc(2026, 3, 10))
    # 2026-03-08 02:30 EST does not exist: 03:30 EDT (07:30Z).
    assert [i.end for i in spring] == [utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    fall = due(tt, start_date=local(NY, 2026, 10, 31), now=utc(2026, 11, 3))
    # 2026-11-01 01:00-02:00 repeats; 02:30 itself is unambiguous EST.
    assert [i.end for i in fall] == [utc(2026, 11, 1, 7, 30), utc(2026, 11, 2, 7, 30)]
    assert fall[0].start == utc(2026, 10, 31, 6, 30)

    tt1 = parse_schedule("30 1 * * *", "America/New_York")
    fall1 = due(tt1, start_date=local(NY, 2026, 10, 31), now=utc(2026, 11, 3))
    # 01:30 happens twice on 2026-11-01: only the second (EST, 06:30Z) fires, as in Airflow.
    assert [i.end for i in fall1] == [utc(2026, 11, 1, 6, 30), utc(2026, 11, 2, 6, 30)]


def test_new_york_hourly_across_transitions() -> None:
    tt = parse_schedule("0 * * * *", "America/New_York")
    spring = due(tt, start_date=local(NY, 2026, 3, 8, 1), now=utc(2026, 3, 8, 9))
    assert [i.start for i in spring] == [utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)]
    fall = due(tt, start_date=local(NY, 2026, 11, 1, 0), now=utc(2026, 11, 1, 8))
    # 00:00 EDT, 01:00 EDT, 01:00 EST, 02:00 EST: one real hour each.
    assert [i.start for i in fall] == [
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 6),
        utc(2026, 11, 1, 7),
    ]
    assert all(i.end - i.start == timedelta(hours=1) for i in fall)


def test_manual_interval_across_dst() -> None:
    tt = parse_schedule("0 2 * * *", "Europe/Berlin")
    assert tt.manual_interval(utc(2026, 3, 29, 12)) == iv(utc(2026, 3, 28, 1), utc(2026, 3, 29, 1))
    hourly = parse_schedule("@hourly", "Europe/Berlin")
    assert hourly.manual_interval(local(BERLIN, 2026, 10, 25, 2, 30, fold=1)) == iv(
        utc(2026, 10, 25, 0), utc(2026, 10, 25, 1)
    )


# --- manual intervals ------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        ("@daily", utc(2026, 1, 25, 1), iv(utc(2026, 1, 24), utc(2026, 1, 25))),
        ("@daily", utc(2026, 1, 25), iv(utc(2026, 1, 24), utc(2026, 1, 25))),
        ("6h", utc(2026, 1, 25, 1), iv(utc(2026, 1, 24, 19), utc(2026, 1, 25, 1))),
        (None, utc(2026, 1, 25, 1), iv(utc(2026, 1, 25, 1), utc(2026, 1, 25, 1))),
        ("@once", utc(2026, 1, 25, 1), iv(utc(2026, 1, 25, 1), utc(2026, 1, 25, 1))),
    ],
)
def test_manual_interval(expr: str | None, at: datetime, expected: DataInterval) -> None:
    assert parse_schedule(expr).manual_interval(at) == expected


# --- fixed intervals -------------------------------------------------------------


def test_delta_grid_anchored_at_start_date() -> None:
    tt = parse_schedule("6h")
    start = utc(2026, 1, 1, 1)
    got = due(tt, start_date=start, now=utc(2026, 1, 2, 3))
    assert got == [
        iv(utc(2026, 1, 1, 1), utc(2026, 1, 1, 7)),
        iv(utc(2026, 1, 1, 7), utc(2026, 1, 1, 13)),
        iv(utc(2026, 1, 1, 13), utc(2026, 1, 1, 19)),
        iv(utc(2026, 1, 1, 19), utc(2026, 1, 2, 1)),
    ]
    assert due(tt, start_date=start, now=utc(2026, 1, 2, 3), catchup=False) == got[-1:]
    assert next_run_at(
        tt, last=got[-1], start_date=start, end_date=None, catchup=True, now=utc(2026, 1, 2, 3)
    ) == utc(2026, 1, 2, 7)


def test_delta_without_start_date_uses_epoch_grid() -> None:
    tt = parse_schedule("6h")
    assert due(tt, now=utc(2026, 1, 2, 3)) == [iv(utc(2026, 1, 1, 18), utc(2026, 1, 2))]


def test_delta_end_date_and_future_start() -> None:
    tt = parse_schedule("1d")
    got = due(tt, start_date=utc(2026, 1, 1), end_date=utc(2026, 1, 2, 12), now=utc(2026, 2, 1))
    assert got == [iv(utc(2026, 1, 1), utc(2026, 1, 2)), iv(utc(2026, 1, 2), utc(2026, 1, 3))]
    assert due(tt, start_date=utc(2026, 3, 1), now=utc(2026, 2, 1)) == []
    assert next_run_at(
        tt,
        last=None,
        start_date=utc(2026, 3, 1),
        end_date=None,
        catchup=False,
        now=utc(2026, 2, 1),
    ) == utc(2026, 3, 2)


# --- @once -----------------------------------------------------------------------


def test_once() -> None:
    tt = parse_schedule("@once")
    assert isinstance(tt, OnceTimetable)
    start = utc(2026, 1, 1, 8)
    assert due(tt, start_date=start, now=utc(2026, 1, 1, 7)) == []
    assert (
        next_run_at(
            tt, last=None, start_date=start, end_date=None, catchup=False, now=utc(2026, 1, 1, 7)
        )
        == start
    )
    got = due(tt, start_date=start, now=utc(2026, 3, 1), catchup=False)
    assert got == [iv(start, start)]
    assert due(tt, start_date=start, last=got[0], now=utc(2026, 3, 1)) == []
    assert (
        next_run_at(
            tt, last=got[0], start_date=start, end_date=None, catchup=True, now=utc(2026, 3, 1)
        )
        is None
    )
    assert due(tt, start_date=start, end_date=utc(2026, 1, 1), now=utc(2026, 3, 1)) == []
    # Without a start date it runs immediately, once.
    assert due(tt, now=utc(2026, 3, 1)) == [iv(utc(2026, 3, 1), utc(2026, 3, 1))]


def test_every_hour_weekday_schedule_across_spring_weekend() -> None:
    # Friday 23:45 CET -> Monday 00:00 CEST: the weekend's DST change must not
    # shift Monday's first run to 01:00.
    tt = parse_schedule("*/15 * * * 1-5", "Europe/Berlin")
    got = tt.next_interval(
        iv(utc(2026, 3, 27, 22, 30), utc(2026, 3, 27, 22, 45)),
        start_date=utc(2026, 3, 1),
        end_date=None,
        catchup=True,
        now=utc(2026, 4, 1),
    )
    assert got == iv(utc(2026, 3, 27, 22, 45), utc(2026, 3, 29, 22, 0))


def test_every_hour_on_first_of_month_across_dst() -> None:
    tt = parse_schedule("0 * 1 * *", "Europe/Berlin")
    got = tt.next_interval(
        iv(utc(2026, 3, 1, 21), utc(2026, 3, 1, 22)),
        start_date=utc(2026, 1, 1),
        end_date=None,
        catchup=True,
        now=utc(2026, 5, 1),
    )
    # 2026-03-01 23:00 CET -> 2026-04-01 00:00 CEST
    assert got == iv(utc(2026, 3, 1, 22), utc(2026, 3, 31, 22))


def _brute_force(expr: str, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """Every 5-minute instant whose local wall-clock time matches the cron."""
    out = []
    t = start
    while t < end:
        if croniter.match(expr, t.astimezone(tz).replace(tzinfo=None)):
            out.append(t)
        t += timedelta(minutes=5)
    return out


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", utc(2026, 3, 28, 12)),
        ("Europe/Berlin", utc(2026, 10, 24, 12)),
        ("America/New_York", utc(2026, 3, 7, 18)),
        ("America/New_York", utc(2026, 10, 31, 18)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 6)),  # 30-minute DST shift
        ("America/Santiago", utc(2026, 4, 4, 18)),  # transition at local midnight
        ("America/Santiago", utc(2026, 9, 5, 18)),
    ],
)
@pytest.mark.parametrize("expr", ["*/20 * * * *", "0 * * * *", "30 * * * 0,6"])
def test_every_hour_fire_times_match_brute_force(zone: str, start: datetime, expr: str) -> None:
    tz = ZoneInfo(zone)
    end = start + timedelta(hours=24)
    expected = _brute_force(expr, tz, start, end)
    tt = parse_schedule(expr, zone)
    got = due(tt, start_date=start, now=end - timedelta(seconds=1))
    assert [i.end for i in got] == expected[1:]
    assert [i.start for i in got] == expected[:-1]
