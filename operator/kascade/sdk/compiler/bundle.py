"""The simple path to a cluster: the DAG folder and the runtime in one ConfigMap.

The ConfigMap is immutable and named after its content
(``kascade-bundle-<hash>``), so a run keeps the files it started with while a
new version is applied beside it; ``kascade apply --prune`` removes versions no
Pipeline and no active run uses. The production path is an image with the DAGs
and kascade inside (``kascade compile --image``): no ConfigMap at all.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kascade
from kascade.sdk.compiler import boot

BOOT_KEY = "boot.py"
BUNDLE_KEY = boot.BUNDLE_KEY
MOUNT = "/opt/kascade"
VOLUME = "kascade-bundle"
LABEL = "kascade.io/bundle"
#: ConfigMaps hold at most 1 MiB; leave room for metadata.
MAX_CONFIGMAP_BYTES = 1_000_000
#: One environment variable (a hook's bundle) is capped by the kernel at 128 KiB.
MAX_HOOK_BUNDLE_BYTES = 120_000
MAX_FILE_BYTES = 2_000_000
_STAMP = (1980, 1, 1, 0, 0, 0)
IGNORE_FILE = ".kascadeignore"


class BundleError(ValueError):
    pass


@dataclass(frozen=True)
class Bundle:
    name: str
    text: str
    """The zip, base64."""
    files: tuple[str, ...]

    def configmap(self, namespace: str | None = None) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": self.name,
            "labels": {"app.kubernetes.io/managed-by": "kascade-sdk", LABEL: "true"},
        }
        if namespace:
            metadata["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "immutable": True,
            "data": {BOOT_KEY: Path(boot.__file__).read_text(), BUNDLE_KEY: self.text},
        }

    def volume(self) -> dict[str, Any]:
        return {"name": VOLUME, "configMap": {"name": self.name}}

    def mount(self) -> dict[str, Any]:
        return {"name": VOLUME, "mountPath": MOUNT, "readOnly": True}

    def hook_env(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "KASCADE_BOOT",
                "valueFrom": {"configMapKeyRef": {"name": self.name, "key": BOOT_KEY}},
            },
            {
                "name": "KASCADE_BUNDLE",
                "valueFrom": {"configMapKeyRef": {"name": self.name, "key": BUNDLE_KEY}},
            },
        ]


def ignore_patterns(folder: Path) -> list[re.Pattern[str]]:
    """``.kascadeignore`` (Airflow's ``.airflowignore``): one regular expression per line."""
    file = folder / IGNORE_FILE
    if not file.is_file():
        return []
    lines = [ln.strip() for ln in file.read_text().splitlines()]
    return [re.compile(ln) for ln in lines if ln and not ln.startswith("#")]


def dag_folder_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """Every file the tasks may read: all but hidden files, caches and ``.kascadeignore`` hits."""
    patterns = ignore_patterns(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d != "__pycache__"
            and (skip is None or (here / d).resolve() != skip.resolve())
        )
        for name in sorted(files):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            if any(p.search(rel) for p in patterns):
                continue
            found.append(path)
    return found


def runtime_files() -> list[tuple[str, Path]]:
    """The runtime: kascade/sdk without the compiler, and the stdlib-only API module it uses."""
    package = Path(kascade.__file__).parent
    out = [
        ("kascade/__init__.py", package / "__init__.py"),
        ("kascade/api/__init__.py", package / "api" / "__init__.py"),
        ("kascade/api/trigger_rules.py", package / "api" / "trigger_rules.py"),
    ]
    for path in sorted((package / "sdk").rglob("*.py")):
        rel = path.relative_to(package.parent).as_posix()
        if "/compiler/" in rel or "__pycache__" in rel:
            continue
        out.append((rel, path))
    return out


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, _STAMP)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def build(folder: Path, skip: Path | None = None) -> Bundle:
    entries: list[tuple[str, bytes]] = []
    for rel, path in runtime_files():
        entries.append((f"lib/{rel}", path.read_bytes()))
    names = []
    for path in dag_folder_files(folder, skip):
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BundleError(
                f"{path} is {size} bytes: too large for the ConfigMap bundle; list it in "
                f"{folder / IGNORE_FILE} or use an image with the DAGs (kascade compile --image)"
            )
        rel = path.relative_to(folder).as_posix()
        names.append(rel)
        entries.append((f"dags/{rel}", path.read_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(entries):
            _add(archive, name, data)
    raw = buffer.getvalue()
    text = base64.b64encode(raw).decode()
    if len(text) > MAX_CONFIGMAP_BYTES:
        raise BundleError(
            f"the DAG folder {folder} and the runtime are {len(text)} bytes in the bundle, over "
            f"the ConfigMap limit ({MAX_CONFIGMAP_BYTES}); exclude files with {IGNORE_FILE} or "
            "use an image with the DAGs (kascade compile --image IMAGE --dags-folder PATH)"
        )
    name = "kascade-bundle-" + hashlib.sha256(raw).hexdigest()[:12]
    return Bundle(name, text, tuple(names))
