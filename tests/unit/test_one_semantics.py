"""Issue 8's bugs: places where the local runner, the operator and Airflow disagreed.

Each test failed on the code before its fix; each names the rule it holds in place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kascade.api.pipeline import PipelineSpec
from kascade.controller import scheduling


def _spec(**fields: object) -> PipelineSpec:
    return PipelineSpec.model_validate(fields)


# -- 1. a startDate/endDate without a zone is read in spec.timezone, by every driver ------
def test_operator_reads_a_naive_start_date_in_the_pipeline_timezone() -> None:
    spec = _spec(schedule="@daily", timezone="Europe/Berlin", startDate="2024-01-01", catchup=True)
    now = datetime(2024, 1, 3, 12, tzinfo=UTC)
    due = scheduling.plan_schedule(spec, [], None, now).due
    # Midnight in Berlin is 23:00 UTC the day before: the first interval is not skipped.
    assert due[0].start == datetime(2023, 12, 31, 23, tzinfo=UTC)
    assert len(due) == 2


def test_operator_creates_no_run_before_a_naive_start_date_west_of_utc() -> None:
    spec = _spec(
        schedule="@hourly", timezone="America/New_York", startDate="2024-01-01", catchup=True
    )
    now = datetime(2024, 1, 1, 8, tzinfo=UTC)
    due = scheduling.plan_schedule(spec, [], None, now).due
    assert due[0].start == datetime(2024, 1, 1, 5, tzinfo=UTC)  # midnight EST
    assert len(due) == 3


def test_once_and_fixed_intervals_start_at_the_local_start_date() -> None:
    now = datetime(2024, 7, 1, tzinfo=UTC)
    once = _spec(schedule="@once", timezone="Europe/Berlin", startDate="2024-06-01T09:00")
    assert scheduling.plan_schedule(once, [], None, now).due[0].start == datetime(
        2024, 6, 1, 7, tzinfo=UTC
    )
    six = _spec(
        schedule="6h",
        timezone="Asia/Tokyo",
        startDate="2024-06-30T00:00",
        endDate="2024-06-30T05:00",
        catchup=True,
    )
    due = scheduling.plan_schedule(six, [], None, now).due
    assert [(i.start, i.end - i.start) for i in due] == [
        (datetime(2024, 6, 29, 15, tzinfo=UTC), timedelta(hours=6))
    ]
