"""One read model of pipelines, runs and task instances, from a cluster or local history.

The web UI and ``kascade get`` show the same columns because both build them
here: cluster objects (Pipeline, PipelineRun, TaskRun) and the local runner's
history records are turned into the same plain dicts. Pure: no API calls, no
clock reads (``now`` is passed in where a duration needs it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kascade.actions import base_task as base_task

LAST_RUNS = 10
"""How many recent runs a pipeline row shows as coloured squares."""

FINISHED = frozenset({"success", "failed"})
TASK_DONE = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def _s(value: Any) -> str:
    """Interned: thousands of runs share the same task keys and states."""
    return sys.intern(value) if isinstance(value, str) else str(value)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def seconds_between(start: Any, end: Any, now: datetime | None = None) -> float | None:
    begin = parse_time(start)
    finish = parse_time(end) or now
    if begin is None or finish is None:
        return None
    return round((finish - begin).total_seconds(), 3)


# -- cluster objects ---------------------------------------------------------------------
def pipeline_from_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A Pipeline as the pipelines list shows it (the spec is kept for the pipeline view)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    conditions = status.get("conditions") or []
    errors = status.get("errors") or []
    return {
        "namespace": meta.get("namespace") or "",
        "name": meta.get("name") or "",
        "schedule": spec.get("schedule"),
        "timezone": spec.get("timezone") or "UTC",
        "paused": bool(spec.get("suspend")),
        "tags": list(spec.get("tags") or []),
        "description": spec.get("description"),
        "nextRun": status.get("nextRun"),
        "taskCount": status.get("taskCount"),
        "activeRuns": status.get("activeRuns"),
        "errors": list(errors),
        "valid": not errors
        and not any(c.get("type") == "Valid" and c.get("status") == "False" for c in conditions),
    }


def run_from_object(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A PipelineRun without its copied pipeline spec (that is fetched when a run is opened)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    trigger = spec.get("trigger") or {}
    tasks = status.get("tasks") or {}
    return {
        "namespace": meta.get("namespace") or "",
        "name": meta.get("name") or "",
        "pipeline": _s((spec.get("pipelineRef") or {}).get("name") or ""),
        "phase": _s(status.get("phase") or "queued"),
        "logicalDate": spec.get("logicalDate"),
        "dataInterval": spec.get("dataInterval"),
        "trigger": _s(trigger.get("kind") or "manual"),
        "triggeredBy": trigger.get("by"),
        "params": spec.get("params") or {},
        "created": meta.get("creationTimestamp"),
        "startTime": status.get("startTime"),
        "endTime": status.get("endTime"),
        "message": status.get("message"),
        "conditions": status.get("conditions") or [],
        "slaMissed": bool(status.get("slaMissed")),
        "tasks": {_s(k): _s(v) for k, v in tasks.items() if v is not None},
    }


def task_from_taskrun(obj: Mapping[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    key = spec.get("taskName") or ""
    if spec.get("mapIndex") is not None:
        key = f"{key}[{spec['mapIndex']}]"
    tries = [
        {
            "number": a.get("number"),
            "pod": a.get("podName"),
            "startTime": a.get("startTime"),
            "endTime": a.get("endTime"),
            "exitCode": a.get("exitCode"),
            "reason": a.get("reason"),
            "message": a.get("message"),
            "logArchived": a.get("logArchived"),
            "logArchiveMessage": a.get("logArchiveMessage"),
        }
        for a in status.get("attempts") or []
    ]
    last = tries[-1] if tries else {}
    return {
        "key": key,
        "run": ((spec.get("pipelineRunRef") or {}).get("name")) or "",
        "name": (obj.get("metadata") or {}).get("name"),
        "state": status.get("state") or "none",
        "attempts": len(tries),
        "tries": tries,
        "startTime": (tries[0] if tries else {}).get("startTime"),
        "endTime": last.get("endTime"),
        "exitCode": last.get("exitCode"),
        "pod": last.get("pod"),
        "outputs": status.get("outputs") or {},
        "message": status.get("message"),
        "nextRetryTime": status.get("nextRetryTime"),
        "mapIndex": spec.get("mapIndex"),
    }


# -- local history records -----------------------------------------------------------------
def local_run_name(record: Mapping[str, Any]) -> str:
    """``pipeline/ref``: run ids repeat across pipelines (they derive from the logical date)."""
    return f"{record.get('pipeline')}/{record.get('ref') or record.get('runId')}"


def run_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    tasks = record.get("tasks") or {}
    return {
        "namespace": "",
        "name": local_run_name(record),
        "runId": record.get("runId"),
        "pipeline": record.get("pipeline") or "",
        "phase": record.get("phase") or "queued",
        "logicalDate": record.get("logicalDate"),
        "dataInterval": record.get("dataInterval"),
        "trigger": "manual",
        "triggeredBy": "kascade run",
        "params": record.get("params") or {},
        "created": record.get("startTime"),
        "startTime": record.get("startTime"),
        "endTime": record.get("endTime"),
        "message": record.get("message"),
        "conditions": [],
        "slaMissed": bool(record.get("slaMisses")),
        "tasks": {k: (v or {}).get("state") or "none" for k, v in tasks.items()},
    }


def tasks_from_record(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    run = local_run_name(record)
    for key, info in (record.get("tasks") or {}).items():
        info = info or {}
        tries = [dict(t, pod=None) for t in info.get("tries") or []]
        out.append(
            {
                "key": key,
                "run": run,
                "name": key,
                "state": info.get("state") or "none",
                "attempts": len(tries) or int(info.get("attempts") or 0),
                "tries": tries,
                "startTime": info.get("startTime") or (tries[0]["startTime"] if tries else None),
                "endTime": info.get("endTime"),
                "exitCode": info.get("exitCode"),
                "pod": None,
                "outputs": info.get("outputs") or {},
                "message": info.get("message"),
                "nextRetryTime": None,
                "mapIndex": _map_index(key),
            }
        )
    return out


def pipelines_from_records(
    by_pipeline: Mapping[str, list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Local pipelines are those with runs in the history; their spec is the latest run's."""
    out = []
    for name, records in sorted(by_pipeline.items()):
        spec = next((r.get("pipelineSpec") for r in records if r.get("pipelineSpec")), None) or {}
        out.append(
            {
                "namespace": "",
                "name": name,
                "schedule": spec.get("schedule"),
                "timezone": spec.get("timezone") or "UTC",
                "paused": False,
                "tags": list(spec.get("tags") or []),
                "description": spec.get("description"),
                "nextRun": None,
                "taskCount": len(records[0].get("tasks") or {}) if records else None,
                "activeRuns": sum(1 for r in records if r.get("phase") not in FINISHED),
                "errors": [],
                "valid": True,
            }
        )
    return out


