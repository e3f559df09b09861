"""The API server says no, or is away: status writes retried until written, launches tried
again, and pods the server refuses reported at once (issue 14 cause 5, issue 9 §4)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_kube import FakeKube
from prometheus_client import REGISTRY

from kascade.controller import writer
from kascade.controller.world import World
from kascade.kube.client import Refused

NOW = datetime(2026, 7, 1, 9, tzinfo=UTC)


def _run(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pipelineRef": {"name": name},
            "pipelineSpec": {"defaults": {"image": "busybox:1.36"}, "tasks": tasks},
            "logicalDate": "2026-07-01T00:00:00Z",
        },
    }


class Flaky(FakeKube):
    """Status writes fail (connection refused) until ``outage`` writes were refused."""

    outage: int = 0

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        if self.outage > 0:
            self.outage -= 1
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        super().patch_status(plural, namespace, name, status)


@pytest.fixture
def fast_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "STATUS_FLUSH_SECONDS", 0.01)
    monkeypatch.setattr(writer, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(writer, "RUN_STATUS_SECONDS", 0.0)
    monkeypatch.setattr(writer, "run_status_interval", lambda active: 0.0)


def test_status_writes_that_fail_during_an_outage_are_written_once_it_ends(
    fast_writes: None,
) -> None:
    kube = Flaky()
    world = World(kube, lambda *_: None, clock=lambda: NOW)
    unretrieved: list[dict[str, Any]] = []

    async def scenario() -> dict[str, Any] | None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: unretrieved.append(ctx))
        body = kube.create("pipelineruns", "ns", _run("r", [{"name": "a", "command": ["true"]}]))
        assert body is not None
        kube.outage = 6  # the first writes of the run all fail
        await world.on_run("ADDED", body)
        pod = kube.get("pods", "ns", "r-a-a1")
        assert pod is not None
        pod["status"] = {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": 0}}}],
        }
        await world.on_pod("MODIFIED", pod)
        for _ in range(300):
            await asyncio.sleep(0.01)
            run = kube.get("pipelineruns", "ns", "r") or {}
            if (run.get("status") or {}).get("phase") == "success" and not kube.outage:
                break
        return (kube.get("taskruns", "ns", "r-a") or {}).get("status")

    taskrun = asyncio.run(scenario())
    run = kube.get("pipelineruns", "ns", "r")
    assert run is not None and run["status"]["phase"] == "success"
    assert taskrun is not None and taskrun["state"] == "success"
    assert kube.outage == 0
    assert unretrieved == []  # no "Task exception was never retrieved"


def _refusing(refusal: Refused) -> FakeKube:
    class Refusing(FakeKube):
        def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
            self.writes.append(("create", "pods", body["metadata"]["name"], body))
            raise refusal

    return Refusing()


def _rejected(refusal: Refused, retries: int) -> tuple[FakeKube, list[tuple[str, str, str]]]:
    kube = _refusing(refusal)
    events: list[tuple[str, str, str]] = []
    world = World(kube, lambda o, k, r, m: events.append((o["kind"], r, m)), clock=lambda: NOW)
    tasks = [{"name": "t", "command": ["true"], "retries": retries, "retryDelay": "1h"}]

    async def scenario() -> None:
        body = kube.create("pipelineruns", "ns", _run("r", tasks))
        assert body is not None
        await world.on_run("ADDED", body)
        for driver in list(world.drivers.values()):
            await driver.flush()
        for w in list(world.ended_writers.retired.values()):
            await w.flush()

    asyncio.run(scenario())
    return kube, events


INVALID = Refused(
    422,
    "Invalid",
    'Pod "r-t-a1" is invalid: spec.containers[0].env[0].name: Invalid value: "1BAD": a valid '
    "environment variable name must consist of alphabetic characters, digits, '_', '-', or '.'",
)
PSA = Refused(
    403,
    "Forbidden",
    'pods "r-t-a1" is forbidden: violates PodSecurity "restricted:latest": hostPath volumes '
    '(volume "h")',
)
QUOTA = Refused(
    403,
    "Forbidden",
    'pods "r-t-a1" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=5, '
    "limited: pods=5",
)


@pytest.mark.parametrize(
    ("refusal", "says"),
    [
        (INVALID, 'PodRejected: spec.containers[0].env[0].name: Invalid value: "1BAD"'),
        (PSA, 'PodRejected: violates PodSecurity "restricted:latest": hostPath volumes'),
    ],
)
def test_a_pod_the_api_server_refuses_fails_its_task_at_once(refusal: Refused, says: str) -> None:
    before = REGISTRY.get_sample_value(
        "kascade_task_failures_total",
        {"namespace": "ns", "pipeline": "r", "reason": "PodRejected"},
    )
    kube, events = _rejected(refusal, retries=2)
    taskrun = kube.get("taskruns", "ns", "r-t")
    assert taskrun is not None
    status = taskrun["status"]
    # A field that is wrong stays wrong: no retry, whatever `retries` says.
    assert status["state"] == "failed"
    assert status["message"].startswith(says)
    (attempt,) = status["attempts"]
    assert (attempt["reason"], attempt.get("podName")) == ("PodRejected", None)
    run = kube.get("pipelineruns", "ns", "r")
    assert run is not None and run["status"]["phase"] == "failed"
    assert says in run["status"]["message"]
    rejected = [(kind, reason) for kind, reason, _ in events if reason == "PodRejected"]
    assert ("PipelineRun", "PodRejected") in rejected and ("TaskRun", "PodRejected") in rejected
    after = REGISTRY.get_sample_value(
        "kascade_task_failures_total",
        {"namespace": "ns", "pipeline": "r", "reason": "PodRejected"},
    )
    assert (after or 0) - (before or 0) == 1


def test_a_refusal_that_can_pass_later_is_retried_by_policy() -> None:
    kube, _ = _rejected(QUOTA, retries=2)
    taskrun = kube.get("taskruns", "ns", "r-t")
    assert taskrun is not None
    status = taskrun["status"]
    assert status["state"] == "up_for_retry"
    assert status["message"].startswith("PodRejected: exceeded quota: pods")


def test_a_launch_the_api_server_missed_is_tried_again_with_the_same_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kascade.controller import launching

    monkeypatch.setattr(launching, "RELAUNCH_FIRST_SECONDS", 0.01)

    class Away(FakeKube):
        down = 2

        def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
            if self.down:
                self.down -= 1
                raise ConnectionRefusedError("[Errno 111] Connection refused")
            return super().create_pod(namespace, body)

    kube = Away()
    world = World(kube, lambda *_: None, clock=lambda: NOW)

    async def scenario() -> None:
        body = kube.create("pipelineruns", "ns", _run("r", [{"name": "a", "command": ["true"]}]))
        assert body is not None
        await world.on_run("ADDED", body)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if kube.names("pods"):
                break

    asyncio.run(scenario())
    assert kube.names("pods") == ["r-a-a1"]
