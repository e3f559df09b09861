"""The operator's decisions as pure functions, and its drivers over an in-memory Kube.

Restore (what a restarted operator reads), status projection, the schedule's status,
the maxActiveRuns queue, and a run driven end to end through the World by pod events,
including an operator restart in the middle. The e2e tier runs the same code against a
real kube-apiserver and real pods.
"""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_kube import FakeKube
from helpers_engine import FAIL, OK, T0, engine, plan, task

from kascade.api.runs import RunPhase, TaskState
from kascade.controller import observed, pipelines, scheduling
from kascade.controller.podspec import ANN_ATTEMPT, ANN_KEY
from kascade.controller.status import run_status, taskrun_status, wire
from kascade.controller.world import World
from kascade.engine.decisions import Result
from kascade.engine.schedule import DataInterval

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


# -- restore: what a restarted operator reads ----------------------------------------------
def _taskrun(name: str, task_name: str, status: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": {"taskName": task_name, **spec},
        "status": status,
    }


def _pod(name: str, key: str, attempt: int, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": "2026-05-01T11:59:00Z",
            "annotations": {ANN_KEY: key, ANN_ATTEMPT: str(attempt)},
        },
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "task", "state": {"running": {"startedAt": "2026-05-01T11:59:30Z"}}}
            ],
        },
    }


def _ended(number: int, **fields: Any) -> dict[str, Any]:
    return {"number": number, "endTime": "2026-05-01T11:50:00Z", **fields}


def test_restore_reads_attempts_pods_and_the_summary() -> None:
    found = observed.observe_run(
        [
            _taskrun(
                "r-a",
                "a",
                {"state": "failed", "attempts": [_ended(1), _ended(2)], "message": "boom"},
            ),
            _taskrun(
                "r-b",
                "b",
                {
                    "state": "up_for_retry",
                    "attempts": [_ended(1, exitCode=1)],
                    "nextRetryTime": "2026-05-01T12:05:00Z",
                },
            ),
            _taskrun(
                "r-m-1", "m", {"state": "success", "outputs": {"x": 1}}, mapIndex=1, item="eu"
            ),
        ],
        [_pod("r-b-a2", "b", 2), _pod("r-b-a1", "b", 1, "Failed")],
        {"tasks": {"a": "failed", "b": "up_for_retry", "c": "none", "d": "skipped"}},
    )
    a, b, m = (found.instances[k] for k in ("a", "b", "m[1]"))
    assert (a.state, a.attempt, a.message) == (TaskState.FAILED, 2, "boom")
    assert [h.number for h in a.history] == [1, 2] and not a.pods
    # b's retry was launched before the crash: its pod (attempt 2) is not recorded yet,
    # attempt 1's is (and is left alone).
    assert b.state is TaskState.UP_FOR_RETRY and [p.attempt for p in b.pods] == [2]
    assert b.pods[0].started_at == datetime(2026, 5, 1, 11, 59, 30, tzinfo=UTC)
    assert found.pods[("b", 2, 0)] == "r-b-a2"
    # The summary counts only for what finished without a TaskRun ("none" is decided
    # again by the trigger rules).
    assert "c" not in found.instances and found.instances["d"].state is TaskState.SKIPPED
    assert (m.outputs, m.item) == ({"x": 1}, "eu")
    assert found.taskruns["m[1]"]["name"] == "r-m-1"


# -- status projection -----------------------------------------------------------------------
def test_run_status_counts_every_state_and_says_how_the_run_ended() -> None:
    eng = engine(plan([task("a"), task("b", "a"), task("c", "a", triggerRule="all_failed")]))
    assert [launch.key for launch in eng.start(T0).launches] == ["a"]
    eng.started("a", 1, T0)
    running = run_status(eng, notified=(), sla_misses=(), generation=1, now=T0)
    assert running.counts is not None and running.counts.running == 1
    assert running.progress == "0/3" and running.conditions is None
    eng.finished("a", 1, OK, T0 + timedelta(seconds=5))
    eng.started("b", 1, T0)
    eng.finished("b", 1, FAIL, T0 + timedelta(seconds=9))
    done = wire(run_status(eng, notified={"x"}, sla_misses={"b"}, generation=2, now=NOW, end=NOW))
    assert done["phase"] == "failed" and done["progress"] == "3/3"
    # Every count is written, zeros included: a merge patch never keeps a stale one.
    assert done["counts"] == {
        "success": 1,
        "failed": 1,
        "skipped": 1,
        "upstreamFailed": 0,
        "upForRetry": 0,
        "upForReschedule": 0,
        "running": 0,
        "queued": 0,
        "scheduled": 0,
        "none": 0,
    }
    assert done["tasks"] == {"a": "success", "b": "failed", "c": "skipped"}
    assert done["conditions"][0]["reason"] == "RunFailed"
    assert done["message"] == "leaf task b ended failed (boom)"
    assert (done["slaMissed"], done["observedGeneration"], done["notified"]) == (True, 2, ["x"])


