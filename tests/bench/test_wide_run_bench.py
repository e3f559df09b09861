"""A 2,000-task run on the real cluster keeps its pace (``make bench``; issue 14).

40 layers of 50 tasks (each task after the one above it), 50 at a time. The issue saw
the rate fall from 2.2 to 1.2 tasks/s as such a run went on. This benchmark prints the
rate per 250 tasks done, with what explains it: how long pods waited to start (created
to started, the kubelet's share), the operator's CPU time per task, and the API writes.
``KASCADE_WIDE_LAYERS`` changes the depth; ``KASCADE_PROFILE_OPERATOR=FILE`` runs the
operator under cProfile (``python -m pstats FILE`` to read it).
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import wait_until
from e2e.operator_support import Kascade, make_namespace

from .test_operator_bench import Api, cluster, operator, pipeline, stop, writes

__all__ = ["cluster"]  # the fixture, shared with the other operator benchmarks

pytestmark = pytest.mark.bench

LAYERS = int(os.environ.get("KASCADE_WIDE_LAYERS", "40"))
WIDTH = 50
WINDOW = 250


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


NODE = ("kubelet", "containerd", "kube-apiserver", "etcd")
"""The local cluster's processes, on this machine: their CPU per task tells where time goes."""


def _node_pids() -> dict[str, int]:
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                name = (proc / "comm").read_text().strip()
            except OSError:
                continue
            if name in NODE and name not in found:
                found[name] = int(proc.name)
    return found


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.timeout(3600)
def test_a_2000_task_run_keeps_its_pace(cluster: Api, tmp_path: Path) -> None:
    ns = make_namespace(cluster, "bench-wide", "restricted")
    op = operator(ns, tmp_path)
    profile = os.environ.get("KASCADE_PROFILE_OPERATOR")
    if profile:
        op.python_args = ["-m", "cProfile", "-o", profile]
    try:
        op.start()
        assert op.proc is not None
        k = Kascade(cluster.api, ns)
        tasks = []
        for layer in range(LAYERS):
            for w in range(WIDTH):
                task: dict[str, Any] = {"name": f"l{layer:02d}-t{w:02d}", "command": ["true"]}
                if layer:
                    task["dependsOn"] = [f"l{layer - 1:02d}-t{w:02d}"]
                tasks.append(task)
        k.apply_pipeline(pipeline("wide", tasks, maxActiveTasks=WIDTH))
        before = op.metrics()
        started = time.monotonic()
        name = k.create_run("wide", name="wide-run")
        node = _node_pids()
        samples: list[tuple[int, dict[str, float]]] = []  # (tasks done, CPU s by process)

        def finished() -> bool:
            status = k.get("pipelineruns", name).get("status") or {}
            counts = status.get("counts") or {}
            assert op.proc is not None
            cpu = {"operator": _cpu_seconds(op.proc.pid)}
            for proc, pid in node.items():
                with contextlib.suppress(OSError):
                    cpu[proc] = _cpu_seconds(pid)
            samples.append((counts.get("success", 0), cpu))
            return status.get("phase") in ("success", "failed")

        wait_until(finished, 3000, interval=5.0, what="the wide run")
        took = time.monotonic() - started
        after = op.metrics()
        run = k.get("pipelineruns", name)
        records = []  # (ready, started, ended) of every attempt
        for tr in k.list("taskruns"):
            st = tr.get("status") or {}
            for a in st.get("attempts") or []:
                if a.get("endTime") and a.get("startTime") and st.get("readyTime"):
                    records.append((_t(st["readyTime"]), _t(a["startTime"]), _t(a["endTime"])))
        pods_left = len(cluster.core.list_namespaced_pod(ns).items)
    finally:
        stop(op)
        cluster.core.delete_namespace(ns, propagation_policy="Background")
    total = LAYERS * WIDTH
    print(
        f"\n{total}-task run ({LAYERS} layers x {WIDTH}, {WIDTH} at a time): "
        f"{run['status']['phase']} in {took:.0f} s, {total / took:.2f} tasks/s"
    )
    # Read from the TaskRuns (the pods of most succeeded attempts are deleted): the rate
    # by when attempts ended, and how long each task waited from being ready (its upstream
    # done) to its container starting: the operator's launch plus the pod's start.
    ends = sorted(records, key=lambda r: r[2])
    first = min(r[0] for r in ends)
    rates = []
    for i in range(0, len(ends), WINDOW):
        window = ends[i : i + WINDOW]
        seconds = max(1.0, (window[-1][2] - (ends[i - 1][2] if i else first)).total_seconds())
        waited = sorted((started - ready).total_seconds() for ready, started, _ in window)
        rates.append(len(window) / seconds)
        print(
            f"  tasks {i + 1:5d}-{i + len(window):5d}: {len(window) / seconds:5.2f} tasks/s, "
            f"ready to started p50 {waited[len(waited) // 2]:.1f} s / max {waited[-1]:.1f} s"
        )
    print(f"  pods left in the namespace at the end: {pods_left}")
    print("  CPU per task done (ms), by process, as the run goes:")
    mark = samples[0]
    for n, cpu in samples[1:]:
        if n // WINDOW != mark[0] // WINDOW or n == total:
            done = max(1, n - mark[0])
            per = {p: (cpu[p] - mark[1].get(p, cpu[p])) / done * 1000 for p in cpu}
            print(f"    at {n:5d}: " + ", ".join(f"{p} {ms:.0f}" for p, ms in sorted(per.items())))
            mark = (n, cpu)
    spent = {key: v - writes(before).get(key, 0.0) for key, v in writes(after).items()}
    print(f"  API writes: {sum(spent.values()):.0f} ({sum(spent.values()) / total:.2f} per task)")
    assert run["status"]["phase"] == "success"
    # Flat: the last windows go at least 70% as fast as the first ones (the issue: 55%).
    head, tail = sum(rates[:2]) / 2, sum(rates[-2:]) / 2
    print(f"  rate of the last 500 tasks / the first 500: {tail / head:.2f}")
    assert tail >= 0.7 * head
