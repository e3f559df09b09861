"""Which PipelineRuns a Pipeline should have now: Airflow's scheduler, as pure functions.

The schedule cursor is derived from the runs that exist (the newest scheduled
interval), with the Pipeline status as a fallback once history limits have
deleted old runs, so a missed tick or an operator restart can never skip or
double a run: names are derived from the logical date, and creating a run that
exists is a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kascade.api.pipeline import PipelineSpec
from kascade.api.runs import TriggerKind
from kascade.controller import naming, snapshots
from kascade.controller.podspec import LABEL_PIPELINE, MANAGED_BY
from kascade.engine.run_dates import PipelineSchedule, manual_run
from kascade.engine.schedule import DataInterval, parse_schedule

ACTIVE_PHASES = frozenset({"queued", "running", None, ""})
LABEL_TRIGGER = "kascade.io/trigger"


@dataclass(frozen=True)
class RunRecord:
    name: str
    phase: str | None
    trigger: str
    interval: DataInterval | None
    created: datetime | None = None
    ended: datetime | None = None
    logical_date: datetime | None = None
    snapshot: str | None = None
    """The PipelineSnapshot it executes (None: a spec of its own, or not frozen yet)."""

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES


@dataclass(frozen=True)
class SchedulePlan:
    due: list[DataInterval]
    next_run: datetime | None
    cursor: DataInterval | None


def plan_schedule(
    spec: PipelineSpec,
    runs: list[RunRecord],
    stored_cursor: DataInterval | None,
    now: datetime,
    resolved_start: datetime | None = None,
) -> SchedulePlan:
    """``resolved_start``: what a relative startDate was resolved to (the Pipeline's status)."""
    schedule = PipelineSchedule.of(spec, resolved_start)
    scheduled = [r.interval for r in runs if r.trigger == TriggerKind.SCHEDULED and r.interval]
    cursor = max(scheduled, key=lambda i: i.end, default=None)
    if stored_cursor is not None and (cursor is None or stored_cursor.end > cursor.end):
        cursor = stored_cursor
    if spec.suspend:
        return SchedulePlan([], None, cursor)
    slots = spec.max_active_runs - sum(1 for r in runs if r.active)
    due = schedule.due(last=cursor, now=now, limit=slots) if slots > 0 else []
    last = due[-1] if due else cursor
    upcoming = schedule.next_run(last=last, now=now)
    return SchedulePlan(due, upcoming, last)


def next_waiting(waiting: Mapping[str, dict[str, Any]]) -> str:
    """Which run held back by maxActiveRuns starts next: the oldest logical date first
    (Airflow's queued DAG runs go by logical date), then by name, so the order is total."""
    return min(waiting, key=lambda name: (str(waiting[name]["spec"].get("logicalDate", "")), name))


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dt%H%M%S")


def run_manifest(
    pipeline: dict[str, Any],
    interval: DataInterval,
    trigger: TriggerKind,
    *,
    params: dict[str, Any] | None = None,
    by: str | None = None,
    name: str | None = None,
    logical_date: datetime | None = None,
    frozen: bool = False,
) -> dict[str, Any]:
    """A PipelineRun of ``pipeline``; ``frozen``: referencing the PipelineSnapshot of its
    spec as it is now (the caller makes sure it exists), else the operator freezes it when
    it first sees the run (``snapshots.py``).

    The logical date is the interval's start for scheduled and backfill runs; a
    manual run's is the moment it was triggered (as in Airflow), so that two
    manual runs never share a run id.
    """
    meta = pipeline["metadata"]
    spec = pipeline["spec"]
    pname = meta["name"]
    run_name = name or naming.run_name(pname, trigger.value, stamp(interval.start))
    body: dict[str, Any] = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {
            "name": run_name,
            "namespace": meta["namespace"],
            "labels": {
                **MANAGED_BY,
                LABEL_PIPELINE: naming.label_value(pname),
                LABEL_TRIGGER: trigger.value,
            },
            "ownerReferences": [
                {
                    "apiVersion": "kascade.io/v1alpha1",
                    "kind": "Pipeline",
                    "name": pname,
                    "uid": meta["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {
            "pipelineRef": {"name": pname},
            "logicalDate": (logical_date or interval.start).isoformat(),
            "dataInterval": {"start": interval.start.isoformat(), "end": interval.end.isoformat()},
            "trigger": {"kind": trigger.value, **({"by": by} if by else {})},
        },
    }
    if frozen:
        digest = snapshots.spec_hash(spec)
        body["spec"]["snapshot"] = snapshots.name_of(pname, digest)
        body["spec"]["specHash"] = digest
    if params:
        body["spec"]["params"] = params
    return body


def manual_run_manifest(
    pipeline: dict[str, Any],
    *,
    logical_date: datetime | None,
    now: datetime,
    params: dict[str, Any] | None = None,
    by: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """A manual run of ``pipeline`` (``kascade trigger``, the test helpers), dated by the one
    manual-run rule: ``logical_date`` or now, and the schedule's latest complete interval."""
    spec = pipeline["spec"]
    timetable = parse_schedule(spec.get("schedule"), spec.get("timezone", "UTC"))
    dates = manual_run(timetable, logical_date=logical_date, now=now)
    pname = pipeline["metadata"]["name"]
    return run_manifest(
        pipeline,
        dates.interval,
        TriggerKind.MANUAL,
        params=params,
        by=by,
        name=name or naming.run_name(pname, "manual", now.strftime("%Y%m%dt%H%M%S%f")),
        logical_date=dates.logical_date,
    )


def record_of(run: dict[str, Any]) -> RunRecord:
    spec = run.get("spec") or {}
    status = run.get("status") or {}
    interval = None
    di = spec.get("dataInterval")
    if di:
        interval = DataInterval(
            datetime.fromisoformat(di["start"]), datetime.fromisoformat(di["end"])
        )
    created = run["metadata"].get("creationTimestamp")
    ended = status.get("endTime")
    logical = spec.get("logicalDate")
    return RunRecord(
        name=run["metadata"]["name"],
        phase=status.get("phase"),
        trigger=str((spec.get("trigger") or {}).get("kind", "manual")),
        interval=interval,
        created=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
        ended=datetime.fromisoformat(ended.replace("Z", "+00:00")) if ended else None,
        logical_date=datetime.fromisoformat(logical.replace("Z", "+00:00")) if logical else None,
        snapshot=spec.get("snapshot"),
    )


def runs_to_prune(
    runs: list[RunRecord], *, successful: int, failed: int, ttl_seconds: float | None, now: datetime
) -> list[str]:
    """Finished runs beyond the history limits or older than the TTL, oldest first."""
    finished = sorted(
        (r for r in runs if not r.active),
        key=lambda r: r.ended or r.created or now,
        reverse=True,
    )
    keep = {"success": successful, "failed": failed}
    seen = {"success": 0, "failed": 0}
    prune: list[str] = []
    for r in finished:
        phase = r.phase if r.phase in keep else "failed"
        seen[phase] += 1
        too_old = (
            ttl_seconds is not None and r.ended and (now - r.ended).total_seconds() > ttl_seconds
        )
        if seen[phase] > keep[phase] or too_old:
            prune.append(r.name)
    return list(reversed(prune))
