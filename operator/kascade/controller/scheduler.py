"""The World's Pipeline side: a Pipeline's validity, its schedule (the runs it should have
now, made when due), and its history limits (finished runs, and the snapshots no run
uses any more, pruned).

A mixin of ``World`` (``world.py``), which holds the state declared here; the decisions
are pure functions in ``pipelines.py`` and ``scheduling.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from kascade import metrics
from kascade.api.runs import TriggerKind
from kascade.controller import approval, pipelines, scheduling, snapshots
from kascade.controller.cache import Caches
from kascade.controller.shared_templates import TemplateIndex
from kascade.engine.plan import History
from kascade.kube.client import Kube

COUNTS_SECONDS = 30.0
"""A Pipeline's run counters (active, succeeded, failed, last run) are written this often."""
Key = tuple[str, str]
Emit = Callable[[dict[str, Any], str, str, str], None]


class Scheduler:
    kube: Kube
    emit: Emit
    clock: Callable[[], datetime]
    pipelines: dict[Key, dict[str, Any]]
    runs: dict[Key, dict[str, scheduling.RunRecord]]
    snapshots: snapshots.Snapshots
    caches: Caches
    templates: TemplateIndex
    _counts_written: dict[Key, float]

    def wake(self, at: datetime | None, kind: str, key: Key) -> None:
        raise NotImplementedError

    def _record_run(self, body: dict[str, Any]) -> scheduling.RunRecord:
        raise NotImplementedError

    async def on_pipeline(self, event: str, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event == "DELETED":
            self.pipelines.pop(key, None)
            self.caches.forget(key)  # its TaskCache goes with it (owner reference)
            return
        self.pipelines[key] = body
        status = body.get("status") or {}
        generation = body["metadata"].get("generation")
        if status.get("observedGeneration") != generation or approval.stale_condition(body):
            await self._validate(key, body)
        await self.schedule(key, self.clock())

    async def on_task_template(self, event: str, body: dict[str, Any]) -> None:
        """A TaskTemplate changed: judge it, then the pipelines that use it."""
        namespace, name = self.templates.on_event(event, body)
        if event != "DELETED":
            await self.templates.write_validity(body)
        for pkey in self.templates.users(namespace, name, self.pipelines):
            await self._validate(pkey, self.pipelines[pkey])
            await self.schedule(pkey, self.clock())

    async def _validate(self, key: Key, body: dict[str, Any]) -> None:
        _, plan, issues = await self.templates.validated(key[0], body)
        generation = body["metadata"].get("generation")
        count = len(plan.tasks) if plan else None
        problems = [str(i) for i in issues] + approval.pipeline_problems(body)
        status = pipelines.validity(problems, count, generation, self.clock())
        await asyncio.to_thread(self.kube.patch_status, "pipelines", key[0], key[1], status)
        body.setdefault("status", {}).update(status)
        if problems:
            self.emit(body, "Warning", "Invalid", "; ".join(problems)[:1000])

    async def schedule(self, key: Key, now: datetime) -> None:
        body = self.pipelines.get(key)
        if (
            body is None
            or not pipelines.is_valid(body.get("status") or {})
            or approval.pipeline_problems(body)
        ):
            return
        pipeline, compiled, _ = await self.templates.validated(key[0], body)
        if pipeline is None or compiled is None:
            return
        spec = pipeline.spec
        runs = list(self.runs.get(key, {}).values())
        status = body.get("status") or {}
        start = pipelines.start_date_status(spec, status, now)
        if start is not None:  # resolved once, before any run depends on it
            await asyncio.to_thread(self.kube.patch_status, "pipelines", key[0], key[1], start)
            status = body.setdefault("status", {})
            status.update(start)
        plan = scheduling.plan_schedule(
            spec,
            runs,
            pipelines.stored_cursor(status),
            now,
            pipelines.resolved_start(spec, status),
        )
        if plan.due:  # the runs reference the spec's snapshot: it exists before them
            await self.snapshots.ensure(body)
        for interval in plan.due:
            manifest = scheduling.run_manifest(body, interval, TriggerKind.SCHEDULED, frozen=True)
            created = await asyncio.to_thread(self.kube.create, "pipelineruns", key[0], manifest)
            if created is not None:
                metrics.RUN_SCHEDULING_DELAY.labels(*key).observe(
                    max(0.0, (now - interval.end).total_seconds())
                )
                self._record_run(created)
        patch = pipelines.schedule_status(plan, list(self.runs.get(key, {}).values()), now)
        schedule_changed = any(status.get(k) != patch.get(k) for k in pipelines.SCHEDULE_FIELDS)
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
        body = self.pipelines.get(key)
        if names and body is not None:  # versions no run refers to any more
            kept = {r.snapshot for r in self.runs.get(key, {}).values() if r.snapshot}
            await self.snapshots.prune(body, kept)
        if ttl is not None:  # come back when the next finished run expires
            ends = [r.ended for r in self.runs.get(key, {}).values() if r.ended and not r.active]
            if ends:
                self.wake(min(ends) + timedelta(seconds=ttl + 1), "pipeline", key)
