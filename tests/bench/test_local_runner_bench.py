"""`kascade run` against the other local orchestrators' figures (issue #2, ``make bench``).

Wall time from process start to exit, median of 3, every task running ``true``.
Targets: W1 chain of 20 <= 0.8 s, W2 1 -> 100 -> 1 <= 1.0 s, W3 10 layers x 50
(each task depends on the whole previous layer) <= 2.5 s. Also printed: peak
memory, and the per-task overhead beyond starting the task's process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.bench
ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "bench" / "dags"
CASES = [("w1-chain-20.yaml", 0.8), ("w2-fanout-100.yaml", 1.0), ("w3-layers-10x50.yaml", 2.5)]


def _run(path: Path, home: str) -> tuple[float, int]:
    """Wall time and the peak RSS (KiB) of this one `kascade run` process.

    os.wait4 gives the rusage of exactly this child; RUSAGE_CHILDREN would report the
    largest child this pytest process ever reaped (another benchmark's, say).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KASCADE_HOME": home}
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kascade", "run", "--quiet", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        assert proc.returncode == 0, err.read().decode()[-2000:]
    return wall, usage.ru_maxrss


def _spawn_cost(n: int = 100) -> float:
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    return (time.perf_counter() - start) / n


@pytest.mark.parametrize(("name", "target"), CASES, ids=[c[0] for c in CASES])
def test_local_runner_wall_time(name: str, target: float) -> None:
    path = DAGS / name
    tasks = len(yaml.safe_load(path.read_text())["spec"]["tasks"])
    with tempfile.TemporaryDirectory() as home:
        one = Path(home) / "one.yaml"
        one.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kascade.io/v1alpha1",
                    "kind": "Pipeline",
                    "metadata": {"name": "one"},
                    "spec": {
                        "tasks": [{"name": "t", "image": "busybox:1.36", "command": ["true"]}]
                    },
                }
            )
        )
        baseline = statistics.median(_run(one, home)[0] for _ in range(5))
        runs = [_run(path, home) for _ in range(3)]
    walls = sorted(w for w, _ in runs)
    median = statistics.median(walls)
    peak_mib = max(p for _, p in runs) / 1024
    spawn = _spawn_cost()
    per_task = (median - baseline) / max(tasks - 1, 1)
    runs_text = ", ".join(f"{w:.2f}" for w in walls)
    print(
        f"\n{name}: {tasks} tasks, median {median:.2f} s (runs {runs_text}), target {target} s;"
        f" one-task pipeline {baseline:.2f} s; each further task {per_task * 1000:.1f} ms,"
        f" of which spawning `true` {spawn * 1000:.1f} ms; peak RSS {peak_mib:.0f} MiB"
    )
    assert median <= target
