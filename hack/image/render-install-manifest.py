#!/usr/bin/env python3
"""Render manifests/install.yaml: the Helm chart with its default values, for `kubectl apply`.

    hack/image/render-install-manifest.py [--helm PATH] [--check]

The release is named ``kascade`` in namespace ``kascade-system`` (a Namespace object
labelled for Pod Security "restricted" comes first). ``--check`` exits 1 when the
checked-in file differs (tests/unit/test_helm_chart.py runs it).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "kascade"
OUT = ROOT / "manifests" / "install.yaml"
RELEASE, NAMESPACE = "kascade", "kascade-system"

HEADER = f"""\
# DO NOT EDIT: generated from helm/kascade with its default values, webhook off, by
# `make install-manifest` (helm template {RELEASE} helm/kascade --namespace {NAMESPACE}
# --skip-tests --set webhook.enabled=false --set admission.requireApproval=false
# --set watchNamespaces={{default}} --set helmTest.enabled=false).
# A test fails when it drifts from the chart.
#
#   kubectl apply --server-side -f manifests/install.yaml
#
# (server-side: the Pipeline CRD is too big for client-side apply's last-applied annotation.)
# An operator watching the namespace `default` (2 replicas, leader election), CRDs, RBAC,
# metrics Service, PDB and Grafana dashboard ConfigMaps. The admission webhook is off here (a
# static file would share one private key between clusters), and so is approval: every spec
# runs as written, so anyone who may create a Pipeline in `default` may use every
# ServiceAccount, Secret and pod privilege there. Install with Helm to have both (the chart's
# default): see docs/security.md.
---
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/part-of: kascade
    pod-security.kubernetes.io/enforce: restricted
"""


def find_helm(explicit: str | None = None) -> str | None:
    """$HELM, the helm `make cluster-build` built (~/.cache/kascade/helm-*/helm), or PATH's."""
    for candidate in (explicit, os.environ.get("HELM")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    cache = Path(os.environ.get("KASCADE_CACHE", Path.home() / ".cache" / "kascade"))
    built = sorted(glob.glob(str(cache / "helm-*" / "helm")))
    if built:
        return built[-1]
    return shutil.which("helm")


def render(helm: str) -> str:
    out = subprocess.run(
        [
            *(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--skip-tests"),
            # A static file would hand every cluster the same webhook private key (and the
            # same approval key): no webhook, so nothing approves specs (docs/security.md).
            *("--set", "webhook.enabled=false", "--set", "admission.requireApproval=false"),
            # The namespace the README's examples are applied in; no `helm test` objects.
            *("--set", "watchNamespaces={default}", "--set", "helmTest.enabled=false"),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return HEADER + out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", default=None)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    helm = find_helm(args.helm)
    if helm is None:
        print("helm not found (make cluster-build builds it; or set HELM)", file=sys.stderr)
        return 2
    content = render(helm)
    if args.check:
        if not OUT.exists() or OUT.read_text() != content:
            print(f"{OUT} is out of date: run make install-manifest", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(content)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
