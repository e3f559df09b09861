"""The ``kascade`` command line: run, validate and graph, with their exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli_support import alive, private_home, write  # noqa: F401  (the autouse fixture `home`)
from kascade.api.pipeline import PipelineSpec
from kascade.cli.main import cli
from kascade.cli.run_setup import SetupError, run_dates
from kascade.engine.run_dates import run_id

OPERATOR = Path(__file__).resolve().parents[2] / "operator"

CHAIN = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: chain}
spec:
  schedule: "@daily"
  params:
    rows: {type: integer, default: 1}
  defaults: {image: busybox:1.36}
  tasks:
    - name: extract
      script: echo "rows={{ params.rows }}" >> "$KASCADE_OUTPUTS"
    - name: load
      dependsOn: [extract]
      command: [sh, -c, "echo loaded {{ tasks.extract.outputs.rows | int }} on {{ ds }}"]
"""

FAILING = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: failing}
spec:
  defaults: {image: busybox:1.36}
  tasks:
    - {name: a, script: "echo oops; exit 2"}
    - {name: b, command: ["true"], dependsOn: [a]}
"""

INVALID = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: broken}
spec:
  schedule: "not a cron"
  tasks:
    - {name: a, image: busybox, command: ["true"], dependsOn: [nope]}
"""

GROUPS = """
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {name: grouped}
spec:
  defaults: {image: busybox:1.36, command: ["true"]}
  tasks:
    - {name: start, branch: true}
    - {name: end, dependsOn: [etl], triggerRule: none_failed}
  groups:
    - name: etl
      dependsOn: [start]
      tasks:
        - {name: extract, sensor: {kind: file, path: /tmp/x}}
        - {name: load, dependsOn: [extract], expand: {items: [1, 2]}}
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_run_json_output_shape_and_history(tmp_path: Path, home: Path) -> None:
    path = write(tmp_path, "chain.yaml", CHAIN)
    code, out, _ = invoke(
        "run", str(path), "--output", "json", "--param", "rows=7", "--logical-date", "2026-03-01"
    )
    assert code == 0
    record = json.loads(out)
    assert set(record) == {
        "pipeline",
        "runId",
        "phase",
        "logicalDate",
        "dataInterval",
        "startTime",
        "endTime",
        "durationSeconds",
        "message",
        "params",
        "tasks",
        "ref",
        "workdir",
        "rendered",
        "slaMisses",
        "pipelineSpec",
    }
    # Airflow's manual__<trigger time>: the run's own id, not its logical date's.
    assert record["runId"].startswith("manual__2026-") and record["runId"] != (
        "manual__2026-03-01T00:00:00+00:00"
    )
    assert record["logicalDate"] == "2026-03-01T00:00:00+00:00"
    assert record["dataInterval"] == {  # the manual-run rule: the interval ending at it
        "start": "2026-02-28T00:00:00+00:00",
        "end": "2026-03-01T00:00:00+00:00",
    }
    assert record["phase"] == "success"
    extract = record["tasks"]["extract"]
    assert set(extract) == {
        "state",
        "attempts",
        "durationSeconds",
        "outputs",
        "message",
        "exitCode",
        "startTime",
        "endTime",
        "tries",
        "pokes",
        "cached",
    }
    assert extract["outputs"] == {"rows": 7}
    assert extract["state"] == "success" and extract["exitCode"] == 0
    saved = home / "local-runs" / "chain" / f"{record['runId']}.json"
    assert json.loads(saved.read_text()) == record
    log = home / "local-runs/chain" / record["runId"] / "logs/load/attempt-1.log"
    assert log.read_text() == "loaded 7 on 2026-03-01\n"


def test_run_text_output_and_workdir(tmp_path: Path) -> None:
    path = write(tmp_path, "chain.yaml", CHAIN)
    code, out, _ = invoke("run", str(path), "--workdir", str(tmp_path / "wd"))
    assert code == 0
    assert " extract success (" in out and "TASK" in out and "STATE" in out
    assert "of chain: success" in out
    assert (tmp_path / "wd/logs/extract/attempt-1.log").exists()


def test_run_failure_exit_code_and_table(tmp_path: Path) -> None:
    path = write(tmp_path, "failing.yaml", FAILING)
    code, out, _ = invoke("run", str(path))
    assert code == 1
    assert "upstream_failed" in out
    assert "oops" in out  # the failed task's last log lines
    assert "of failing: failed" in out


def test_run_invalid_input_exits_2_with_every_issue(tmp_path: Path) -> None:
    path = write(tmp_path, "invalid.yaml", INVALID)
    code, _, err = invoke("run", str(path))
    assert code == 2
    assert "spec.schedule:" in err
    assert "spec.tasks[0].dependsOn[0]: unknown task or group 'nope'" in err


def test_run_bad_param_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "chain.yaml", CHAIN)
    code, _, err = invoke("run", str(path), "--param", "rows=many")
    assert code == 2
    assert "params.rows" in err


def test_run_several_pipelines_needs_a_choice(tmp_path: Path) -> None:
    path = write(tmp_path, "two.yaml", CHAIN + "---\n" + FAILING)
    code, _, err = invoke("run", str(path))
    assert code == 2 and "--pipeline" in err
    code, out, _ = invoke("run", str(path), "--pipeline", "chain", "-q")
    assert code == 0 and "of chain: success" in out


def test_validate_reports_ok_and_issues(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", CHAIN)
    bad = write(tmp_path, "bad.yaml", INVALID)
    code, out, _ = invoke("validate", str(good))
    assert code == 0
    assert out == f"{good}: OK (2 tasks)\n"
    code, out, _ = invoke("validate", str(good), str(bad))
    assert code == 1
    assert f"{good}: OK (2 tasks)" in out
    assert f"{bad}: spec.tasks[0].dependsOn[0]: unknown task or group 'nope'" in out
    assert f"{bad}: spec.schedule: " in out


def test_validate_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "kind: Pipeline\nspec: [unclosed\n")
    code, out, _ = invoke("validate", str(path))
    assert code == 1 and "not valid YAML" in out


def test_graph_mermaid_and_dot_have_groups_and_edges(tmp_path: Path) -> None:
    path = write(tmp_path, "groups.yaml", GROUPS)
    code, out, _ = invoke("graph", str(path), "--format", "mermaid")
    assert code == 0
    assert out.startswith("flowchart LR\n")
    assert 'subgraph g_etl["etl"]' in out
    assert "t_start --> t_etl_extract" in out
    assert "t_etl_extract --> t_etl_load" in out
    assert "t_etl_load --> t_end" in out
    code, out, _ = invoke("graph", str(path), "--format", "dot")
    assert code == 0
    assert 'subgraph "cluster_etl"' in out
    assert '"start" -> "etl.extract";' in out
    assert '"etl.load" -> "end";' in out
    code, out, _ = invoke("graph", str(path))
    assert "etl.load  [mapped]  <- etl.extract" in out
    assert "end  [trigger:none_failed]" in out
    assert "start  [branch]" in out


def _module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_python_m_kascade_run_json(tmp_path: Path) -> None:
    path = write(tmp_path, "failing.yaml", FAILING)
    proc = _module("run", str(path), "--output", "json", cwd=tmp_path)
    assert proc.returncode == 1
    record = json.loads(proc.stdout)
    assert record["tasks"]["a"]["exitCode"] == 2
    assert record["tasks"]["b"]["state"] == "upstream_failed"
    assert " a failed " in proc.stderr  # progress goes to stderr with --output json


def test_python_m_kascade_validate(tmp_path: Path) -> None:
    path = write(tmp_path, "invalid.yaml", INVALID)
    proc = _module("validate", str(path), cwd=tmp_path)
    assert proc.returncode == 1
    assert "unknown task or group 'nope'" in proc.stdout


def test_interrupt_kills_every_task_and_exits_130(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    path = write(
        tmp_path,
        "long.yaml",
        f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: long}}
spec:
  defaults: {{image: busybox}}
  tasks:
    - {{name: a, script: "sleep 41 & echo $! > {tmp_path}/child; touch {ready}; wait"}}
""",
    )
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kascade", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 130
    assert "interrupted" in err
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child), "the task's background child survived Ctrl-C"


