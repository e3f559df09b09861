"""Issue 14 and issue 9 §4 on the real cluster: an operator killed at random moments, and
pods the API server refuses.

The long version of the chaos test (40 runs, 12 kills) is in ``make bench``
(tests/bench/test_crash_bench.py); this one stays within a couple of minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from . import chaos
from .conftest import kubeconfig_path, wait_until
from .operator_support import ROOT, Kascade, operator_namespace, pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def env(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "crash", log) as k:
        yield k


@pytest.mark.timeout(400)
def test_runs_end_right_while_the_operator_is_killed_at_random(env: Kascade) -> None:
    chaos.chaos_and_check(env, **chaos.SHORT)


def _events(env: Kascade, kind: str, name: str) -> list[Any]:
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    return list(env.core.list_namespaced_event(env.ns, field_selector=selector).items)


def _failures(env: Kascade, pipeline_name: str) -> float:
    for family in text_string_to_metric_families(env.operator.metrics()):
        for s in family.samples:
            if (
                s.name == "kascade_task_failures_total"
                and s.labels.get("pipeline") == pipeline_name
                and s.labels.get("reason") == "PodRejected"
            ):
                return float(s.value)
    return 0.0


@pytest.mark.timeout(300)
def test_a_pod_the_api_server_refuses_fails_at_once_with_the_servers_reason(
    env: Kascade,
) -> None:
    """A hostPath volume in a namespace that enforces Pod Security "restricted": the API
    server refuses the pod. The attempt fails at once (not after the start timeout), with
    the server's words in the TaskRun, the run, an Event on both, the CLI and the metrics,
    and it is not retried (the reason cannot change)."""
    task = {
        "name": "host",
        "command": ["true"],
        "retries": 2,
        "retryDelay": "1s",
        "volumes": [{"name": "h", "hostPath": {"path": "/tmp"}}],
        "volumeMounts": [{"name": "h", "mountPath": "/h"}],
    }
    env.apply_pipeline(pipeline("rejected", [task]))
    started = time.monotonic()
    cli = subprocess.run(
        [sys.executable, "-m", "kascade", "trigger", "rejected", "-n", env.ns, "--wait"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": kubeconfig_path(), "PYTHONPATH": str(ROOT / "operator")},
    )
    took = time.monotonic() - started
    assert cli.returncode == 1, cli.stdout + cli.stderr
    name = cli.stdout.split()[0].split("/")[1]
    assert "PodRejected: violates PodSecurity" in cli.stdout, cli.stdout
    assert took < 60, f"the run took {took:.0f} s to fail"
    run = env.get("pipelineruns", name)
    assert run["status"]["phase"] == "failed"
    assert 'violates PodSecurity "restricted:latest"' in run["status"]["message"]
    assert "hostPath" in run["status"]["message"]
    (tr,) = [t for t in env.list("taskruns") if t["spec"]["pipelineRunRef"]["name"] == name]
    status = tr["status"]
    assert status["state"] == "failed"
    assert status["message"].startswith("PodRejected: violates PodSecurity")
    assert [a["reason"] for a in status["attempts"]] == ["PodRejected"]  # not retried
    for kind, obj in (("TaskRun", tr["metadata"]["name"]), ("PipelineRun", name)):
        reasons = wait_until(
            lambda kind=kind, obj=obj: (
                [e.reason for e in _events(env, kind, obj)]
                if any(e.reason == "PodRejected" for e in _events(env, kind, obj))
                else None
            ),
            30,
            what=f"a PodRejected Event on the {kind}",
        )
        assert "PodRejected" in reasons
    assert _failures(env, "rejected") >= 1
    assert env.core.list_namespaced_pod(env.ns, label_selector=f"kascade.io/run={name}").items == []


@pytest.mark.timeout(300)
def test_a_missing_serviceaccount_is_refused_and_retried_by_policy(env: Kascade) -> None:
    """A ServiceAccount that does not exist here (another namespace's) may be created
    later: the refusal is a failed attempt retried by policy."""
    task = {
        "name": "sa",
        "command": ["true"],
        "serviceAccountName": "not-in-this-namespace",
        "retries": 1,
        "retryDelay": "1s",
    }
    env.apply_pipeline(pipeline("no-sa", [task]))
    run = env.wait_run(env.create_run("no-sa"), timeout=120)
    assert run["status"]["phase"] == "failed"
    (tr,) = [
        t
        for t in env.list("taskruns")
        if t["spec"]["pipelineRunRef"]["name"] == run["metadata"]["name"]
    ]
    attempts = tr["status"]["attempts"]
    assert [a["reason"] for a in attempts] == ["PodRejected", "PodRejected"], attempts
    assert "serviceaccount" in attempts[0]["message"].lower(), attempts[0]
