"""What a user does to a cluster's pipelines: trigger, backfill, clear, mark, pause.

One implementation for every front end: the CLI commands and the web UI's
buttons call these functions, so an action does exactly the same thing
wherever it is started. Each takes the ``Kube`` of the acting user (the
kubeconfig's identity, or a UI user's own bearer token), so the API server's
RBAC decides, never the caller's rights.

clear and mark change what the operator observes (TaskRuns and the run's task
summary), then ask it to rebuild the run (the ``kascade.io/reload``
annotation): the engine's restore turns the new observations into the right
next steps, so there is no second code path for "re-run from here".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

RELOAD = "kascade.io/reload"
TERMINAL = ("success", "failed")
MARK_STATES = ("success", "failed", "skipped")
FORGET_TIMEOUT_SECONDS = 120.0


class ActionError(Exception):
    """A refusal the user can act on (unknown task, bad param): shown as is, never a traceback."""


def parse_date(value: str, field: str = "date") -> datetime:
    """An ISO date or date-time; UTC unless it has an offset."""
    from kascade.engine.run_dates import read_date

    try:
        return read_date(value)
    except ValueError as exc:
        raise ActionError(f"{field}: {exc}") from None


def typed_params(
    declared: Mapping[str, Any],
    pairs: Iterable[str],
    flag: str = "param",
    used: Collection[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``k=v`` strings → (given values typed, every param's value, problems).

    Values arrive as text (a command line, an HTML form) and are converted to the
    declared type (strict JSON for non-strings: no NaN, no 1e999, nesting bounded),
    then checked against the schema (names, type, enum, minimum, maximum, required).
    ``kascade run``, ``kascade trigger`` and the UI's Trigger form all go through here;
    ``used`` (``kascade run``) also refuses, for a pipeline that declares no params, a
    name no template reads.
    """
    from kascade.engine.params import coerce_cli_value, resolve_params
    from kascade.engine.strict_json import JsonValueError

    given: dict[str, Any] = {}
    problems: list[str] = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            shown = repr(pair) if len(pair) <= 60 else repr(pair[:57] + "...")
            problems.append(f"{flag} {shown}: expected name=value")
            continue
        try:
            given[key] = coerce_cli_value(declared.get(key), raw)
        except JsonValueError as exc:
            problems.append(f"{flag} {key}: {exc}")
    values, issues = resolve_params(declared, given, used=used)
    problems.extend(str(issue) for issue in issues)
    return given, values, problems


def parse_params(pairs: Iterable[str], spec: Mapping[str, Any]) -> dict[str, Any]:
    """The params a run is given (typed and checked) from a Pipeline object's spec."""
    from pydantic import ValidationError

    from kascade.api.pipeline import Param

    try:
        declared = {n: Param.model_validate(raw) for n, raw in (spec.get("params") or {}).items()}
    except ValidationError:
        declared = {}  # the Pipeline's own problem, reported on it
    given, _, problems = typed_params(declared, pairs)
    if problems:
        raise ActionError("; ".join(problems))
    return given


