"""The operator image for e2e tests that run pods of it (helm install, sensor pokes).

``KASCADE_E2E_IMAGE`` names an image the cluster already has (``make kind-e2e`` sets
it); otherwise hack/image/build-operator-image.sh builds this tree's image without
Docker and imports it into the local cluster's containerd as ``kascade-operator:e2e``,
once per test session.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from .operator_support import ROOT

E2E_IMAGE = "kascade-operator:e2e"
LOCAL_STATE = Path(
    os.environ.get("KASCADE_CLUSTER_STATE", Path.home() / ".local/state/kascade/cluster")
)


@functools.cache
def _built(tag: str) -> str:
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / "hack" / "image" / "build-operator-image.sh")],
        env={**os.environ, "IMAGE": tag},
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, f"image build failed:\n{proc.stderr[-4000:]}"
    print(f"built {tag} in {time.monotonic() - t0:.0f}s: {proc.stderr.splitlines()[-1]}")
    return tag


def operator_image() -> str:
    """KASCADE_E2E_IMAGE, or build and import the operator image into the local cluster."""
    if os.environ.get("KASCADE_E2E_IMAGE"):
        return os.environ["KASCADE_E2E_IMAGE"]
    missing = [t for t in ("mmdebstrap", "chroot", "ctr") if shutil.which(t) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if not (LOCAL_STATE / "containerd" / "containerd.sock").exists():
        missing.append(f"the local cluster's containerd ({LOCAL_STATE}/containerd)")
    if missing:
        pytest.skip(
            "cannot build the operator image here (missing: " + ", ".join(missing) + "); "
            "set KASCADE_E2E_IMAGE to an image the cluster can run (make kind-e2e does)"
        )
    return _built(E2E_IMAGE)
