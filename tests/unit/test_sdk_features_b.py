"""The SDK side of caching and TaskTemplates (SqlSensor/S3KeySensor and days_ago are tested
with their features: test_connection_sensors.py, test_relative_start_date.py).

``cache_key``/``cache_expiration`` on any operator become the task's ``cache``;
``TaskTemplateOperator`` uses a TaskTemplate by name, with templated inputs. A DAG folder's
TaskTemplate manifests (``*.yaml``) are what ``kascade compile``/``validate``/``run`` check
such a DAG against, and what the local run uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kascade.sdk import DAG, BashOperator
from kascade.sdk.compiler.project import Options, compile_paths

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = """
from datetime import datetime, timedelta
from kascade.sdk import DAG, BashOperator, TaskTemplateOperator
with DAG("shared", schedule="@daily", start_date=datetime(2024, 1, 1),
         params={"api": "https://api.example"}):
    get = TaskTemplateOperator(task_id="get", template="fetch",
                               inputs={"url": "{{ params.api }}/{{ ds }}"}, retries=3)
    rates = BashOperator(task_id="rates", bash_command="echo 1.1",
                         cache_key="rates-{{ ds }}", cache_expiration=timedelta(hours=6))
    get >> rates
"""
TEMPLATES = """
apiVersion: kascade.io/v1alpha1
kind: TaskTemplate
metadata: {name: fetch}
spec:
  inputs: [{name: url}]
  task: {image: busybox:1.36, command: [sh, -c, 'echo "fetch {{ inputs.url }}"']}
"""


def test_cache_key_and_task_template_operator_compile(tmp_path: Path) -> None:
    (tmp_path / "dag.py").write_text(DAG_FILE)
    (tmp_path / "templates.yaml").write_text(TEMPLATES)
    result = compile_paths([tmp_path], Options(target="image", image="dags:1", dags_folder="/d"))
    assert not result.problems, [str(p) for p in result.problems]
    (compiled,) = result.dags
    tasks = {t["name"]: t for t in compiled.pipeline["spec"]["tasks"]}
    assert tasks["get"]["template"] == {
        "name": "fetch",
        "kind": "TaskTemplate",
        "inputs": {"url": "{{ params.api }}/{{ ds }}"},
    }
    assert tasks["get"]["retries"] == 3
    assert tasks["rates"]["cache"] == {"key": "rates-{{ ds }}", "expiresAfter": "6h"}
    (tmp_path / "templates.yaml").unlink()
    missing = compile_paths([tmp_path], Options(target="image", image="dags:1", dags_folder="/d"))
    assert any("no TaskTemplate 'fetch' in the namespace" in str(p) for p in missing.problems)


def test_a_python_dag_runs_locally_with_the_folders_task_template(tmp_path: Path) -> None:
    (tmp_path / "dag.py").write_text(DAG_FILE)
    (tmp_path / "templates.yaml").write_text(TEMPLATES)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KASCADE_HOME": str(tmp_path / "h")}

    def run() -> dict[str, dict[str, object]]:
        args = [
            sys.executable,
            "-m",
            "kascade",
            "run",
            str(tmp_path / "dag.py"),
            "--output",
            "json",
        ]
        proc = subprocess.run(
            [*args, "--logical-date", "2024-01-15"], env=env, capture_output=True, text=True
        )
        record = json.loads(proc.stdout)
        assert record["phase"] == "success", proc.stderr
        return dict(record["tasks"])

    first = run()
    log = next((tmp_path / "h").rglob("get/attempt-1.log")).read_text()
    assert log == "fetch https://api.example/2024-01-15\n"
    assert first["rates"]["cached"] is False
    assert run()["rates"]["cached"] is True  # the second local run reuses it


def test_cache_expiration_needs_a_key() -> None:
    with DAG("d"), pytest.raises(ValueError, match="cache_expiration needs a cache_key"):
        BashOperator(task_id="t", bash_command="true", cache_expiration=60)
