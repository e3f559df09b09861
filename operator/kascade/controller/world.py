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
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade import metrics
from kascade.api import defaults
from kascade.api.resources import PipelineRun
from kascade.api.runs import RunPhase, TriggerKind
from kascade.controller import scheduling
from kascade.controller.driver import RunDriver, iso
from kascade.engine.context import RunContext
from kascade.engine.params import resolve_params
from kascade.engine.plan import History
from kascade.engine.pools import PoolLedger
from kascade.engine.run import RunEngine
from kascade.engine.run_dates import RunDates, read_date, run_dates, run_id
from kascade.engine.schedule import DataInterval, parse_schedule
from kascade.engine.slots import SharedSlots
from kascade.engine.validation import validate_document, validate_spec
from kascade.kube.client import Kube

log = logging.getLogger("kascade.world")
COUNTS_SECONDS = 30.0
"""A Pipeline's run counters (active, succeeded, failed, last run) are written this often."""
_SCHEDULE_FIELDS = ("nextRun", "lastScheduledInterval")
Key = tuple[str, str]
Emit = Callable[[dict[str, Any], str, str, str], None]


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_dates_of(run: PipelineRun, body: dict[str, Any], now: datetime) -> RunDates:
    """A PipelineRun's dates by the engine's rule; a manual run without a logical date is
    dated by its creation time, so that a restarted operator finds the same dates."""
    assert run.spec.pipeline_spec is not None
    spec = run.spec.pipeline_spec
    given = run.spec.data_interval
    created = body["metadata"].get("creationTimestamp")
    return run_dates(
        parse_schedule(spec.schedule, spec.timezone),
        logical_date=read_date(run.spec.logical_date) if run.spec.logical_date else None,
        interval=DataInterval(read_date(given.start), read_date(given.end)) if given else None,
        requested_at=read_date(created) if created else now,
    )


class ClusterPools:
    """One pool ledger per namespace; freeing capacity bumps ``version`` so that runs with
    queued tasks get a tick (a pool slot or a maxActiveTasks slot)."""

    def __init__(self) -> None:
        self.ledgers: dict[str, PoolLedger] = {}
        self.version = 0

    def for_namespace(self, namespace: str) -> PoolLedger:
        ledger = self.ledgers.get(namespace)
        if ledger is None:
            ledger = PoolLedger(
                where=f" in namespace {namespace}", on_change=self._watch(namespace)
            )
            self.ledgers[namespace] = ledger
        return ledger

    def _watch(self, namespace: str) -> Callable[[str, int], None]:
        last: dict[str, int] = {}

        def on_change(pool: str, used: int) -> None:
            if used < last.get(pool, 0):
                self.changed()
            last[pool] = used
            metrics.POOL_SLOTS_USED.labels(namespace, pool).set(used)

        return on_change

    def changed(self) -> None:
        """Capacity was freed (a pool slot or a maxActiveTasks slot)."""
        self.version += 1


class WatchedRuns:
    """Answers externalTask sensors from the runs the operator already watches."""

    def __init__(self, world: World, namespace: str) -> None:
        self.world = world
        self.namespace = namespace

    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None:
        for name, record in self.world.runs.get((self.namespace, pipeline), {}).items():
            if record.logical_date is None or record.logical_date != logical_date:
                continue
            if task is None:
                return record.phase
            return self.world.run_tasks.get((self.namespace, name), {}).get(task)
        return None


