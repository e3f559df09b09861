"""A run keeps the newest pods of its succeeded attempts, up to --keep-succeeded-pods, and
deletes older ones only once their TaskRun records them (issue 14: a 2,000-task run's
pods slowed its node down as they piled up)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_kube import FakeKube

from kascade.controller.retention import FinishedPods
from kascade.controller.world import World

NOW = datetime(2026, 9, 1, tzinfo=UTC)


def _status(*attempts: tuple[str, int | None, str | None]) -> dict[str, Any]:
    return {
        "attempts": [
            {"number": i + 1, "podName": pod, "endTime": "x", "exitCode": code, "reason": reason}
            for i, (pod, code, reason) in enumerate(attempts)
        ]
    }


def test_the_newest_succeeded_pods_are_kept_and_failed_ones_always() -> None:
    pods = FinishedPods(keep=2)
    assert pods.written(_status(("a-a1", 1, None), ("a-a2", 0, None)), sensor=False) == []
    assert pods.written(_status(("b-a1", 0, None)), sensor=False) == []
    assert pods.written(_status(("c-a1", 0, None)), sensor=False) == ["a-a2"]
    assert pods.written(_status(("c-a1", 0, None)), sensor=False) == []  # written again
    assert pods.written(_status(("d-a1", None, "Timeout")), sensor=False) == []
    assert pods.written(_status(("w-a1", 100, None)), sensor=True) == ["b-a1"]
    assert pods.written(_status(("x-a1", 100, None)), sensor=False) == []  # a failure
    assert FinishedPods(keep=-1).written(_status(("a", 0, None)), sensor=False) == []


def test_a_pod_is_deleted_only_after_its_taskrun_records_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KASCADE_KEEP_SUCCEEDED_PODS", "1")
    kube = FakeKube()
    world = World(kube, lambda *_: None, clock=lambda: NOW)
    tasks = [
        {"name": "a", "command": ["true"]},
        {"name": "b", "command": ["true"], "dependsOn": ["a"]},
        {"name": "c", "command": ["true"], "dependsOn": ["b"]},
    ]
    body = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {
            "pipelineRef": {"name": "p"},
            "pipelineSpec": {"defaults": {"image": "busybox:1.36"}, "tasks": tasks},
            "logicalDate": "2026-09-01T00:00:00Z",
        },
    }

    async def scenario() -> None:
        made = kube.create("pipelineruns", "ns", body)
        assert made is not None
        await world.on_run("ADDED", made)
        for task in ("a", "b", "c"):
            pod = kube.get("pods", "ns", f"r-{task}-a1")
            assert pod is not None
            pod["status"] = {
                "phase": "Succeeded",
                "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": 0}}}],
            }
            await world.on_pod("MODIFIED", pod)
            for driver in list(world.drivers.values()):
                await driver.flush()
            for w in list(world.ended_writers.retired.values()):
                await w.flush()
            await asyncio.sleep(0.05)  # the deletions run in the background

    asyncio.run(scenario())
    assert kube.names("pods") == ["r-c-a1"]
    writes = [(verb, plural, name) for verb, plural, name, _ in kube.writes]
    for pod, taskrun in (("r-a-a1", "r-a"), ("r-b-a1", "r-b")):
        deleted = writes.index(("delete", "pods", pod))
        recorded = writes.index(("patch", "taskruns/status", taskrun))
        assert recorded < deleted
