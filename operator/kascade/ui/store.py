"""The UI server's cache: every object the pages show, fed by shared watches, read by all.

Browsers never cause API requests by looking: pages are built from this cache,
and a change is pushed to them as a topic (``pipelines``, ``run:ns/name``...)
over server-sent events, after which they fetch the new view from here.
Runs are kept without their copied pipeline spec (the part that grows with the
DAG), and task keys and states are interned, so 1,000 runs of 200 tasks stay small.

Mutated only on the event loop: feeds call ``apply`` through
``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kascade.engine.plan import Plan
from kascade.ui import model, views

Key = tuple[str, str]
DEBOUNCE_SECONDS = 0.1
PLAN_CACHE = 64


class Store:
    def __init__(self) -> None:
        self.pipelines: dict[Key, dict[str, Any]] = {}
        """(ns, name) → {"row": model dict, "spec": spec, "object": the Pipeline (for YAML)}."""
        self.runs: dict[Key, dict[str, Any]] = {}
        self.by_pipeline: dict[Key, set[str]] = {}
        self.pools: dict[Key, dict[str, Any]] = {}
        self.sla: dict[Key, dict[str, Any]] = {}
        self.taskruns: dict[Key, dict[str, dict[str, Any]]] = {}
        """(ns, run) → task key → task model, for runs someone is looking at."""
        self.records: dict[Key, dict[str, Any]] = {}
        """Local history mode: (pipeline, ref) → the run's record."""
        self.errors: dict[str, str] = {}
        self.synced: set[str] = set()
        self._plans: dict[str, Plan | None] = {}
        self._subscribers: set[Callable[[set[str]], None]] = set()
        self._topics: set[str] = set()
        self._flush: asyncio.TimerHandle | None = None
        self._versions: dict[str, dict[tuple[str, str], str]] = {}
        """resource → (ns, name) → resourceVersion of what the cache holds."""
        self.changes = 0

    # -- subscribers -------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[set[str]], None]) -> Callable[[], None]:
        self._subscribers.add(callback)
        return lambda: self._subscribers.discard(callback)

    def _touch(self, *topics: str) -> None:
        self.changes += 1
        self._topics.update(topics)
        if self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(DEBOUNCE_SECONDS, self._publish)

    def _publish(self) -> None:
        self._flush = None
        topics, self._topics = self._topics, set()
        for callback in list(self._subscribers):
            callback(topics)

    # -- feeding -----------------------------------------------------------------------------
    def apply(self, resource: str, scope: Any, kind: str, obj: Any) -> None:
        """One watch event for ``resource`` in ``scope``: an object, or a list's PAGE/SYNC."""
        handler = getattr(self, f"_on_{resource}")
        if kind == "PAGE":
            for item in obj:
                if not self._unchanged(resource, scope, item):
                    handler(False, item, scope)
        elif kind == "SYNC":
            self.synced.add(f"{resource}:{scope}")
            self._drop_unlisted(resource, scope, set(map(tuple, obj)))
        else:
            if kind == "DELETED":
                meta = obj.get("metadata") or {}
                key = (meta.get("namespace") or "", meta.get("name") or "")
                self._versions.get(resource, {}).pop(key, None)
            else:
                self._unchanged(resource, scope, obj)  # remembers its version
            handler(kind == "DELETED", obj, scope)

    def _unchanged(self, resource: str, scope: Any, obj: dict[str, Any]) -> bool:
        """A relisted object we hold at the same resourceVersion: nothing to tell browsers.

        Watches end (timeouts, CRD updates) and are followed by a relist; without this,
        every open page would be refreshed for nothing.
        """
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if not version:
            return False
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if key in self._versions.get(resource, {}) and self._versions[resource][key] == version:
            return True
        self._versions.setdefault(resource, {})[key] = version
        return False

    def _drop_unlisted(self, resource: str, scope: Any, listed: set[tuple[str, str]]) -> None:
        """After a (re)list: what the list did not show was deleted meanwhile."""
        if resource == "taskruns":
            first = scope not in self.taskruns
            tasks = self.taskruns.setdefault(scope, {})
            names = {name for _, name in listed}
            gone = [k for k, t in tasks.items() if t.get("name") not in names]
            for task_key in gone:
                name = str(tasks.pop(task_key).get("name"))
                self._versions.get(resource, {}).pop((scope[0], name), None)
            if first or gone:
                self._touch(f"run:{scope[0]}/{scope[1]}")
            return
        table = self._table(resource)
        for key in [k for k in table if (scope is None or k[0] == scope) and k not in listed]:
            self._versions.get(resource, {}).pop(key, None)
            getattr(self, f"_on_{resource}")(True, _stub(key), scope)

    def _table(self, resource: str) -> dict[Key, Any]:
        return {
            "pipelines": self.pipelines,
            "pipelineruns": self.runs,
            "pools": self.pools,
            "events": self.sla,
        }[resource]

    def _on_pipelines(self, deleted: bool, obj: dict[str, Any], scope: Any) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if deleted:
            self.pipelines.pop(key, None)
        else:
            self.pipelines[key] = {
                "row": model.pipeline_from_object(obj),
                "spec": obj.get("spec") or {},
                "object": _for_yaml(obj),
            }
        self._touch("pipelines", f"pipeline:{key[0]}/{key[1]}")

    def _on_pipelineruns(self, deleted: bool, obj: dict[str, Any], scope: Any) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        old = self.runs.pop(key, None)
        if old is not None:
            self.by_pipeline.get((key[0], old["pipeline"]), set()).discard(key[1])
        if not deleted:
            run = model.run_from_object(obj)
            run["specHash"] = (obj.get("spec") or {}).get("specHash")
            self.runs[key] = run
            self.by_pipeline.setdefault((key[0], run["pipeline"]), set()).add(key[1])
        pipeline = (old or self.runs.get(key) or {}).get("pipeline", "")
        self._touch("pipelines", f"pipeline:{key[0]}/{pipeline}", f"run:{key[0]}/{key[1]}", "pools")

    def _on_pools(self, deleted: bool, obj: dict[str, Any], scope: Any) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if deleted:
            self.pools.pop(key, None)
        else:
            spec = obj.get("spec") or {}
            self.pools[key] = {
                "namespace": key[0],
                "name": key[1],
                "slots": spec.get("slots"),
                "description": spec.get("description"),
            }
        self._touch("pools")

    def _on_events(self, deleted: bool, obj: dict[str, Any], scope: Any) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if deleted:
            self.sla.pop(key, None)
        else:
            involved = obj.get("involvedObject") or {}
            self.sla[key] = {
                "namespace": key[0],
                "run": involved.get("name"),
                "kind": involved.get("kind"),
                "message": obj.get("message"),
                "count": obj.get("count") or 1,
                "firstTime": obj.get("firstTimestamp") or obj.get("eventTime"),
                "lastTime": obj.get("lastTimestamp") or obj.get("eventTime"),
            }
        self._touch("sla")

    def _on_taskruns(self, deleted: bool, obj: dict[str, Any], scope: Key) -> None:
        tasks = self.taskruns.setdefault(scope, {})
        task = model.task_from_taskrun(obj)
        if deleted:
            tasks.pop(task["key"], None)
        else:
            tasks[task["key"]] = task
        self._touch(f"run:{scope[0]}/{scope[1]}")

    # -- local history -----------------------------------------------------------------------
    def put_record(self, key: Key, record: dict[str, Any] | None) -> None:
        """Local mode: a run's record changed (None: it was deleted)."""
        pipeline, ref = key
        name = f"{pipeline}/{ref}"
        if record is None:
            self.records.pop(key, None)
            self.runs.pop(("", name), None)
            self.by_pipeline.get(("", pipeline), set()).discard(name)
        else:
            self.records[key] = record
            run = model.run_from_record(record)
            run["specHash"] = None
            self.runs[("", name)] = run
            self.by_pipeline.setdefault(("", pipeline), set()).add(name)
            self.taskruns[("", name)] = {t["key"]: t for t in model.tasks_from_record(record)}
            spec = record.get("pipelineSpec") or {}
            current = self.pipelines.get(("", pipeline))
            newer = current is None or (record.get("startTime") or "") >= current.get("since", "")
            if spec and newer:
                self.pipelines[("", pipeline)] = {
                    "row": model.pipelines_from_records({pipeline: [record]})[0],
                    "spec": spec,
                    "object": {"metadata": {"name": pipeline}, "spec": spec},
                    "since": record.get("startTime") or "",
                }
        self._touch("pipelines", f"pipeline:/{pipeline}", f"run:/{name}", "sla")

    # -- reading -----------------------------------------------------------------------------
    def runs_of(self, namespace: str, pipeline: str) -> list[dict[str, Any]]:
        names = self.by_pipeline.get((namespace, pipeline), set())
        runs = [self.runs[(namespace, n)] for n in names if (namespace, n) in self.runs]
        return sorted(runs, key=model.run_sort_key, reverse=True)

    def plan(self, spec: dict[str, Any] | None, name: str, spec_hash: str | None) -> Plan | None:
        """The compiled DAG of a spec, cached by its hash (runs share their pipeline's)."""
        if spec_hash is None:
            from kascade.controller.snapshots import spec_hash as hash_of

            spec_hash = hash_of(spec or {})
        key = f"{name}:{spec_hash}"
        if key not in self._plans:
            if len(self._plans) >= PLAN_CACHE:
                self._plans.pop(next(iter(self._plans)))
            self._plans[key] = views.plan_of(spec, name)
        return self._plans[key]

    def pipeline_plan(self, namespace: str, name: str) -> Plan | None:
        entry = self.pipelines.get((namespace, name))
        if entry is None:
            return None
        return self.plan(entry["spec"], name, None)


def _stub(key: Key) -> dict[str, Any]:
    return {"metadata": {"namespace": key[0], "name": key[1]}, "spec": {}}


def _for_yaml(obj: dict[str, Any]) -> dict[str, Any]:
    """The Pipeline as its author wrote it: no managed fields or last-applied copy."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k != "kubectl.kubernetes.io/last-applied-configuration"
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta
        },
        "spec": obj.get("spec"),
    }
