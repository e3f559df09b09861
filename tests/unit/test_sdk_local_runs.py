"""Python DAGs run locally end to end (`kascade run dags/x.py`), outputs and states asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sdk_support import kascade, run_json

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "tests" / "e2e" / "sdk_dags" / "sdk_features.py"


def test_feature_dag_values_branch_group_mapping(tmp_path: Path) -> None:
    result = run_json(FEATURES, home=tmp_path / "home", env={"VAR_greeting": "hi"})
    assert result["phase"] == "success"
    states = {k: v["state"] for k, v in result["tasks"].items()}
    assert states["process.small"] == "skipped" and states["process.big"] == "success"
    assert [states[f"double[{i}]"] for i in range(5)] == ["success"] * 5
    tasks = result["tasks"]
    assert tasks["summary"]["outputs"]["return_value"] == {
        "total": 14,
        "doubled": 28,
        "greeting": "hi",
    }
    assert tasks["count"]["outputs"] == {"return_value": "5"}  # a bash task's last line
    assert tasks["container"]["outputs"] == {"seen": 5}
    assert tasks["choose"]["outputs"]["branch"] == ["process.big"]


def test_params_override_changes_the_branch(tmp_path: Path) -> None:
    result = run_json(FEATURES, "--param", "threshold=50", home=tmp_path / "home")
    states = {k: v["state"] for k, v in result["tasks"].items()}
    assert states["process.big"] == "skipped" and states["process.small"] == "success"
    assert result["tasks"]["summary"]["outputs"]["return_value"]["total"] is None


@pytest.fixture()
def http_server() -> Iterator[str]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"status": "ready" if len(hits) > 1 else "starting"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


SENSORS = '''
import os
from datetime import timedelta
from kascade.sdk import DAG, FileSensor, HttpSensor, PokeReturnValue, TimeDeltaSensor, task
from kascade.sdk import BaseHook

class NonEmptyFileSensor(FileSensor):
    """The seeds' ValidatedFileSensor pattern: a subclass whose poke calls super().poke()."""
    def poke(self, context):
        return super().poke(context) and os.path.getsize(self.filepath) > 0

with DAG("sensors", connections={"api": "api-conn"}) as dag:
    api = HttpSensor(task_id="api_ready", http_conn_id="api", endpoint="status",
                     response_check=lambda r: r.json()["status"] == "ready",
                     poke_interval=0.2, timeout=30)
    ready_file = NonEmptyFileSensor(task_id="file_ready", filepath=os.environ["SENSOR_FILE"],
                                    poke_interval=0.2, timeout=30, mode="reschedule")
    late = TimeDeltaSensor(task_id="after_interval", delta=timedelta(seconds=-1), poke_interval=1)

    @task.sensor(poke_interval=0.2, timeout=30)
    def counted(ti=None):
        return PokeReturnValue(is_done=True, xcom_value=ti.try_number)

    @task
    def conn_host():
        return BaseHook.get_connection("api").host

    [api, ready_file, late, counted()] >> conn_host()
'''


def test_python_sensors_poke_in_the_runtime(tmp_path: Path, http_server: str) -> None:
    dag = tmp_path / "sensors.py"
    dag.write_text(SENSORS)
    marker = tmp_path / "ready.txt"
    marker.write_text("x")
    host, port = http_server.split(":")
    env = {"SENSOR_FILE": str(marker), "CONN_API_HOST": host, "CONN_API_PORT": port}
    result = run_json(dag, "--logical-date", "2024-01-01", home=tmp_path / "home", env=env)
    states = {k: v["state"] for k, v in result["tasks"].items()}
    assert states == dict.fromkeys(
        ["api_ready", "file_ready", "after_interval", "counted", "conn_host"], "success"
    ), result
    assert result["tasks"]["api_ready"]["attempts"] >= 1
    assert result["tasks"]["counted"]["outputs"] == {"return_value": 1}
    assert result["tasks"]["conn_host"]["outputs"] == {"return_value": "127.0.0.1"}


def test_dag_test_runs_the_dag_in_place(tmp_path: Path) -> None:
    dag = tmp_path / "selftest.py"
    dag.write_text(
        "from kascade.sdk import DAG, task\n"
        "with DAG('selftest') as dag:\n"
        "    @task\n"
        "    def hello():\n"
        "        return 'hello'\n"
        "    hello()\n"
        "if __name__ == '__main__':\n"
        "    print('PHASE', dag.test())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KASCADE_HOME": str(tmp_path / "h")}
    proc = subprocess.run(
        [sys.executable, str(dag)], capture_output=True, text=True, env=env, timeout=120
    )
    assert "PHASE success" in proc.stdout, proc.stdout + proc.stderr


def test_graph_and_errors_for_python_files(tmp_path: Path) -> None:
    graph = kascade("graph", str(ROOT / "examples" / "python" / "weekday_branching.py"))
    assert "decide_branch  [branch]  <- start" in graph.stdout
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from kascade.sdk import DAG\nwith DAG('b'):\n    raise RuntimeError('boom')\n"
    )
    proc = kascade("run", str(broken), home=tmp_path / "home")
    assert proc.returncode == 2
    assert f"{broken}:3: RuntimeError: boom" in proc.stderr
