"""The operator on a real cluster: the failures users of Argo/Tekton/Airflow complain about.

Timeouts, pods deleted under a run, an operator killed with SIGKILL mid-run,
catchup after downtime, maxActiveRuns, pools, invalid pipelines, metrics.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .conftest import kubeconfig_path
from .operator_support import Kascade, operator_namespace, pipeline

pytestmark = pytest.mark.e2e

LABEL_TASK = "kascade.io/task"
SECURE = {"runAsNonRoot": True, "runAsUser": 65534, "allowPrivilegeEscalation": False}


@pytest.fixture(scope="module")
def env(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "operator", log) as k:
        yield k


def _taskruns(k: Kascade, run: str) -> dict[str, dict[str, Any]]:
    return {
        t["spec"]["taskName"]: t
        for t in k.list("taskruns")
        if t["spec"]["pipelineRunRef"]["name"] == run
    }


def _pods(k: Kascade, run: str) -> list[Any]:
    return [p for p in k.core.list_namespaced_pod(k.ns).items if p.metadata.name.startswith(run)]


def test_timeout_fails_the_attempt_and_retries_by_policy(env: Kascade) -> None:
    env.apply_pipeline(
        pipeline(
            "timeout",
            [
                {
                    "name": "slow",
                    "command": ["sleep", "60"],
                    "timeout": "3s",
                    "retries": 1,
                    "retryDelay": "1s",
                }
            ],
        )
    )
    run = env.wait_run(env.create_run("timeout"), timeout=120)
    assert run["status"]["phase"] == "failed"
    tr = _taskruns(env, run["metadata"]["name"])["slow"]
    attempts = tr["status"]["attempts"]
    assert [a["reason"] for a in attempts] == ["Timeout", "Timeout"], attempts


def test_pod_deleted_mid_run_is_a_failed_attempt_that_retries(env: Kascade) -> None:
    env.apply_pipeline(
        pipeline(
            "deleted",
            [
                {
                    "name": "victim",
                    "command": ["sh", "-c", 'test "$KASCADE_TRY_NUMBER" = 2 || sleep 60'],
                    "retries": 1,
                    "retryDelay": "1s",
                }
            ],
        )
    )
    name = env.create_run("deleted")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = [p for p in _pods(env, name) if p.status.phase == "Running"]
        if pods:
            env.core.delete_namespaced_pod(pods[0].metadata.name, env.ns, grace_period_seconds=0)
            break
        time.sleep(0.3)
    run = env.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success"
    attempts = _taskruns(env, name)["victim"]["status"]["attempts"]
    first = attempts[0]
    assert first.get("reason") in ("PodDeleted", "PodFailed") or first.get("exitCode"), attempts
    assert len(attempts) == 2


def test_operator_killed_mid_run_finishes_without_running_anything_twice(env: Kascade) -> None:
    tasks = [
        {"name": "a", "command": ["sleep", "2"]},
        {"name": "b", "command": ["sleep", "2"], "dependsOn": ["a"]},
        {"name": "c", "command": ["sleep", "1"], "dependsOn": ["b"]},
    ]
    env.apply_pipeline(pipeline("crash", tasks))
    name = env.create_run("crash")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        p.metadata.name.endswith("-a-a1") and p.status.phase == "Running" for p in _pods(env, name)
    ):
        time.sleep(0.2)
    env.operator.kill(hard=True)  # SIGKILL while `a` runs
    time.sleep(3)  # `a` ends while nobody watches
    env.operator.start()
    run = env.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success"
    pods = sorted(p.metadata.name for p in _pods(env, name))
    assert pods == [f"{name}-{t}-a1" for t in ("a", "b", "c")], pods


def test_a_pod_that_cannot_start_is_shown_at_once_then_times_out(env: Kascade) -> None:
    """Argo and Airflow users complain that such tasks hang silently in pending."""
    env.apply_pipeline(
        pipeline(
            "stuck",
            [
                {
                    "name": "huge",
                    "command": ["true"],
                    "nodeSelector": {"kascade.io/no-such-node": "x"},
                    "startTimeout": "25s",
                }
            ],
        )
    )
    name = env.create_run("stuck")
    deadline = time.monotonic() + 20
    message = None
    while time.monotonic() < deadline:
        tr = _taskruns(env, name).get("huge")
        message = ((tr or {}).get("status") or {}).get("message")
        if message:
            break
        time.sleep(0.5)
    assert message is not None and message.startswith("the pod cannot start: Unschedulable")
    assert (tr or {})["status"]["state"] == "queued"
    run = env.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "failed"
    final = _taskruns(env, name)["huge"]["status"]
    assert final["state"] == "failed"
    assert final["attempts"][-1]["reason"] == "StartTimeout", final
    assert "did not start within 25s" in final["message"], final


def test_a_template_error_is_a_retried_attempt_shown_on_its_taskrun(env: Kascade) -> None:
    tasks = [
        {"name": "a", "command": ["true"]},
        {
            "name": "b",
            "dependsOn": ["a"],
            "command": ["echo", "{{ tasks.a.outputs.missing }}"],
            "retries": 1,
            "retryDelay": "1s",
        },
    ]
    env.apply_pipeline(pipeline("badtemplate", tasks))
    name = env.create_run("badtemplate")
    run = env.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "failed"
    b = _taskruns(env, name)["b"]["status"]
    assert b["state"] == "failed" and b["message"].startswith("template: "), b
    assert [(a["number"], a["reason"]) for a in b["attempts"]] == [
        (1, "TemplateError"),
        (2, "TemplateError"),
    ], b
    assert not [p for p in _pods(env, name) if (p.metadata.labels or {}).get(LABEL_TASK) == "b"]


def test_catchup_creates_every_missed_interval(env: Kascade) -> None:
    start = (datetime.now(UTC) - timedelta(minutes=3)).replace(second=0, microsecond=0)
    doc = pipeline(
        "catchup",
        [{"name": "t", "command": ["true"]}],
        schedule="* * * * *",
        startDate=start.isoformat(),
        catchup=True,
        maxActiveRuns=16,
    )
    env.apply_pipeline(doc, suspend=False)
    deadline = time.monotonic() + 60
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = [
            r for r in env.list("pipelineruns") if r["spec"]["pipelineRef"]["name"] == "catchup"
        ]
        if len(runs) >= 3:
            break
        time.sleep(0.5)
    dates = sorted(datetime.fromisoformat(r["spec"]["logicalDate"]) for r in runs)
    assert dates[:3] == [start + timedelta(minutes=i) for i in range(3)], dates
    assert all(r["spec"]["trigger"]["kind"] == "scheduled" for r in runs)
    doc["spec"]["suspend"] = True
    env.apply_pipeline(doc)


def test_max_active_runs_queues_the_rest(env: Kascade) -> None:
    env.apply_pipeline(
        pipeline("one-at-a-time", [{"name": "t", "command": ["sleep", "2"]}], maxActiveRuns=1)
    )
    names = [env.create_run("one-at-a-time", name=f"one-at-a-time-{i}") for i in range(3)]
    time.sleep(2)
    phases = [(env.get("pipelineruns", n).get("status") or {}).get("phase") for n in names]
    assert phases.count("running") <= 1 and "queued" in phases, phases
    runs = [env.wait_run(n, timeout=120) for n in names]
    spans = sorted((r["status"]["startTime"], r["status"]["endTime"]) for r in runs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, spans  # never two at once


def test_max_active_tasks_holds_across_the_runs_of_a_pipeline(env: Kascade) -> None:
    """Airflow's max_active_tasks counts every active run of the DAG, not each run."""
    tasks = [{"name": f"w{i}", "command": ["sleep", "1"]} for i in range(2)]
    env.apply_pipeline(pipeline("narrow", tasks, maxActiveTasks=1))
    names = [env.create_run("narrow", name=f"narrow-{i}") for i in range(2)]
    runs = [env.wait_run(n, timeout=180) for n in names]
    assert [r["status"]["phase"] for r in runs] == ["success", "success"]
    spans = sorted(
        (a["startTime"], a["endTime"])
        for name in names
        for tr in _taskruns(env, name).values()
        for a in tr["status"]["attempts"]
    )
    assert len(spans) == 4, spans
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, spans  # one task at a time, whichever run it belongs to


