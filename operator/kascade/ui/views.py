"""What each page of the web UI shows, built from the read model (pure; no I/O, no clock).

The server keeps objects in its cache and calls these per request: the grid of
runs x tasks, the graph with a run's states, the schedule, a run's Gantt bars,
pools and SLA misses. Grid cells are one-letter state codes (``STATE_CODES``) so
that 50 runs x 200 tasks travel as 200 short strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from kascade.engine.plan import Plan
from kascade.ui import layout, model

STATE_CODES = {
    "none": "-",
    "scheduled": "c",
    "queued": "q",
    "running": "r",
    "success": "s",
    "failed": "f",
    "skipped": "k",
    "upstream_failed": "u",
    "up_for_retry": "y",
    "up_for_reschedule": "e",
    "removed": "x",
}
ABSENT = " "
SEVERITY = [
    "failed",
    "upstream_failed",
    "running",
    "up_for_retry",
    "up_for_reschedule",
    "queued",
    "scheduled",
    "none",
    "success",
    "skipped",
    "removed",
]
"""A group or mapped task shows its most pressing member's state, in this order."""
_RANK = {s: i for i, s in enumerate(SEVERITY)}


def worst(states: Iterable[str]) -> str | None:
    found = [s for s in states if s]
    return min(found, key=lambda s: _RANK.get(s, len(SEVERITY))) if found else None


def plan_of(spec: Mapping[str, Any] | None, name: str) -> Plan | None:
    """The compiled DAG of a spec, or None if it does not compile (the page says why)."""
    from kascade.api.pipeline import PipelineSpec
    from kascade.engine.compile import compile_spec

    if not spec:
        return None
    try:
        plan, _ = compile_spec(PipelineSpec.model_validate(spec), name)
    except ValueError:
        return None
    return plan


# -- the pipeline's structure -----------------------------------------------------------
def rows_of(plan: Plan) -> list[dict[str, Any]]:
    """Grid rows: groups (collapsible) with their tasks under them, in DAG order."""
    children: dict[str | None, list[tuple[str, str]]] = {}
    placed: set[str] = set()

    def parent_of(group: str) -> str | None:
        return group.rsplit(".", 1)[0] if "." in group else None

    def place(kind: str, ident: str, parent: str | None) -> None:
        if (kind, ident) in placed_pairs:
            return
        placed_pairs.add((kind, ident))
        children.setdefault(parent, []).append((kind, ident))

    placed_pairs: set[tuple[str, str]] = set()
    for i in plan.order:
        task = plan.tasks[i]
        group = task.group
        chain = []
        while group is not None:
            chain.append(group)
            group = parent_of(group)
        for g in reversed(chain):
            place("group", g, parent_of(g))
        place("task", task.id, task.group)
        placed.add(task.id)
    rows: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for kind, ident in children.get(parent, []):
            label = ident.rsplit(".", 1)[-1]
            if kind == "group":
                rows.append({"id": ident, "kind": "group", "depth": depth, "label": label})
                walk(ident, depth + 1)
            else:
                spec = plan.task(ident).spec
                rows.append(
                    {
                        "id": ident,
                        "kind": "task",
                        "depth": depth,
                        "label": label,
                        "group": plan.task(ident).group,
                        "mapped": spec.expand is not None,
                    }
                )

    walk(None, 0)
    return rows


def task_facts(plan: Plan) -> dict[str, dict[str, Any]]:
    """What the graph and task pages say about each task besides its state."""
    out = {}
    for t in plan.tasks:
        spec = t.spec
        out[t.id] = {
            "upstream": list(t.upstream),
            "group": t.group,
            "mapped": spec.expand is not None,
            "sensor": spec.sensor.kind.value if spec.sensor else None,
            "branch": spec.branch,
            "shortCircuit": spec.short_circuit,
            "triggerRule": t.trigger_rule.value,
            "retries": t.retries,
            "pool": t.pool,
            "image": spec.image,
        }
    return out


def graph_of(plan: Plan) -> dict[str, Any]:
    ids = [t.id for t in plan.tasks]
    return layout.layout(ids, {t.id: list(t.upstream) for t in plan.tasks})


# -- the grid --------------------------------------------------------------------------------
def _instances(states: Mapping[str, str]) -> dict[str, list[str]]:
    """Task id → the states of its instances (one, or one per mapped index)."""
    out: dict[str, list[str]] = {}
    for key, state in states.items():
        out.setdefault(model.base_task(key), []).append(state)
    return out


