"""Issue 14, cause by cause: a restarted operator on recorded object sets.

Each test writes down what the API holds when a new operator starts (a PipelineRun with
its summary, TaskRuns with their attempt records and ``kascade.io/attempt``, pods with
their annotations and phases), boots a World on it over the in-memory Kube, and checks
what it does. The exhaustive version (a crash at every write of seven pipelines) is
``test_crash_points.py``.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_kube import FakeKube

from kascade.api.runs import TaskState
from kascade.controller import naming
from kascade.controller.podspec import ANN_ATTEMPT, ANN_KEY, ANN_POKE, LABEL_RUN
from kascade.controller.world import World

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
NS = "ns"
RUN = "r"


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def run_body(tasks: list[dict[str, Any]], status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {
            "name": RUN,
            "namespace": NS,
            "uid": "uid-r",
            "generation": 1,
            "creationTimestamp": iso(NOW - timedelta(minutes=10)),
        },
        "spec": {
            "pipelineRef": {"name": "p"},
            "pipelineSpec": {"defaults": {"image": "busybox:1.36"}, "tasks": tasks, **spec},
            "logicalDate": iso(NOW - timedelta(hours=1)),
            "dataInterval": {"start": iso(NOW - timedelta(hours=1)), "end": iso(NOW)},
        },
        "status": status,
    }


def taskrun(key: str, status: dict[str, Any] | None = None, launched: int = 0) -> dict[str, Any]:
    name = naming.taskrun_name(RUN, key)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{name}",
        "labels": {LABEL_RUN: RUN},
        "creationTimestamp": iso(NOW - timedelta(minutes=9)),
    }
    if launched:
        meta["annotations"] = {ANN_ATTEMPT: str(launched)}
    return {"metadata": meta, "spec": {"taskName": key}, "status": status or {}}


def pod(
    key: str,
    attempt: int,
    *,
    created: datetime,
    state: dict[str, Any] | None = None,
    phase: str = "Pending",
    poke: int = 0,
) -> dict[str, Any]:
    name = naming.pod_name(naming.taskrun_name(RUN, key), attempt, poke)
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {LABEL_RUN: RUN},
            "creationTimestamp": iso(created),
            "annotations": {ANN_KEY: key, ANN_ATTEMPT: str(attempt), ANN_POKE: str(poke)},
            "ownerReferences": [{"kind": "PipelineRun", "name": RUN}],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "task", "state": state or {}}] if state else [],
        },
    }


def running(since: datetime) -> dict[str, Any]:
    return {"running": {"startedAt": iso(since)}}


def ended(code: int, start: datetime, end: datetime, message: str = "") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "startedAt": iso(start),
            "finishedAt": iso(end),
            "message": message,
            "reason": "Completed" if code == 0 else "Error",
        }
    }


class Cluster:
    """The recorded objects, and a World booted on them (the restarted operator)."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.kube = FakeKube(now=NOW)
        self.events: list[tuple[str, str, str]] = []
        for obj in objects:
            plural = {"PipelineRun": "pipelineruns"}.get(obj.get("kind", ""), "")
            plural = plural or ("taskruns" if "taskName" in (obj.get("spec") or {}) else "pods")
            FakeKube.create(self.kube, plural, NS, copy.deepcopy(obj))
        self.kube.writes.clear()
        self.now = NOW
        self.world = World(
            self.kube,
            lambda o, k, r, m: self.events.append((o["metadata"]["name"], r, m)),
            clock=lambda: self.now,
        )

    async def boot(self) -> None:
        body = self.kube.get("pipelineruns", NS, RUN)
        assert body is not None
        await self.world.on_run("ADDED", body)
        await self.flush()

    async def flush(self) -> None:
        for _ in range(3):
            for driver in list(self.world.drivers.values()):
                await driver.flush()
            await asyncio.sleep(0)

    async def at(self, when: datetime) -> None:
        """Time passes: every timer the operator set by then fires."""
        self.now = when
        self.kube.now = when
        for driver in list(self.world.drivers.values()):
            await driver.tick(when)
        if hasattr(self.world, "_start_timeouts"):  # before issue 14: a 30 s check loop
            await self.world._start_timeouts(when)
        await self.flush()

    async def pod_event(self, key: str, attempt: int, state: dict[str, Any], phase: str) -> None:
        name = naming.pod_name(naming.taskrun_name(RUN, key), attempt)
        body = self.kube.get("pods", NS, name)
        assert body is not None, name
        body["status"] = {"phase": phase, "containerStatuses": [{"name": "task", "state": state}]}
        self.kube.objects[("pods", NS, name)] = copy.deepcopy(body)
        await self.world.on_pod("MODIFIED", body)
        await self.flush()

    def created_pods(self) -> list[str]:
        return [w[2] for w in self.kube.writes if w[:2] == ("create", "pods")]

    def taskrun_status(self, key: str) -> dict[str, Any]:
        tr = self.kube.get("taskruns", NS, naming.taskrun_name(RUN, key))
        assert tr is not None
        return dict(tr.get("status") or {})

    def run_status(self) -> dict[str, Any]:
        run = self.kube.get("pipelineruns", NS, RUN)
        assert run is not None
        return dict(run.get("status") or {})


