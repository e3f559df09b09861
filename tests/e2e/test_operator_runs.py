"""Run operations on a real cluster: clear, mark, external and poke sensors, notifications."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from .conftest import kubeconfig_path
from .operator_support import ROOT, Kascade, operator_namespace, pipeline

pytestmark = pytest.mark.e2e


def kascade_cli(*args: str) -> str:
    env = {**os.environ, "KUBECONFIG": kubeconfig_path(), "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.run(
        [sys.executable, "-m", "kascade", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def env(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "runs", log) as k:
        yield k


def _pods(k: Kascade, prefix: str) -> list[str]:
    return sorted(
        p.metadata.name
        for p in k.core.list_namespaced_pod(k.ns).items
        if p.metadata.name.startswith(prefix)
    )


def _wait_phase(k: Kascade, name: str, phase: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = k.get("pipelineruns", name)
        if (run.get("status") or {}).get("phase") == phase:
            return run
        time.sleep(0.5)
    raise AssertionError(f"{name} never reached {phase}: {run.get('status')}")


def test_clear_reruns_the_failed_tasks_of_a_finished_run(env: Kascade) -> None:
    env.core.create_namespaced_config_map(
        env.ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="flags"), data={"OK": "no"})
    )
    env.apply_pipeline(
        pipeline(
            "clearable",
            [
                {"name": "extract", "command": ["true"]},
                {
                    "name": "check",
                    "command": ["sh", "-c", 'test "$VAR_OK" = yes'],
                    "dependsOn": ["extract"],
                },
                {"name": "publish", "command": ["true"], "dependsOn": ["check"]},
            ],
            variables=[{"configMap": "flags"}],
        )
    )
    name = env.create_run("clearable")
    run = env.wait_run(name)
    assert env.task_states(run) == {
        "extract": "success",
        "check": "failed",
        "publish": "upstream_failed",
    }
    env.core.patch_namespaced_config_map("flags", env.ns, {"data": {"OK": "yes"}})
    out = kascade_cli("clear", name, "-n", env.ns)
    assert "check" in out and "publish" in out
    run = _wait_phase(env, name, "success")
    assert env.task_states(run) == {"extract": "success", "check": "success", "publish": "success"}
    assert len([p for p in _pods(env, name) if "-extract-" in p]) == 1  # not re-run


def test_mark_success_lets_downstream_run(env: Kascade) -> None:
    env.apply_pipeline(
        pipeline(
            "markable",
            [
                {"name": "broken", "command": ["false"]},
                {"name": "after", "command": ["true"], "dependsOn": ["broken"]},
            ],
        )
    )
    name = env.create_run("markable")
    assert env.wait_run(name)["status"]["phase"] == "failed"
    kascade_cli("mark", name, "-n", env.ns, "--task", "broken", "success")
    run = _wait_phase(env, name, "success")
    assert env.task_states(run) == {"broken": "success", "after": "success"}


def test_external_task_sensor_waits_for_another_pipeline(env: Kascade) -> None:
    env.apply_pipeline(pipeline("producer", [{"name": "load", "command": ["sleep", "2"]}]))
    env.apply_pipeline(
        pipeline(
            "consumer",
            [
                {
                    "name": "wait-for-load",
                    "sensor": {
                        "kind": "externalTask",
                        "pipeline": "producer",
                        "task": "load",
                        "pokeInterval": "1s",
                        "timeout": "90s",
                    },
                },
                {"name": "use", "command": ["true"], "dependsOn": ["wait-for-load"]},
            ],
        )
    )
    date = "2026-03-01T00:00:00+00:00"
    consumer = env.create_run("consumer", logical_date=date)
    time.sleep(3)
    assert (env.get("pipelineruns", consumer).get("status") or {}).get("phase") == "running"
    env.create_run("producer", logical_date=date)
    run = env.wait_run(consumer, timeout=120)
    assert env.task_states(run) == {"wait-for-load": "success", "use": "success"}
    assert not [p for p in _pods(env, consumer) if "wait-for-load" in p]  # no pod for it


def test_command_sensor_in_poke_mode_loops_in_one_pod(env: Kascade) -> None:
    poke = "test -e /tmp/seen && exit 0; touch /tmp/seen; exit 100"
    env.apply_pipeline(
        pipeline(
            "poker",
            [
                {
                    "name": "until-ready",
                    "command": ["sh", "-c", poke],
                    "sensor": {
                        "kind": "command",
                        "mode": "poke",
                        "pokeInterval": "1s",
                        "timeout": "60s",
                    },
                }
            ],
        )
    )
    name = env.create_run("poker")
    run = env.wait_run(name)
    assert run["status"]["phase"] == "success"
    assert len(_pods(env, name)) == 1


def test_notifications_fire_once_even_across_an_operator_restart(env: Kascade) -> None:
    hook = {
        "image": "busybox:1.36",
        "command": ["sh", "-c", 'echo "$KASCADE_EVENT $KASCADE_MESSAGE"'],
    }
    env.apply_pipeline(
        pipeline(
            "notified",
            [{"name": "t", "command": ["true"]}],
            notifications=[{"name": "done", "events": ["success"], "hook": hook}],
        )
    )
    name = env.create_run("notified")
    env.wait_run(name)
    env.operator.kill(hard=True)
    env.operator.start()
    time.sleep(5)
    hooks = [
        p
        for p in env.core.list_namespaced_pod(env.ns, label_selector="kascade.io/hook=true").items
        if p.metadata.name.startswith(f"{name}-hook-done-success")
    ]
    assert len(hooks) == 1, [p.metadata.name for p in hooks]
    run = env.get("pipelineruns", name)
    assert any(n.startswith("done/success") for n in run["status"]["notified"])
