"""The read endpoints: one JSON document per page, built from the store.

Each handler first asks the authority whether the user may list what the page
shows in that namespace (SubjectAccessReview in a cluster, cached), so RBAC
decides what each person sees even though every browser shares one cache.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import yaml
from aiohttp import web

from kascade.ui import keys, model, views

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: a 200-task spec in ms
GRID_RUNS = 25
GRID_RUNS_MAX = 200


def ns_of(request: web.Request) -> str:
    """Local history has no namespaces: ``-`` in URLs."""
    ns = request.match_info["ns"]
    return "" if ns == "-" else ns


def now() -> datetime:
    return datetime.now(UTC)


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def allowed_namespaces(request: web.Request, namespaces: set[str], resource: str) -> set[str]:
    auth, user = request.app[keys.AUTH], request[keys.USER]
    checks = await asyncio.gather(*(auth.can(user, "list", resource, ns) for ns in namespaces))
    return {ns for ns, ok in zip(namespaces, checks, strict=True) if ok}


async def require(request: web.Request, verb: str, resource: str, namespace: str) -> None:
    reason = await request.app[keys.AUTH].why_not(request[keys.USER], verb, resource, namespace)
    if reason:
        raise web.HTTPForbidden(text=_dumps({"error": reason}), content_type="application/json")


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


async def pipelines(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    namespaces = {k[0] for k in store.pipelines}
    ok = await allowed_namespaces(request, namespaces, "pipelines")
    rows = []
    for (ns, name), entry in sorted(store.pipelines.items()):
        if ns in ok:
            rows.append(model.pipeline_row(entry["row"], store.runs_of(ns, name)))
    return web.json_response({"pipelines": rows, "errors": request.app[keys.FEED].errors()})


async def pipeline(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    ns, name = ns_of(request), request.match_info["name"]
    await require(request, "get", "pipelines", ns)
    entry = store.pipelines.get((ns, name))
    if entry is None:
        return json_error(404, f"pipeline {ns}/{name} not found")
    try:
        limit = max(1, min(GRID_RUNS_MAX, int(request.query.get("runs", GRID_RUNS))))
    except ValueError:
        return json_error(400, "runs: expected a number")
    view = request.query.get("view", "all")
    runs = store.runs_of(ns, name)
    plan = store.pipeline_plan(ns, name)
    body: dict[str, Any] = {
        "pipeline": model.pipeline_row(entry["row"], runs),
        "params": (entry["spec"].get("params") or {}),
        "runCount": len(runs),
        "errors": [] if plan is not None else entry["row"]["errors"] or ["does not compile"],
    }
    # Each tab asks for what it shows: the grid never pays for the YAML, and so on.
    if view in ("all", "schedule"):
        body["schedule"] = views.schedule_of(entry["spec"], now())
    if view in ("all", "yaml"):
        body["yaml"] = yaml.dump(
            entry["object"], Dumper=_DUMPER, sort_keys=False, allow_unicode=True
        )
    if plan is not None and view in ("all", "grid"):
        body["grid"] = views.grid(views.rows_of(plan), runs[:limit], plan.groups)
    if plan is not None and view in ("all", "graph"):
        body["graph"] = views.graph_of(plan)
        body["tasks"] = views.task_facts(plan)
        body["runs"] = [{"name": r["name"], "phase": r["phase"]} for r in runs[:limit]]
    return web.json_response(body, dumps=_dumps)


async def _run_plan(request: web.Request, ns: str, run: dict[str, Any]) -> Any:
    """The run's own DAG: its pipeline's when the spec is unchanged, else its copied spec."""
    store = request.app[keys.STORE]
    entry = store.pipelines.get((ns, run["pipeline"]))
    if entry is not None:
        from kascade.controller.snapshots import spec_hash

        if run.get("specHash") in (None, spec_hash(entry["spec"])):
            return store.pipeline_plan(ns, run["pipeline"])
    kube = request.app[keys.KUBE]
    if kube is None:
        return None
    key = f"{run['pipeline']}:{run.get('specHash')}"
    if key in store._plans:
        return store._plans[key]
    body = await asyncio.to_thread(kube.get, "pipelineruns", ns, run["name"])
    from kascade.controller.snapshots import read_frozen

    spec = await asyncio.to_thread(read_frozen, kube, body) if body else None
    return store.plan(spec, run["pipeline"], run.get("specHash"))


async def run_view(request: web.Request) -> web.Response:
    store, feed = request.app[keys.STORE], request.app[keys.FEED]
    ns, name = ns_of(request), request.match_info["name"]
    await require(request, "get", "pipelineruns", ns)
    run = store.runs.get((ns, name))
    if run is None:
        return json_error(404, f"pipelinerun {ns}/{name} not found")
    await require(request, "list", "taskruns", ns)
    await feed.open_run(ns, name)
    tasks = await _tasks(request, ns, name, run)
    at = now()
    plan = await _run_plan(request, ns, run)
    body = {
        "run": model.run_row(run, at),
        "tasks": [model.task_row(t, at) for t in tasks],
        "gantt": views.gantt(tasks, at),
        "graph": views.graph_of(plan) if plan is not None else None,
        "facts": views.task_facts(plan) if plan is not None else None,
        "events": await _events(request, ns, name),
    }
    return web.json_response(body, dumps=_dumps)


async def _tasks(
    request: web.Request, ns: str, name: str, run: dict[str, Any]
) -> list[dict[str, Any]]:
    """Task instances from the TaskRun watch; states from the run summary for the rest."""
    known = dict(request.app[keys.STORE].taskruns.get((ns, name)) or {})
    for key, state in (run.get("tasks") or {}).items():
        if key not in known:
            known[key] = {
                "key": key,
                "run": name,
                "name": None,
                "state": state,
                "attempts": 0,
                "tries": [],
                "startTime": None,
                "endTime": None,
                "exitCode": None,
                "pod": None,
                "outputs": {},
                "message": None,
                "nextRetryTime": None,
                "mapIndex": None,
            }
    return sorted(known.values(), key=lambda t: (t["startTime"] or "~", t["key"]))


async def _events(request: web.Request, ns: str, name: str) -> list[dict[str, Any]]:
    """The run's Events, read as the user when the page is opened (not cached)."""
    auth, user = request.app[keys.AUTH], request[keys.USER]
    kube = auth.kube_for(user)
    if kube is None or not await auth.can(user, "list", "events", ns):
        return []
    from kascade.kube.objects import events_of

    try:
        return await asyncio.to_thread(events_of, kube, ns, name)
    except Exception as exc:  # the run view still works without its events
        return [{"type": "Warning", "reason": "EventsUnavailable", "message": str(exc)}]


