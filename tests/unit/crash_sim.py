"""An operator that dies at a chosen write, on an in-memory cluster with a simulated kubelet.

``simulate(runs, crash_at=k)`` drives the real World (the operator's decisions) over a
FakeKube whose ``k``-th write (API call or Event) kills the process: that write and
every later one never happen. The kubelet keeps running pods while the operator is
down; a fresh World then starts from what the API holds, and the runs go to their end.
Every write the operator makes is a crash point, so the object sets a restore starts
from cover "crashed right before / right after" each write of each run.

Time is simulated (the clock passed to the World), pods run by script, and every timer
the operator sets (engine timers, the status writer's flushes, the "write running if it
lasts" check) is driven by the simulation, so each run is deterministic.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_kube import FakeKube

from kascade.api.protocol import SENSOR_NOT_MET
from kascade.controller import driver as driver_module
from kascade.controller import writer as writer_module
from kascade.controller.podspec import ANN_ATTEMPT, ANN_KEY, ANN_POKE, LABEL_RUN
from kascade.controller.world import World

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NS = "ns"
START_SECONDS = 1.0
"""A pod's container starts this long after the pod is created."""
DOWNTIME = timedelta(seconds=4)
"""How long the operator stays down after it died (pods go on meanwhile)."""


class Crashed(BaseException):
    """The operator process died at this write (BaseException: nothing may catch it)."""


# What each execution of a task's pod does: (seconds it runs, exit code, outputs message).
# Executions are counted per instance when a pod starts, so a script says "the first run
# fails, the second succeeds" whatever the attempt numbers are.
Execution = tuple[float, int, str]


@dataclass
class Script:
    runs: dict[str, list[Execution]] = field(default_factory=dict)

    def execution(self, key: str, n: int) -> Execution:
        plan = self.runs.get(key.split("[")[0], [(1.0, 0, "")])
        return plan[min(n, len(plan) - 1)]


@dataclass
class PodLife:
    name: str
    key: str
    attempt: int
    poke: int
    created: datetime
    started: datetime | None = None
    ends: datetime | None = None
    execution: Execution | None = None
    ended: bool = False


