"""The operator's side of caching and large outputs, over an in-memory Kube.

* Caching: a run's successful cached task writes its TaskCache entry; the next run (and
  an operator started afresh, which reads the TaskCache back) gets the task's outputs
  without a pod, its TaskRun saying ``Cached``; ``noCache`` runs it again.
* Large outputs: with an object store, a task's pod gets the outputs sidecar (the pod
  never sees the store's credentials); a sidecar that says its outputs are in its log
  has them read, split and written to a real S3 server (tests/servers), and the
  TaskRun keeps a reference that a downstream template reads.
"""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_kube import FakeKube

import servers
from kascade.controller import config, observe, pod_security
from kascade.controller.podspec import LARGE_MARKER, OUTPUTS_SIDECAR
from kascade.controller.world import World
from kascade.engine.outputs import REF_KEY
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.outputs_store import OutputsStore
from kascade.integrations.settings import ObjectStoreSettings

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
CACHED = {
    "defaults": {"image": "busybox:1.36"},
    "tasks": [
        {"name": "fetch", "command": ["true"], "cache": {"key": "rates-{{ ds }}"}},
        {
            "name": "use",
            "command": ["echo", "{{ tasks.fetch.outputs.rate }}"],
            "dependsOn": ["fetch"],
        },
    ],
}


def _pipeline(kube: FakeKube, spec: dict[str, Any]) -> dict[str, Any]:
    body = kube.create(
        "pipelines",
        "ns",
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"name": "p"},
            "spec": spec,
        },
    )
    assert body is not None
    return body


def _run(kube: FakeKube, name: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = kube.create(
        "pipelineruns",
        "ns",
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "PipelineRun",
            "metadata": {"name": name, "namespace": "ns", "generation": 1},
            "spec": {
                "pipelineRef": {"name": "p"},
                "pipelineSpec": spec,
                "logicalDate": "2026-04-30T00:00:00+00:00",
                **extra,
            },
        },
    )
    assert body is not None
    return body


def _end(
    kube: FakeKube, pod_name: str, message: str = "", sidecar: str | None = None
) -> dict[str, Any]:
    pod = kube.get("pods", "ns", pod_name)
    assert pod is not None, kube.names("pods")
    pod["status"] = {
        "phase": "Succeeded",
        "containerStatuses": [
            {"name": "task", "state": {"terminated": {"exitCode": 0, "message": message}}}
        ],
    }
    if sidecar is not None:
        pod["status"]["initContainerStatuses"] = [
            {"name": OUTPUTS_SIDECAR, "state": {"terminated": {"exitCode": 0, "message": sidecar}}}
        ]
    return pod


async def _settle(world: World | None = None) -> None:
    for _ in range(25):
        await asyncio.sleep(0.02)
    for driver in list(world.drivers.values()) if world is not None else []:
        await driver.flush()  # status writes are paced: write what is due now


def test_a_cached_task_writes_its_taskcache_and_later_runs_skip_its_pod() -> None:
    kube = FakeKube()
    _pipeline(kube, CACHED)
    clock = [NOW]

    async def scenario() -> None:
        world = World(kube, lambda *_: None, clock=lambda: clock[0])
        await world.on_pipeline("ADDED", kube.get("pipelines", "ns", "p") or {})
        await world.on_run("ADDED", _run(kube, "r1", CACHED))
        await world.on_pod("MODIFIED", _end(kube, "r1-fetch-a1", '{"rate": 1.5}'))
        await world.on_pod("MODIFIED", _end(kube, "r1-use-a1"))
        await _settle()
        # The next run, by an operator started afresh (it reads the TaskCache back).
        clock[0] = NOW + timedelta(hours=1)
        fresh = World(kube, lambda *_: None, clock=lambda: clock[0])
        await fresh.on_pipeline("MODIFIED", kube.get("pipelines", "ns", "p") or {})
        await fresh.on_run("ADDED", _run(kube, "r2", CACHED))
        await fresh.drivers[("ns", "r2")].flush()
        await fresh.on_pod("MODIFIED", _end(kube, "r2-use-a1"))
        await _settle()
        # noCache: the task runs, and its new outputs replace the entry.
        await fresh.on_run("ADDED", _run(kube, "r3", CACHED, noCache=True))
        await fresh.on_pod("MODIFIED", _end(kube, "r3-fetch-a1", '{"rate": 2.5}'))
        await _settle()

    asyncio.run(scenario())
    pods = kube.names("pods")
    assert "r1-fetch-a1" in pods and "r2-fetch-a1" not in pods and "r3-fetch-a1" in pods
    assert kube.get("pods", "ns", "r2-use-a1")["spec"]["containers"][0]["command"] == [
        "echo",
        "1.5",
    ]
    taskrun = kube.get("taskruns", "ns", "r2-fetch")
    assert taskrun is not None
    status = taskrun["status"]
    assert status["state"] == "success" and status["outputs"] == {"rate": 1.5}
    assert (
        status["message"]
        == "cached: key 'rates-2026-04-30', from run manual__2026-04-30T00:00:00+00:00"
    )
    (attempt,) = status["attempts"]
    assert attempt["reason"] == "Cached" and attempt.get("podName") is None
    cache = kube.get("taskcaches", "ns", "p")
    assert cache is not None
    assert cache["metadata"]["ownerReferences"][0]["kind"] == "Pipeline"
    (entry,) = cache["status"]["entries"].values()
    assert (entry["task"], entry["key"], entry["outputs"]) == (
        "fetch",
        "rates-2026-04-30",
        {"rate": 2.5},
    )
    assert kube.get("pipelineruns", "ns", "r2")["status"]["tasks"] == {
        "fetch": "success",
        "use": "success",
    }


