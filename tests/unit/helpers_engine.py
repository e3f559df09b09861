"""Small builders for engine tests: manifests from dicts, scripted outcomes, a recorder.

Written independently of the engine: the tests judge the engine against Airflow's
documented semantics, so these helpers only build inputs and observe outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade.api.pipeline import PipelineSpec, TriggerRule
from kascade.api.runs import RunPhase, TaskState
from kascade.engine.compile import Plan, compile_or_raise
from kascade.engine.context import RunContext
from kascade.engine.decisions import Decisions, Launch, Result
from kascade.engine.pools import PoolLedger
from kascade.engine.run import RunEngine
from kascade.engine.schedule import DataInterval
from kascade.engine.simulate import simulate
from kascade.engine.trigger_rules import Verdict

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IMAGE = "busybox:1.36"

OK = Result(0)
FAIL = Result(1, message="boom")
NOT_MET = Result(100)


def task(name: str, *deps: str, **fields: Any) -> dict[str, Any]:
    """A task manifest entry (camelCase keys as in YAML)."""
    out: dict[str, Any] = {"name": name, "image": IMAGE, "command": ["true"]}
    if deps:
        out["dependsOn"] = list(deps)
    out.update(fields)
    return out


def spec(tasks: Sequence[Mapping[str, Any]] = (), **fields: Any) -> PipelineSpec:
    data: dict[str, Any] = dict(fields)
    if tasks:
        data["tasks"] = list(tasks)
    return PipelineSpec.model_validate(data)


def doc(**spec_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": spec_fields,
    }


def plan(tasks: Sequence[Mapping[str, Any]] = (), **fields: Any) -> Plan:
    return compile_or_raise(spec(tasks, **fields), "p")


def context(params: Mapping[str, Any] | None = None) -> RunContext:
    return RunContext(
        run_id="manual__1",
        logical_date=T0,
        interval=DataInterval(T0, T0 + timedelta(days=1)),
        params=dict(params or {}),
        pipeline="p",
    )


def engine(
    p: Plan,
    params: Mapping[str, Any] | None = None,
    *,
    pools: PoolLedger | None = None,
    max_active_tasks: int | None = None,
) -> RunEngine:
    return RunEngine(p, context(params), pools=pools, max_active_tasks=max_active_tasks)


Script = Mapping[str, Sequence[Result] | Result]
"""Per task id (or instance key): the result of each attempt (the last one repeats)."""


def scripted(script: Script, default: Result = OK) -> Callable[[Launch], Result]:
    calls: dict[str, int] = {}

    def outcome(launch: Launch) -> Result:
        plan_for = script.get(launch.key, script.get(launch.task_id))
        if plan_for is None:
            return default
        if isinstance(plan_for, Result):
            return plan_for
        n = calls.get(launch.key, 0)
        calls[launch.key] = n + 1
        return plan_for[min(n, len(plan_for) - 1)]

    return outcome


@dataclass
class Recorder:
    """Drives an engine like ``simulate`` does, and keeps every Decisions it returned."""

    engine: RunEngine
    outcome: Callable[[Launch], Result]
    duration: timedelta = timedelta(seconds=1)
    durations: Mapping[str, timedelta] = field(default_factory=dict)
    decisions: list[tuple[datetime, Decisions]] = field(default_factory=list)
    launches: list[tuple[datetime, Launch]] = field(default_factory=list)
    phase: RunPhase | None = None
    end: datetime | None = None

    def run(self, start: datetime = T0, max_events: int = 100_000) -> Recorder:
        def observe(now: datetime, d: Decisions) -> None:
            self.decisions.append((now, d))
            self.launches.extend((now, launch) for launch in d.launches)

        trace = simulate(
            self.engine,
            self.outcome,
            start=start,
            duration=lambda launch: self.durations.get(launch.task_id, self.duration),
            max_events=max_events,
            observe=observe,
        )
        self.phase, self.end = trace.phase, trace.end
        return self

    @property
    def states(self) -> dict[str, TaskState]:
        return self.engine.states()

    def launched(self, key: str) -> list[Launch]:
        return [launch for _, launch in self.launches if launch.key == key]

    def launch_order(self) -> list[str]:
        return [launch.key for _, launch in self.launches]

    def notifications(self) -> list[tuple[str, str | None]]:
        return [(f.event, f.task) for _, d in self.decisions for f in d.notifications]

    def changes(self) -> list[tuple[str, TaskState]]:
        return [c for _, d in self.decisions for c in d.changes]


def run(
    p: Plan,
    script: Script | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    default: Result = OK,
    **kw: Any,
) -> Recorder:
    eng_kw = {k: kw.pop(k) for k in ("pools", "max_active_tasks") if k in kw}
    eng = engine(p, params, **eng_kw)
    return Recorder(eng, scripted(script or {}, default), **kw).run()


def airflow(rule: TriggerRule, s: int, k: int, f: int, u: int, r: int) -> Verdict:
    """Airflow's verdict for counts of success, skipped, failed, upstream_failed, running."""
    upstream = s + k + f + u + r
    done = s + k + f + u
    upstream_done = done >= upstream
    if rule is TriggerRule.ALWAYS:
        return Verdict.RUN
    # 1. flag_upstream_failed: settle without running
    new: Verdict | None = None
    if rule is TriggerRule.ALL_SUCCESS:
        new = Verdict.UPSTREAM_FAILED if (u or f) else Verdict.SKIP if k else None
    elif rule is TriggerRule.ALL_FAILED:
        new = Verdict.SKIP if (s or k) else None
    elif rule is TriggerRule.ONE_SUCCESS:
        if upstream_done and done == k:
            new = Verdict.SKIP
        elif upstream_done and s <= 0:
            new = Verdict.UPSTREAM_FAILED
    elif rule is TriggerRule.ONE_FAILED:
        new = Verdict.SKIP if upstream_done and not (f or u) else None
    elif rule is TriggerRule.ONE_DONE:
        new = Verdict.SKIP if upstream_done and not (f or s) else None
    elif rule is TriggerRule.NONE_FAILED:
        new = Verdict.UPSTREAM_FAILED if (u or f) else None
    elif rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        new = Verdict.UPSTREAM_FAILED if (u or f) else Verdict.SKIP if k == upstream else None
    elif rule is TriggerRule.NONE_SKIPPED:
        new = Verdict.SKIP if k else None
    elif rule is TriggerRule.ALL_SKIPPED:
        new = Verdict.SKIP if (s or f or u) else None
    if new is not None:
        return new
    # 2. the dependency is met, or the task waits
    waiting = {
        TriggerRule.ONE_SUCCESS: s <= 0,
        TriggerRule.ONE_FAILED: not f and not u,
        TriggerRule.ONE_DONE: s + f <= 0,
        TriggerRule.ALL_SUCCESS: upstream - s > 0,
        TriggerRule.ALL_FAILED: upstream - f - u > 0,
        TriggerRule.ALL_DONE: not upstream_done,
        TriggerRule.NONE_FAILED: upstream - s - k > 0,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS: upstream - s - k > 0,
        TriggerRule.NONE_SKIPPED: not upstream_done or k > 0,
        TriggerRule.ALL_SKIPPED: upstream - k > 0,
    }[rule]
    return Verdict.WAIT if waiting else Verdict.RUN
