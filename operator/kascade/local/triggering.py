"""Triggered pipelines, locally: they run in this process, beside the run that asked.

A ``triggerPipeline`` task of a local run starts the other pipeline here, as a
second run in the same event loop: found in the same file (a multi-document YAML,
or another DAG of the same Python file) or in another file of the same folder (the
CLI decides how to read them: ``cli/local_triggers.py``). Its progress shows as
notices of the first run; its record goes to the local history like any run (so an
``externalTask`` sensor and ``kascade get`` see it), and ``kascade run`` waits for
every run it triggered before it exits.

Run ids follow the cluster's rule: a ``runId`` that exists already (triggered earlier
in this process, or in the local history) fails the task unless ``resetDagRun``
replaces it; without a ``runId`` each attempt makes its own run; the same attempt
asking twice gets the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kascade.api.runs import RunPhase
from kascade.engine.actions import TriggerRequest
from kascade.engine.context import RunContext
from kascade.local.events import Event, OnEvent


class TriggerFailed(Exception):
    """The run cannot be made (unknown pipeline, bad params, an id that exists)."""


class ChildRunner(Protocol):
    """What this module needs of a LocalRunner (which imports this module)."""

    async def run(self) -> RunPhase: ...

    def record(self) -> dict[str, Any]: ...

    @property
    def phase(self) -> RunPhase: ...


@dataclass
class Prepared:
    """A triggered run, set up by the CLI (which reads files) and not started yet."""

    pipeline: str
    ctx: RunContext
    runner: ChildRunner
    save: Callable[[dict[str, Any]], object]
    """Records the finished run in the local history."""


class Prepare(Protocol):
    def __call__(
        self, request: TriggerRequest, hub: LocalTriggers, on_event: OnEvent
    ) -> Prepared: ...


@dataclass
class ChildRun:
    pipeline: str
    run_id: str
    logical_date: datetime
    origin: str
    runner: ChildRunner
    task: asyncio.Task[RunPhase]

    @property
    def phase(self) -> str:
        return self.runner.phase.value

    @property
    def done(self) -> bool:
        return self.task.done()

    async def wait(self, seconds: float) -> None:
        """Until the run ends, or ``seconds`` pass."""
        await asyncio.wait({self.task}, timeout=seconds)


class LocalTriggers:
    def __init__(self, prepare: Prepare, exists: Callable[[str, str], bool]) -> None:
        self.prepare = prepare
        self.notice: Callable[[str], None] = lambda message: None
        """Set by the run that owns the hub (its progress display shows them)."""
        self.exists = exists
        """exists(pipeline, run_id): a finished run with that id is in the local history."""
        self.children: dict[tuple[str, str], ChildRun] = {}

    async def trigger(self, request: TriggerRequest, reset: bool) -> ChildRun:
        try:
            prepared = self.prepare(request, self, self._forward(request.pipeline))
        except ValueError as exc:
            raise TriggerFailed(str(exc)) from None
        # As on a cluster: a run asked for by id is that id (it may exist already); one
        # without is the asking attempt's own (a new run each time, whatever its id says).
        explicit = request.run_id is not None
        key = (prepared.pipeline, prepared.ctx.run_id) if explicit else ("", request.origin)
        existing = self.children.get(key)
        if existing is not None and existing.origin == request.origin:
            return existing  # the same attempt asking again: its own run
        if existing is not None or (explicit and self.exists(*key)):
            if not reset:
                raise TriggerFailed(
                    f"a run {key[1]!r} of {key[0]} exists already (set resetDagRun to replace it)"
                )
            if existing is not None and not existing.done:
                existing.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await existing.task
            self.notice(f"replacing run {key[1]} of {key[0]} (resetDagRun)")
        child = ChildRun(
            pipeline=prepared.pipeline,
            run_id=prepared.ctx.run_id,
            logical_date=prepared.ctx.logical_date,
            origin=request.origin,
            runner=prepared.runner,
            task=asyncio.create_task(self._run(prepared)),
        )
        self.children[key] = child
        self.notice(f"triggered {prepared.pipeline} (run {prepared.ctx.run_id})")
        return child

    async def _run(self, prepared: Prepared) -> RunPhase:
        phase = await prepared.runner.run()
        try:
            prepared.save(prepared.runner.record())
        except OSError as exc:
            self.notice(f"run {prepared.ctx.run_id} of {prepared.pipeline} not recorded: {exc}")
        self.notice(f"{prepared.pipeline} (run {prepared.ctx.run_id}) ended {phase.value}")
        return phase

    def _forward(self, pipeline: str) -> OnEvent:
        """A triggered run's task endings, as notices of the run that shows progress."""

        def on_event(event: Event) -> None:
            if (
                event.kind == "state"
                and event.state is not None
                and event.state.value
                in (
                    "success",
                    "failed",
                    "upstream_failed",
                )
            ):
                self.notice(f"{pipeline}: {event.key} {event.state.value}")

        return on_event

    async def drain(self, *, cancel: bool) -> None:
        """Wait for every triggered run (stop them first when the user interrupted)."""
        while True:
            pending = [c.task for c in self.children.values() if not c.done]
            if not pending:
                return
            if cancel:
                for task in pending:
                    task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
