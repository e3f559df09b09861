"""Local runs against real processes: own folders, interruption, and nothing left behind (issue 13).

* Every ``kascade run`` gets its own id (``manual__<trigger time>``) and folder, so two
  runs of one logical date neither mix outputs nor overwrite each other's history.
* Ctrl-C or SIGTERM keeps the table and the record (the run is failed, interrupted),
  exits 130 or 143, and a second Ctrl-C kills at once.
* Whatever a task starts dies with its attempt: ``sleep 300 &`` after exit 0, and a
  ``setsid`` grandchild after a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_support import alive, private_home, write  # noqa: F401  (the autouse fixture `home`)
from kascade.cli.main import cli

OPERATOR = Path(__file__).resolve().parents[2] / "operator"

WAIT_GONE = """
import sys, time
pids = [int(p) for p in open(sys.argv[1]).read().split()]
def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
deadline = time.monotonic() + 10
while any(alive(p) for p in pids) and time.monotonic() < deadline:
    time.sleep(0.05)
left = [p for p in pids if alive(p)]
print("left:", left)
sys.exit(1 if left or len(pids) < 3 else 0)
"""


def start(path: Path, *args: str, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR), "KASCADE_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "kascade", "run", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=path.parent,
    )


def wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


# -- every run its own id and folder ------------------------------------------------------------
SAME_DAY = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: same-day}
spec:
  params:
    v: {type: string, default: none}
  tasks:
    - {name: a, image: busybox, script: 'echo v={{ params.v }} > "$KASCADE_OUTPUTS"; sleep 1.5'}
    - {name: b, image: busybox, dependsOn: [a], command: [echo, "{{ tasks.a.outputs.v }}"]}
"""


def test_two_runs_of_one_logical_date_have_their_own_folders_and_records(
    tmp_path: Path, home: Path
) -> None:
    path = write(tmp_path, "p.yaml", SAME_DAY.replace("sleep 1.5", "true"))
    ids = []
    for value in ("first", "second"):
        args = ["run", str(path), "--logical-date", "2026-01-15", "--param", f"v={value}"]
        result = CliRunner().invoke(cli, [*args, "--output", "json"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.stdout)["runId"])
    assert ids[0] != ids[1]
    folder = home / "local-runs" / "same-day"
    for run_id, value in zip(ids, ("first", "second"), strict=True):
        record = json.loads((folder / f"{run_id}.json").read_text())
        assert record["logicalDate"] == "2026-01-15T00:00:00+00:00"
        assert record["tasks"]["b"]["state"] == "success"
        assert (folder / run_id / "logs/b/attempt-1.log").read_text() == f"{value}\n"


def test_concurrent_runs_of_one_logical_date_never_read_each_others_outputs(
    tmp_path: Path, home: Path
) -> None:
    """Run 2's task starts while run 1's is still running; with one shared folder run 2
    emptied and rewrote run 1's outputs file, and run 1 read 'second'."""
    path = write(tmp_path, "p.yaml", SAME_DAY)
    first = start(path, "--logical-date", "2026-01-15", "--param", "v=first", home=home)
    time.sleep(0.5)
    second = start(path, "--logical-date", "2026-01-15", "--param", "v=second", home=home)
    for proc in (first, second):
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    records = [
        json.loads(p.read_text()) for p in sorted((home / "local-runs" / "same-day").glob("*.json"))
    ]
    assert len(records) == 2
    seen = sorted(r["tasks"]["a"]["outputs"]["v"] for r in records)
    assert seen == ["first", "second"]


# -- nothing outlives its attempt ------------------------------------------------------------
def test_background_children_die_when_the_task_exits_zero(tmp_path: Path) -> None:
    """``sleep 300 &`` (same group), ``setsid sleep 300 &`` (own session) and a daemon's
    double fork (its parent gone) are all killed once the task's main process ends: the
    next task finds them gone, and nothing is left after the run."""
    pids = tmp_path / "pids"
    checker = write(tmp_path, "gone.py", WAIT_GONE)
    path = write(
        tmp_path,
        "leak.yaml",
        f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: leak}}
spec:
  tasks:
    - name: a
      image: busybox
      script: |
        sleep 300 & echo $! >> {pids}
        setsid sleep 300 & echo $! >> {pids}
        (setsid sh -c 'sleep 300 & echo $! >> {pids}; wait' &)
        while [ "$(wc -l < {pids})" -lt 3 ]; do sleep 0.05; done
    - {{name: b, image: python, dependsOn: [a], command: [{sys.executable}, {checker}, {pids}]}}