def _pipeline(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    """A Pipeline by name, or by the dag_id it was compiled from (``process_customer_A``)."""
    from kascade.sdk.naming import pipeline_name

    for candidate in dict.fromkeys((name, pipeline_name(name))):
        body = kube.get("pipelines", namespace, candidate)
        if body is not None:
            return dict(body)
    raise ActionError(f"pipeline {namespace}/{name} not found")


def trigger(
    kube: Any,
    namespace: str,
    pipeline: str,
    *,
    params: Iterable[str] = (),
    logical_date: str | None = None,
    by: str | None = None,
    now: datetime,
    no_cache: bool = False,
) -> str:
    """Create a manual run (Airflow's "Trigger DAG"); its name.

    Dated by the one manual-run rule (``scheduling.manual_run_manifest``): the logical
    date given or now, and the schedule's latest complete interval. ``no_cache``: tasks
    with a ``cache`` read no entry (``spec.noCache``; new entries are still written).
    """
    from kascade.controller import scheduling
    from kascade.engine.schedule import ScheduleError

    body = _pipeline(kube, namespace, pipeline)
    values = parse_params(params, body["spec"])
    at = parse_date(logical_date, "logical date") if logical_date else None
    try:
        manifest = scheduling.manual_run_manifest(
            body, logical_date=at, now=now, params=values, by=by or "kascade"
        )
    except ScheduleError as exc:
        raise ActionError(f"spec.schedule: {exc}") from None
    if no_cache:
        manifest["spec"]["noCache"] = True
    kube.create("pipelineruns", namespace, manifest)
    return str(manifest["metadata"]["name"])


@dataclass(frozen=True)
class Created:
    name: str
    created: bool
    """False when a run for that interval already existed (names are derived from it)."""


def backfill(
    kube: Any, namespace: str, pipeline: str, *, start: str, end: str, now: datetime
) -> list[Created]:
    """Runs for every schedule interval starting between ``start`` and ``end`` (inclusive)."""
    from kascade.api.runs import TriggerKind
    from kascade.controller import scheduling
    from kascade.engine.schedule import ScheduleError, due_intervals, parse_schedule

    body = _pipeline(kube, namespace, pipeline)
    spec = body["spec"]
    try:
        tt = parse_schedule(spec.get("schedule"), spec.get("timezone", "UTC"))
    except ScheduleError as exc:
        raise ActionError(f"spec.schedule: {exc}") from None
    first, last = parse_date(start, "from"), parse_date(end, "to")
    if last < first:
        raise ActionError("to: the range ends before it starts")
    intervals = due_intervals(
        tt, last=None, start_date=first, end_date=last, catchup=True, now=max(now, last)
    )
    if not intervals:
        raise ActionError("no schedule interval starts in that range")
    out = []
    for interval in intervals:
        manifest = scheduling.run_manifest(body, interval, TriggerKind.BACKFILL)
        created = kube.create("pipelineruns", namespace, manifest)
        out.append(Created(manifest["metadata"]["name"], created is not None))
    return out


def set_paused(kube: Any, namespace: str, pipeline: str, paused: bool) -> None:
    """Pause (``spec.suspend``): no new scheduled runs; manual runs still allowed."""
    _pipeline(kube, namespace, pipeline)
    kube.patch("pipelines", namespace, pipeline, {"spec": {"suspend": paused}})


def _run_and_plan(kube: Any, namespace: str, run: str) -> tuple[dict[str, Any], Any]:
    """The run and its plan, compiled with the TaskTemplates the run pinned."""
    from kascade.api.resources import PipelineRun
    from kascade.controller.snapshots import read_frozen
    from kascade.engine import task_templates
    from kascade.engine.compile import compile_or_raise

    body = kube.get("pipelineruns", namespace, run)
    if body is None:
        raise ActionError(f"pipelinerun {namespace}/{run} not found")
    pipeline_spec = read_frozen(kube, body)
    if not pipeline_spec:
        raise ActionError(f"pipelinerun {namespace}/{run} has not started yet")
    model = PipelineRun.model_validate(
        {**body, "spec": {**body["spec"], "pipelineSpec": pipeline_spec}}
    )
    assert model.spec.pipeline_spec is not None
    shared = task_templates.pinned(model.spec.task_templates or [])
    return body, compile_or_raise(model.spec.pipeline_spec, model.spec.pipeline_ref.name, shared)


def _reload(kube: Any, namespace: str, run: str, tasks: dict[str, Any]) -> None:
    kube.patch_status(
        "pipelineruns",
        namespace,
        run,
        {"phase": "running", "endTime": None, "conditions": None, "message": None, "tasks": tasks},
    )
    kube.patch(
        "pipelineruns", namespace, run, {"metadata": {"annotations": {RELOAD: uuid.uuid4().hex}}}
    )


def taskruns_of(kube: Any, namespace: str, run: str) -> dict[str, dict[str, Any]]:
    """The run's TaskRuns by instance key (``task`` or ``task[3]``)."""
    from kascade.api.runs import instance_key
    from kascade.controller import naming
    from kascade.controller.podspec import LABEL_RUN

    out = {}
    for tr in kube.list_objects("taskruns", namespace, f"{LABEL_RUN}={naming.label_value(run)}"):
        out[instance_key(tr["spec"]["taskName"], tr["spec"].get("mapIndex"))] = tr
    return out


def _forget(kube: Any, namespace: str, run: str, keys: list[str]) -> None:
    """Delete the TaskRuns and pods of these task instances, and wait until they are gone.

    Their names are reused when the tasks run again, so the old objects must be gone.
    """
    from kascade.controller import naming
    from kascade.controller.podspec import LABEL_RUN, LABEL_TASK

    trs = taskruns_of(kube, namespace, run)
    selectors = [
        f"{LABEL_RUN}={naming.label_value(run)},{LABEL_TASK}={naming.label_value(k)}" for k in keys
    ]
    for key in keys:
        if key in trs:
            kube.delete("taskruns", namespace, trs[key]["metadata"]["name"])
    for selector in selectors:
        for pod in kube.list_pods(namespace, selector):
            kube.delete_pod(namespace, pod["metadata"]["name"], grace=0)
    deadline = time.monotonic() + FORGET_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        left = any(k in taskruns_of(kube, namespace, run) for k in keys) or any(
            kube.list_pods(namespace, sel) for sel in selectors
        )
        if not left:
            return
        time.sleep(0.5)


def base_task(key: str) -> str:
    """``load[3]`` → ``load``: the task of a mapped instance."""
    from kascade.api.runs import split_instance_key

    return split_instance_key(key)[0]


def clear(
    kube: Any, namespace: str, run: str, *, tasks: Iterable[str] = (), downstream: bool = True
) -> list[str]:
    """Re-run tasks of a run (Airflow's Clear): the failed ones by default; the keys cleared.

    Cleared tasks with a ``cache`` run again rather than reuse a cache entry (maybe their
    own last success): they join ``spec.noCacheTasks``.
    """
    body, plan = _run_and_plan(kube, namespace, run)
    states: dict[str, str] = dict((body.get("status") or {}).get("tasks") or {})
    wanted = list(tasks)
    if wanted:
        unknown = [t for t in wanted if t not in plan.index]
        if unknown:
            raise ActionError(f"unknown task(s): {', '.join(unknown)}")
        chosen = set(wanted)
    else:
        chosen = {base_task(k) for k, s in states.items() if s in ("failed", "upstream_failed")}
    if downstream:
        for task_id in list(chosen):
            chosen |= {plan.tasks[i].id for i in plan.graph.descendants(plan.index[task_id])}
    keys = sorted(k for k in states if base_task(k) in chosen)
    if keys:
        _forget(kube, namespace, run, keys)
        cleared = {base_task(k) for k in keys} | set(body["spec"].get("noCacheTasks") or [])
        kube.patch("pipelineruns", namespace, run, {"spec": {"noCacheTasks": sorted(cleared)}})
        _reload(kube, namespace, run, {k: None for k in keys})
    return keys


def mark(kube: Any, namespace: str, run: str, task: str, state: str) -> None:
    """Set a task's state by hand (Airflow's Mark Success / Mark Failed)."""
    if state not in MARK_STATES:
        raise ActionError(f"state: {state!r} is not one of {', '.join(MARK_STATES)}")
    body, plan = _run_and_plan(kube, namespace, run)
    base = base_task(task)
    if base not in plan.index:
        raise ActionError(f"unknown task {task!r}")
    trs = taskruns_of(kube, namespace, run)
    if task in trs:
        kube.patch_status("taskruns", namespace, trs[task]["metadata"]["name"], {"state": state})
    descendants = {plan.tasks[i].id for i in plan.graph.descendants(plan.index[base])}
    states = (body.get("status") or {}).get("tasks") or {}
    reset: dict[str, Any] = {k: None for k in states if base_task(k) in descendants}
    _forget(kube, namespace, run, list(reset))
    reset[task] = state
    _reload(kube, namespace, run, reset)


def wait_for_end(kube: Any, namespace: str, name: str, timeout: float) -> tuple[str, str]:
    """(the run's final phase, or ``timeout``; why it failed, in the operator's words)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = (kube.get("pipelineruns", namespace, name) or {}).get("status") or {}
        phase = str(status.get("phase") or "")
        if phase in TERMINAL:
            return phase, str(status.get("message") or "") if phase == "failed" else ""
        time.sleep(1)
    return "timeout", ""