def test_pool_limits_concurrent_tasks_across_the_namespace(env: Kascade) -> None:
    env.custom.create_namespaced_custom_object(
        "kascade.io",
        "v1alpha1",
        env.ns,
        "pools",
        {
            "apiVersion": "kascade.io/v1alpha1",
            "kind": "Pool",
            "metadata": {"name": "db"},
            "spec": {"slots": 1},
        },
    )
    tasks = [{"name": f"q{i}", "command": ["sleep", "1"], "pool": "db"} for i in range(3)]
    env.apply_pipeline(pipeline("pooled", tasks))
    run = env.wait_run(env.create_run("pooled"), timeout=120)
    assert run["status"]["phase"] == "success"
    spans = sorted(
        (a["startTime"], a["endTime"])
        for tr in _taskruns(env, run["metadata"]["name"]).values()
        for a in tr["status"]["attempts"]
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, spans


def test_invalid_pipeline_is_reported_in_status_and_nothing_crashes(env: Kascade) -> None:
    bad = pipeline(
        "cyclic",
        [
            {"name": "a", "command": ["true"], "dependsOn": ["b"]},
            {"name": "b", "command": ["true"], "dependsOn": ["a"]},
        ],
        schedule="not a cron",
    )
    env.apply_pipeline(bad)
    deadline = time.monotonic() + 30
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = env.get("pipelines", "cyclic").get("status") or {}
        if status.get("conditions"):
            break
        time.sleep(0.3)
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False"
    errors = "\n".join(status["errors"])
    assert "dependency cycle: a -> b -> a" in errors or "b -> a -> b" in errors
    assert "spec.schedule" in errors
    assert env.operator.proc is not None and env.operator.proc.poll() is None
    env.apply_pipeline(pipeline("after-bad", [{"name": "ok", "command": ["true"]}]))
    assert env.wait_run(env.create_run("after-bad"))["status"]["phase"] == "success"


def test_metrics_are_exported_and_move(env: Kascade) -> None:
    before = env.operator.metrics()
    env.apply_pipeline(pipeline("metered", [{"name": "m", "command": ["true"]}]))
    env.wait_run(env.create_run("metered"))
    after = env.operator.metrics()
    for name in (
        "kascade_runs_started_total",
        "kascade_runs_finished_total",
        "kascade_task_attempts_total",
        "kascade_task_duration_seconds_bucket",
        "kascade_task_scheduling_delay_seconds_bucket",
        "kascade_task_pod_start_seconds_bucket",
        "kascade_api_writes_total",
    ):
        assert name in after, name

    def count(text: str, metric: str = "kascade_runs_finished_total") -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(metric + "{") and 'pipeline="metered"' in line
        )

    assert count(after) == count(before) + 1
    # The pod's start was seen (created → running), once.
    pod_starts = "kascade_task_pod_start_seconds_count"
    assert count(after, pod_starts) == count(before, pod_starts) + 1
