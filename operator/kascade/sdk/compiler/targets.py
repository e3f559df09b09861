"""The three compile targets (see ``kascade.sdk.lowering.Target``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path, PurePosixPath

import kascade
from kascade.sdk.compiler.bundle import MOUNT, Bundle
from kascade.sdk.execution.loader import DAGS_FOLDER_ENV
from kascade.sdk.lowering import PYTHON_IMAGE, Target

RUNTIME_MODULE = ("-m", "kascade.sdk.execution")
HOOK_BOOT = "import os; exec(compile(os.environ['KASCADE_BOOT'], 'boot.py', 'exec'))"


def local(dag_file: Path, folder: Path, names: dict[str, str] | None = None) -> Target:
    """``kascade run``: this interpreter, this kascade, the DAG file where it is."""
    root = str(Path(kascade.__file__).resolve().parent.parent)
    path = [root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env = (
        {"name": "PYTHONPATH", "value": os.pathsep.join(dict.fromkeys(path))},
        {"name": DAGS_FOLDER_ENV, "value": str(folder.resolve())},
    )
    python = (sys.executable, *RUNTIME_MODULE)
    return Target(
        kind="local",
        python=python,
        dag_file=str(dag_file.resolve()),
        host_file=dag_file.resolve(),
        env=env,
        hook_python=python,
        hook_env=env,
        names=names or {},
    )


def bundled(
    dag_file: Path, folder: Path, bundle: Bundle, image: str | None, names: dict[str, str]
) -> Target:
    """A cluster, the simple path: the bundle ConfigMap mounted into every runtime task."""
    return Target(
        kind="bundle",
        python=("python3", f"{MOUNT}/boot.py"),
        dag_file=dag_file.resolve().relative_to(folder.resolve()).as_posix(),
        host_file=dag_file.resolve(),
        default_image=image or PYTHON_IMAGE,
        volumes=(bundle.volume(),),
        volume_mounts=(bundle.mount(),),
        hook_python=("python3", "-c", HOOK_BOOT),
        hook_env=tuple(bundle.hook_env()),
        names=names,
    )


def in_image(
    dag_file: Path, folder: Path, image: str, dags_folder: str, names: dict[str, str]
) -> Target:
    """A cluster, the production path: an image with the DAG folder and kascade installed."""
    rel = dag_file.resolve().relative_to(folder.resolve()).as_posix()
    python = ("python3", *RUNTIME_MODULE)
    return Target(
        kind="image",
        python=python,
        dag_file=str(PurePosixPath(dags_folder) / rel),
        host_file=dag_file.resolve(),
        default_image=image,
        env=({"name": DAGS_FOLDER_ENV, "value": dags_folder},),
        hook_python=python,
        hook_env=({"name": DAGS_FOLDER_ENV, "value": dags_folder},),
        names=names,
    )
