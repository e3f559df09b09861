"""Attempts of tasks that run no pod, on a cluster: ``sendEmail`` and ``triggerPipeline``.

The driver launches them like any task (a TaskRun, a slot, a pool), then this module
does the work in the operator and reports a Result. Their rules are the engine's
(``engine/actions.py``); what is the cluster's is here:

* **Exactly one run per attempt.** The triggered PipelineRun's name is derived from
  what identifies it: the ``runId`` asked for, or else the asking attempt
  (namespace, run, task instance, attempt number). It records the attempt that made
  it (annotation ``kascade.io/trigger-origin``). An operator restarted mid-task
  launches the same attempt again (``engine.restore``): creating the run answers
  AlreadyExists, the origin matches, and the task follows that run instead of making
  a second one. ``resetDagRun`` replaces only a run some *other* origin made.
* **Waiting** is a GET of the run every ``pokeInterval``; the run's phase decides by
  the engine's rule (``TriggerPolicy.verdict``). A run deleted meanwhile fails it.
* **E-mail** goes through the run's :class:`Mailer` (the SMTP Secret, within the
  approval), with the shared retries; not sent in the end, the attempt fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kascade.api.runs import AttemptReason, TriggerKind
from kascade.controller import naming, scheduling
from kascade.controller.mailing import Mailer
from kascade.engine import actions, callbacks
from kascade.engine.actions import TriggerPolicy, TriggerRequest
from kascade.engine.decisions import Launch, Result
from kascade.engine.run_dates import manual_run, read_date
from kascade.engine.schedule import parse_schedule
from kascade.integrations.mailing import message_id
from kascade.kube.client import Kube

log = logging.getLogger("kascade.actions")
ORIGIN_ANNOTATION = "kascade.io/trigger-origin"
LABEL_TRIGGERED_BY = "kascade.io/triggered-by"
RESET_WAIT_SECONDS = 60.0
"""How long ``resetDagRun`` waits for the replaced run to be gone (its finalizers)."""


class ActionFailed(Exception):
    """The action cannot be done; the message says why (it becomes the attempt's)."""


def _api_error(exc: Exception) -> str:
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    return f"{status} {reason}" if status else type(exc).__name__


@dataclass
class ClusterActions:
    kube: Kube
    run: dict[str, Any]
    """The PipelineRun whose task this is."""
    run_id: str
    mailer: Mailer
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @property
    def namespace(self) -> str:
        return str(self.run["metadata"]["namespace"])

    @property
    def name(self) -> str:
        return str(self.run["metadata"]["name"])

    async def attempt(self, launch: Launch) -> Result:
        try:
            if launch.spec.send_email is not None:
                return await self._email(launch)
            return await self._trigger(launch)
        except (ActionFailed, ValueError) as exc:
            return Result(None, reason=AttemptReason.ACTION_FAILED, message=str(exc))

    async def _get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A read that says what it could not read (another namespace the operator's RBAC
        does not cover, say) instead of failing the attempt with an exception's name."""
        try:
            return await asyncio.to_thread(self.kube.get, plural, namespace, name)
        except Exception as exc:
            raise ActionFailed(
                f"cannot read {plural} {namespace}/{name}: {_api_error(exc)}"
            ) from None

    # -- sendEmail -------------------------------------------------------------------------
    async def _email(self, launch: Launch) -> Result:
        spec = launch.spec.send_email
        assert spec is not None
        email = callbacks.sent_email(spec)
        ident = message_id(self.run_id, launch.key, launch.attempt)
        why = await self.mailer.send(email, ident, f"task {launch.key}")
        if why is not None:
            raise ActionFailed(f"e-mail not sent: {why}")
        return Result(0, outputs={}, message=f"sent to {', '.join(email.to)}")

    # -- triggerPipeline -------------------------------------------------------------------
    async def _trigger(self, launch: Launch) -> Result:
        spec, policy = launch.spec.trigger_pipeline, launch.trigger_policy
        assert spec is not None and policy is not None
        request = actions.trigger_request(
            spec, namespace=self.namespace, parent_run=self.name, key=launch.key,
            attempt=launch.attempt,
        )  # fmt: skip
        run = await self._made(request, policy)
        made = run["spec"]
        logical = read_date(made["logicalDate"])
        run_id = made.get("runId") or actions.default_run_id(logical)
        outputs = actions.trigger_outputs(run_id, logical)
        name = run["metadata"]["name"]
        if not policy.wait:
            return Result(0, outputs=outputs, message=f"triggered {request.pipeline} run {name}")
        while True:
            current = await asyncio.to_thread(
                self.kube.get, "pipelineruns", request.namespace, name
            )
            if current is None:
                raise ActionFailed(f"the triggered run {request.namespace}/{name} was deleted")
            phase = (current.get("status") or {}).get("phase")
            verdict = policy.verdict(phase)
            if verdict is True:
                return Result(0, outputs=outputs, message=f"run {name} is {phase}")
            if verdict is False:
                raise ActionFailed(
                    f"run {request.namespace}/{name} of {request.pipeline} is {phase}"
                )
            await self.sleep(policy.interval.total_seconds())

    async def _made(self, request: TriggerRequest, policy: TriggerPolicy) -> dict[str, Any]:
        """The run of this request: the one this attempt made already, or a new one."""
        ns = request.namespace
        name = naming.triggered_run_name(request.pipeline, request.run_id, request.origin)
        existing = await self._get("pipelineruns", ns, name)
        if existing is not None:
            if _origin(existing) == request.origin:
                return existing  # made by this very attempt before a restart: follow it
            if not policy.reset:
                raise ActionFailed(
                    f"run {ns}/{name} ({request.run_id or 'this id'}) of {request.pipeline} "
                    "exists already (set resetDagRun to replace it)"
                )
            await self._replace(ns, name)
        body = await self._manifest(request, name)
        try:
            created = await asyncio.to_thread(self.kube.create, "pipelineruns", ns, body)
        except Exception as exc:  # forbidden, invalid: the operator cannot make it
            raise ActionFailed(f"cannot create run {ns}/{name}: {_api_error(exc)}") from None
        if created is None:  # made meanwhile (a reset's old run still terminating, a race)
            created = await self._get("pipelineruns", ns, name)
            if created is None or _origin(created) != request.origin:
                raise ActionFailed(f"run {ns}/{name} was made by someone else meanwhile")
        log.info("Triggered %s/%s (pipeline %s) for %s", ns, name, request.pipeline, self.name)
        return created

    async def _replace(self, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(self.kube.delete, "pipelineruns", namespace, name)
        except Exception as exc:
            raise ActionFailed(f"cannot delete run {namespace}/{name}: {_api_error(exc)}") from None
        waited = 0.0
        while await self._get("pipelineruns", namespace, name):
            if waited >= RESET_WAIT_SECONDS:
                raise ActionFailed(f"run {namespace}/{name} is still being deleted (resetDagRun)")
            await self.sleep(1.0)
            waited += 1.0

    async def _manifest(self, request: TriggerRequest, name: str) -> dict[str, Any]:
        ns = request.namespace
        pipeline = await self._get("pipelines", ns, request.pipeline)
        if pipeline is None:
            raise ActionFailed(f"pipeline {ns}/{request.pipeline} not found")
        spec = pipeline.get("spec") or {}
        dates = manual_run(
            parse_schedule(spec.get("schedule"), spec.get("timezone", "UTC")),
            logical_date=request.logical_date,
            now=self.clock(),
        )
        by = request.origin.rsplit("/", 1)[0]  # namespace/run/task instance
        body = scheduling.run_manifest(
            pipeline,
            dates.interval,
            TriggerKind.TRIGGERED,
            params=request.params or None,
            by=by,
            name=name,
            logical_date=dates.logical_date,
        )
        meta = body["metadata"]
        meta.setdefault("annotations", {})[ORIGIN_ANNOTATION] = request.origin
        meta["labels"][LABEL_TRIGGERED_BY] = naming.label_value(self.name)
        if request.run_id is not None:
            body["spec"]["runId"] = request.run_id
        return body


def _origin(run: dict[str, Any]) -> str | None:
    return ((run.get("metadata") or {}).get("annotations") or {}).get(ORIGIN_ANNOTATION)


class PodlessAttempts:
    """The attempts in flight of one run's podless tasks, as asyncio tasks of the operator.

    ``report(launch, result)`` hands each end to the driver (under its lock); a kill
    or the driver going away cancels them (a triggered run is not stopped with them,
    as Airflow leaves a triggered DAG run alone).
    """

    def __init__(
        self, actions_: ClusterActions, report: Callable[[Launch, Result], Awaitable[None]]
    ) -> None:
        self.actions = actions_
        self.report = report
        self.running: dict[str, asyncio.Task[None]] = {}

    def start(self, launch: Launch) -> None:
        self.cancel(launch.key)
        self.running[launch.key] = asyncio.get_running_loop().create_task(self._run(launch))

    async def _run(self, launch: Launch) -> None:
        timeout = launch.timeout.total_seconds() if launch.timeout is not None else None
        try:
            result = await asyncio.wait_for(self.actions.attempt(launch), timeout)
        except TimeoutError:
            result = Result(
                None, reason=AttemptReason.TIMEOUT, message=f"timed out after {timeout:.0f}s"
            )
        except Exception as exc:  # a bug must fail the attempt, not leave it running forever
            log.exception("Podless attempt %s of %s failed", launch.key, self.actions.name)
            result = Result(None, reason=AttemptReason.RUNNER_ERROR, message=type(exc).__name__)
        if self.running.get(launch.key) is asyncio.current_task():
            del self.running[launch.key]
        await self.report(launch, result)

    def cancel(self, key: str) -> bool:
        task = self.running.pop(key, None)
        if task is None:
            return False
        task.cancel()
        return True

    def stop(self) -> None:
        for key in list(self.running):
            self.cancel(key)

    async def drain(self) -> None:
        """For tests: until every attempt in flight has ended."""
        while self.running:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self.running.values(), return_exceptions=True)