async def task_view(request: web.Request) -> web.Response:
    store, feed = request.app[keys.STORE], request.app[keys.FEED]
    ns, run_name, key = ns_of(request), request.match_info["run"], request.match_info["key"]
    await require(request, "get", "taskruns", ns)
    run = store.runs.get((ns, run_name))
    if run is None:
        return json_error(404, f"pipelinerun {ns}/{run_name} not found")
    await feed.open_run(ns, run_name)
    tasks = {t["key"]: t for t in await _tasks(request, ns, run_name, run)}
    task = tasks.get(key)
    if task is None:
        return json_error(404, f"run {run_name} has no task instance {key!r}")
    if ns and task["state"] not in model.TASK_DONE:
        task = await _with_pods(request, ns, run_name, task)
    plan = await _run_plan(request, ns, run)
    facts = views.task_facts(plan).get(model.base_task(key)) if plan is not None else None
    body = {
        "run": model.run_row(run, now()),
        "task": model.task_row(task, now()),
        "facts": facts,
        "rendered": await _rendered(request, ns, run_name, task),
    }
    return web.json_response(body, dumps=_dumps)


async def _with_pods(
    request: web.Request, ns: str, run: str, task: dict[str, Any]
) -> dict[str, Any]:
    """A running task's attempts from its pods (read as the user), ahead of its TaskRun."""
    auth, user = request.app[keys.AUTH], request[keys.USER]
    if not await auth.can(user, "list", "pods", ns):
        return task
    from kascade.kube.objects import attempt_pods

    try:
        pods = await asyncio.to_thread(attempt_pods, auth.kube_for(user), ns, run, task["key"])
    except Exception:  # the TaskRun's view is still right, only later
        return task
    return model.with_pod_attempts(task, pods)


async def _rendered(
    request: web.Request, ns: str, run: str, task: dict[str, Any]
) -> dict[str, Any] | None:
    """Rendered fields: the attempt's pod as the user may read it, or the local record's."""
    store = request.app[keys.STORE]
    if ns == "":
        pipeline, _, ref = run.partition("/")
        record = store.records.get((pipeline, ref))
        return ((record or {}).get("rendered") or {}).get(task["key"])
    auth, user = request.app[keys.AUTH], request[keys.USER]
    if not task.get("pod") or not await auth.can(user, "get", "pods", ns):
        return None
    from kascade.kube.objects import rendered_fields

    try:
        return await asyncio.to_thread(rendered_fields, auth.kube_for(user), ns, task["pod"])
    except Exception as exc:  # the task page still works without them
        return {"error": f"cannot read the pod: {type(exc).__name__}: {exc}"}


async def pools(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    namespaces = {k[0] for k in store.pools} | {k[0] for k in store.runs}
    ok = await allowed_namespaces(request, namespaces, "pipelineruns")
    active = [
        (run, await _run_plan(request, ns, run))
        for (ns, _), run in store.runs.items()
        if ns in ok and run["phase"] not in model.FINISHED
    ]
    rows = views.pools_view([p for k, p in store.pools.items() if k[0] in ok], active)
    return web.json_response({"pools": rows})


async def sla(request: web.Request) -> web.Response:
    store = request.app[keys.STORE]
    namespaces = {k[0] for k in store.sla} | {k[0] for k in store.runs}
    ok = await allowed_namespaces(request, namespaces, "pipelineruns")
    misses = [e for k, e in store.sla.items() if k[0] in ok]
    for key, record in store.records.items():  # local runs keep theirs in the record
        for miss in record.get("slaMisses") or []:
            misses.append(
                {
                    "namespace": "",
                    "run": f"{key[0]}/{key[1]}",
                    "pipeline": key[0],
                    "message": f"{miss.get('task') or 'the run'} missed its SLA",
                    "count": 1,
                    "firstTime": miss.get("at"),
                    "lastTime": miss.get("at"),
                }
            )
    for miss in misses:
        run = store.runs.get((miss["namespace"], miss.get("run") or ""))
        miss.setdefault("pipeline", run["pipeline"] if run else None)
    misses.sort(key=lambda m: str(m.get("lastTime") or ""), reverse=True)
    return web.json_response({"misses": misses}, dumps=_dumps)