def test_taskrun_status_lists_attempts_with_their_pods_and_clears_old_messages() -> None:
    eng = engine(
        plan([task("t", retries=1, retryDelay="1s", command=["{{ tasks.nope.outputs.x }}"])])
    )
    eng.start(T0)
    eng.tick(T0 + timedelta(seconds=2))
    inst = eng.instances["t"]
    status = wire(taskrun_status(inst, None, "run-t"))
    assert [a["podName"] for a in status["attempts"]] == [None, None]  # template errors
    assert [a["reason"] for a in status["attempts"]] == ["TemplateError", "TemplateError"]
    ok = engine(plan([task("t", retries=1, retryDelay="1s")]))
    ok.start(T0)
    ok.started("t", 1, T0)
    ok.finished("t", 1, FAIL, T0)
    ok.tick(T0 + timedelta(seconds=1))
    ok.started("t", 2, T0)
    ok.finished("t", 2, Result(0, outputs={"rows": 3}), T0 + timedelta(seconds=2))
    final = wire(taskrun_status(ok.instances["t"], None, "run-t"))
    assert [a["podName"] for a in final["attempts"]] == ["run-t-a1", "run-t-a2"]
    assert final["outputs"] == {"rows": 3} and final["state"] == "success"
    assert final["message"] is None  # the failed attempt's message is its record's...
    assert final["attempts"][0]["message"] == "boom"
    assert final["nextRetryTime"] is None  # ...and no retry time once it is done


# -- the Pipeline's status and the schedule -------------------------------------------------
def test_pipeline_validity_and_schedule_status_hold_only_their_fields() -> None:
    valid = pipelines.validity([], 3, 7, NOW)
    assert set(valid) == {"conditions", "errors", "observedGeneration", "taskCount"}
    assert valid["errors"] is None and pipelines.is_valid(valid)
    plan_ = scheduling.SchedulePlan(
        [], NOW + timedelta(days=1), DataInterval(NOW - timedelta(days=1), NOW)
    )
    runs = [
        scheduling.RunRecord("r1", "success", "scheduled", None, NOW - timedelta(days=2)),
        scheduling.RunRecord("r2", "running", "manual", None, NOW - timedelta(hours=1)),
    ]
    status = pipelines.schedule_status(plan_, runs, NOW)
    assert status["nextRun"] == "2026-05-02T12:00:00Z"
    assert status["lastScheduledInterval"]["end"] == NOW.isoformat()
    assert (status["activeRuns"], status["lastRun"], status["runsSucceeded"]) == (1, "r2", 1)
    assert pipelines.stored_cursor(status) == DataInterval(NOW - timedelta(days=1), NOW)


def test_runs_held_by_max_active_runs_start_oldest_logical_date_first() -> None:
    waiting = {
        "late": {"spec": {"logicalDate": "2026-01-03T00:00:00+00:00"}},
        "b-early": {"spec": {"logicalDate": "2026-01-01T00:00:00+00:00"}},
        "a-early": {"spec": {"logicalDate": "2026-01-01T00:00:00+00:00"}},
    }
    assert scheduling.next_waiting(waiting) == "a-early"


# -- the World, driven by pod events ----------------------------------------------------------
PIPELINE = {
    "maxActiveRuns": 1,
    "defaults": {"image": "busybox:1.36"},
    "tasks": [
        {"name": "a", "command": ["true"]},
        {"name": "b", "command": ["true"], "dependsOn": ["a"]},
    ],
}


def _run(name: str, logical: str) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pipelineRef": {"name": "p"},
            "pipelineSpec": PIPELINE,
            "logicalDate": logical,
        },
    }


def _finish(kube: FakeKube, pod_name: str, code: int = 0) -> dict[str, Any]:
    pod = kube.get("pods", "ns", pod_name)
    assert pod is not None
    pod["status"] = {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": code}}}],
    }
    return pod


async def _settle() -> None:
    """Let the tasks the World started (threads for API calls) run to their end."""
    for _ in range(20):
        await asyncio.sleep(0.02)