CHAIN = [
    {"name": "a", "command": ["true"]},
    {"name": "b", "command": ["true"], "dependsOn": ["a"]},
    {"name": "c", "command": ["true"], "dependsOn": ["b"]},
]


def test_cause_1_a_restore_launches_nothing_whose_upstream_still_runs() -> None:
    """The run's summary lists every task (waiting ones too); a restore must not launch a
    waiting task, whatever the summary says of it."""
    start = NOW - timedelta(seconds=30)
    cluster = Cluster(
        run_body(
            CHAIN,
            {
                "phase": "running",
                "startTime": iso(start),
                "tasks": {"a": "queued", "b": "scheduled", "c": "none"},
            },
        ),
        taskrun("a", launched=1),
        pod("a", 1, created=start, state=running(start + timedelta(seconds=2)), phase="Running"),
    )

    async def scenario() -> tuple[list[str], list[str]]:
        await cluster.boot()
        at_boot = cluster.created_pods()
        await cluster.pod_event("a", 1, ended(0, start, NOW), "Succeeded")
        return at_boot, cluster.created_pods()

    at_boot, after_a = asyncio.run(scenario())
    assert at_boot == []
    assert after_a == ["r-b-a1"]


def test_cause_2_the_attempt_history_and_the_run_start_are_kept() -> None:
    start = NOW - timedelta(minutes=5)
    first = NOW - timedelta(minutes=4)
    cluster = Cluster(
        run_body(
            [{"name": "flaky", "command": ["true"], "retries": 2, "retryDelay": "10s"}],
            {"phase": "running", "startTime": iso(start), "tasks": {"flaky": "up_for_retry"}},
        ),
        taskrun(
            "flaky",
            {
                "state": "up_for_retry",
                "attempts": [
                    {
                        "number": 1,
                        "podName": "r-flaky-a1",
                        "startTime": iso(first),
                        "endTime": iso(first + timedelta(seconds=5)),
                        "exitCode": 1,
                        "message": "exit code 1 (Error)",
                    }
                ],
                "message": "exit code 1 (Error)",
                "nextRetryTime": iso(first + timedelta(seconds=15)),
            },
            launched=2,
        ),
        pod(
            "flaky",
            1,
            created=first,
            state=ended(1, first, first + timedelta(seconds=5)),
            phase="Failed",
        ),
        pod(
            "flaky",
            2,
            created=NOW - timedelta(seconds=20),
            state=running(NOW - timedelta(seconds=19)),
            phase="Running",
        ),
    )

    async def scenario() -> None:
        await cluster.boot()
        await cluster.pod_event("flaky", 2, ended(0, NOW - timedelta(seconds=19), NOW), "Succeeded")

    asyncio.run(scenario())
    status = cluster.taskrun_status("flaky")
    assert status["state"] == "success"
    assert [(a["number"], a.get("exitCode")) for a in status["attempts"]] == [(1, 1), (2, 0)]
    assert status.get("message") is None  # the retry's success, not the first failure's
    assert cluster.created_pods() == []
    run = cluster.run_status()
    assert run["phase"] == "success" and run["startTime"] == iso(start)


