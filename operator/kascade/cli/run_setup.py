"""What a manual local run is: its logical date, data interval, run id, params and pools.

Follows Airflow's ``dags trigger``: without a date the run covers the schedule's
latest complete interval (its logical date is that interval's start); a date
that is a schedule boundary gives the interval starting there (like a
backfill); any other date is the logical date itself, with the interval
Airflow infers for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kascade.api.pipeline import PipelineSpec
from kascade.engine.errors import Issue
from kascade.engine.schedule import DataInterval, NullTimetable, parse_schedule
from kascade.engine.validation import parse_date


class SetupError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def run_interval(spec: PipelineSpec, given: str | None, now: datetime) -> DataInterval:
    timetable = parse_schedule(spec.schedule, spec.timezone)
    if given is None:
        return timetable.manual_interval(now)
    issues: list[Issue] = []
    at = parse_date(given, "--logical-date", issues)
    if at is None:
        raise SetupError([str(i) for i in issues])
    if not isinstance(timetable, NullTimetable):
        aligned = timetable.next_interval(None, start_date=at, end_date=None, catchup=True, now=at)
        if aligned is not None and aligned.start == at:
            return aligned
    return timetable.manual_interval(at)


def logical_date_of(interval: DataInterval, given: str | None) -> datetime:
    if given is None:
        return interval.start
    issues: list[Issue] = []
    at = parse_date(given, "--logical-date", issues)
    assert at is not None  # run_interval already parsed it
    return at.astimezone(UTC)


def manual_run_id(logical_date: datetime) -> str:
    return f"manual__{logical_date.astimezone(UTC).isoformat()}"


def params_of(spec: PipelineSpec, pairs: Sequence[str]) -> dict[str, Any]:
    from kascade.actions import typed_params

    _, values, problems = typed_params(spec.params or {}, pairs, "--param")
    if problems:
        raise SetupError(problems)
    return values


def pools_of(pairs: Sequence[str]) -> dict[str, int]:
    pools: dict[str, int] = {}
    problems = []
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        try:
            slots = int(raw) if sep and name else -1
        except ValueError:
            slots = -1
        if slots < 1:
            problems.append(f"--pool {pair!r}: expected name=slots (slots >= 1)")
            continue
        pools[name] = slots
    if problems:
        raise SetupError(problems)
    return pools