def test_max_active_runs_queues_the_second_run_until_the_first_ends() -> None:
    kube = FakeKube()
    world = World(kube, lambda *_: None, clock=lambda: NOW)

    async def scenario() -> tuple[list[str], dict[str, Any] | None, list[str]]:
        for name, day in (("first", "01"), ("second", "02")):
            body = kube.create("pipelineruns", "ns", _run(name, f"2026-01-{day}T00:00:00Z"))
            assert body is not None
            await world.on_run("ADDED", body)
        before = kube.names("pods")
        second = kube.get("pipelineruns", "ns", "second")
        for pod in ("first-a-a1", "first-b-a1"):
            await world.on_pod("MODIFIED", _finish(kube, pod))
        await _settle()
        return before, (second or {}).get("status"), kube.names("pods")

    before, queued, after = asyncio.run(scenario())
    assert before == ["first-a-a1"]
    assert queued == {"phase": "queued", "message": "waiting: maxActiveRuns=1"}
    assert after == ["first-a-a1", "first-b-a1", "second-a-a1"]


def test_a_restarted_operator_picks_up_a_run_without_launching_anything_twice() -> None:
    kube = FakeKube()

    async def scenario() -> tuple[list[str], list[str], dict[str, Any]]:
        first = World(kube, lambda *_: None, clock=lambda: NOW)
        body = kube.create("pipelineruns", "ns", _run("r", "2026-01-01T00:00:00Z"))
        assert body is not None
        await first.on_run("ADDED", body)
        await first.drivers[("ns", "r")].flush()
        created = [w[2] for w in kube.writes if w[:2] == ("create", "pods")]
        # The operator dies here; a new one starts from what the API shows.
        second = World(kube, lambda *_: None, clock=lambda: NOW)
        stored = kube.get("pipelineruns", "ns", "r")
        assert stored is not None
        await second.on_run("ADDED", copy.deepcopy(stored))
        again = [w[2] for w in kube.writes if w[:2] == ("create", "pods")]
        await second.on_pod("MODIFIED", _finish(kube, "r-a-a1"))
        await second.on_pod("MODIFIED", _finish(kube, "r-b-a1"))
        await _settle()
        final = kube.get("pipelineruns", "ns", "r")
        assert final is not None
        return created, again, final["status"]

    created, again, status = asyncio.run(scenario())
    assert created == ["r-a-a1"] and again == ["r-a-a1"]  # the restart launched nothing
    assert status["phase"] == RunPhase.SUCCESS.value
    assert status["tasks"] == {"a": "success", "b": "success"}


def test_a_pools_status_shows_the_slots_used_and_the_tasks_waiting() -> None:
    kube = FakeKube()
    pool = {"metadata": {"name": "db", "namespace": "ns"}, "spec": {"slots": 1}}
    kube.create("pools", "ns", pool)
    world = World(kube, lambda *_: None, clock=lambda: NOW)
    spec = {
        "defaults": {"image": "busybox:1.36", "pool": "db"},
        "tasks": [{"name": "a", "command": ["true"]}, {"name": "b", "command": ["true"]}],
    }
    body = _run("pooled", "2026-01-01T00:00:00Z")
    body["spec"]["pipelineSpec"] = spec

    async def scenario() -> dict[str, Any] | None:
        world.on_pool("ADDED", pool)
        await world.on_run("ADDED", body)
        await world._write_pool_status()
        return (kube.get("pools", "ns", "db") or {}).get("status")

    assert asyncio.run(scenario()) == {"used": 1, "queued": 1}


def test_a_status_event_from_before_the_end_does_not_start_a_finished_run_again() -> None:
    """The watch may deliver an event of a status written while the run was running
    after its driver finished: the run must not be restored and finished a second time
    (on a cluster: a second summary e-mail, and a podless task's attempts lost)."""
    kube = FakeKube()
    emitted: list[str] = []
    world = World(kube, lambda _obj, _type, reason, _msg: emitted.append(reason), clock=lambda: NOW)

    async def scenario() -> list[str]:
        body = kube.create("pipelineruns", "ns", _run("r", "2026-01-01T00:00:00Z"))
        assert body is not None
        await world.on_run("ADDED", body)
        await world.on_pod("MODIFIED", _finish(kube, "r-a-a1"))
        await world.drivers[("ns", "r")].flush()
        running = copy.deepcopy(kube.get("pipelineruns", "ns", "r"))
        assert running is not None and running["status"]["phase"] == RunPhase.RUNNING.value
        await world.on_pod("MODIFIED", _finish(kube, "r-b-a1"))
        await _settle()
        assert ("ns", "r") not in world.drivers
        ended = emitted.count("RunSuccess")
        await world.on_run("MODIFIED", running)  # late: written before the end
        await _settle()
        assert emitted.count("RunSuccess") == ended
        final = kube.get("pipelineruns", "ns", "r")
        assert final is not None
        await world.on_run("MODIFIED", final)
        return emitted

    emitted_reasons = asyncio.run(scenario())
    assert emitted_reasons.count("RunSuccess") == 1
