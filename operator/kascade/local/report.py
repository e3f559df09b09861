"""A finished (or running) run as JSON: ``--output json`` and the local history files.

One shape for both, so that what a user scripts against is exactly what the
externalTask lookup reads back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kascade.api.runs import AttemptReason
from kascade.engine.decisions import Launch
from kascade.engine.instances import Instance
from kascade.engine.run import RunEngine


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def instance_duration(inst: Instance) -> float | None:
    """Of the last attempt, as Airflow reports a task instance's duration."""
    if inst.attempts:
        last = inst.attempts[-1]
        return _seconds(last.start or inst.started_at, last.end)
    return _seconds(inst.ready_at, inst.ended_at)


def tries_json(inst: Instance) -> list[dict[str, Any]]:
    """Each attempt as a TaskRun's status lists it (number, start, end, exit code, reason).

    The attempt running now is listed too (no end yet), so its log can be followed.
    """
    tries = [
        {
            "number": a.number,
            "startTime": _iso(a.start),
            "endTime": _iso(a.end),
            "exitCode": a.exit_code,
            "reason": a.reason.value if a.reason is not None else None,
            "message": a.message,
        }
        for a in inst.attempts
    ]
    finished = {t["number"] for t in tries}
    if inst.holds_slot and inst.attempt and inst.attempt not in finished:
        tries.append({"number": inst.attempt, "startTime": _iso(inst.started_at), "endTime": None})
    return tries


def instance_json(inst: Instance) -> dict[str, Any]:
    return {
        "state": inst.state.value,
        "attempts": inst.attempt,
        "durationSeconds": instance_duration(inst),
        "outputs": {k: v for k, v in inst.outputs.items() if k != "__item__"},
        "message": inst.message if inst.state.value != "success" or cached(inst) else None,
        "exitCode": inst.exit_code,
        "startTime": _iso(inst.started_at),
        "endTime": _iso(inst.ended_at),
        "tries": tries_json(inst),
        "pokes": inst.pokes or None,
        "cached": cached(inst),
    }


def rendered_json(launch: Launch) -> dict[str, Any]:
    """The fields of an attempt after templating, as the task instance view shows them.

    Only literal env values are shown: ``valueFrom`` keeps its reference, never a value.
    """
    spec = launch.spec
    out: dict[str, Any] = {
        "command": spec.command,
        "args": spec.args,
        "script": spec.script,
        "workingDir": spec.working_dir,
        "env": [e.dump() for e in spec.env or []],
    }
    return {k: v for k, v in out.items() if v not in (None, [])}


def cached(inst: Instance) -> bool:
    """It succeeded from the cache (``cache``), without running."""
    return bool(inst.attempts) and inst.attempts[-1].reason is AttemptReason.CACHED


def run_json(engine: RunEngine, end: datetime | None) -> dict[str, Any]:
    ctx = engine.ctx
    return {
        "pipeline": ctx.pipeline,
        "runId": ctx.run_id,
        "phase": engine.phase.value,
        "logicalDate": ctx.logical_date.isoformat(),
        "dataInterval": {
            "start": ctx.interval.start.isoformat(),
            "end": ctx.interval.end.isoformat(),
        },
        "startTime": _iso(engine.started_at),
        "endTime": _iso(end),
        "durationSeconds": _seconds(engine.started_at, end),
        "message": engine.message,
        "params": dict(ctx.params),
        "tasks": {key: instance_json(inst) for key, inst in engine.instances.items()},
    }