def grid(
    rows: Sequence[dict[str, Any]], runs: Sequence[Mapping[str, Any]], groups: Mapping[str, Any]
) -> dict[str, Any]:
    """Runs as columns (oldest left), rows as ``rows_of`` gives them.

    Each row has ``cells``: one state code per run. Mapped tasks and groups show
    their most pressing member's state; mapped rows add per-run state counts.
    """
    columns = list(reversed(runs))
    per_run = [_instances(r.get("tasks") or {}) for r in columns]
    out_rows = []
    for row in rows:
        codes = []
        counts: list[dict[str, int] | None] = []
        for inst in per_run:
            if row["kind"] == "group":
                states = [s for m in groups.get(row["id"], ()) for s in inst.get(m, ())]
            else:
                states = inst.get(row["id"], [])
            state = worst(states)
            codes.append(STATE_CODES.get(state, "?") if state else ABSENT)
            if row.get("mapped"):
                tally: dict[str, int] = {}
                for s in states:
                    tally[s] = tally.get(s, 0) + 1
                counts.append(tally or None)
        out = {**row, "cells": "".join(codes)}
        if row.get("mapped"):
            out["counts"] = counts
        out_rows.append(out)
    return {
        "runs": [
            {
                "name": r["name"],
                "phase": r["phase"],
                "logicalDate": r.get("logicalDate"),
                "trigger": r.get("trigger"),
                "startTime": r.get("startTime"),
                "endTime": r.get("endTime"),
            }
            for r in columns
        ],
        "rows": out_rows,
        "codes": STATE_CODES,
    }


# -- schedule ---------------------------------------------------------------------------------
def schedule_of(spec: Mapping[str, Any], now: datetime, count: int = 8) -> dict[str, Any]:
    """The next runs and their data intervals, or why there are none."""
    from kascade.api.pipeline import PipelineSpec
    from kascade.engine.run_dates import PipelineSchedule

    try:
        schedule = PipelineSchedule.of(PipelineSpec.model_validate(spec))
    except ValueError as exc:
        return {"description": None, "error": str(exc), "next": []}
    tt, start, end = schedule.timetable, schedule.start_date, schedule.end_date
    upcoming = []
    after = None
    for _ in range(count * 4):
        interval = tt.next_interval(after, start_date=start, end_date=end, catchup=False, now=now)
        if interval is None or (after is not None and interval.start < after.end):
            break
        after = interval
        if tt.run_after(interval) > now:
            upcoming.append(
                {
                    "runAt": tt.run_after(interval).isoformat(),
                    "start": interval.start.isoformat(),
                    "end": interval.end.isoformat(),
                }
            )
            if len(upcoming) >= count:
                break
    return {
        "description": tt.description,
        "timezone": spec.get("timezone") or "UTC",
        "catchup": bool(spec.get("catchup")),
        "startDate": spec.get("startDate"),
        "endDate": spec.get("endDate"),
        "paused": bool(spec.get("suspend")),
        "next": upcoming,
    }


# -- a run ------------------------------------------------------------------------------------
def gantt(tasks: Sequence[Mapping[str, Any]], now: datetime) -> dict[str, Any]:
    """One bar per attempt, in start order; running attempts end at ``now``."""
    bars = []
    for t in tasks:
        for a in t.get("tries") or []:
            start = model.parse_time(a.get("startTime"))
            if start is None:
                continue
            end = model.parse_time(a.get("endTime"))
            bars.append(
                {
                    "task": t["key"],
                    "attempt": a.get("number"),
                    "start": start.isoformat(),
                    "end": (end or now).isoformat(),
                    "running": end is None,
                    "state": t["state"] if a is t["tries"][-1] else "up_for_retry",
                }
            )
    bars.sort(key=lambda b: (b["start"], b["task"]))
    first = min((b["start"] for b in bars), default=None)
    last = max((b["end"] for b in bars), default=None)
    return {"bars": bars, "start": first, "end": last}


# -- pools and SLA misses --------------------------------------------------------------------
def pools_view(
    pools: Iterable[Mapping[str, Any]],
    active: Iterable[tuple[Mapping[str, Any], Plan | None]],
) -> list[dict[str, Any]]:
    """Slots, used and queued (by pipeline) per pool, derived from active runs' task states.

    Like the operator, usage is derived from the instances that hold slots, never counted.
    """
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for p in pools:
        key = (p["namespace"], p["name"])
        out[key] = {
            "namespace": p["namespace"],
            "name": p["name"],
            "slots": p.get("slots"),
            "description": p.get("description"),
            "used": 0,
            "queued": 0,
            "queuedBy": {},
        }
    for run, plan in active:
        if plan is None:
            continue
        for key, state in (run.get("tasks") or {}).items():
            base = model.base_task(key)
            if base not in plan.index:
                continue
            task = plan.task(base)
            if task.pool is None:
                continue
            entry = out.setdefault(
                (run["namespace"], task.pool),
                {
                    "namespace": run["namespace"],
                    "name": task.pool,
                    "slots": None,
                    "description": "(no Pool object)",
                    "used": 0,
                    "queued": 0,
                    "queuedBy": {},
                },
            )
            if state == "running":
                entry["used"] += task.pool_slots
            elif state in ("queued", "scheduled"):
                entry["queued"] += 1
                by = entry["queuedBy"]
                by[run["pipeline"]] = by.get(run["pipeline"], 0) + 1
    return sorted(out.values(), key=lambda p: (p["namespace"], p["name"]))