def test_logical_date_follows_the_manual_run_rule() -> None:
    daily = PipelineSpec(schedule="@daily")
    now = datetime(2026, 3, 5, 15, 30, tzinfo=UTC)
    latest = run_dates(daily, None, now)
    assert latest.logical_date == now  # the moment of the trigger, as in Airflow
    assert (latest.interval.start, latest.interval.end) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 3, 5, tzinfo=UTC),
    )
    boundary = run_dates(daily, "2026-03-01", now)
    assert boundary.logical_date == datetime(2026, 3, 1, tzinfo=UTC)
    assert (boundary.interval.start, boundary.interval.end) == (
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    odd = run_dates(daily, "2026-03-01T12:00:00+02:00", now)
    assert odd.interval.end == datetime(2026, 3, 1, tzinfo=UTC)
    assert run_id("manual", odd.logical_date) == "manual__2026-03-01T10:00:00+00:00"
    manual = run_dates(PipelineSpec(), None, now).interval
    assert manual.start == manual.end == now
    with pytest.raises(SetupError, match="--logical-date"):
        run_dates(daily, "tomorrow", now)


def test_pool_option_limits_concurrency(tmp_path: Path) -> None:
    task = "{name: t%d, pool: db, script: 'mkdir lock || exit 9; sleep 0.4; rmdir lock'}"
    tasks = "\n".join(f"    - {task % i}" for i in range(3))
    path = write(
        tmp_path,
        "pool.yaml",
        f"""
apiVersion: kascade.io/v1alpha1
kind: Pipeline
metadata: {{name: pooled}}
spec:
  defaults: {{image: busybox}}
  tasks:
{tasks}
""",
    )
    code, out, _ = invoke("run", str(path), "--pool", "db=1", "--output", "json")
    assert code == 0, out
    code, out, _ = invoke("run", str(path), "--pool", "db=3", "--output", "json")
    assert code == 1  # three slots: they collide
    assert 9 in {t["exitCode"] for t in json.loads(out)["tasks"].values()}


def test_operator_refuses_to_start_without_an_approval_key_unless_told(tmp_path: Path) -> None:
    unset: dict[str, str | None] = {"KASCADE_APPROVAL": None, "KASCADE_APPROVAL_KEY_FILE": None}
    result = CliRunner(env=unset).invoke(cli, ["operator", "--namespace", "x"])
    assert result.exit_code == 2
    assert "--approval-key-file" in result.stderr and "--approval=off" in result.stderr
    short = write(tmp_path, "key", "too-short")
    result = CliRunner().invoke(cli, ["operator", "-A", "--approval-key-file", str(short)])
    assert result.exit_code == 2 and "at least 32 bytes" in result.stderr
