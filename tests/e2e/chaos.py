"""Runs on the real cluster while the operator is SIGKILLed at random moments (issue 14).

Six pipelines like the issue's: a chain, a fan-out/in, a task that fails its first
attempt and retries, an always-failing task with an ``all_done`` cleanup, a ``command``
sensor in reschedule mode, and a branch. ``chaos()`` creates runs of them while a thread
kills the operator (uptime and downtime drawn from a seeded random generator, printed)
and restarts it; a watch records every pod the API server ever created (name and uid,
so a pod made twice under one name is seen). ``problems()`` then checks each run:

* the final phase and task states (the engine's semantics, as the local runner has them);
* no pod created twice, and no pod that started before its upstream's pods ended;
* each TaskRun's attempts: numbers increasing, naming exactly the pods that ran for it,
  with the outcomes the scripts decide (a ``PodLost`` attempt ran nothing);
* the sensor's poke count against its pods; the run's start no later than its first
  pod, its end no earlier than its last; counts that add up.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kubernetes import watch

from .operator_support import Kascade, pipeline

SENSOR = {"kind": "command", "mode": "reschedule", "pokeInterval": "2s"}

PIPELINES: dict[str, list[dict[str, Any]]] = {
    "chaos-chain": [
        {"name": "a", "command": ["true"]},
        {"name": "b", "command": ["true"], "dependsOn": ["a"]},
        {"name": "c", "command": ["true"], "dependsOn": ["b"]},
    ],
    "chaos-fan": [
        {"name": "root", "command": ["true"]},
        {"name": "x", "command": ["true"], "dependsOn": ["root"]},
        {"name": "y", "command": ["sleep", "2"], "dependsOn": ["root"]},
        {"name": "join", "command": ["true"], "dependsOn": ["x", "y"]},
    ],
    "chaos-flaky": [
        # Attempt 1 fails, later ones succeed (whatever ran before them).
        {
            "name": "flaky",
            "command": ["sh", "-c", 'test "$KASCADE_TRY_NUMBER" -ge 2'],
            "retries": 2,
            "retryDelay": "1s",
        },
        {"name": "after", "command": ["true"], "dependsOn": ["flaky"]},
    ],
    "chaos-cleanup": [
        {"name": "bad", "command": ["sh", "-c", "exit 2"], "retries": 1, "retryDelay": "1s"},
        {"name": "cleanup", "command": ["true"], "dependsOn": ["bad"], "triggerRule": "all_done"},
    ],
    "chaos-sensor": [
        # Met on its third poke (the pod's name ends in -p2), whatever the attempt.
        {
            "name": "wait",
            "command": ["sh", "-c", 'case "$HOSTNAME" in *-p2) exit 0;; *) exit 100;; esac'],
            "sensor": SENSOR,
        },
        {"name": "after", "command": ["true"], "dependsOn": ["wait"]},
    ],
    "chaos-branch": [
        {
            "name": "pick",
            "command": ["sh", "-c", "echo branch=left > $KASCADE_OUTPUTS"],
            "branch": True,
        },
        {"name": "left", "command": ["true"], "dependsOn": ["pick"]},
        {"name": "right", "command": ["true"], "dependsOn": ["pick"]},
        {
            "name": "join",
            "command": ["true"],
            "dependsOn": ["left", "right"],
            "triggerRule": "none_failed_min_one_success",
        },
    ],
}

EXPECTED: dict[str, tuple[str, dict[str, str]]] = {
    "chaos-chain": ("success", {"a": "success", "b": "success", "c": "success"}),
    "chaos-fan": (
        "success",
        {"root": "success", "x": "success", "y": "success", "join": "success"},
    ),
    "chaos-flaky": ("success", {"flaky": "success", "after": "success"}),
    # Airflow decides a run by its leaves: the cleanup ran, so the run succeeded.
    "chaos-cleanup": ("success", {"bad": "failed", "cleanup": "success"}),
    "chaos-sensor": ("success", {"wait": "success", "after": "success"}),
    "chaos-branch": (
        "success",
        {"pick": "success", "left": "success", "right": "skipped", "join": "success"},
    ),
}


SHORT: dict[str, Any] = {
    "runs_per_pipeline": 1,
    "kills": 3,
    "uptime": (2.0, 8.0),
    "downtime": (0.0, 3.0),
    "spread": 6.0,
    "timeout": 300,
}
"""CI: six runs, three SIGKILLs; a couple of minutes at most."""
LONG: dict[str, Any] = {
    "runs_per_pipeline": 7,
    "kills": 12,
    "uptime": (2.0, 25.0),
    "downtime": (0.0, 5.0),
    "spread": 120.0,
    "timeout": 3000,
}
"""``make bench``: 42 runs and 12 SIGKILLs, as in the issue's report."""