class World:
    def __init__(self, kube: Kube, emit: Emit) -> None:
        self.kube = kube
        self.emit = emit
        self.drivers: dict[Key, RunDriver] = {}
        self.pipelines: dict[Key, dict[str, Any]] = {}
        self.runs: dict[Key, dict[str, scheduling.RunRecord]] = {}
        self.pools = ClusterPools()
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

    # -- clock ---------------------------------------------------------------------
    def wake(self, at: datetime | None, kind: str, key: Key) -> None:
        if at is None:
            return
        heapq.heappush(self._wakes, (at, next(self._seq), kind, key))
        self._wake.set()

    def driver_woke(self, driver: RunDriver) -> None:
        self.wake(driver.engine.wake_at(), "run", (driver.namespace, driver.name))

    async def clock(self) -> None:
        """One loop for every timer: retries, pokes, SLAs, timeouts, schedules."""
        while True:
            self._wake.clear()
            delay = 30.0
            if self._wakes:
                delay = max(0.0, (self._wakes[0][0] - now_utc()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(delay, 30.0))
            now = now_utc()
            due: dict[tuple[str, Key], None] = {}
            while self._wakes and self._wakes[0][0] <= now:
                _, _, kind, key = heapq.heappop(self._wakes)
                due[(kind, key)] = None
            for kind, key in due:
                try:
                    if kind == "run" and key in self.drivers:
                        await self.drivers[key].tick(now)
                    elif kind == "pipeline" and key in self.pipelines:
                        await self.schedule(key, now)
                except Exception:
                    metrics.RECONCILE_ERRORS.labels(kind).inc()
                    log.exception("Timer %s for %s/%s failed", kind, *key)
            await self._start_timeouts(now)

    async def _start_timeouts(self, now: datetime) -> None:
        for driver in list(self.drivers.values()):
            if driver.pod_created:
                await driver.check_start_timeouts(now)

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

    def _readmit(self, namespace: str) -> None:
        """Freed slots may let queued tasks of other runs go: give those runs a tick."""
        for (ns, _), driver in self.drivers.items():
            if ns == namespace and driver.engine.has_queued:
                self.wake(now_utc(), "run", (ns, driver.name))

    # -- pipelines ----------------------------------------------------------------------
    async def on_pipeline(self, event: str, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event == "DELETED":
            self.pipelines.pop(key, None)
            return
        self.pipelines[key] = body
        status = body.get("status") or {}
        generation = body["metadata"].get("generation")
        if status.get("observedGeneration") != generation:
            await self._validate(key, body)
        await self.schedule(key, now_utc())

    async def _validate(self, key: Key, body: dict[str, Any]) -> None:
        _, plan, issues = validate_document(body)
        errors = [str(i) for i in issues]
        condition = {
            "type": "Valid",
            "status": "False" if errors else "True",
            "reason": "ValidationFailed" if errors else "Valid",
            "message": "; ".join(errors)[:1000] if errors else "the pipeline is valid",
            "lastTransitionTime": iso(now_utc()),
        }
        status: dict[str, Any] = {
            "conditions": [condition],
            "errors": errors or None,
            "observedGeneration": body["metadata"].get("generation"),
            "taskCount": len(plan.tasks) if plan else None,
        }
        await asyncio.to_thread(self.kube.patch_status, "pipelines", key[0], key[1], status)
        body.setdefault("status", {}).update(status)
        if errors:
            self.emit(body, "Warning", "Invalid", "; ".join(errors)[:1000])

    def _valid(self, body: dict[str, Any]) -> bool:
        for cond in (body.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Valid":
                return bool(cond.get("status") == "True")
        return False

    async def schedule(self, key: Key, now: datetime) -> None:
        body = self.pipelines.get(key)
        if body is None or not self._valid(body):
            return
        pipeline, compiled, _ = validate_document(body)
        if pipeline is None or compiled is None:
            return
        spec = pipeline.spec
        runs = list(self.runs.get(key, {}).values())
        status = body.get("status") or {}
        stored = status.get("lastScheduledInterval")
        cursor = None
        if stored:
            cursor = DataInterval(
                datetime.fromisoformat(stored["start"]), datetime.fromisoformat(stored["end"])
            )
        plan = scheduling.plan_schedule(spec, runs, cursor, now)
        for interval in plan.due:
            manifest = scheduling.run_manifest(body, interval, TriggerKind.SCHEDULED)
            created = await asyncio.to_thread(self.kube.create, "pipelineruns", key[0], manifest)
            if created is not None:
                metrics.RUN_SCHEDULING_DELAY.labels(*key).observe(
                    max(0.0, (now - interval.end).total_seconds())
                )
                self._record_run(created)
        patch: dict[str, Any] = {"nextRun": iso(plan.next_run)}
        if plan.cursor is not None:
            patch["lastScheduledInterval"] = {
                "start": plan.cursor.start.isoformat(),
                "end": plan.cursor.end.isoformat(),
            }
        runs = list(self.runs.get(key, {}).values())
        patch["activeRuns"] = sum(1 for r in runs if r.active)
        last = max(runs, key=lambda r: r.created or now, default=None)
        if last is not None:
            patch["lastRun"] = last.name
        patch["runsSucceeded"] = sum(1 for r in runs if r.phase == "success")
        patch["runsFailed"] = sum(1 for r in runs if r.phase == "failed")
        schedule_changed = any(status.get(k) != patch.get(k) for k in _SCHEDULE_FIELDS)
        counts_changed = any(status.get(k) != v for k, v in patch.items())
        since = time.monotonic() - self._counts_written.get(key, -COUNTS_SECONDS)
        if schedule_changed or (counts_changed and since >= COUNTS_SECONDS):
            self._counts_written[key] = time.monotonic()
            await asyncio.to_thread(self.kube.patch_status, "pipelines", key[0], key[1], patch)
            body.setdefault("status", {}).update(patch)
        elif counts_changed:  # run counters are a summary: refreshed at most every 30 s
            self.wake(now + timedelta(seconds=COUNTS_SECONDS - since), "pipeline", key)
        self.wake(plan.next_run, "pipeline", key)
        await self._prune(key, compiled.history, now)

    async def _prune(self, key: Key, history: History, now: datetime) -> None:
        runs = list(self.runs.get(key, {}).values())
        ttl = history.ttl.total_seconds() if history.ttl is not None else None
        names = scheduling.runs_to_prune(
            runs,
            successful=history.successful,
            failed=history.failed,
            ttl_seconds=ttl,
            now=now,
        )
        for name in names:
            await asyncio.to_thread(self.kube.delete, "pipelineruns", key[0], name)
            self.runs.get(key, {}).pop(name, None)
        if ttl is not None:  # come back when the next finished run expires
            ends = [r.ended for r in self.runs.get(key, {}).values() if r.ended and not r.active]
            if ends:
                self.wake(min(ends) + timedelta(seconds=ttl + 1), "pipeline", key)

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
            if self._drop_driver(key) is not None:
                self._start_waiting(pkey)
            self.runs.get(pkey, {}).pop(meta["name"], None)
            self.waiting.get(pkey, {}).pop(meta["name"], None)
            self.run_tasks.pop(key, None)
            return
        record = self._record_run(body)
        self.run_tasks[key] = dict((body.get("status") or {}).get("tasks") or {})
        active = sum(1 for r in self.runs.get(pkey, {}).values() if r.active)
        metrics.ACTIVE_RUNS.labels(*pkey).set(active)
        if not record.active:
            if self._drop_driver(key) is not None and pkey in self.pipelines:
                self.wake(now_utc(), "pipeline", pkey)  # a slot under maxActiveRuns freed
            return
        reload = (meta.get("annotations") or {}).get("kascade.io/reload")
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
        spec = (body.get("spec") or {}).get("pipelineSpec") or {}
        limit = int(spec.get("maxActiveRuns", defaults.MAX_ACTIVE_RUNS))
        waiting = self.waiting.setdefault(pkey, {})
        if self._running(pkey) >= limit:
            waiting[key[1]] = body
            if (body.get("status") or {}).get("phase") != RunPhase.QUEUED.value:
                await asyncio.to_thread(
                    self.kube.patch_status,
                    "pipelineruns",
                    key[0],
                    key[1],
                    {"phase": RunPhase.QUEUED.value, "message": f"waiting: maxActiveRuns={limit}"},
                )
            return False
        waiting.pop(key[1], None)
        self._booting_for.setdefault(pkey, set()).add(key)
        return True

    def _start_waiting(self, pkey: Key) -> None:
        waiting = self.waiting.get(pkey)
        if not waiting:
            return
        name = min(waiting, key=lambda n: str(waiting[n]["spec"].get("logicalDate", "")))
        body = waiting.pop(name)
        asyncio.get_running_loop().create_task(self.on_run("MODIFIED", body))

    async def _start_driver(self, key: Key, body: dict[str, Any], reload: str | None) -> None:
        spec = body.get("spec") or {}
        if not spec.get("pipelineSpec"):
            await self._freeze_spec(key, body)
            return  # the update comes back as a watch event
        try:
            run = PipelineRun.model_validate(body)
        except Exception as exc:
            await self._fail_run(key, f"invalid PipelineRun: {exc}")
            return
        assert run.spec.pipeline_spec is not None
        pname = run.spec.pipeline_ref.name
        plan, issues = validate_spec(run.spec.pipeline_spec, pname)
        params, param_issues = resolve_params(run.spec.pipeline_spec.params, run.spec.params)
        issues += param_issues
        if plan is None or issues:
            await self._fail_run(key, "; ".join(str(i) for i in issues) or "invalid pipeline")
            return
        now = now_utc()
        dates = run_dates_of(run, body, now)
        ctx = RunContext(
            run_id=run_id(
                run.spec.trigger.kind.value if run.spec.trigger else "manual", dates.logical_date
            ),
            logical_date=dates.logical_date,
            interval=dates.interval,
            params=params,
            pipeline=pname,
            namespace=key[0],
        )
        engine = RunEngine(
            plan,
            ctx,
            pools=self.pools.for_namespace(key[0]),
            slots=self._slots((key[0], pname)).for_run(plan.spec.max_active_tasks),
            external=WatchedRuns(self, key[0]),
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
        )
        driver.reload_token = reload
        self.drivers[key] = driver
        await driver.boot(now)

    def _slots(self, pkey: Key) -> SharedSlots:
        if pkey not in self.task_slots:
            self.task_slots[pkey] = SharedSlots(on_give=self.pools.changed)
        return self.task_slots[pkey]

    def _drop_driver(self, key: Key) -> RunDriver | None:
        """Forget a run's driver; one that did not finish gives its slots back first."""
        driver = self.drivers.pop(key, None)
        metrics.RUN_GAUGES.forget(key)
        if driver is not None and not driver.finished:
            driver.engine.release_all()
            self._readmit(key[0])
        return driver

    def _on_driver_wake(self, driver: RunDriver) -> None:
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
            self.drivers.pop((driver.namespace, driver.name), None)
            pkey = (driver.namespace, driver.plan.name)
            self._start_waiting(pkey)
            if pkey in self.pipelines:
                self.wake(now_utc(), "pipeline", pkey)  # a slot under maxActiveRuns freed

    async def _freeze_spec(self, key: Key, body: dict[str, Any]) -> None:
        pname = (body.get("spec") or {}).get("pipelineRef", {}).get("name")
        pipeline = self.pipelines.get((key[0], pname or "")) or await asyncio.to_thread(
            self.kube.get, "pipelines", key[0], pname or ""
        )
        if pipeline is None:
            await self._fail_run(key, f"pipeline {pname!r} not found in namespace {key[0]}")
            return
        spec = pipeline["spec"]
        await asyncio.to_thread(
            self.kube.patch,
            "pipelineruns",
            key[0],
            key[1],
            {"spec": {"pipelineSpec": spec, "specHash": scheduling.spec_hash(spec)}},
        )

    async def _fail_run(self, key: Key, message: str) -> None:
        status = {
            "phase": RunPhase.FAILED.value,
            "message": message[:2000],
            "endTime": iso(now_utc()),
            "conditions": [
                {
                    "type": "Succeeded",
                    "status": "False",
                    "reason": "Invalid",
                    "message": message[:1000],
                    "lastTransitionTime": iso(now_utc()),
                }
            ],
        }
        await asyncio.to_thread(self.kube.patch_status, "pipelineruns", key[0], key[1], status)

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
        await driver.on_pod(body, deleted=event == "DELETED", now=now_utc())

    def _driver_for_label(self, namespace: str, label: str) -> RunDriver | None:
        driver = self.drivers.get((namespace, label))
        if driver is not None:
            return driver
        for (ns, _), d in self.drivers.items():  # long names are hashed in labels
            if ns == namespace and d.run_label == label:
                return d
        return None