class DyingKube(FakeKube):
    """A FakeKube whose writes stop, for good, when the budget is spent."""

    def __init__(self) -> None:
        super().__init__(now=T0)
        self.budget: int | None = None
        self.made = 0
        self.pod_creations: list[tuple[str, datetime]] = []
        """Pods really created (not AlreadyExists), with the simulated time."""
        self.events: list[tuple[str, str, str]] = []

    def spend(self) -> None:
        if self.budget is not None and self.made >= self.budget:
            raise Crashed()
        self.made += 1

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.spend()
        return super().create(plural, namespace, body)

    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        self.spend()
        made = FakeKube.create(self, "pods", namespace, body) is not None
        if made:
            self.pod_creations.append((body["metadata"]["name"], self.now))
        return made

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.spend()
        return super().patch(plural, namespace, name, body)

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.spend()
        super().patch_status(plural, namespace, name, status)

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.spend()
        super().delete(plural, namespace, name)

    def delete_pod(self, namespace: str, name: str, grace: int = 5) -> None:
        self.spend()
        FakeKube.delete(self, "pods", namespace, name)

    def emit(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """The World's Event poster: an Event is a write like the others."""
        self.spend()
        self.events.append((obj["metadata"]["name"], reason, message))

    def pods(self) -> list[dict[str, Any]]:
        return [o for (p, _, _), o in self.objects.items() if p == "pods"]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class Kubelet:
    """Runs the pods by script: created → running after START_SECONDS → terminated."""

    def __init__(self, kube: DyingKube, script: Script) -> None:
        self.kube = kube
        self.script = script
        self.lives: dict[str, PodLife] = {}
        self.executions: dict[str, int] = {}
        self.history: list[PodLife] = []

    def _life(self, pod: dict[str, Any]) -> PodLife | None:
        meta = pod["metadata"]
        ann = meta.get("annotations") or {}
        if ANN_KEY not in ann:
            return None  # a hook pod: it is not a task
        life = self.lives.get(meta["uid"])
        if life is None:
            created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
            life = PodLife(
                meta["name"], ann[ANN_KEY], int(ann[ANN_ATTEMPT]), int(ann[ANN_POKE]), created
            )
            self.lives[meta["uid"]] = life
            self.history.append(life)
        return life

    def next_at(self) -> datetime | None:
        times = []
        for pod in self.kube.pods():
            life = self._life(pod)
            if life is None or life.ended:
                continue
            times.append(life.ends if life.started else life.created + _s(START_SECONDS))
        return min((t for t in times if t is not None), default=None)

    def advance(self, now: datetime) -> list[dict[str, Any]]:
        """Move every pod on to ``now``; the pods that changed."""
        changed = []
        for pod in self.kube.pods():
            life = self._life(pod)
            if life is None or life.ended:
                continue
            moved = False
            if life.started is None and now >= life.created + _s(START_SECONDS):
                life.started = life.created + _s(START_SECONDS)
                n = self.executions.get(life.key, 0)
                self.executions[life.key] = n + 1
                life.execution = self.script.execution(life.key, n)
                life.ends = life.started + _s(life.execution[0])
                pod["status"] = {
                    "phase": "Running",
                    "containerStatuses": [
                        {"name": "task", "state": {"running": {"startedAt": _iso(life.started)}}}
                    ],
                }
                moved = True
            if life.started is not None and life.ends is not None and now >= life.ends:
                assert life.execution is not None
                _, code, message = life.execution
                life.ended = True
                terminated = {
                    "exitCode": code,
                    "message": message,
                    "startedAt": _iso(life.started),
                    "finishedAt": _iso(life.ends),
                    "reason": "Completed" if code == 0 else "Error",
                }
                pod["status"] = {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "containerStatuses": [{"name": "task", "state": {"terminated": terminated}}],
                }
                moved = True
            if moved:
                changed.append(copy.deepcopy(pod))
        return changed


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def simulated_timers(clock: Clock) -> Iterator[list[tuple[datetime, Callable[[], None]]]]:
    """The driver's and the writer's real-time timers, on the simulated clock instead."""
    later: list[tuple[datetime, Callable[[], None]]] = []
    saved = (
        writer_module.StatusWriter.schedule,
        driver_module.RunDriver._write_if_still,
        writer_module.run_status_interval,
    )

    def schedule(self: writer_module.StatusWriter, delay: float = 0.0) -> None:
        pass  # the simulation flushes every writer after each step

    def write_if_still(
        self: driver_module.RunDriver, delay: float, key: str, attempt: int, state: Any
    ) -> None:
        def check() -> None:
            inst = self.engine.instances.get(key)
            if inst is not None and inst.attempt == attempt and inst.state is state:
                self.writer.taskrun_changed(key)

        later.append((clock.now + _s(delay), check))

    writer_module.StatusWriter.schedule = schedule  # type: ignore[method-assign]
    driver_module.RunDriver._write_if_still = write_if_still  # type: ignore[method-assign]
    writer_module.run_status_interval = lambda active: 0.0
    try:
        yield later
    finally:
        (
            writer_module.StatusWriter.schedule,
            driver_module.RunDriver._write_if_still,
            writer_module.run_status_interval,
        ) = saved  # type: ignore[method-assign]


@dataclass
class Outcome:
    kube: DyingKube
    kubelet: Kubelet
    crashed: bool
    writes: int
    """Writes made in the first life (all of them when it did not crash)."""
    at_crash: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each run's status as the API held it when the operator died."""


def finished(kube: DyingKube) -> bool:
    runs = [o for (p, _, _), o in kube.objects.items() if p == "pipelineruns"]
    return all((r.get("status") or {}).get("phase") in ("success", "failed") for r in runs)


async def _live(
    kube: DyingKube,
    kubelet: Kubelet,
    clock: Clock,
    later: list[tuple[datetime, Callable[[], None]]],
    deadline: datetime,
) -> None:
    """One life of the operator: start from what the API holds and go on until every
    run has finished (or Crashed is raised by a write)."""
    world = World(kube, kube.emit, clock=clock)
    for (plural, _, _), body in sorted(kube.objects.items()):
        if plural == "pipelineruns":
            await world.on_run("ADDED", copy.deepcopy(body))
    while clock.now < deadline:
        for d in [*world.drivers.values()]:
            await d.flush()
        for w in [*world.ended_writers.retired.values()]:
            await w.flush()
        if finished(kube) and not world.drivers:
            return
        times = [t for t in (kubelet.next_at(),) if t is not None]
        times += [d.engine.wake_at() for d in world.drivers.values() if d.engine.wake_at()]
        times += [t for t, _ in later]
        if not times:
            raise AssertionError(f"stuck at {clock.now}: nothing runs and nothing is due")
        clock.now = max(clock.now, min(t for t in times if t is not None))
        kube.now = clock.now
        for pod in kubelet.advance(clock.now):
            await world.on_pod("MODIFIED", pod)
        for item in [x for x in later if x[0] <= clock.now]:
            later.remove(item)
            item[1]()
        for d in [*world.drivers.values()]:
            wake = d.engine.wake_at()
            if wake is not None and wake <= clock.now:
                await d.tick(clock.now)
    raise AssertionError(f"the runs did not finish by {deadline}")


def simulate(
    runs: list[dict[str, Any]],
    script: Script,
    *,
    crash_at: int | None = None,
    delete_pods_while_down: bool = False,
    horizon: timedelta = timedelta(minutes=30),
) -> Outcome:
    """Create ``runs``, operate them, optionally crash at write ``crash_at`` (0: before the
    first) and start again after DOWNTIME, until every run has finished."""
    kube = DyingKube()
    kubelet = Kubelet(kube, script)
    clock = Clock()
    for body in runs:
        FakeKube.create(kube, "pipelineruns", NS, copy.deepcopy(body))
    kube.budget = crash_at
    deadline = T0 + horizon
    crashed = False

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), Crashed):
            loop.default_exception_handler(context)

    async def life() -> None:
        asyncio.get_running_loop().set_exception_handler(quiet)
        await _live(kube, kubelet, clock, later, deadline)

    with simulated_timers(clock) as later:
        try:
            asyncio.run(life())
        except Crashed:
            crashed = True
        writes = kube.made
        at_crash = {
            name: copy.deepcopy(o.get("status") or {})
            for (p, _, name), o in kube.objects.items()
            if p == "pipelineruns"
        }
        if crashed:
            later.clear()  # the process is gone, and its timers with it
            kube.budget = None
            back = clock.now + DOWNTIME
            while (t := kubelet.next_at()) is not None and t <= back:
                clock.now = kube.now = t
                kubelet.advance(t)  # pods go on; nobody watches
            clock.now = kube.now = back
            if delete_pods_while_down:
                for pod in kube.pods():
                    life_ = kubelet._life(pod)
                    if life_ is not None and not life_.ended:
                        FakeKube.delete(kube, "pods", NS, pod["metadata"]["name"])
            asyncio.run(life())
    return Outcome(kube, kubelet, crashed, writes, at_crash)


def run_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pipelineRef": {"name": name},
            "pipelineSpec": {"defaults": {"image": "busybox:1.36"}, **spec},
            "logicalDate": "2026-03-01T00:00:00Z",
        },
    }


NOT_MET = (0.5, SENSOR_NOT_MET, "")
__all__ = ["LABEL_RUN", "NOT_MET", "Outcome", "Script", "run_body", "simulate"]
