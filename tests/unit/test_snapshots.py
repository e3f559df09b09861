"""Issue 14: the frozen spec is kept out of the run object (PipelineSnapshot, shared by the
runs of one version of a Pipeline), so a run's size does not grow with its pipeline."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from fake_kube import FakeKube

from kascade.api.runs import TriggerKind
from kascade.controller import approval, scheduling, snapshots
from kascade.controller.world import World
from kascade.engine.schedule import DataInterval

NOW = datetime(2026, 8, 1, tzinfo=UTC)
KEY = b"k" * 32


def _pipeline(kube: FakeKube, name: str, tasks: int, **task: Any) -> dict[str, Any]:
    spec = {
        "defaults": {"image": "busybox:1.36"},
        "maxActiveRuns": 100,
        "tasks": [{"name": f"t{i:04d}", "command": ["true"], **task} for i in range(tasks)],
    }
    body = kube.create(
        "pipelines", "ns", {"kind": "Pipeline", "metadata": {"name": name}, "spec": spec}
    )
    assert body is not None
    return body


def _by_reference(kube: FakeKube, pipeline: dict[str, Any], name: str) -> dict[str, Any]:
    interval = DataInterval(NOW, NOW)
    body = scheduling.run_manifest(pipeline, interval, TriggerKind.MANUAL, name=name)
    assert "pipelineSpec" not in body["spec"] and "snapshot" not in body["spec"]
    made = kube.create("pipelineruns", "ns", body)
    assert made is not None
    return made


async def _see(world: World, kube: FakeKube, name: str) -> dict[str, Any]:
    """The run's ADDED event, then the event of the operator's own patch (the watch)."""
    body = kube.get("pipelineruns", "ns", name)
    assert body is not None
    await world.on_run("ADDED", body)
    frozen = kube.get("pipelineruns", "ns", name)
    assert frozen is not None
    await world.on_run("MODIFIED", frozen)
    return frozen


def test_a_runs_size_does_not_grow_with_its_pipeline() -> None:
    sizes = {}
    for tasks in (10, 2000):
        kube = FakeKube()
        world = World(kube, lambda *_: None, clock=lambda: NOW)
        pipeline = _pipeline(kube, "wide", tasks, when="false")
        world.pipelines[("ns", "wide")] = pipeline
        _by_reference(kube, pipeline, "run-1")
        frozen = asyncio.run(_see(world, kube, "run-1"))
        assert "pipelineSpec" not in frozen["spec"]
        snapshot = kube.get(snapshots.PLURAL, "ns", frozen["spec"]["snapshot"])
        assert snapshot is not None and snapshot["spec"]["pipelineSpec"] == pipeline["spec"]
        done = kube.get("pipelineruns", "ns", "run-1")
        assert done is not None and done["status"]["phase"] == "success"  # every task skipped
        sizes[tasks] = len(json.dumps(frozen["spec"]))
    assert sizes[2000] == sizes[10] < 1000


def test_the_runs_of_one_version_share_its_snapshot_and_an_edit_makes_another() -> None:
    kube = FakeKube()
    world = World(kube, lambda *_: None, clock=lambda: NOW)
    pipeline = _pipeline(kube, "p", 2)
    world.pipelines[("ns", "p")] = pipeline

    async def scenario() -> list[str]:
        names = []
        for run in ("r1", "r2"):
            _by_reference(kube, pipeline, run)
            names.append((await _see(world, kube, run))["spec"]["snapshot"])
        pipeline["spec"]["tasks"][0]["command"] = ["echo", "v2"]
        _by_reference(kube, pipeline, "r3")
        names.append((await _see(world, kube, "r3"))["spec"]["snapshot"])
        return names

    r1, r2, r3 = asyncio.run(scenario())
    assert r1 == r2 != r3
    assert kube.names(snapshots.PLURAL) == sorted([r1, r3])
    # r1 and r2 still execute the first version, r3 the edit.
    assert world.drivers[("ns", "r1")].plan.tasks[0].spec.command == ["true"]
    assert world.drivers[("ns", "r3")].plan.tasks[0].spec.command == ["echo", "v2"]


def test_a_snapshot_changed_after_it_was_made_is_refused() -> None:
    kube = FakeKube()
    world = World(kube, lambda *_: None, clock=lambda: NOW)
    pipeline = _pipeline(kube, "p", 1)
    world.pipelines[("ns", "p")] = pipeline
    _by_reference(kube, pipeline, "r1")

    async def scenario() -> None:
        body = kube.get("pipelineruns", "ns", "r1")
        assert body is not None
        await world.on_run("ADDED", body)  # frozen: the snapshot exists
        frozen = kube.get("pipelineruns", "ns", "r1")
        assert frozen is not None
        name = frozen["spec"]["snapshot"]
        tampered = kube.objects[(snapshots.PLURAL, "ns", name)]
        tampered["spec"]["pipelineSpec"]["tasks"][0]["command"] = ["sh", "-c", "evil"]
        world.snapshots.cache.clear()
        await world.on_run("MODIFIED", frozen)

    asyncio.run(scenario())
    status = (kube.get("pipelineruns", "ns", "r1") or {}).get("status") or {}
    assert status["phase"] == "failed" and "was changed after it was made" in status["message"]
    assert kube.names("pods") == []


def test_a_snapshot_carries_its_pipelines_approval_and_runs_only_if_it_verifies() -> None:
    kube = FakeKube()
    pipeline = _pipeline(kube, "p", 1)
    signed = approval.sign(KEY, "ns", pipeline["spec"], "admin", [])
    pipeline["metadata"]["annotations"] = {approval.ANNOTATION: signed}
    made = snapshots.manifest(pipeline)
    assert made["metadata"]["annotations"][approval.ANNOTATION] == signed
    run = {"metadata": {"name": "r"}, "spec": {"pipelineRef": {"name": "p"}}}
    spec, meta = snapshots.frozen(run, made)
    policy = approval.Policy(required=True, key=KEY)
    assert policy.problem("ns", spec, meta.get("annotations")) is None
    assert policy.problem("other-ns", spec, meta.get("annotations")) is not None


def test_snapshots_no_run_refers_to_are_pruned_but_the_current_one() -> None:
    listed = [{"metadata": {"name": n}} for n in ("p-old", "p-used", "p-now")]
    assert snapshots.to_prune(listed, {"p-used"}, "p-now") == ["p-old"]