def test_cause_3_a_start_timeout_survives_a_restart_and_fires_on_time() -> None:
    created = NOW - timedelta(seconds=20)
    pulling = {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling "nope:1"'}}
    cluster = Cluster(
        run_body(
            [{"name": "t", "command": ["true"], "image": "nope:1", "startTimeout": "30s"}],
            {"phase": "running", "startTime": iso(created), "tasks": {"t": "queued"}},
        ),
        taskrun("t", launched=1),
        pod("t", 1, created=created, state=pulling),
    )

    async def scenario() -> tuple[str, str]:
        await cluster.boot()
        await cluster.at(created + timedelta(seconds=29))
        before = cluster.taskrun_status("t").get("state", "none")
        await cluster.at(created + timedelta(seconds=30))
        return before, cluster.taskrun_status("t").get("state", "none")

    before, after = asyncio.run(scenario())
    assert before != "failed" and after == "failed"
    status = cluster.taskrun_status("t")
    assert status["attempts"][-1]["reason"] == "StartTimeout"
    assert "did not start within 30s: ImagePullBackOff" in status["message"]


def test_cause_3_without_a_restart_the_operator_wakes_at_the_start_timeout() -> None:
    cluster = Cluster(
        run_body([{"name": "t", "command": ["true"], "startTimeout": "45s"}], {}),
    )

    async def scenario() -> datetime | None:
        await cluster.boot()
        wakes = [at for at, _, kind, _ in cluster.world._wakes if kind == "run"]
        return min(wakes, default=None)

    assert asyncio.run(scenario()) == NOW + timedelta(seconds=45)


def test_cause_4_a_pod_deleted_while_the_operator_was_down_is_never_run_again() -> None:
    """Its attempt had started (the TaskRun shows it running): a failed attempt
    PodDeleted, retried by policy under a new number."""
    start = NOW - timedelta(minutes=2)
    cluster = Cluster(
        run_body(
            [{"name": "t", "command": ["sleep", "600"], "retries": 1, "retryDelay": "0s"}],
            {"phase": "running", "startTime": iso(start), "tasks": {"t": "running"}},
        ),
        taskrun(
            "t",
            {
                "state": "running",
                "attempts": [{"number": 1, "podName": "r-t-a1", "startTime": iso(start)}],
            },
            launched=1,
        ),
    )

    async def scenario() -> None:
        await cluster.boot()
        await cluster.at(NOW + timedelta(seconds=1))

    asyncio.run(scenario())
    assert cluster.created_pods() == ["r-t-a2"]
    attempts = cluster.taskrun_status("t")["attempts"]
    assert (attempts[0]["number"], attempts[0]["reason"]) == (1, "PodDeleted")


def test_a_launch_with_no_pod_left_uses_up_its_number_but_not_a_try() -> None:
    """The operator died between recording attempt 1 and creating its pod (or the pod was
    deleted before anyone saw it start): attempt 2 runs, and a task without retries still
    has its one try."""
    cluster = Cluster(
        run_body(
            [{"name": "t", "command": ["true"]}],
            {"phase": "running", "startTime": iso(NOW - timedelta(seconds=5))},
        ),
        taskrun("t", launched=1),
    )

    async def scenario() -> None:
        await cluster.boot()
        await cluster.pod_event("t", 2, ended(0, NOW, NOW + timedelta(seconds=1)), "Succeeded")

    asyncio.run(scenario())
    assert cluster.created_pods() == ["r-t-a2"]
    status = cluster.taskrun_status("t")
    assert status["state"] == "success"
    assert [(a["number"], a.get("reason")) for a in status["attempts"]] == [
        (1, "PodLost"),
        (2, None),
    ]


def test_a_sensors_poke_count_is_right_after_a_restart() -> None:
    """Ten pokes recorded, the eleventh ended (not met) while nobody watched: the count is
    eleven, and the next poke pod is the twelfth's (pod names do not sort by poke)."""
    first = NOW - timedelta(minutes=30)
    records = [
        {
            "number": 1,
            "poke": p or None,
            "podName": naming.pod_name("r-wait", 1, p),
            "endTime": iso(first + timedelta(minutes=2 * p + 1)),
            "exitCode": 100,
        }
        for p in range(10)
    ]
    pods = [
        pod(
            "wait",
            1,
            poke=p,
            created=first + timedelta(minutes=2 * p),
            state=ended(
                100, first + timedelta(minutes=2 * p), first + timedelta(minutes=2 * p + 1)
            ),
            phase="Failed",
        )
        for p in range(11)
    ]
    sensor = {"kind": "command", "mode": "reschedule", "pokeInterval": "2m"}
    cluster = Cluster(
        run_body(
            [{"name": "wait", "command": ["false"], "sensor": sensor}],
            {"phase": "running", "startTime": iso(first), "tasks": {"wait": "up_for_reschedule"}},
        ),
        taskrun(
            "wait",
            {
                "state": "up_for_reschedule",
                "attempts": records,
                "pokes": 10,
                "firstPokeTime": iso(first),
                "nextRetryTime": iso(first + timedelta(minutes=21)),
            },
            launched=1,
        ),
        *pods,
    )

    async def scenario() -> None:
        await cluster.boot()
        await cluster.at(NOW + timedelta(minutes=3))

    asyncio.run(scenario())
    status = cluster.taskrun_status("wait")
    assert len([a for a in status["attempts"] if a.get("exitCode") == 100]) == 11
    assert status["pokes"] == 11
    assert cluster.created_pods() == [naming.pod_name("r-wait", 1, 11)]


def test_sla_timers_are_armed_again_and_a_miss_is_reported_once() -> None:
    start = NOW - timedelta(minutes=50)
    tasks = [{"name": "slow", "command": ["sleep", "9999"], "sla": "10m"}]
    in_flight = [
        taskrun("slow", launched=1),
        pod("slow", 1, created=start, state=running(start), phase="Running"),
    ]
    status = {"phase": "running", "startTime": iso(start), "tasks": {"slow": "running"}}
    cluster = Cluster(run_body(tasks, status), *in_flight)
    deadline = NOW + timedelta(minutes=10)  # an SLA counts from the data interval's end

    async def scenario(c: Cluster) -> None:
        await c.boot()
        await c.at(deadline)

    asyncio.run(scenario(cluster))
    assert [e for e in cluster.events if e[1] == "SlaMissed"] == [
        (RUN, "SlaMissed", "slow missed its SLA (blocking: slow)")
    ]
    assert cluster.run_status()["slaMisses"] == ["slow"]
    # Restarted again after the miss: it is not reported twice.
    again = Cluster(run_body(tasks, cluster.run_status()), *in_flight)
    asyncio.run(scenario(again))
    assert [e for e in again.events if e[1] == "SlaMissed"] == []


def _retried_run() -> Cluster:
    """a fails once and succeeds on its retry, then b runs: every write through the JSON
    merge patch the API server applies."""
    cluster = Cluster(
        run_body(
            [
                {"name": "a", "command": ["true"], "retries": 1, "retryDelay": "0s"},
                {"name": "b", "command": ["true"], "dependsOn": ["a"]},
            ],
            {},
        )
    )

    async def scenario() -> None:
        await cluster.boot()
        t = NOW
        await cluster.pod_event("a", 1, ended(3, t, t), "Failed")
        await cluster.at(t + timedelta(seconds=1))
        await cluster.pod_event("a", 2, ended(0, t, t), "Succeeded")
        await cluster.pod_event("b", 1, ended(0, t, t), "Succeeded")

    asyncio.run(scenario())
    return cluster


def test_a_finished_runs_counts_keep_no_stale_state() -> None:
    """Issue 9 §5 (``{"none": 1, "running": 1, ...}`` on a finished run): main fixed it
    when the status became a whole dump of the api/runs models; this holds it there."""
    status = _retried_run().run_status()
    assert status["phase"] == "success"
    assert {k: v for k, v in status["counts"].items() if v} == {"success": 2}


def test_a_task_that_succeeded_on_a_retry_does_not_keep_the_failure_message() -> None:
    cluster = _retried_run()
    status = cluster.taskrun_status("a")
    assert TaskState(status["state"]) is TaskState.SUCCESS
    assert status.get("message") is None
    assert status["attempts"][0]["message"] == "exit code 3 (Error)"


def test_cause_1_engine_only_a_restore_from_the_summary_never_runs_ahead() -> None:
    """The issue's own reproduction, in the engine: a chain a→b→c started, then restored
    from the run's summary alone (every task listed, waiting ones included)."""
    from helpers_engine import T0, engine, plan, task

    from kascade.controller.status import run_status
    from kascade.engine.restore import Observed

    chain = plan([task("a"), task("b", "a"), task("c", "b")])
    first = engine(chain)
    assert [launch.key for launch in first.start(T0).launches] == ["a"]
    summary = run_status(first, notified=(), sla_misses=(), generation=1, now=T0).tasks or {}
    assert summary == {"a": "queued", "b": "none", "c": "none"}
    restored = engine(chain)
    decisions = restored.restore({k: Observed(TaskState(v)) for k, v in summary.items()}, T0)
    assert [launch.key for launch in decisions.launches] == ["a"]  # same name: AlreadyExists
    assert restored.instances["b"].state is TaskState.NONE


def test_a_restart_rewrites_no_taskrun_whose_record_holds() -> None:
    """The TaskRuns are checked against the rebuilt engine, and only those that differ are
    written (a 2,000-task run is not written again at every restart)."""
    first = Cluster(run_body(CHAIN, {}))

    async def before() -> None:
        await first.boot()
        await first.pod_event("a", 1, ended(0, NOW, NOW), "Succeeded")
        await first.pod_event("b", 1, running(NOW), "Running")

    asyncio.run(before())
    again = Cluster(*(copy.deepcopy(o) for o in first.kube.objects.values()))

    async def after() -> None:
        await again.boot()

    asyncio.run(after())
    # a's record holds; b's did not show it running yet (a short state is not written).
    assert [w[2] for w in again.kube.writes if w[1] == "taskruns/status"] == ["r-b"]
    assert again.created_pods() == []
