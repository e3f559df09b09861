"""What a manual local run is: its logical date, data interval, run id, params and pools.

The dates follow the one manual-run rule of ``engine.run_dates`` (Airflow's): the
logical date is the one given (UTC unless it has an offset) or now, and the data
interval is the schedule's latest complete interval ending at or before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kascade.api.pipeline import PipelineSpec
from kascade.engine.errors import Issue
from kascade.engine.plan import Plan
from kascade.engine.run_dates import RunDates, manual_run, parse_date
from kascade.engine.schedule import parse_schedule
from kascade.engine.validation import params_used


class SetupError(Exception):
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def run_dates(spec: PipelineSpec, given: str | None, now: datetime) -> RunDates:
    """The run's logical date and data interval, from ``--logical-date`` (or now)."""
    at = None
    if given is not None:
        issues: list[Issue] = []
        at = parse_date(given, "--logical-date", issues)
        if at is None:
            raise SetupError([str(i) for i in issues])
    return manual_run(parse_schedule(spec.schedule, spec.timezone), logical_date=at, now=now)


def params_of(spec: PipelineSpec, pairs: Sequence[str], plan: Plan | None = None) -> dict[str, Any]:
    """The run's params from ``--param name=value`` pairs; every problem at once. With the
    ``plan``, a pipeline that declares no params takes only names its templates read."""
    from kascade.actions import typed_params

    declared = spec.params or {}
    used = params_used(plan) if plan is not None and not declared else None
    _, values, problems = typed_params(declared, pairs, "--param", used=used)
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