@dataclass
class Chaos:
    seed: int
    kills: list[tuple[float, float]] = field(default_factory=list)
    """(uptime before the kill, downtime after it), seconds."""
    pods: dict[str, set[str]] = field(default_factory=dict)
    """Every pod the API server created: name -> uids."""
    runs: list[str] = field(default_factory=list)


def _watch_pods(k: Kascade, out: dict[str, set[str]], stop: threading.Event) -> None:
    while not stop.is_set():
        w = watch.Watch()
        try:
            for event in w.stream(k.core.list_namespaced_pod, k.ns, timeout_seconds=5):
                pod = event["object"]
                out.setdefault(pod.metadata.name, set()).add(pod.metadata.uid)
                if stop.is_set():
                    break
        except Exception:  # a watch that ends early is started again
            time.sleep(0.2)
        finally:
            w.stop()


def chaos(
    k: Kascade,
    *,
    runs_per_pipeline: int,
    kills: int,
    uptime: tuple[float, float],
    downtime: tuple[float, float],
    spread: float,
    timeout: float,
    seed: int | None = None,
) -> Chaos:
    """Create the runs over ``spread`` seconds, kill the operator ``kills`` times, and wait
    (with the operator up) until every run has finished."""
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    out = Chaos(seed)
    for name, tasks in PIPELINES.items():
        k.apply_pipeline(pipeline(name, tasks, maxActiveRuns=50))
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_pods, args=(k, out.pods, stop), daemon=True)
    watcher.start()
    order = [name for name in PIPELINES for _ in range(runs_per_pipeline)]
    rng.shuffle(order)
    gap = spread / max(1, len(order))
    started = time.monotonic()
    up_since = started
    next_kill = started + rng.uniform(*uptime)
    done_killing = kills == 0
    try:
        while True:
            now = time.monotonic()
            if order and now >= started + gap * len(out.runs):
                name = order.pop()
                out.runs.append(k.create_run(name, name=f"{name}-{len(out.runs):03d}"))
            if not done_killing and now >= next_kill:
                k.operator.kill(hard=True)
                down = rng.uniform(*downtime)
                out.kills.append((now - up_since, down))
                time.sleep(down)
                k.operator.start()
                up_since = time.monotonic()
                next_kill = up_since + rng.uniform(*uptime)
                done_killing = len(out.kills) >= kills
            if not order and done_killing and all(_finished(k, r) for r in out.runs):
                break
            if now - started > timeout:
                raise AssertionError(f"chaos seed {seed}: runs not finished after {timeout} s")
            time.sleep(0.2)
    finally:
        stop.set()
        watcher.join(timeout=10)
    return out


def chaos_and_check(k: Kascade, **settings: Any) -> Chaos:
    """Run ``chaos`` (``KASCADE_CHAOS_SEED`` repeats a draw), print what it did, and fail
    with every problem found."""
    seed = int(os.environ.get("KASCADE_CHAOS_SEED", "0")) or None
    result = chaos(k, seed=seed, **settings)
    kills = [(round(up, 1), round(down, 1)) for up, down in result.kills]
    print(
        f"\nchaos seed {result.seed}: {len(result.runs)} runs, {len(result.kills)} SIGKILLs "
        f"(uptime, downtime s): {kills}; {len(result.pods)} pods, "
        f"{sum(len(uids) for uids in result.pods.values())} pod creations"
    )
    found = problems(k, result)
    assert found == [], "\n".join(found)
    return result


def _finished(k: Kascade, run: str) -> bool:
    return (k.get("pipelineruns", run).get("status") or {}).get("phase") in ("success", "failed")


