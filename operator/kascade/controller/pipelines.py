"""A Pipeline's status, as pure functions of what the operator observed.

Two writers share a Pipeline's status (its validity, its schedule and run counters);
each patch holds exactly the fields it owns, built from ``api.pipeline.PipelineStatus``
(fields set to None are sent, so a merge patch clears them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kascade.api.base import Condition, Interval
from kascade.api.pipeline import PipelineSpec, PipelineStatus, ResolvedDate
from kascade.controller.scheduling import RunRecord, SchedulePlan
from kascade.controller.status import iso, parse_iso
from kascade.engine.errors import Issue
from kascade.engine.run_dates import is_relative, resolve_start_date
from kascade.engine.schedule import DataInterval, zone

SCHEDULE_FIELDS = ("nextRun", "lastScheduledInterval")
"""Written at once when they change; the run counters at most every COUNTS_SECONDS."""


def _owned(status: PipelineStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, mode="json", exclude_unset=True)


def validity(
    issues: Sequence[Issue | str], task_count: int | None, generation: Any, now: datetime
) -> dict[str, Any]:
    """The ``Valid`` condition and the errors, for the generation that was judged."""
    errors = [str(i) for i in issues]
    return _owned(
        PipelineStatus(
            conditions=[
                Condition(
                    type="Valid",
                    status="False" if errors else "True",
                    reason="ValidationFailed" if errors else "Valid",
                    message="; ".join(errors)[:1000] if errors else "the pipeline is valid",
                    last_transition_time=now,
                )
            ],
            errors=errors or None,
            observed_generation=generation,
            task_count=task_count,
        )
    )


def is_valid(status: dict[str, Any]) -> bool:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Valid":
            return bool(cond.get("status") == "True")
    return False


def stored_cursor(status: dict[str, Any]) -> DataInterval | None:
    """The schedule cursor kept in the status (for when history limits deleted the runs)."""
    stored = status.get("lastScheduledInterval")
    if not stored:
        return None
    return DataInterval(
        datetime.fromisoformat(stored["start"]), datetime.fromisoformat(stored["end"])
    )


def schedule_status(plan: SchedulePlan, runs: Sequence[RunRecord], now: datetime) -> dict[str, Any]:
    """The schedule (next run, cursor) and the run counters."""
    last = max(runs, key=lambda r: r.created or now, default=None)
    status = PipelineStatus(
        next_run=iso(plan.next_run),
        active_runs=sum(1 for r in runs if r.active),
        runs_succeeded=sum(1 for r in runs if r.phase == "success"),
        runs_failed=sum(1 for r in runs if r.phase == "failed"),
    )
    if plan.cursor is not None:
        status.last_scheduled_interval = Interval(
            start=plan.cursor.start.isoformat(), end=plan.cursor.end.isoformat()
        )
    if last is not None:
        status.last_run = last.name
    return _owned(status)


def resolved_start(spec: PipelineSpec, status: dict[str, Any]) -> datetime | None:
    """The date a relative startDate was resolved to, if it was, for the value written now."""
    stored = status.get("resolvedStartDate") or {}
    if not spec.start_date or stored.get("written") != spec.start_date:
        return None
    return parse_iso(stored.get("date"))


def start_date_status(
    spec: PipelineSpec, status: dict[str, Any], now: datetime
) -> dict[str, Any] | None:
    """The patch that records a relative startDate's resolution: once per written value
    (so the start never moves), and None when there is nothing (more) to record."""
    if not spec.start_date or not is_relative(spec.start_date):
        if status.get("resolvedStartDate"):
            return {"resolvedStartDate": None}  # an absolute date now: forget the old one
        return None
    if resolved_start(spec, status) is not None:
        return None
    date = resolve_start_date(spec.start_date, now, zone(spec.timezone))
    record = ResolvedDate(written=spec.start_date, date=date.isoformat())
    return _owned(PipelineStatus(resolved_start_date=record))
