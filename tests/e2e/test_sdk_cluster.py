"""Python DAGs on the real cluster: compiled, applied with `kascade apply`, run by the operator.

The SDK's e2e DAG (values between @tasks, a branch into a task group, a mapped
task, bash and container outputs, a Python callback in a hook pod) and a few of
the Python twins of manifests/examples end in the same task states on the
cluster as in the local runner.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from example_cases import ROOT
from sdk_support import kascade as run_kascade
from sdk_support import run_json, states

from .conftest import kubeconfig_path, wait_until
from .operator_support import Kascade, operator_namespace

pytestmark = pytest.mark.e2e
DAGS = Path(__file__).parent / "sdk_dags"
TWINS = ROOT / "examples" / "python"


def kascade(*args: str) -> subprocess.CompletedProcess[str]:
    return run_kascade(*args, env={"KUBECONFIG": kubeconfig_path()}, timeout=300)


def local_states(
    file: Path,
    dag: str,
    tmp: Path,
    env: dict[str, str] | None = None,
    logical_date: str | None = None,
) -> dict[str, str]:
    args = ["--dag", dag, "--workdir", str(tmp / dag)]
    args += ["--logical-date", logical_date] if logical_date else []
    return states(run_json(file, *args, home=tmp / "home", env=env))


@pytest.fixture(scope="module")
def kas(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "sdk", log) as k:
        k.core.create_namespaced_config_map(
            k.ns,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="sdk-e2e-vars"), data={"greeting": "bonjour"}
            ),
        )
        yield k


def test_feature_dag_same_states_as_locally(kas: Kascade, tmp_path: Path) -> None:
    applied = kascade("apply", str(DAGS), "-n", kas.ns)
    assert applied.returncode == 0, applied.stderr
    assert "pipeline/sdk-features created (dag sdk_features)" in applied.stdout
    assert "configmap/kascade-bundle-" in applied.stdout
    again = kascade("apply", str(DAGS), "-n", kas.ns)
    assert "pipeline/sdk-features unchanged" in again.stdout, again.stdout

    name = kas.create_run("sdk-features")
    run = kas.wait_run(name, timeout=300)
    expected = local_states(
        DAGS / "sdk_features.py", "sdk_features", tmp_path, env={"VAR_greeting": "bonjour"}
    )
    assert kas.task_states(run) == expected, (run.get("status") or {}).get("message")
    assert run["status"]["phase"] == "success"
    summary = next(
        t
        for t in kas.list("taskruns")
        if t["spec"]["pipelineRunRef"]["name"] == name and t["spec"]["taskName"] == "summary"
    )
    outputs = summary["status"]["outputs"]["return_value"]
    assert outputs == {"total": 14, "doubled": 28, "greeting": "bonjour"}

    # The on_success_callback ran the Python callback in a hook pod (bundle from env vars).
    def hook_log() -> str:
        pods = kas.core.list_namespaced_pod(kas.ns, label_selector="kascade.io/hook=true").items
        done = [p for p in pods if p.status.phase in ("Succeeded", "Failed")]
        return kas.core.read_namespaced_pod_log(done[0].metadata.name, kas.ns) if done else ""

    assert "sdk-features callback ran for summary" in wait_until(hook_log, 120, 1, "hook pod")


def test_prune_removes_what_the_folder_no_longer_builds(kas: Kascade, tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "one.py").write_text(
        "from kascade.sdk import DAG, BashOperator\n"
        "for name in ('prune_keep', 'prune_drop'):\n"
        "    with DAG(name, schedule=None):\n"
        "        BashOperator(task_id='hi', bash_command='echo hi')\n"
    )
    first = kascade("apply", str(folder), "-n", kas.ns, "--project", "prune-test")
    assert first.returncode == 0, first.stderr
    (folder / "one.py").write_text(
        "from kascade.sdk import DAG, BashOperator\n"
        "with DAG('prune_keep', schedule=None):\n"
        "    BashOperator(task_id='hi', bash_command='echo hello')\n"
    )
    second = kascade("apply", str(folder), "-n", kas.ns, "--project", "prune-test", "--prune")
    assert second.returncode == 0, second.stderr
    assert "pipeline/prune-drop pruned" in second.stdout
    assert "pruned" in second.stdout.split("configmap/kascade-bundle-", 2)[-1]
    names = {p["metadata"]["name"] for p in kas.list("pipelines")}
    assert "prune-keep" in names and "prune-drop" not in names
    assert "sdk-features" in names  # another project's pipeline is never pruned


def _image_with_the_dags(tmp: Path, ref: str) -> None:
    """The production path's image, without a registry: python:3.11-slim + kascade.sdk + DAGs."""
    import shutil
    import tarfile

    from kascade.sdk.compiler.bundle import runtime_files

    cached = Path.home() / ".cache/kascade/images/python_3.11-slim.tar"
    rootfs = tmp / "rootfs.tar"
    with tarfile.open(cached) as image:
        member = next(m for m in image.getmembers() if m.name.endswith("/layer.tar"))
        source = image.extractfile(member)
        assert source is not None
        with rootfs.open("wb") as out:
            shutil.copyfileobj(source, out)
    stage = tmp / "stage"
    for rel, path in runtime_files():
        (stage / "opt/lib" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, stage / "opt/lib" / rel)
    shutil.copytree(DAGS, stage / "opt/dags", ignore=shutil.ignore_patterns("__pycache__"))
    with tarfile.open(rootfs, "a") as layer:
        layer.add(stage / "opt", arcname="opt", filter=_root_owned)
    subprocess.run(
        [
            str(ROOT / "hack/cluster/import-rootfs-image.sh"),
            "--env",
            "PYTHONPATH=/opt/lib",
            "--env",
            "LANG=C.UTF-8",
            "--cmd",
            '["python3"]',
            str(rootfs),
            ref,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def _root_owned(info: Any) -> Any:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def test_production_path_an_image_with_the_dags(kas: Kascade, tmp_path: Path) -> None:
    """--image/--dags-folder: no bundle; the tasks run kascade.sdk from the image."""
    from kascade.sdk.compiler.project import Options, compile_paths

    ref = f"kascade-sdk-e2e:{os.getpid()}"
    _image_with_the_dags(tmp_path, ref)
    try:
        result = compile_paths([DAGS], Options("image", image=ref, dags_folder="/opt/dags"))
        assert not result.problems and result.bundle is None, result.problems
        doc = result.dags[0].pipeline
        doc["metadata"]["name"] = "sdk-features-image"
        kas.apply_pipeline(doc)
        name = kas.create_run("sdk-features-image")
        run = kas.wait_run(name, timeout=300)
        expected = local_states(
            DAGS / "sdk_features.py", "sdk_features", tmp_path, env={"VAR_greeting": "bonjour"}
        )
        assert kas.task_states(run) == expected, (run.get("status") or {}).get("message")
    finally:
        sock = Path.home() / ".local/state/kascade/cluster/containerd/containerd.sock"
        subprocess.run(
            [
                "ctr",
                "--address",
                str(sock),
                "-n",
                "k8s.io",
                "images",
                "rm",
                f"docker.io/library/{ref}",
            ],
            capture_output=True,
            timeout=60,
        )


@pytest.mark.parametrize(
    ("file", "dag", "logical_date"),
    [
        ("daily_etl.py", "daily_etl", None),
        ("weekday_branching.py", "weekday_branching", "2024-01-13T00:00:00+00:00"),
        ("parallel_regions.py", "parallel_regions", None),
        ("nested_groups.py", "nested_groups", None),
        ("retries_with_callbacks.py", "retries_with_callbacks", None),
    ],
)
def test_python_twins_same_states_as_locally(
    kas: Kascade, tmp_path: Path, file: str, dag: str, logical_date: str | None
) -> None:
    from kascade.sdk.compiler.project import Options, compile_paths

    result = compile_paths([TWINS / file], Options(target="bundle"))
    assert not result.problems, result.problems
    assert result.bundle is not None
    try:
        kas.core.create_namespaced_config_map(kas.ns, result.bundle.configmap())
    except client.exceptions.ApiException as exc:
        assert exc.status == 409  # the same bundle, made by an earlier case
    compiled = next(d for d in result.dags if d.dag.dag_id == dag)
    kas.apply_pipeline(compiled.pipeline)  # suspended: no scheduled runs besides ours
    name = kas.create_run(compiled.name, logical_date=logical_date)
    run = kas.wait_run(name, timeout=300)
    expected = local_states(TWINS / file, dag, tmp_path, logical_date=logical_date)
    assert kas.task_states(run) == expected, (run.get("status") or {}).get("message")
