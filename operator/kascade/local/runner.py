"""The local driver of a RunEngine: every Launch becomes a subprocess on this machine.

The engine decides everything (order, retries, trigger rules, pools); this
module only turns its decisions into processes and timers, and process exits
back into events. One asyncio task per attempt puts its Result on a queue; the
main loop sleeps until the next completion or the engine's next timer, so an
idle run costs nothing and a finished process is handled at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kascade.api.runs import AttemptReason, RunPhase, TaskState
from kascade.engine import actions
from kascade.engine.caching import NO_REFRESH, Refresh
from kascade.engine.context import ExternalLookup, RunContext
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.plan import Plan
from kascade.engine.pools import PoolLedger
from kascade.engine.run import RunEngine
from kascade.engine.sensors import Poker
from kascade.integrations import mailing
from kascade.integrations.outputs_store import OUTPUTS_MAX_ENV, STORE_PREFIX, OutputsStore
from kascade.local import processes, report
from kascade.local.actions import LocalActions
from kascade.local.attempts import AttemptRunner, Workspace
from kascade.local.cache import LocalCache
from kascade.local.events import Event, OnEvent, ignore
from kascade.local.mailing import LocalSmtp
from kascade.local.notify import Notifier
from kascade.local.sensors import run_sensor
from kascade.local.triggering import LocalTriggers

_FINAL = frozenset({RunPhase.SUCCESS, RunPhase.FAILED})
_SHOWN_DURATION = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
    }
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_iso() -> str:
    return utcnow().isoformat()


class LocalRunner:
    def __init__(
        self,
        plan: Plan,
        ctx: RunContext,
        *,
        pools: Mapping[str, int] | None = None,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        on_event: OnEvent = ignore,
        external: ExternalLookup | None = None,
        cwd: str | None = None,
        smtp: LocalSmtp | None = None,
        triggers: LocalTriggers | None = None,
        owns_triggers: bool = True,
        cache: LocalCache | None = None,
        refresh: Refresh = NO_REFRESH,
        outputs: OutputsStore | None = None,
    ) -> None:
        """``triggers`` runs the pipelines that ``triggerPipeline`` tasks start (none: those
        tasks fail); the run that ``owns_triggers`` waits for them before it ends."""
        self.engine = RunEngine(
            plan,
            ctx,
            pools=PoolLedger(pools or {}),
            external=external,
            cache=cache,
            refresh=refresh,
            values=outputs,
        )
        self.cache = cache
        self.on_event = on_event
        # The store's settings are Kascade's, never a task's (as in a pod); a task learns its
        # outputs limit from the contract (engine/environment.py).
        base_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(STORE_PREFIX) and k != OUTPUTS_MAX_ENV
        }
        base_env.update(env or {})  # the run's variables and connections
        # Absolute: tasks get these paths (outputs file, script) and may run elsewhere.
        self.workdir = workdir.absolute()
        self.ws = Workspace(self.workdir, base_env, cwd or os.getcwd())
        self.attempts = AttemptRunner(self.ws, self._warn_task, ctx, outputs)
        smtp = smtp or LocalSmtp(None, "no SMTP settings were looked for")
        delays = mailing.retry_delays(base_env, mailing.LOCAL_RETRY_DELAYS)
        self.notifier = Notifier(self.ws, self._notice, smtp, delays)
        self.actions = LocalActions(ctx, smtp, triggers, self._notice, delays)
        self.owns_triggers = owns_triggers
        if triggers is not None and owns_triggers:
            triggers.notice = self._notice
        self.ended_at: datetime | None = None
        self.interrupted: signal.Signals | None = None
        """The signal that stopped the run (SIGINT or SIGTERM), if one did."""
        self._running: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._warned: set[tuple[str, str]] = set()
        self._done: asyncio.Queue[tuple[Launch, Result, datetime]] | None = None
        self._stopping = False
        self.rendered: dict[str, dict[str, Any]] = {}
        """Instance → its latest attempt's rendered fields (for the record)."""
        self.sla_misses: list[dict[str, Any]] = []

    # -- entry points ------------------------------------------------------------
    def execute(self) -> RunPhase:
        """Run in a fresh event loop, as the subreaper of every process it starts (what a
        task leaves behind is killed: ``local/reaper.py``). Ctrl-C or SIGTERM stops the
        run (``interrupted``): its attempts are killed and recorded as interrupted."""
        processes.raise_fd_limit()
        processes.REAPER.start()
        try:
            return asyncio.run(self.run())
        finally:
            processes.REAPER.stop()

    async def run(self) -> RunPhase:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        handled: list[signal.Signals] = []
        # A triggered child run (owns_triggers False) shares its parent's loop: the parent
        # keeps the handlers, and stops its children when it is interrupted.
        if main is not None and self.owns_triggers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._interrupt, main, sig)
                    handled.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread (tests): no signal handling
        try:
            await self._loop()
        except asyncio.CancelledError:
            if self.interrupted is None:
                raise
        finally:
            self._stopping = True
            if self.interrupted is not None:
                how = "Ctrl-C" if self.interrupted is signal.SIGINT else self.interrupted.name
                self._apply(self.engine.interrupt(utcnow(), f"interrupted by {how}"))
            # Still handling signals: a second Ctrl-C kills what is left at once.
            await self._shutdown()
            await processes.SWEEPS.drain()
            for sig in handled:
                loop.remove_signal_handler(sig)
        self.ended_at = self.ended_at or utcnow()
        return self.engine.phase

    @property
    def phase(self) -> RunPhase:
        return self.engine.phase

    def record(self) -> dict[str, Any]:
        """The run as JSON (``--output json`` and the history file)."""
        record = report.run_json(self.engine, self.ended_at)
        record["workdir"] = str(self.workdir)
        record["rendered"] = dict(self.rendered)
        record["slaMisses"] = list(self.sla_misses)
        return record

    @property
    def tails(self) -> Mapping[str, tuple[Path, list[str]]]:
        return self.attempts.tails

    # -- the loop ------------------------------------------------------------------
    async def _loop(self) -> None:
        done: asyncio.Queue[tuple[Launch, Result, datetime]] = asyncio.Queue()
        self._done = done
        engine = self.engine
        self._apply(engine.start(utcnow()))
        while engine.phase not in _FINAL:
            wake = engine.wake_at()
            if wake is None and not self._running:
                engine.message = "the run is stuck: nothing is running and nothing is due"
                break
            try:
                if wake is None:
                    item = await done.get()
                else:
                    delay = max(0.0, (wake - utcnow()).total_seconds())
                    item = await asyncio.wait_for(done.get(), delay)
            except TimeoutError:
                self._apply(engine.tick(utcnow()))
                continue
            self._completed(item)
            while not done.empty() and engine.phase not in _FINAL:
                self._completed(done.get_nowait())
            if wake is not None and wake <= utcnow() and engine.phase not in _FINAL:
                self._apply(engine.tick(utcnow()))
        self.ended_at = utcnow()

    def _completed(self, item: tuple[Launch, Result, datetime]) -> None:
        launch, result, at = item
        if self._running.get(launch.key) is not None:
            del self._running[launch.key]
        self._apply(self.engine.finished(launch.key, launch.attempt, result, at))

    def _apply(self, decisions: Decisions) -> None:
        while True:
            for key, state in decisions.changes:
                self._state_event(key, state)
            for key, reason in decisions.kills:
                task = self._running.pop(key, None)
                if task is not None:
                    task.cancel()
                    self._keep(task)
                    self._emit(Event("notice", utcnow(), key, message=f"killed ({reason})"))
            for fire in decisions.notifications:
                self._keep(asyncio.create_task(self.notifier.fire(fire)))
            for key, why in decisions.waits:
                self._emit(Event("notice", utcnow(), key, message=f"waits: {why}"))
            if self.cache is not None and decisions.cache_writes:
                self.cache.keep(decisions.cache_writes, utcnow())
            for miss in decisions.sla_misses:
                what = miss.task or "the run"
                self.sla_misses.append(
                    {"task": miss.task, "deadline": miss.deadline.isoformat(), "at": now_iso()}
                )
                blocking = f" (blocking: {', '.join(miss.blocking)})" if miss.blocking else ""
                message = f"{what} missed its SLA{blocking}"
                self._emit(Event("sla", utcnow(), miss.task, message=message))
            if not decisions.launches:
                return
            now = utcnow()
            for launch in decisions.launches:
                self._running[launch.key] = asyncio.create_task(self._attempt(launch))
                self.engine.started(launch.key, launch.attempt, now)
            # Flush the RUNNING transitions now, so progress shows them when they happen.
            decisions = self.engine.tick(now)

    async def _attempt(self, launch: Launch) -> None:
        self.rendered[launch.key] = report.rendered_json(launch)
        try:
            policy = launch.sensor_policy
            timeout = launch.timeout.total_seconds() if launch.timeout is not None else None
            if actions.action_of(launch.spec) is not None:
                result = await self._action(launch, timeout)
            elif policy is not None and policy.poker is not Poker.ENGINE:
                result = await run_sensor(launch, self.attempts)
            else:
                result = await self.attempts.run(launch, timeout)
        except Exception as exc:  # a runner bug must fail the attempt, not hang the run
            result = Result(
                None, reason=AttemptReason.RUNNER_ERROR, message=f"{type(exc).__name__}: {exc}"
            )
        assert self._done is not None
        self._done.put_nowait((launch, result, utcnow()))

    async def _action(self, launch: Launch, timeout: float | None) -> Result:
        """A task without a process: the runner does its work (``local/actions.py``)."""
        log = self.ws.log_path(launch.key, launch.attempt)
        try:
            result = await asyncio.wait_for(self.actions.run(launch, log), timeout)
        except TimeoutError:
            message = f"timed out after {timeout:.1f}s"
            result = Result(None, reason=AttemptReason.TIMEOUT, message=message)
        if not result.ok:
            self.attempts.tails[launch.key] = (log, [result.message or "failed"])
        return result

    # -- events ----------------------------------------------------------------------
    def _state_event(self, key: str, state: TaskState) -> None:
        inst = self.engine.instances.get(key)
        if inst is None:  # an unexpanded mapped task decided again: it expands later
            self._emit(Event("state", utcnow(), key, state))
            return
        duration = None
        if state in _SHOWN_DURATION or state is TaskState.SKIPPED:
            duration = report.instance_duration(inst)
        cached = state is TaskState.SUCCESS and report.cached(inst)
        message = None if state is TaskState.SUCCESS and not cached else inst.message
        self._emit(Event("state", utcnow(), key, state, inst.attempt, duration, message))

    def _emit(self, event: Event) -> None:
        self.on_event(event)

    def _notice(self, message: str) -> None:
        self._emit(Event("notice", utcnow(), message=message))

    def _warn_task(self, task_id: str, message: str) -> None:
        if (task_id, message) not in self._warned:
            self._warned.add((task_id, message))
            self._emit(Event("notice", utcnow(), task_id, message=message))

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _interrupt(self, main: asyncio.Task[Any], sig: signal.Signals) -> None:
        if self.interrupted is None and not self._stopping:
            self.interrupted = sig
            main.cancel()
            self._notice(f"{sig.name}: stopping every task (again to kill them at once)")
        else:
            processes.kill_all_now()

    async def _shutdown(self) -> None:
        """Kill what is still running (Ctrl-C, a stuck run) and let notifications finish."""
        for task in self._running.values():
            task.cancel()
        pending = [*self._running.values(), *self._background]
        self._running.clear()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        triggers = self.actions.triggers
        if self.owns_triggers and triggers is not None:
            await triggers.drain(cancel=self.interrupted is not None)
