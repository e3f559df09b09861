"""Compiling Python DAGs: golden manifests, determinism, references, and errors with file:line.

Golden files are the production-path output (``--image``), which does not
depend on the runtime's bytes; regenerate them with KASCADE_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kascade.engine.validation import validate_document
from kascade.sdk.compiler import output
from kascade.sdk.compiler.project import Options, compile_paths
from kascade.sdk.naming import pipeline_name
from kascade.sdk.templates import translate

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).parent / "sdk_dags"
GOLDEN = Path(__file__).parent / "sdk_golden"
IMAGE = Options(target="image", image="registry.example/dags:1", dags_folder="/opt/dags")


def compiled(path: Path, opts: Options = IMAGE) -> dict[str, str]:
    result = compile_paths([path], opts)
    assert not result.problems, [str(p) for p in result.problems]
    return output.render(result)


@pytest.mark.parametrize("name", ["taskflow.py", "classic.py"])
def test_golden_manifests(name: str) -> None:
    files = compiled(DAGS / name)
    for file, text in files.items():
        golden = GOLDEN / file
        if os.environ.get("KASCADE_UPDATE_GOLDEN"):
            GOLDEN.mkdir(exist_ok=True)
            golden.write_text(text)
        assert golden.is_file(), f"missing golden {golden}: run with KASCADE_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), f"{file} differs from its golden file"
        doc = yaml.safe_load(text)
        _, plan, issues = validate_document(doc)
        assert not issues and plan is not None


def test_output_is_deterministic_and_bundle_named_by_content(tmp_path: Path) -> None:
    first = compiled(DAGS, Options(target="bundle"))
    second = compiled(DAGS, Options(target="bundle"))
    assert first == second
    bundle = [f for f in first if f.startswith("kascade-bundle-")]
    assert len(bundle) == 1
    (tmp_path / "dags").mkdir()
    for f in DAGS.glob("*.py"):
        (tmp_path / "dags" / f.name).write_text(f.read_text())
    (tmp_path / "dags" / "data.csv").write_text("a,b\n")
    changed = compiled(tmp_path / "dags", Options(target="bundle"))
    assert [f for f in changed if f.startswith("kascade-bundle-")] != bundle


def test_pipeline_names_from_dag_ids() -> None:
    assert pipeline_name("process_customer_A") == "process-customer-a"
    assert pipeline_name("hello-world") == "hello-world"
    long = pipeline_name("x" * 80)
    assert len(long) <= 63 and long != pipeline_name("x" * 81)


def test_defaults_are_hoisted_and_tasks_keep_their_own() -> None:
    doc = yaml.safe_load(compiled(DAGS / "classic.py")["customer-etl-pipeline.yaml"])
    spec = doc["spec"]
    assert spec["defaults"]["retries"] == 3 and spec["defaults"]["retryDelay"] == "5m"
    assert spec["defaults"]["retryExponentialBackoff"] is True
    assert all("retries" not in t for t in spec["tasks"])
    assert doc["metadata"]["annotations"]["kascade.io/dag-id"] == "customer_etl_pipeline"


def test_group_references_resolve_to_the_intended_task(tmp_path: Path) -> None:
    (tmp_path / "refs.py").write_text(
        "from kascade.sdk import DAG, BashOperator, TaskGroup\n"
        "with DAG('refs') as d:\n"
        "    top = BashOperator(task_id='top', bash_command='echo 1')\n"
        "    with TaskGroup('g'):\n"
        "        inner = BashOperator(task_id='inner', bash_command='echo 2')\n"
        "        cmd = f'echo {top.output} {inner.output}'\n"
        "        user = BashOperator(task_id='user', bash_command=cmd)\n"
        "    top >> inner >> user\n"
        "    top >> user\n"
    )
    doc = yaml.safe_load(compiled(tmp_path / "refs.py", Options(target="local"))["refs.yaml"])
    user = doc["spec"]["groups"][0]["tasks"][1]
    assert user["dependsOn"] == ["top", "inner"]
    assert "tasks.top.outputs.return_value" in user["command"][4]
    assert "tasks.inner.outputs.return_value" in user["command"][4]
    _, plan, issues = validate_document(doc)
    assert not issues and plan is not None
    ups = {plan.tasks[i].id for i in plan.graph.upstream[plan.index["g.user"]]}
    assert ups == {"top", "g.inner"}


def test_a_reference_the_api_cannot_express_is_an_error(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "from kascade.sdk import DAG, BashOperator, TaskGroup\n"
        "with DAG('refs') as d:\n"
        "    top = BashOperator(task_id='extract', bash_command='echo 1')\n"
        "    with TaskGroup('g'):\n"
        "        inner = BashOperator(task_id='extract', bash_command='echo 2')\n"
        "    top >> inner\n",
    )
    assert any(":5: DAG 'refs': task 'g.extract'" in p and "rename one of them" in p for p in found)


@pytest.mark.parametrize(
    ("airflow", "kascade"),
    [
        ("{{ ti.xcom_pull(task_ids='a') }}", "{{ tasks.a.outputs.return_value }}"),
        (
            "{{ task_instance.xcom_pull(task_ids=\"g.a\", key='rows') }}",
            "{{ tasks.g.a.outputs.rows }}",
        ),
        ("{{ ti.xcom_pull('a', key='k-1') }}", "{{ tasks.a.outputs['k-1'] }}"),
        ("{{ macros.ds_add(ds, -7) }}", "{{ (ds | ds_add(-7)) }}"),
        (
            "{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m') }}",
            "{{ (ds | ds_format('%Y-%m-%d', '%d/%m')) }}",
        ),
        ("{{ execution_date }} {{ ti.try_number }}", "{{ logical_date }} {{ task.try_number }}"),
        ("{{ dag.dag_id }}", "{{ 'my_dag' }}"),
        ("no template", "no template"),
    ],
)
def test_airflow_jinja_is_written_in_kascade_templates(airflow: str, kascade: str) -> None:
    assert translate(airflow, "my_dag") == kascade


def problems_of(tmp_path: Path, source: str) -> list[str]:
    path = tmp_path / "broken.py"
    path.write_text(source)
    return [str(p) for p in compile_paths([path], Options(target="local")).problems]


@pytest.mark.parametrize(
    ("source", "line", "message"),
    [
        ("from kascade.sdk import DAG\nwith DAG('d'):\n    x = (\n", 3, "SyntaxError"),
        ("from kascade.sdk import DAG\nimport json\n\njson.loads('{')\n", 4, "JSONDecodeError"),
        (
            "from kascade.sdk import DAG, EmptyOperator\n"
            "with DAG('d', default_args={'email': 'ops-team'}):\n"
            "    EmptyOperator(task_id='t')\n",
            2,
            "spec.defaults.email[0]: 'ops-team' is not an e-mail address",
        ),
        (
            "from kascade.sdk import DAG, EmailOperator\nwith DAG('d'):\n"
            "    EmailOperator(task_id='m', to='ops', subject='s', html_content='h')\n",
            3,
            "task 'm': spec.tasks[0].sendEmail.to[0]: 'ops' is not an e-mail address",
        ),
        (
            "from kascade.sdk import DAG, BashOperator\nwith DAG('d'):\n"
            "    BashOperator(task_id='t', bash_command='echo {{ nope.x }}')\n",
            3,
            "task 't': spec.tasks[0].command[4]: unknown template variable 'nope'",
        ),
        (
            "from kascade.sdk import DAG, BashOperator\nwith DAG('d'):\n"
            "    a = BashOperator(task_id='a', bash_command='echo 1')\n"
            "    BashOperator(task_id='b', bash_command=f'echo {a.output}')\n",
            4,
            "tasks.a is not upstream of 'b'",
        ),
        (
            "from kascade.sdk import DAG, EmptyOperator\nwith DAG('d', schedule='61 * * * *'):\n"
            "    EmptyOperator(task_id='t')\n",
            2,
            "spec.schedule",
        ),
        (
            "from kascade.sdk import DAG, EmptyOperator\nwith DAG('d'):\n"
            "    EmptyOperator(task_id='bad id!')\n",
            3,
            "task id 'bad id!' must be letters",
        ),
        (
            "from kascade.sdk import DAG, EmptyOperator\nwith DAG('d') as d:\n"
            "    a = EmptyOperator(task_id='a')\n    b = EmptyOperator(task_id='b')\n"
            "    a >> b >> a\n",
            2,
            "cycle in DAG 'd'",
        ),
        (
            "from kascade.sdk import DAG, EmptyOperator\nfor n in ('a_b', 'a-b'):\n"
            "    with DAG(n):\n        EmptyOperator(task_id='t')\n",
            3,
            "both map to the Pipeline",
        ),
        (
            "from kascade.sdk import DAG, BashOperator\nwith DAG('d'):\n"
            "    BashOperator(task_id='t', bash_command='{% if x %}y{% endif %}')\n",
            3,
            "Jinja statements",
        ),
    ],
)
def test_problems_name_the_file_and_line(
    tmp_path: Path, source: str, line: int, message: str
) -> None:
    found = problems_of(tmp_path, source)
    assert found, "expected a problem"
    assert any(
        p.startswith(f"{tmp_path / 'broken.py'}:{line}: ") and message in p for p in found
    ), found


def test_validate_command_maps_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "from kascade.sdk import DAG, BashOperator\nwith DAG('bad_dag'):\n"
        "    BashOperator(task_id='t', bash_command='echo {{ nope }}')\n"
    )
    (tmp_path / "good.py").write_text(
        "from kascade.sdk import DAG, BashOperator\nwith DAG('good_dag'):\n"
        "    BashOperator(task_id='t', bash_command='echo ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    proc = subprocess.run(
        [sys.executable, "-m", "kascade", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert f"{tmp_path / 'bad.py'}:3: DAG 'bad_dag': task 't'" in proc.stdout
    assert "good_dag: OK (1 tasks, pipeline good-dag)" in proc.stdout


def test_compile_command_writes_checks_and_removes_stale(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "two.py").write_text(
        "from kascade.sdk import DAG, BashOperator\n"
        "for n in ('first', 'second'):\n"
        "    with DAG(n):\n        BashOperator(task_id='t', bash_command='echo ' + n)\n"
    )
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kascade", "compile", str(dags), "-o", str(out), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    assert run().returncode == 0
    names = sorted(p.name for p in out.iterdir())
    assert names[:2] == ["first.yaml", "kascade-bundle-" + names[1][15:]] or "first.yaml" in names
    assert (out / "first.yaml").read_text().startswith(output.MARK)
    assert run("--check").returncode == 0
    (out / "mine.yaml").write_text("# not generated\n")
    (dags / "two.py").write_text((dags / "two.py").read_text().replace("'second'", "'third'"))
    stale = run("--check")
    assert stale.returncode == 1 and "second.yaml" in stale.stderr
    assert run().returncode == 0
    assert not (out / "second.yaml").exists() and (out / "third.yaml").exists()
    assert (out / "mine.yaml").exists()
    assert re.search(r"kascade-bundle-[0-9a-f]{12}\.yaml", " ".join(p.name for p in out.iterdir()))


def test_bash_script_files_are_read_next_to_the_dag(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "run.sh").write_text("echo from the script {{ ds }}\n")
    (tmp_path / "script_dag.py").write_text(
        "from kascade.sdk import DAG, BashOperator\nwith DAG('script_dag'):\n"
        "    BashOperator(task_id='t', bash_command='scripts/run.sh', do_xcom_push=False)\n"
        "    BashOperator(task_id='missing', bash_command='nope.sh')\n"
    )
    found = problems_of(tmp_path, (tmp_path / "script_dag.py").read_text())
    assert any(":4: " in p and "names a script template that cannot be read" in p for p in found)
    (tmp_path / "broken.py").unlink()
    (tmp_path / "script_dag.py").write_text(
        (tmp_path / "script_dag.py")
        .read_text()
        .replace("    BashOperator(task_id='missing', bash_command='nope.sh')\n", "")
    )
    doc = yaml.safe_load(
        compiled(tmp_path / "script_dag.py", Options(target="local"))["script-dag.yaml"]
    )
    assert doc["spec"]["tasks"][0]["command"] == ["bash", "-c", "echo from the script {{ ds }}\n"]


def test_callbacks_need_a_bundle_small_enough_for_a_hook(tmp_path: Path) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(150_000))
    (tmp_path / "cb.py").write_text(
        "from kascade.sdk import DAG, BashOperator\n"
        "def cb(context):\n    print(context)\n"
        "with DAG('cb', on_failure_callback=cb):\n"
        "    BashOperator(task_id='t', bash_command='true')\n"
    )
    found = [str(p) for p in compile_paths([tmp_path], Options(target="bundle")).problems]
    assert any(":4: DAG 'cb': its callbacks run in hook pods" in p for p in found), found
    (tmp_path / ".kascadeignore").write_text(r"\.bin$" + "\n")
    assert not compile_paths([tmp_path], Options(target="bundle")).problems


def test_images_of_native_tasks_and_their_callback_hooks(tmp_path: Path) -> None:
    (tmp_path / "images.py").write_text(
        "from kascade.sdk import DAG, HttpSensor, KubernetesPodOperator, task\n"
        "def cb(context):\n    pass\n"
        "with DAG('images', default_args={'image': 'my/python:1', 'on_failure_callback': cb}):\n"
        "    HttpSensor(task_id='h1', endpoint='http://x/ready')\n"
        "    HttpSensor(task_id='h2', endpoint='http://x/ready', image='my/wget:1')\n"
        "    KubernetesPodOperator(task_id='pod', image='busybox:1.36', cmds=['true'])\n"
        "    @task\n"
        "    def py():\n        pass\n"
        "    py()\n"
    )
    doc = yaml.safe_load(compiled(tmp_path / "images.py", Options(target="local"))["images.yaml"])
    tasks = {t["name"]: t for t in doc["spec"]["tasks"]}
    assert tasks["h1"]["image"] == "busybox:1.36"  # the native poke needs wget
    assert tasks["h2"]["image"] == "my/wget:1"
    assert doc["spec"]["defaults"]["image"] == "my/python:1"
    hooks = doc["spec"]["defaults"]["notifications"]
    assert hooks[0]["hook"]["image"] == "my/python:1"  # the DAG's Python image, not busybox
    assert "notifications" not in tasks["pod"]


def test_a_long_chain_does_not_carry_every_output_into_every_task(tmp_path: Path) -> None:
    (tmp_path / "chain.py").write_text(
        "from kascade.sdk import DAG, task\n"
        "@task\ndef step(x):\n    return x + 1\n"
        "@task\ndef last(x, ti=None):\n    return ti.xcom_pull(task_ids='s3') + x\n"
        "with DAG('chain') as dag:\n"
        "    value = step.override(task_id='s0')(0)\n"
        "    for i in range(1, 100):\n"
        "        value = step.override(task_id=f's{i}')(value)\n"
        "    last(value)\n"
    )
    doc = yaml.safe_load(compiled(tmp_path / "chain.py", Options(target="local"))["chain.yaml"])
    tasks = {t["name"]: t for t in doc["spec"]["tasks"]}
    names = {e["name"] for e in tasks["last"]["env"] if e["name"].startswith("KASCADE_XCOM__")}
    assert names == {"KASCADE_XCOM__s99", "KASCADE_XCOM__s3"}
    early = {e["name"] for e in tasks["s50"]["env"] if e["name"].startswith("KASCADE_XCOM__")}
    assert len(early) == 50  # up to 64 upstream tasks: all of them


def test_task_level_params_must_be_the_dags(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "from kascade.sdk import DAG, BashOperator\nwith DAG('d', params={'a': 1}):\n"
        "    BashOperator(task_id='ok', bash_command='true', params={'a': 1})\n"
        "    BashOperator(task_id='t', bash_command='true', params={'b': 2})\n",
    )
    assert len(found) == 1 and ":4: DAG 'd': task 't': params={'b': ...}" in found[0], found