""",
    )
    result = CliRunner().invoke(cli, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    left = [p for p in map(int, pids.read_text().split()) if alive(p)]
    assert not left


def test_a_timeout_kills_a_setsid_grandchild(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    path = write(
        tmp_path,
        "slow.yaml",
        f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: slow}}
spec:
  tasks:
    - name: a
      image: busybox
      timeout: 1s
      script: |
        setsid sh -c 'sleep 300 & echo $! >> {pids}; sleep 300' & echo $! >> {pids}
        sleep 300
""",
    )
    result = CliRunner().invoke(cli, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "timed out after 1.0s" in result.output
    deadline = time.monotonic() + 5
    while any(alive(p) for p in map(int, pids.read_text().split())):
        assert time.monotonic() < deadline, "a setsid grandchild survived the timeout"
        time.sleep(0.05)


# -- Ctrl-C and SIGTERM ----------------------------------------------------------------------
LONG = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: long}}
spec:
  tasks:
    - {{name: quick, image: busybox, command: ["true"]}}
    - {{name: slow, image: busybox, dependsOn: [quick], script: "{script}"}}
    - {{name: after, image: busybox, dependsOn: [slow], command: ["true"]}}
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_keeps_its_table_and_record(
    tmp_path: Path, home: Path, sig: signal.Signals, code: int
) -> None:
    ready = tmp_path / "ready"
    path = write(tmp_path, "long.yaml", LONG.format(script=f"touch {ready}; sleep 60"))
    proc = start(path, home=home)
    wait_for(ready)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    name = "Ctrl-C" if sig is signal.SIGINT else "SIGTERM"
    # The table of what happened, with the log folder.
    rows = [line.split() for line in out.splitlines()]
    assert ["quick", "success"] in [r[:2] for r in rows], out
    assert ["slow", "failed"] in [r[:2] for r in rows], out
    assert f"interrupted by {name}" in out and "logs: " in out
    assert f"interrupted by {name}: every task process was stopped" in err
    # The history keeps the run, failed as interrupted.
    [saved] = (home / "local-runs" / "long").glob("*.json")
    record = json.loads(saved.read_text())
    assert record["phase"] == "failed" and record["message"] == f"interrupted by {name}"
    assert record["tasks"]["slow"]["state"] == "failed"
    assert record["tasks"]["after"]["state"] == "none"


def test_a_second_ctrl_c_kills_at_once(tmp_path: Path, home: Path) -> None:
    ready = tmp_path / "ready"
    script = f"trap '' TERM; echo $$ > {tmp_path}/pid; touch {ready}; sleep 60"
    path = write(tmp_path, "long.yaml", LONG.format(script=script))
    proc = start(path, home=home)
    wait_for(ready)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)  # in the 5 s grace: the task ignores SIGTERM
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert time.monotonic() - sent < 2.5
    assert proc.returncode == 130
    assert not alive(int((tmp_path / "pid").read_text()))


def test_a_reused_pid_is_not_blamed_for_an_ended_attempt() -> None:
    """A new leader can only get a pid once no group or session of that id is left, so
    the ended attempt's group is forgotten then (its processes are all gone)."""
    from kascade.local.reaper import Reaper

    reaper = Reaper()
    reaper.started(4242)
    reaper.ended_attempt("1.1", 4242)
    assert reaper.ended == {"1.1": 4242}
    reaper.started(4242)
    assert reaper.ended == {}
    assert reaper.leaders == {4242}


def test_ctrl_c_after_a_triggered_child_run_still_stops_the_parent(
    tmp_path: Path, home: Path
) -> None:
    """A triggered child run shares its parent's event loop: it must not take the signal
    handlers away with it when it ends."""
    ready = tmp_path / "ready"
    path = write(
        tmp_path,
        "trig.yaml",
        f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: parent}}
spec:
  tasks:
    - name: go
      triggerPipeline: {{pipeline: child, waitForCompletion: true, pokeInterval: 1s}}
    - {{name: long, image: busybox, dependsOn: [go], script: "touch {ready}; sleep 60"}}
---
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: child}}
spec:
  tasks:
    - {{name: c, image: busybox, command: ["true"]}}
""",
    )
    proc = start(path, "--pipeline", "parent", home=home)
    wait_for(ready)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted by Ctrl-C: every task process was stopped" in err
    assert ["go", "success"] in [line.split()[:2] for line in out.splitlines()]
