"""The operator's in-memory world: run drivers, pipelines, pools and one clock.

kopf handlers only forward watch events here. Everything here is rebuilt from
the API after a restart: drivers from TaskRuns and pods, the schedule cursor
from existing runs, pool usage from the instances holding slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade import metrics
from kascade.api import defaults
from kascade.api.resources import PipelineRun
from kascade.api.runs import RunPhase
from kascade.controller import approval, config, rights, scheduling, snapshots
from kascade.controller.archive_sweep import FinishedRunLogs
from kascade.controller.cache import Caches
from kascade.controller.driver import RunDriver
from kascade.controller.pools import POOL_STATUS_SECONDS, ClusterPools
from kascade.controller.runs import WatchedRuns, run_dates_of
from kascade.controller.scheduler import Emit, Scheduler
from kascade.controller.shared_templates import TemplateIndex
from kascade.controller.status import invalid_run, queued_run
from kascade.controller.writer import EndedRunWriters
from kascade.engine import task_templates
from kascade.engine.caching import Refresh
from kascade.engine.context import RunContext
from kascade.engine.params import resolve_params
from kascade.engine.run import RunEngine
from kascade.engine.run_dates import run_id
from kascade.engine.slots import SharedSlots
from kascade.engine.validation import validate_spec
from kascade.kube.client import Kube

log = logging.getLogger("kascade.world")
Key = tuple[str, str]


def now_utc() -> datetime:
    return datetime.now(UTC)


class World(Scheduler):
    def __init__(self, kube: Kube, emit: Emit, clock: Callable[[], datetime] = now_utc) -> None:
        self.kube = kube
        self.emit = emit
        self.clock = clock
        """Now: passed in, so that tests drive the operator's decisions on their own time."""
        self.drivers: dict[Key, RunDriver] = {}
        self.pipelines: dict[Key, dict[str, Any]] = {}
        self.runs: dict[Key, dict[str, scheduling.RunRecord]] = {}
        self.pools = ClusterPools()
        self.snapshots = snapshots.Snapshots(kube)
        # maxActiveTasks is per pipeline, across its runs (as in Airflow); freeing a
        # slot bumps the pools' version, which re-admits queued tasks of other runs.
        self.task_slots: dict[Key, SharedSlots] = {}
        self._wakes: list[tuple[datetime, int, str, Key]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._booting: set[Key] = set()
        self._counts_written: dict[Key, float] = {}
        self.run_tasks: dict[Key, dict[str, str]] = {}  # run → task → state (external sensors)
        self._booting_for: dict[Key, set[Key]] = {}
        self.waiting: dict[Key, dict[str, dict[str, Any]]] = {}
        self._pool_status_due = False
        self.ended_writers = EndedRunWriters()
        self.leftover_logs = FinishedRunLogs(kube)
        self.caches = Caches(kube, self.pipelines.get)
        self._ended: dict[Key, str | None] = {}
        """Runs whose driver finished (with its reload token) until their final status comes
        back: a watch event of a status written before the end still says running, and must
        not start the run again (a second summary e-mail, a restore that lost attempts)."""
        self.templates = TemplateIndex(kube, clock)

    # -- clock ---------------------------------------------------------------------
    def wake(self, at: datetime | None, kind: str, key: Key) -> None:
        if at is None:
            return
        heapq.heappush(self._wakes, (at, next(self._seq), kind, key))
        self._wake.set()

    def driver_woke(self, driver: RunDriver) -> None:
        self.wake(driver.engine.wake_at(), "run", (driver.namespace, driver.name))

    async def run_timers(self) -> None:
        """One loop for every timer: retries, pokes, SLAs, timeouts, schedules."""
        while True:
            self._wake.clear()
            delay = 30.0
            if self._wakes:
                delay = max(0.0, (self._wakes[0][0] - self.clock()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 30.0))
            now = self.clock()
            due: dict[tuple[str, Key], None] = {}
            while self._wakes and self._wakes[0][0] <= now:
                _, _, kind, key = heapq.heappop(self._wakes)
                due[(kind, key)] = None
            for kind, key in due:
                try:
                    if kind == "run" and key in self.drivers:
                        await self.drivers[key].tick(now)
                    elif kind == "pools":
                        await self._write_pool_status()
                    elif kind == "pipeline" and key in self.pipelines:
                        await self.schedule(key, now)
                except Exception:
                    metrics.RECONCILE_ERRORS.labels(kind).inc()
                    log.exception("Timer %s for %s/%s failed", kind, *key)

    # -- pools -----------------------------------------------------------------------
    def on_pool(self, event: str, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        ledger = self.pools.for_namespace(key[0])
        if event == "DELETED":
            ledger.set_size(key[1], None)
            with contextlib.suppress(KeyError):  # never sized
                metrics.POOL_SLOTS.remove(*key)
        else:
            slots = int((body.get("spec") or {}).get("slots", 0))
            ledger.set_size(key[1], slots)
            metrics.POOL_SLOTS.labels(*key).set(slots)
        self._readmit(key[0])
        self._pools_changed()

    def _readmit(self, namespace: str) -> None:
        """Freed slots may let queued tasks of other runs go: give those runs a tick."""
        for (ns, _), driver in self.drivers.items():
            if ns == namespace and driver.engine.has_queued:
                self.wake(self.clock(), "run", (ns, driver.name))

    # -- runs ----------------------------------------------------------------------------
    def _record_run(self, body: dict[str, Any]) -> scheduling.RunRecord:
        record = scheduling.record_of(body)
        pipeline = (body.get("spec") or {}).get("pipelineRef", {}).get("name", "")
        self.runs.setdefault((body["metadata"]["namespace"], pipeline), {})[record.name] = record
        return record

    async def on_run(self, event: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        pipeline = (body.get("spec") or {}).get("pipelineRef", {}).get("name", "")
        pkey = (meta["namespace"], pipeline)
        if event == "DELETED":
            self._ended.pop(key, None)
            if self._drop_driver(key) is not None:
                self._start_waiting(pkey)
            self.runs.get(pkey, {}).pop(meta["name"], None)
            self.waiting.get(pkey, {}).pop(meta["name"], None)
            self.run_tasks.pop(key, None)
            self.leftover_logs.forget(key)
            return
        record = self._record_run(body)
        spec = body.get("spec") or {}
        if record.active and not spec.get("pipelineSpec") and not spec.get("snapshot"):
            await self._freeze_spec(key, body)  # at once, even if it waits to start
            return  # the update comes back as a watch event
        self.run_tasks[key] = dict((body.get("status") or {}).get("tasks") or {})
        active = sum(1 for r in self.runs.get(pkey, {}).values() if r.active)
        metrics.ACTIVE_RUNS.labels(*pkey).set(active)
        if not record.active:
            self._ended.pop(key, None)  # later events are newer than the end
            if self._drop_driver(key, ended=True) is not None and pkey in self.pipelines:
                self.wake(self.clock(), "pipeline", pkey)  # a slot under maxActiveRuns freed
            ended_here = self.ended_writers.ended_here(key)
            self.leftover_logs.consider(key, body, ended_here=ended_here)
            return
        reload = (meta.get("annotations") or {}).get("kascade.io/reload")
        if key in self._ended and self._ended[key] == reload:
            return  # written before its driver finished: stale (a clear changes the token)
        driver = self.drivers.get(key)
        if driver is not None and driver.reload_token != reload:
            self._drop_driver(key)
            driver = None
        if driver is None and key not in self._booting:
            if not await self._admit_run(key, pkey, body):
                return
            self._booting.add(key)
            try:
                await self._start_driver(key, body, reload)
            finally:
                self._booting.discard(key)
                self._booting_for.get(pkey, set()).discard(key)

    def _running(self, pkey: Key) -> int:
        drivers = sum(1 for d in self.drivers.values() if (d.namespace, d.plan.name) == pkey)
        # A booting run joins self.drivers before its boot ends: count it once.
        booting = {k for k in self._booting_for.get(pkey, set()) if k not in self.drivers}
        return drivers + len(booting)

    async def _admit_run(self, key: Key, pkey: Key, body: dict[str, Any]) -> bool:
        """maxActiveRuns holds every kind of run (manual and backfill too) in the queue."""
        limit = int(self._known_spec(pkey, body).get("maxActiveRuns", defaults.MAX_ACTIVE_RUNS))
        waiting = self.waiting.setdefault(pkey, {})
        if self._running(pkey) >= limit:
            waiting[key[1]] = body
            if (body.get("status") or {}).get("phase") != RunPhase.QUEUED.value:
                patch = queued_run(limit)
                await asyncio.to_thread(
                    self.kube.patch_status, "pipelineruns", key[0], key[1], patch
                )
            return False
        waiting.pop(key[1], None)
        self._booting_for.setdefault(pkey, set()).add(key)
        return True

    def _known_spec(self, pkey: Key, body: dict[str, Any]) -> dict[str, Any]:
        """The spec a run executes, as far as it is known without a read: its own, its
        snapshot's if read already, else its Pipeline's (the same but for an edit since)."""
        spec = body.get("spec") or {}
        snapshot = self.snapshots.cache.get((pkey[0], spec.get("snapshot") or ""))
        found = spec.get("pipelineSpec") or (snapshot or {}).get("spec", {}).get("pipelineSpec")
        return dict(found or (self.pipelines.get(pkey) or {}).get("spec") or {})

    def _start_waiting(self, pkey: Key) -> None:
        waiting = self.waiting.get(pkey)
        if not waiting:
            return
        body = waiting.pop(scheduling.next_waiting(waiting))
        asyncio.get_running_loop().create_task(self.on_run("MODIFIED", body))

    async def _start_driver(self, key: Key, body: dict[str, Any], reload: str | None) -> None:
        spec = body.get("spec") or {}
        snapshot = None
        if not spec.get("pipelineSpec"):
            snapshot = await self.snapshots.get(key[0], spec.get("snapshot") or "")
            if snapshot is None:
                await self._fail_run(key, f"PipelineSnapshot {spec.get('snapshot')!r} not found")
                return
            broken = snapshots.problem(snapshot, body)
            if broken:
                await self._fail_run(key, broken)
                return
        frozen, approved = snapshots.frozen(body, snapshot)
        pin = await self.templates.pinning(
            key[0], {**body, "spec": {**spec, "pipelineSpec": frozen}}
        )
        if isinstance(pin, str):
            await self._fail_run(key, pin)
            return
        if pin is not None:  # the TaskTemplates it uses, as they are now: the run's versions
            await asyncio.to_thread(self.kube.patch, "pipelineruns", key[0], key[1], pin)
            return  # the update comes back as a watch event
        try:
            run = PipelineRun.model_validate({**body, "spec": {**spec, "pipelineSpec": frozen}})
        except Exception as exc:
            await self._fail_run(key, f"invalid PipelineRun: {exc}")
            return
        assert run.spec.pipeline_spec is not None
        pname = run.spec.pipeline_ref.name
        shared = task_templates.pinned(run.spec.task_templates or [])
        plan, issues = validate_spec(run.spec.pipeline_spec, pname, shared)
        params, param_issues = resolve_params(run.spec.pipeline_spec.params, run.spec.params)
        issues += param_issues
        if plan is None or issues:
            await self._fail_run(key, "; ".join(str(i) for i in issues) or "invalid pipeline")
            return
        refused = approval.run_problem(key[0], frozen, approved)
        if not refused and shared:
            refused = approval.grants_problem(approved, rights.needs(plan, run.spec.pipeline_spec))
        if refused:
            await self._fail_run(key, f"not approved: {refused}")
            return
        now = self.clock()
        dates = run_dates_of(run, body, now)
        kind = run.spec.trigger.kind.value if run.spec.trigger else "manual"
        ctx = RunContext(
            run_id=run.spec.run_id or run_id(kind, dates.logical_date),
            logical_date=dates.logical_date,
            interval=dates.interval,
            params=params,
            pipeline=pname,
            namespace=key[0],
        )
        cache = await self.caches.for_plan((key[0], pname), plan)
        engine = RunEngine(
            plan,
            ctx,
            pools=self.pools.for_namespace(key[0]),
            slots=self._slots((key[0], pname)).for_run(plan.spec.max_active_tasks),
            external=WatchedRuns(self, key[0]),
            cache=cache,
            refresh=Refresh(bool(run.spec.no_cache), frozenset(run.spec.no_cache_tasks or ())),
            values=config.CONFIG.outputs,
        )
        driver = RunDriver(
            self.kube,
            body,
            plan,
            ctx,
            engine,
            on_wake=self._on_driver_wake,
            emit=self.emit,
            active_runs=lambda: len(self.drivers),
            clock=self.clock,
            cache=cache,
        )
        driver.reload_token = reload
        self.drivers[key] = driver
        await driver.boot(now)

    def _slots(self, pkey: Key) -> SharedSlots:
        if pkey not in self.task_slots:
            self.task_slots[pkey] = SharedSlots(on_give=self.pools.changed)
        return self.task_slots[pkey]

    def _drop_driver(self, key: Key, *, ended: bool = False) -> RunDriver | None:
        """Forget a run's driver. ``ended``: the run's final status came back; if its
        driver decided that end, its writer stays open (the log archive's outcomes follow
        the end). Otherwise (deleted, reloaded, or ended by someone else) it writes
        nothing more, and a driver that did not finish gives its slots back first."""
        driver = self.drivers.pop(key, None)
        metrics.RUN_GAUGES.forget(key)
        if ended and (driver is None or driver.finished):
            self.ended_writers.ended(key, driver.writer if driver is not None else None)
            return driver
        self.ended_writers.superseded(key)
        if driver is not None:
            driver.stop()
        if driver is not None and not driver.finished:
            driver.engine.release_all()
            self._readmit(key[0])
        return driver

    def _pools_changed(self) -> None:
        """Pool usage or a queue may have moved: write the Pools' status soon (coalesced)."""
        if not self._pool_status_due:
            self._pool_status_due = True
            self.wake(self.clock() + timedelta(seconds=POOL_STATUS_SECONDS), "pools", ("", ""))

    async def _write_pool_status(self) -> None:
        self._pool_status_due = False
        for namespace, pool, status in self.pools.status_writes():
            await asyncio.to_thread(self.kube.patch_status, "pools", namespace, pool, status)

    def _on_driver_wake(self, driver: RunDriver) -> None:
        self._pools_changed()
        version = self.pools.version
        self.driver_woke(driver)
        key = (driver.namespace, driver.name)
        if driver.finished:
            metrics.RUN_GAUGES.forget(key)
        else:
            engine = driver.engine
            metrics.RUN_GAUGES.report(
                key, driver.plan.name, engine.queued_by_pool(), engine.sla_deadline()
            )
        if driver.pool_version_seen != version:
            driver.pool_version_seen = version
            self._readmit(driver.namespace)
        if driver.finished:
            self.drivers.pop(key, None)
            self._ended[key] = driver.reload_token
            self.ended_writers.finished(key, driver.writer)
            pkey = (driver.namespace, driver.plan.name)
            self._start_waiting(pkey)
            if pkey in self.pipelines:
                self.wake(self.clock(), "pipeline", pkey)  # a slot under maxActiveRuns freed

    async def _freeze_spec(self, key: Key, body: dict[str, Any]) -> None:
        """A run created without a spec executes its Pipeline's as it is now: the run is
        bound to the snapshot of that version (``snapshots.py``)."""
        pname = (body.get("spec") or {}).get("pipelineRef", {}).get("name")
        pipeline = self.pipelines.get((key[0], pname or "")) or await asyncio.to_thread(
            self.kube.get, "pipelines", key[0], pname or ""
        )
        if pipeline is None:
            await self._fail_run(key, f"pipeline {pname!r} not found in namespace {key[0]}")
            return
        made = await self.snapshots.ensure(pipeline)
        frozen = {"snapshot": made["metadata"]["name"], "specHash": made["spec"]["specHash"]}
        await asyncio.to_thread(self.kube.patch, "pipelineruns", key[0], key[1], {"spec": frozen})

    async def _fail_run(self, key: Key, message: str) -> None:
        patch = invalid_run(message, self.clock())
        await asyncio.to_thread(self.kube.patch_status, "pipelineruns", key[0], key[1], patch)

    # -- pods ----------------------------------------------------------------------------
    async def on_pod(self, event: str, body: dict[str, Any]) -> None:
        from kascade.controller.podspec import LABEL_RUN

        meta = body["metadata"]
        run_label = (meta.get("labels") or {}).get(LABEL_RUN)
        owned = any(
            ref.get("kind") in ("PipelineRun", "TaskRun")
            for ref in meta.get("ownerReferences") or []
        )
        if run_label is None or not owned or "kascade.io/hook" in (meta.get("labels") or {}):
            return
        driver = self._driver_for_label(meta["namespace"], run_label)
        if driver is None:
            return  # its run is finished, or not booted yet (boot replays live pods)
        await driver.on_pod(body, deleted=event == "DELETED", now=self.clock())

    def _driver_for_label(self, namespace: str, label: str) -> RunDriver | None:
        driver = self.drivers.get((namespace, label))
        if driver is not None:
            return driver
        for (ns, _), d in self.drivers.items():  # long names are hashed in labels
            if ns == namespace and d.run_label == label:
                return d
        return None
