"""The Kascade runtime: what a Python task does in its pod or process.

The bundle tests run the runtime the way a pod does, in an isolated
interpreter (``-I -S``: no site-packages, no PYTHONPATH), so they fail if the
runtime needs anything but the standard library and the bundle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kascade.sdk.compiler import output
from kascade.sdk.compiler.project import Options, compile_paths
from kascade.sdk.execution import runner

ROOT = Path(__file__).resolve().parents[2]
DAG_SOURCE = """
import json
from kascade.sdk import DAG, task, BashOperator, PythonOperator, AirflowSkipException, PythonSensor

HELPER_FACTOR = 3

def make(n):
    def inner(**context):
        return n * HELPER_FACTOR
    return inner

def hook(context):
    print("HOOK", context["ti"].task_id, context["exception"])

with DAG("rt", params={"p": 1}, default_args={"on_failure_callback": hook}) as dag:
    closures = [PythonOperator(task_id=f"c{i}", python_callable=make(i)) for i in range(3)]

    @task
    def pull(ti=None, params=None, ds=None, **context):
        ti.xcom_push(key="extra", value=[1, 2])
        return {"c2": ti.xcom_pull(task_ids="c2"), "params": params, "ds": ds,
                "many": ti.xcom_pull(task_ids=["c0", "c1"])}

    @task
    def not_upstream(ti=None):
        return ti.xcom_pull(task_ids="c0")

    @task
    def too_big():
        return "x" * 5000

    @task
    def not_json():
        return {1, 2}

    @task
    def skip():
        raise AirflowSkipException("nothing to do")

    @task.branch
    def pick():
        return None

    PythonSensor(task_id="never", python_callable=lambda: False, mode="reschedule")
    templated = PythonOperator(task_id="templated", python_callable=lambda day, **c: day,
                               op_kwargs={"day": "{{ ds }}"})
    closures >> pull()
    not_upstream(); too_big(); not_json(); skip()
    pick() >> BashOperator(task_id="b", bash_command="true")
