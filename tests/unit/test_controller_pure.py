"""The operator's pure translation layer: names, pod specs, pod observation, scheduling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kascade.api.pipeline import PipelineSpec, Task
from kascade.api.protocol import OUTPUTS_LIMIT_BYTES
from kascade.controller import naming, observe, scheduling
from kascade.controller.podspec import RunIdentity, build_pod
from kascade.controller.writer import run_status_interval
from kascade.engine.decisions import Launch
from kascade.engine.schedule import DataInterval
from kascade.engine.sensors import SensorPolicy

RUN = RunIdentity(
    "ns", "etl", "etl-scheduled-20260101t000000", "scheduled__x", datetime(2026, 1, 1, tzinfo=UTC)
)
OWNER = {"apiVersion": "kascade.io/v1alpha1", "kind": "TaskRun", "name": "tr", "uid": "u"}


def launch(**task: Any) -> Launch:
    spec = Task.model_validate({"name": "t", "image": "busybox:1.36", **task})
    policy = SensorPolicy.of(spec.sensor) if spec.sensor else None
    return Launch("t", "t", None, 1, spec, None, spec.sensor, None, 1, None, sensor_policy=policy)


def pod(ln: Launch, pipeline: PipelineSpec | None = None) -> dict[str, Any]:
    return build_pod(ln, name="p", run=RUN, pipeline=pipeline or PipelineSpec(), owner=OWNER)


def test_pods_are_non_root_and_pass_restricted_by_default() -> None:
    p = pod(launch(command=["true"]))
    spec = p["spec"]
    container = spec["containers"][0]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"
    assert p["metadata"]["ownerReferences"] == [OWNER]


def test_outputs_travel_in_the_termination_message() -> None:
    container = pod(launch(command=["true"]))["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KASCADE_OUTPUTS"] == container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert env["KASCADE_TRY_NUMBER"] == "1"


def test_scripts_are_passed_with_dash_c_to_their_interpreter() -> None:
    c = pod(launch(command=["python3"], script="print(1)", args=["x"]))["spec"]["containers"][0]
    assert c["command"] == ["python3", "-c", "print(1)"]
    assert c["args"] == ["x"]
    sh = pod(launch(script="echo hi"))["spec"]["containers"][0]
    assert sh["command"] == ["sh", "-e", "-c", "echo hi", "kascade-script"]
    bang = pod(launch(script="#!/bin/bash -eu\necho hi"))["spec"]["containers"][0]
    assert bang["command"][:3] == ["/bin/bash", "-eu", "-c"]


def test_timeout_becomes_active_deadline_seconds() -> None:
    ln = launch(command=["sleep", "9"])
    timed = Launch(
        ln.key, ln.task_id, None, 1, ln.spec, timedelta(seconds=2.5), None, None, 1, None
    )
    assert pod(timed)["spec"]["activeDeadlineSeconds"] == 3


def test_variables_and_connections_are_env_from_with_prefixes() -> None:
    spec = PipelineSpec.model_validate(
        {
            "variables": [{"configMap": "vars"}],
            "connections": [{"name": "warehouse-db", "secret": "wh"}],
        }
    )
    c = pod(launch(command=["true"]), spec)["spec"]["containers"][0]
    assert {"configMapRef": {"name": "vars"}, "prefix": "VAR_"} in c["envFrom"]
    assert {"secretRef": {"name": "wh"}, "prefix": "CONN_WAREHOUSE_DB_"} in c["envFrom"]


def test_poke_mode_command_sensor_loops_inside_the_pod() -> None:
    ln = launch(command=["check"], sensor={"kind": "command", "mode": "poke", "pokeInterval": "5s"})
    c = pod(ln)["spec"]["containers"][0]
    assert c["command"][:2] == ["sh", "-c"] and "w=5;" in c["command"][2]
    assert c["command"][-1] == "check"


def _pod_status(phase: str, state: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "task", "state": state}],
            **status,
        }
    }


def test_observe_success_with_outputs() -> None:
    seen = observe.view(
        _pod_status("Succeeded", {"terminated": {"exitCode": 0, "message": "rows=3"}})
    )
    assert seen.result is not None and seen.result.ok and seen.result.outputs == {"rows": 3}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (_pod_status("Failed", {"terminated": {"exitCode": 3, "reason": "Error"}}), None),
        (_pod_status("Failed", {}, reason="DeadlineExceeded"), "Timeout"),
        (_pod_status("Failed", {}, reason="Evicted", message="memory"), "Evicted"),
        (_pod_status("Pending", {"waiting": {"reason": "ErrImageNeverPull"}}), "ErrImageNeverPull"),
    ],
)
def test_every_way_a_pod_ends_is_a_failed_attempt(
    status: dict[str, Any], reason: str | None
) -> None:
    seen = observe.view(status)
    assert seen.result is not None and not seen.result.ok
    assert seen.result.reason == reason


def test_deleted_pod_is_a_failed_attempt() -> None:
    seen = observe.view(_pod_status("Running", {"running": {}}), deleted=True)
    assert seen.result is not None and seen.result.reason == "PodDeleted"


def test_outputs_cut_by_the_kubelet_are_reported_clearly() -> None:
    message = "x=" + "y" * (OUTPUTS_LIMIT_BYTES - 2)
    seen = observe.view(
        _pod_status("Succeeded", {"terminated": {"exitCode": 0, "message": message}})
    )
    assert seen.result is not None and seen.result.reason == "OutputsTooLarge"
    assert "4096" in (seen.result.message or "")


def test_pending_pod_is_not_a_result_yet() -> None:
    seen = observe.view(_pod_status("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert seen.result is None and seen.waiting_reason == "ContainerCreating"


def test_a_pod_that_is_merely_starting_is_no_trouble() -> None:
    starting = observe.view(_pod_status("Pending", {"waiting": {"reason": "ContainerCreating"}}))
    assert observe.trouble(starting) is None
    assert observe.trouble(observe.view(_pod_status("Pending", {}))) is None
    assert observe.trouble(observe.view(_pod_status("Running", {"running": {}}))) is None


def test_a_pod_that_cannot_start_says_why() -> None:
    pulling = observe.view(
        _pod_status(
            "Pending",
            {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling "nope:1"'}},
        )
    )
    assert observe.trouble(pulling) == 'ImagePullBackOff: Back-off pulling "nope:1"'
    unschedulable = observe.view(
        {
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu.",
                    }
                ],
            }
        }
    )
    assert unschedulable.result is None
    assert observe.trouble(unschedulable) == (
        "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."
    )


@pytest.mark.parametrize(
    ("active", "lag"), [(0, 10.0), (1, 10.0), (20, 10.0), (50, 25.0), (120, 60.0), (5000, 60.0)]
)
def test_run_summaries_lag_more_only_when_many_runs_are_active(active: int, lag: float) -> None:
    assert run_status_interval(active) == lag


def test_names_are_dns_safe_bounded_unique_and_deterministic() -> None:
    run = "a-very-long-pipeline-name-that-goes-on-scheduled-20260101t000000"
    keys = [f"group.sub.task-{i}[{j}]" for i in range(20) for j in range(3)]
    trs = {naming.taskrun_name(run, k) for k in keys}
    assert len(trs) == len(keys)
    for tr in trs:
        name = naming.pod_name(tr, 12, 3)
        assert len(name) <= 63 and name == name.lower()
        assert naming.pod_name(tr, 12, 3) == name
    assert naming.taskrun_name("r", "extract") == "r-extract"


T0 = datetime(2026, 1, 10, tzinfo=UTC)


def _record(day: int, phase: str | None = "success") -> scheduling.RunRecord:
    start = datetime(2026, 1, day, tzinfo=UTC)
    return scheduling.RunRecord(
        f"r{day}", phase, "scheduled", DataInterval(start, start + timedelta(days=1)), start, start
    )


def test_schedule_cursor_comes_from_existing_runs() -> None:
    spec = PipelineSpec.model_validate(
        {"schedule": "@daily", "startDate": "2026-01-01", "catchup": True}
    )
    plan = scheduling.plan_schedule(spec, [_record(d) for d in range(1, 7)], None, T0)
    assert [i.start.day for i in plan.due] == [7, 8, 9]
    assert plan.next_run == datetime(2026, 1, 11, tzinfo=UTC)


def test_max_active_runs_limits_new_scheduled_runs() -> None:
    spec = PipelineSpec.model_validate(
        {"schedule": "@daily", "startDate": "2026-01-01", "catchup": True, "maxActiveRuns": 2}
    )
    plan = scheduling.plan_schedule(spec, [_record(1, "running")], None, T0)
    assert len(plan.due) == 1


def test_suspended_pipelines_schedule_nothing() -> None:
    spec = PipelineSpec.model_validate(
        {"schedule": "@daily", "startDate": "2026-01-01", "suspend": True}
    )
    assert scheduling.plan_schedule(spec, [], None, T0).due == []


def test_history_limits_and_ttl() -> None:
    runs = [_record(d) for d in range(1, 8)] + [_record(8, "failed"), _record(9, "running")]
    assert scheduling.runs_to_prune(runs, successful=3, failed=5, ttl_seconds=None, now=T0) == [
        "r1",
        "r2",
        "r3",
        "r4",
    ]
    old = scheduling.runs_to_prune(runs, successful=10, failed=10, ttl_seconds=3 * 86400, now=T0)
    assert old == ["r1", "r2", "r3", "r4", "r5", "r6"]