@pytest.fixture()
def outputs_store(s3_server: servers.S3Server) -> Any:
    bucket = s3_server.make_bucket()
    settings = ObjectStoreSettings.from_data({**s3_server.settings(), "bucket": bucket}, "test")
    store = OutputsStore(settings, max_bytes=1 << 20)
    config.configure(config.OperatorConfig(helper_image="helper:1", outputs=store))
    yield store
    config.configure(config.OperatorConfig())


LARGE = {
    "defaults": {"image": "busybox:1.36"},
    "tasks": [
        {"name": "make", "command": ["make"]},
        {
            "name": "size",
            "command": ["echo", "{{ tasks.make.outputs.data | length }}"],
            "dependsOn": ["make"],
        },
    ],
}


def test_a_large_output_goes_through_the_sidecars_log_to_the_store(
    outputs_store: OutputsStore,
) -> None:
    kube = FakeKube()
    _pipeline(kube, LARGE)
    outputs = json.dumps({"rows": 3, "data": "y" * 300_000})

    async def scenario() -> None:
        world = World(kube, lambda *_: None, clock=lambda: NOW)
        await world.on_run("ADDED", _run(kube, "big", LARGE))
        kube.logs[("ns", "big-make-a1", OUTPUTS_SIDECAR)] = outputs
        marker = f"{LARGE_MARKER}{len(outputs)}"
        await world.on_pod("MODIFIED", _end(kube, "big-make-a1", sidecar=marker))
        await _settle(world)

    asyncio.run(scenario())
    pod = kube.get("pods", "ns", "big-make-a1")
    assert pod is not None
    (sidecar,) = pod["spec"]["initContainers"]
    assert sidecar["name"] == OUTPUTS_SIDECAR and sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "helper:1"
    task = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in task["env"]}
    assert env["KASCADE_OUTPUTS"] == "/kascade/outputs/outputs"
    assert not any("KASCADE_STORE" in json.dumps(c) for c in (task, sidecar))  # no credentials
    assert pod_security.violations(pod) == []
    status = (kube.get("taskruns", "ns", "big-make") or {})["status"]
    ref = status["outputs"]["data"][REF_KEY]
    assert status["outputs"]["rows"] == 3
    assert ref["key"] == "ns/p/manual__2026-04-30T00_00_00_00_00/make/1/data.json"
    stored = ObjectStore(outputs_store.settings)
    assert json.loads(stored.get(ref["key"])) == "y" * 300_000
    down = kube.get("pods", "ns", "big-size-a1")
    assert down is not None and down["spec"]["containers"][0]["command"] == ["echo", "300000"]


def test_over_the_cap_the_attempt_fails_with_the_cap_in_its_message(
    outputs_store: OutputsStore,
) -> None:
    kube = FakeKube()
    _pipeline(kube, LARGE)

    async def scenario() -> None:
        world = World(kube, lambda *_: None, clock=lambda: NOW)
        await world.on_run("ADDED", _run(kube, "huge", LARGE))
        await world.on_pod(
            "MODIFIED", _end(kube, "huge-make-a1", sidecar=f"{LARGE_MARKER}{5 << 20}")
        )
        await _settle()

    asyncio.run(scenario())
    status = (kube.get("taskruns", "ns", "huge-make") or {})["status"]
    assert status["state"] == "failed"
    assert status["attempts"][0]["reason"] == "OutputsTooLarge"
    assert status["message"].startswith("outputs are 5242880 bytes, over the 1048576-byte cap")
    assert not any(w[:2] == ("get", "pods/log") for w in kube.writes)  # nothing was read


def test_the_sidecars_small_outputs_and_its_late_end_are_read_right() -> None:
    pod = {
        "spec": {"initContainers": [{"name": OUTPUTS_SIDECAR}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": 0}}}],
        },
    }
    assert observe.view(pod).result is None  # the task ended, the pod has not
    done = copy.deepcopy(pod)
    done["status"]["phase"] = "Succeeded"
    done["status"]["initContainerStatuses"] = [
        {"name": OUTPUTS_SIDECAR, "state": {"terminated": {"exitCode": 0, "message": "rows=3"}}}
    ]
    seen = observe.view(done)
    assert seen.result is not None and seen.result.outputs == {"rows": 3}
    assert seen.large_outputs is None


def test_secrets_are_masked_in_the_sidecars_outputs_but_not_in_its_size_marker() -> None:
    from kascade.controller.masking import SecretMasker

    pod = {
        "metadata": {"namespace": "ns"},
        "spec": {"containers": [{"envFrom": [{"secretRef": {"name": "db"}}]}]},
        "status": {
            "initContainerStatuses": [
                {"name": OUTPUTS_SIDECAR, "state": {"terminated": {"message": "user=kascade"}}}
            ]
        },
    }
    masker = SecretMasker(lambda ns, name: {"user": "kascade"})
    small = masker.mask_pod(pod)["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert small["message"] == "user=***"
    marker = f"{LARGE_MARKER}20833"  # "kascade" is a Secret's value here too
    pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["message"] = marker
    large = masker.mask_pod(pod)["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert large["message"] == marker
