"""Issue 14: an operator killed at any write restores exactly what happened.

For each pipeline (a chain, fan-out/in, a task that fails once and retries, an
always-failing task with an ``all_done`` cleanup, a reschedule-mode sensor, a branch, a
mapped task), the run is operated once without a crash (the reference), then once per
write the operator makes, dying at that write (``crash_sim.py``): every state "right
before / right after" each pod create, TaskRun create, attempt record, TaskRun status,
PipelineRun status, Event and notification hook pod is a restore's starting point. A
fresh operator goes on from what the API holds, and the run must end as the reference
did, with:

* no pod created twice (an attempt's number is never reused once its pod may exist);
* no pod created before its upstream's pods ended;
* each TaskRun's attempts naming exactly the pods that ran for it, in order, with the
  reference's outcomes (a ``PodLost`` attempt aside: it uses a number, not a try);
* the reference's poke counts, the run's start time kept, its end after every pod's,
  and counts that add up.

With ``delete_pods_while_down``, the pods that had not ended are deleted while the
operator is down: their attempts end ``PodDeleted`` (or ``PodLost`` if never seen to
start) and are retried by policy; the invariants above hold, but not the outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from crash_sim import NOT_MET, NS, Outcome, Script, run_body, simulate

from kascade.api.pipeline import PipelineSpec
from kascade.api.runs import split_instance_key
from kascade.engine.compile import compile_or_raise


def t(name: str, *deps: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "command": ["true"],
        **({"dependsOn": list(deps)} if deps else {}),
        **fields,
    }


SENSOR = {"kind": "command", "mode": "reschedule", "pokeInterval": "2s"}
PIPELINES: dict[str, tuple[dict[str, Any], Script]] = {
    "chain": ({"tasks": [t("a"), t("b", "a"), t("c", "b")]}, Script()),
    "fan": (
        {
            "tasks": [
                t("root"),
                t("x", "root"),
                t("y", "root"),
                t("z", "root"),
                t("join", "x", "y", "z"),
            ]
        },
        Script({"y": [(3.0, 0, "")]}),
    ),
    "flaky": (
        {"tasks": [t("flaky", retries=1, retryDelay="2s"), t("after", "flaky")]},
        Script({"flaky": [(1.0, 1, ""), (1.0, 0, "")]}),
    ),
    "cleanup": (
        {
            "tasks": [
                t("bad", retries=1, retryDelay="1s"),
                t("cleanup", "bad", triggerRule="all_done"),
            ],
            "notifications": [],
        },
        Script({"bad": [(1.0, 2, "")]}),
    ),
    "sensor": (
        {"tasks": [t("wait", sensor=SENSOR), t("after", "wait")]},
        Script({"wait": [NOT_MET, NOT_MET, (0.5, 0, "")]}),
    ),
    "branch": (
        {
            "tasks": [
                t("pick", branch=True),
                t("left", "pick"),
                t("right", "pick"),
                t("join", "left", "right", triggerRule="none_failed_min_one_success"),
            ]
        },
        Script({"pick": [(1.0, 0, "branch=left")]}),
    ),
    "mapped": (
        {
            "tasks": [
                t("m", expand={"items": [1, 2, 3], "maxParallel": 2}),
                t("collect", "m"),
            ]
        },
        Script({"m": [(1.0, 0, "")]}),
    ),
}

_REFERENCE: dict[str, Outcome] = {}


def reference(name: str) -> Outcome:
    if name not in _REFERENCE:
        spec, script = PIPELINES[name]
        _REFERENCE[name] = simulate([run_body(name, spec)], script)
    return _REFERENCE[name]


def _status(out: Outcome, name: str) -> dict[str, Any]:
    run = out.kube.get("pipelineruns", NS, name)
    assert run is not None
    return dict(run.get("status") or {})


def _taskruns(out: Outcome) -> dict[str, dict[str, Any]]:
    return {
        split_instance_key(tr["spec"]["taskName"])[0]
        + (f"[{tr['spec']['mapIndex']}]" if tr["spec"].get("mapIndex") is not None else ""): tr
        for tr in out.kube.list_objects("taskruns", NS)
    }


def _outcomes(tr: dict[str, Any]) -> list[tuple[Any, Any]]:
    """What each attempt that ran came to (a PodLost attempt ran nothing)."""
    return [
        (a.get("exitCode"), a.get("reason"))
        for a in (tr.get("status") or {}).get("attempts") or []
        if a.get("reason") != "PodLost"
    ]


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def check(name: str, out: Outcome, *, same_outcome: bool = True) -> None:
    ref = reference(name)
    spec, _ = PIPELINES[name]
    plan = compile_or_raise(
        PipelineSpec.model_validate(run_body(name, spec)["spec"]["pipelineSpec"]), name
    )
    status, want = _status(out, name), _status(ref, name)
    where = f"{name}, crash at write {out.writes}"
    if same_outcome:
        assert (status["phase"], status["tasks"]) == (want["phase"], want["tasks"]), where
    # No pod was created twice: its name (run, task, attempt, poke) is never reused.
    created = [n for n, _ in out.kube.pod_creations]
    assert len(created) == len(set(created)), (where, created)
    lives = {life.name: life for life in out.kubelet.history}
    # No pod before its upstream's pods ended.
    for life in out.kubelet.history:
        task = plan.tasks[plan.index[split_instance_key(life.key)[0]]]
        for up in task.upstream:
            ends = [
                u.ends
                for u in out.kubelet.history
                if split_instance_key(u.key)[0] == up and u.ends is not None
            ]
            assert all(end <= life.created for end in ends), (where, life.name, up)
    # The TaskRuns name the pods that ran, in order, with the reference's outcomes.
    trs, ref_trs = _taskruns(out), _taskruns(ref)
    named: list[str] = []
    for key, tr in trs.items():
        attempts = (tr.get("status") or {}).get("attempts") or []
        order = [(a["number"], a.get("poke") or 0) for a in attempts]
        assert order == sorted(order) and len(set(order)) == len(order), (where, key, order)
        pods = [a["podName"] for a in attempts if a.get("podName")]
        named += pods
        for pod in pods:
            assert pod in lives, (where, key, pod)
        if same_outcome and key in ref_trs:
            assert _outcomes(tr) == _outcomes(ref_trs[key]), (where, key)
            got, expect = (tr.get("status") or {}), (ref_trs[key].get("status") or {})
            assert got.get("pokes") == expect.get("pokes"), (where, key)
    ran = [life.name for life in out.kubelet.history if life.started is not None]
    assert sorted(named) == sorted(set(ran)), (where, named, ran)
    # The run's clock: its start kept across the restart, its end after every pod's.
    before = out.at_crash.get(name, {}).get("startTime")
    if before:
        assert status["startTime"] == before, where
    first = min((life.created for life in out.kubelet.history), default=None)
    if first is not None:
        assert _t(status["startTime"]) <= first, where
    last = max((life.ends for life in out.kubelet.history if life.ends), default=None)
    if last is not None:
        assert _t(status["endTime"]) >= last, where
    counts = status["counts"]
    assert sum(counts.values()) == len(status["tasks"]), where
    for state in set(status["tasks"].values()):
        key = "".join(p if i == 0 else p.capitalize() for i, p in enumerate(state.split("_")))
        assert counts[key] == list(status["tasks"].values()).count(state), where


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_the_reference_runs_end_as_expected(name: str) -> None:
    ref = reference(name)
    assert not ref.crashed and ref.writes > 5
    check(name, ref)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_a_crash_at_any_write_changes_nothing_in_the_outcome(name: str) -> None:
    spec, script = PIPELINES[name]
    for k in range(reference(name).writes + 1):
        out = simulate([run_body(name, spec)], script, crash_at=k)
        assert out.crashed or k == reference(name).writes
        check(name, out)


@pytest.mark.parametrize("name", sorted(PIPELINES))
def test_pods_deleted_while_the_operator_is_down_are_failed_attempts_never_rerun(
    name: str,
) -> None:
    spec, script = PIPELINES[name]
    for k in range(0, reference(name).writes + 1, 2):
        out = simulate([run_body(name, spec)], script, crash_at=k, delete_pods_while_down=True)
        check(name, out, same_outcome=False)