def _map_index(key: str) -> int | None:
    if key.endswith("]") and "[" in key:
        try:
            return int(key[key.rindex("[") + 1 : -1])
        except ValueError:
            return None
    return None


# -- derived columns ---------------------------------------------------------------------------
def progress(run: Mapping[str, Any]) -> str:
    states = list((run.get("tasks") or {}).values())
    done = sum(1 for s in states if s in TASK_DONE)
    return f"{done}/{len(states)}"


def counts(run: Mapping[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for state in (run.get("tasks") or {}).values():
        out[state] = out.get(state, 0) + 1
    return out


def last_runs(runs: Iterable[Mapping[str, Any]], n: int = LAST_RUNS) -> list[dict[str, Any]]:
    """The newest ``n`` runs (name and phase), newest first."""
    ordered = sorted(runs, key=run_sort_key, reverse=True)
    return [{"name": r["name"], "phase": r["phase"]} for r in ordered[:n]]


def run_sort_key(run: Mapping[str, Any]) -> tuple[str, str]:
    return (str(run.get("logicalDate") or run.get("created") or ""), str(run.get("name") or ""))


def pipeline_row(pipeline: Mapping[str, Any], runs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A pipelines-list row: the pipeline plus its recent runs."""
    return {**pipeline, "lastRuns": last_runs(runs)}


def run_row(run: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A runs-list row (no per-task map: that is the grid's)."""
    row = {k: v for k, v in run.items() if k != "tasks"}
    end = run.get("endTime") if run.get("phase") in FINISHED else None
    row["durationSeconds"] = seconds_between(run.get("startTime"), end, now)
    row["progress"] = progress(run)
    row["counts"] = counts(run)
    return row


def task_row(task: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    row = dict(task)
    end = task.get("endTime") if task.get("state") in TASK_DONE else None
    row["durationSeconds"] = seconds_between(task.get("startTime"), end, now)
    return row


def with_pod_attempts(task: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A task instance completed with attempts its TaskRun does not list yet (from their pods).

    A running pod of the latest attempt also makes a task that still reads
    none/queued show as running.
    """
    out = dict(task)
    known = {t.get("number") for t in task.get("tries") or []}
    extra = [
        {k: v for k, v in p.items() if k != "phase"} for p in pods if p.get("number") not in known
    ]
    if not extra:
        return out
    tries = sorted([*(task.get("tries") or []), *extra], key=lambda t: t.get("number") or 0)
    out["tries"] = tries
    out["attempts"] = len(tries)
    out["pod"] = tries[-1].get("pod")
    out["startTime"] = out.get("startTime") or tries[0].get("startTime")
    latest = max(pods, key=lambda p: p.get("number") or 0)
    if latest.get("phase") == "Running" and task.get("state") in ("none", "scheduled", "queued"):
        out["state"] = "running"
    return out