"""


@pytest.fixture()
def dag_file(tmp_path: Path) -> Path:
    path = tmp_path / "dags" / "rt.py"
    path.parent.mkdir()
    path.write_text(DAG_SOURCE)
    return path


def run_task(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    dag_file: Path,
    task: str,
    env: dict[str, str] | None = None,
    mode: str = "run",
) -> tuple[int, dict[str, Any]]:
    outputs = tmp_path / f"{task}.out"
    outputs.write_text("")
    base = {
        "KASCADE_OUTPUTS": str(outputs),
        "KASCADE_RUN_ID": "manual__2024-01-15T00:00:00+00:00",
        "KASCADE_LOGICAL_DATE": "2024-01-15T00:00:00+00:00",
        "KASCADE_TRY_NUMBER": "1",
    }
    for key, value in {**base, **(env or {})}.items():
        monkeypatch.setenv(key, value)
    code = runner.main([mode, "--file", str(dag_file), "--dag", "rt", "--task", task])
    text = outputs.read_text()
    return code, (json.loads(text) if text else {})


def test_closures_xcom_pull_push_and_context(monkeypatch, tmp_path, dag_file) -> None:  # type: ignore[no-untyped-def]
    assert run_task(monkeypatch, tmp_path, dag_file, "c2") == (0, {"return_value": 6})
    env = {
        "KASCADE_XCOM__c0": '{"return_value": 0}',
        "KASCADE_XCOM__c1": "null",
        "KASCADE_XCOM__c2": '{"return_value": 6}',
        "KASCADE_PARAMS": '{"p": 9}',
    }
    code, out = run_task(monkeypatch, tmp_path, dag_file, "pull", env)
    assert code == 0
    assert out == {
        "return_value": {"c2": 6, "params": {"p": 9}, "ds": "2024-01-15", "many": [0, None]},
        "extra": [1, 2],
    }


def test_runtime_errors_say_what_to_do(monkeypatch, tmp_path, dag_file, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run_task(monkeypatch, tmp_path, dag_file, "not_upstream")[0] == 1
    assert "task 'c0' is not upstream of 'not_upstream'" in capsys.readouterr().err
    assert run_task(monkeypatch, tmp_path, dag_file, "too_big")[0] == 1
    assert "over the 4096-byte limit" in capsys.readouterr().err
    assert run_task(monkeypatch, tmp_path, dag_file, "not_json")[0] == 1
    assert "must be JSON" in capsys.readouterr().err
    assert run_task(monkeypatch, tmp_path, dag_file, "skip")[0] == 1
    assert "a task cannot skip itself yet" in capsys.readouterr().err
    code = runner.main(["run", "--file", str(dag_file), "--dag", "nope", "--task", "x"])
    assert code == 2 and "builds no DAG 'nope' (found: rt)" in capsys.readouterr().err


def test_branch_none_follows_nothing_and_sensors_exit_100(monkeypatch, tmp_path, dag_file) -> None:  # type: ignore[no-untyped-def]
    assert run_task(monkeypatch, tmp_path, dag_file, "pick") == (0, {"branch": []})
    assert run_task(monkeypatch, tmp_path, dag_file, "never", mode="poke")[0] == 100


def test_templates_come_from_the_engine(monkeypatch, tmp_path, dag_file) -> None:  # type: ignore[no-untyped-def]
    env = {"KASCADE_TEMPLATE_0": "2024-01-15"}
    assert run_task(monkeypatch, tmp_path, dag_file, "templated", env) == (
        0,
        {"return_value": "2024-01-15"},
    )


def test_callbacks_find_the_task_from_the_hook_environment(monkeypatch, dag_file, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KASCADE_TASK", "c1")
    monkeypatch.setenv("KASCADE_MESSAGE", "c1 failed: exit code 1")
    code = runner.main(
        [
            "callback",
            "--file",
            str(dag_file),
            "--dag",
            "rt",
            "--scope",
            "task",
            "--callback",
            "on_failure_callback",
        ]
    )
    assert code == 0 and "HOOK c1 c1 failed: exit code 1" in capsys.readouterr().out


def _mount(tmp_path: Path, folder: Path) -> tuple[Path, dict[str, str], Any]:
    """Compile ``folder`` for the bundle path and lay the ConfigMap out as its volume."""
    result = compile_paths([folder], Options(target="bundle"))
    assert not result.problems, result.problems
    assert result.bundle is not None
    data = yaml.safe_load(output.render(result)[f"{result.bundle.name}.yaml"])["data"]
    mount = tmp_path / "opt-kascade"
    mount.mkdir()
    for key, value in data.items():
        (mount / key).write_text(value)
    return mount, data, result


def _boot(tmp_path: Path, mount: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the runtime as a pod does: python3 /opt/kascade/boot.py, no site-packages."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(mount / "boot.py"), *args],
        capture_output=True,
        text=True,
        env=_bare_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=60,
    )


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path), "HOME": str(tmp_path), **extra}


def test_bundle_runs_a_task_in_a_bare_python(tmp_path: Path, dag_file: Path) -> None:
    mount, _, _ = _mount(tmp_path, dag_file.parent)
    out = tmp_path / "termination-log"
    out.write_text("")
    proc = _boot(
        tmp_path,
        mount,
        "run",
        "--file",
        "rt.py",
        "--dag",
        "rt",
        "--task",
        "c1",
        KASCADE_OUTPUTS=str(out),
        KASCADE_RUN_ID="scheduled__2024-01-15T00:00:00+00:00",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == {"return_value": 3}


def test_bundle_runs_a_callback_from_environment_variables(tmp_path: Path, dag_file: Path) -> None:
    """A hook pod has no volumes: boot.py and the bundle arrive as environment variables."""
    from kascade.sdk.compiler.targets import HOOK_BOOT

    _, data, _ = _mount(tmp_path, dag_file.parent)
    env = _bare_env(
        tmp_path,
        KASCADE_BOOT=data["boot.py"],
        KASCADE_BUNDLE=data["bundle.zip.b64"],
        KASCADE_TASK="c0",
        KASCADE_MESSAGE="boom",
        KASCADE_EVENT="failure",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            HOOK_BOOT,
            "callback",
            "--file",
            "rt.py",
            "--dag",
            "rt",
            "--scope",
            "task",
            "--callback",
            "on_failure_callback",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "HOOK c0 boom" in proc.stdout


def test_the_sdk_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import kascade.sdk, kascade.sdk.execution.runner;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'yaml', 'kubernetes', 'kopf', 'click', 'rich', 'croniter'} or "
        "(m.startswith(('kascade.api', 'kascade.engine', 'kascade.sdk.compiler')) and "
        "m not in ('kascade.api', 'kascade.api.trigger_rules')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(ROOT / "operator")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dag_folder_is_on_the_path_for_nested_dag_files(tmp_path: Path) -> None:
    """As in Airflow, dags/team/etl.py can import dags/common/helpers.py."""
    dags = tmp_path / "dags"
    (dags / "common").mkdir(parents=True)
    (dags / "team").mkdir()
    (dags / "common" / "__init__.py").write_text("")
    (dags / "common" / "helpers.py").write_text("def answer():\n    return 42\n")
    (dags / "team" / "etl.py").write_text(
        "from common.helpers import answer\nfrom kascade.sdk import DAG, task\n"
        "with DAG('nested'):\n    @task\n    def t():\n        return answer()\n    t()\n"
    )
    (dags / ".kascadeignore").write_text("^ignored/\n")
    (dags / "ignored").mkdir()
    (dags / "ignored" / "broken_dag.py").write_text("import kascade.sdk\nraise SystemExit('dag')\n")
    mount, _, result = _mount(tmp_path, dags)
    assert [d.dag.dag_id for d in result.dags] == ["nested"]
    assert "ignored/broken_dag.py" not in result.bundle.files
    out = tmp_path / "out.json"
    out.write_text("")
    proc = _boot(
        tmp_path,
        mount,
        "run",
        "--file",
        "team/etl.py",
        "--dag",
        "nested",
        "--task",
        "t",
        KASCADE_OUTPUTS=str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == {"return_value": 42}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "operator"),
        "KASCADE_HOME": str(tmp_path / "h"),
        "KASCADE_DAGS_FOLDER": str(dags),
    }  # Airflow's dags_folder, for `kascade run FILE`
    local = subprocess.run(
        [sys.executable, "-m", "kascade", "run", str(dags / "team" / "etl.py"), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "success" in local.stdout, local.stderr


def test_a_dag_file_that_hangs_is_an_import_error(tmp_path: Path) -> None:
    from kascade.sdk.execution.loader import load_file

    path = tmp_path / "slow.py"
    path.write_text("import time\nfrom kascade.sdk import DAG\ntime.sleep(30)\n")
    loaded = load_file(path, timeout=0.3)
    assert [str(p) for p in loaded.problems] == [f"{path}: the file took longer than 0.3s to run"]