def _t(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def problems(k: Kascade, result: Chaos) -> list[str]:
    """Every way the runs differ from what they should be, with the run's name."""
    found: list[str] = []
    twice = {name: uids for name, uids in result.pods.items() if len(uids) > 1}
    found += [f"pod {name} was created {len(uids)} times" for name, uids in twice.items()]
    pods = {p.metadata.name: p for p in k.core.list_namespaced_pod(k.ns).items}
    taskruns: dict[str, dict[str, dict[str, Any]]] = {}
    for tr in k.list("taskruns"):
        taskruns.setdefault(tr["spec"]["pipelineRunRef"]["name"], {})[tr["spec"]["taskName"]] = tr
    for run_name in result.runs:
        pname = run_name.rsplit("-", 1)[0]
        check = _Checker(run_name, pname, pods, taskruns.get(run_name, {}), found)
        check.run(k.get("pipelineruns", run_name))
    return found


class _Checker:
    def __init__(
        self,
        run: str,
        pipeline_name: str,
        pods: dict[str, Any],
        taskruns: dict[str, dict[str, Any]],
        found: list[str],
    ) -> None:
        self.run_name = run
        self.pipeline = pipeline_name
        self.tasks = {t["name"]: t for t in PIPELINES[pipeline_name]}
        self.pods = {n: p for n, p in pods.items() if n.startswith(f"{run}-")}
        self.taskruns = taskruns
        self.found = found

    def say(self, what: str) -> None:
        self.found.append(f"{self.run_name}: {what}")

    def pods_of(self, task: str) -> list[Any]:
        return [
            p
            for p in self.pods.values()
            if (p.metadata.annotations or {}).get("kascade.io/task-key") == task
        ]

    def run(self, body: dict[str, Any]) -> None:
        status = body.get("status") or {}
        phase, states = EXPECTED[self.pipeline]
        if (status.get("phase"), status.get("tasks")) != (phase, states):
            self.say(f"ended {status.get('phase')} {status.get('tasks')}, not {phase} {states}")
        for task in self.tasks:
            self.task(task)
        self.times(status)
        counts = status.get("counts") or {}
        if sum(counts.values()) != len(states):
            self.say(f"counts {counts} do not add up to {len(states)} tasks")

    def task(self, task: str) -> None:
        pods = self.pods_of(task)
        for pod in pods:  # no pod before its upstream's pods ended
            started = _started(pod)
            for up in self.tasks[task].get("dependsOn", []):
                for upstream in self.pods_of(up):
                    end = _finished_at(upstream)
                    if started is not None and (end is None or started < end):
                        self.say(f"{pod.metadata.name} started {started} before {up} ended {end}")
        tr = self.taskruns.get(task)
        if tr is None:
            if pods:
                self.say(f"{task} has pods {sorted(p.metadata.name for p in pods)} but no TaskRun")
            return
        attempts = (tr.get("status") or {}).get("attempts") or []
        order = [(a["number"], a.get("poke") or 0) for a in attempts]
        if order != sorted(order) or len(set(order)) != len(order):
            self.say(f"{task}'s attempts are out of order: {order}")
        named = sorted(a["podName"] for a in attempts if a.get("podName"))
        if named != sorted(p.metadata.name for p in pods):
            self.say(
                f"{task}'s attempts name {named}, its pods are {[p.metadata.name for p in pods]}"
            )
        ran = [a for a in attempts if a.get("reason") != "PodLost"]
        if task == "flaky":
            rule = [(a["number"], a.get("exitCode") == (1 if a["number"] == 1 else 0)) for a in ran]
            if not all(ok for _, ok in rule) or ran[-1].get("exitCode") != 0:
                self.say(f"flaky's attempts {ran}")
        if task == "bad" and [a.get("exitCode") for a in ran] != [2, 2]:
            self.say(f"bad's attempts {ran}")
        if task == "wait":
            pokes = (tr.get("status") or {}).get("pokes") or 0
            not_met = [a for a in ran if a.get("exitCode") == 100]
            if pokes != 2 or len(not_met) != 2 or len(pods) != 3:
                self.say(f"wait poked {pokes} times, {len(not_met)} not met, {len(pods)} pods")

    def times(self, status: dict[str, Any]) -> None:
        created = [p.metadata.creation_timestamp for p in self.pods.values()]
        ended = [e for e in (_finished_at(p) for p in self.pods.values()) if e is not None]
        start, end = status.get("startTime"), status.get("endTime")
        if created and (start is None or _t(start) > min(created) + timedelta(seconds=1)):
            self.say(f"started {start}, after its first pod {min(created)}")
        if ended and (end is None or _t(end) < max(ended) - timedelta(seconds=1)):
            self.say(f"ended {end}, before its last pod {max(ended)}")


def _container(pod: Any) -> Any:
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        if cs.name == "task":
            return cs
    return None


def _started(pod: Any) -> datetime | None:
    cs = _container(pod)
    state = cs.state if cs else None
    if state and state.terminated:
        return _t(state.terminated.started_at)
    if state and state.running:
        return _t(state.running.started_at)
    return None


def _finished_at(pod: Any) -> datetime | None:
    cs = _container(pod)
    terminated = cs.state.terminated if cs and cs.state else None
    return _t(terminated.finished_at) if terminated else None
