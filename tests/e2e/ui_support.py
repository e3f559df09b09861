"""The web UI on the real cluster, as a chart would deploy it: identities, server, browser.

- People are ServiceAccounts with the chart's ``pipeline-viewer`` / ``pipeline-operator``
  rules (rendered from helm/kascade, so the documented roles are the tested ones),
  bound in the test namespace; their bearer tokens come from the TokenRequest API.
- The server runs ``kascade ui --auth token`` with a kubeconfig of its own read-only
  ServiceAccount (the chart's ``-ui`` rules plus system:auth-delegator), exactly the
  in-cluster security model: TokenReview, SubjectAccessReview, actions as the user.
- The browser is Debian's Chromium driven by Playwright (never a downloaded browser).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

import hack_scripts

from .operator_support import ROOT, free_port

CHROMIUM = os.environ.get("KASCADE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("KASCADE_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "ui"


def require_browser() -> Any:
    """Playwright's sync API, or a skip (a failure when the cluster tier is required)."""
    problem = None
    try:
        from playwright import sync_api
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not Path(CHROMIUM).exists():
        problem = f"no Chromium at {CHROMIUM} (hack/browser.sh installs Debian's chromium)"
    if problem:
        if os.environ.get("KASCADE_E2E_REQUIRE_CLUSTER") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return sync_api


def chart_roles() -> dict[str, list[dict[str, Any]]]:
    """The chart's UI server rules and its viewer/operator rules, by name suffix."""
    render = hack_scripts.render_install_manifest()
    helm = render.find_helm()
    if helm is None:
        pytest.fail("helm not found: make cluster-build builds it")
    out = subprocess.run(
        [
            helm,
            "template",
            "k",
            str(ROOT / "helm" / "kascade"),
            "--set",
            "ui.enabled=true",
            "--set",
            "scope=cluster",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    roles = {}
    for doc in yaml.safe_load_all(out):
        if doc and doc["kind"] == "ClusterRole":
            name = doc["metadata"]["name"]
            for suffix in ("-ui", "-pipeline-viewer", "-pipeline-operator"):
                if name.endswith(suffix):
                    roles[suffix.lstrip("-")] = doc["rules"]
    assert set(roles) == {"ui", "pipeline-viewer", "pipeline-operator"}, roles.keys()
    return roles


class Identities:
    """ServiceAccounts with the chart's roles in one namespace, and their tokens."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.ns = namespace
        self.cluster_binding = f"kascade-e2e-ui-auth-{namespace}"

    def create(self, account: str, rules: list[dict[str, Any]]) -> str:
        meta = client.V1ObjectMeta(name=account)
        self.core.create_namespaced_service_account(self.ns, client.V1ServiceAccount(metadata=meta))
        self.rbac.create_namespaced_role(self.ns, {"metadata": {"name": account}, "rules": rules})
        self.rbac.create_namespaced_role_binding(
            self.ns,
            {
                "metadata": {"name": account},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": account,
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self.ns}],
            },
        )
        return self.token(account)

    def token(self, account: str) -> str:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        )
        made = self.core.create_namespaced_service_account_token(account, self.ns, request)
        return str(made.status.token)

    def allow_reviews(self, account: str) -> None:
        """TokenReview + SubjectAccessReview (system:auth-delegator), as the chart binds it."""
        self.rbac.create_cluster_role_binding(
            {
                "metadata": {"name": self.cluster_binding},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:auth-delegator",
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": self.ns}],
            }
        )

    def cleanup(self) -> None:
        with suppress(ApiException):
            self.rbac.delete_cluster_role_binding(self.cluster_binding)


def kubeconfig_for(admin_kubeconfig: str, token: str, path: Path) -> Path:
    """A kubeconfig with the admin's cluster (server, CA) and someone else's token."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    ctx_name = admin.get("current-context") or admin["contexts"][0]["name"]
    ctx = next(c for c in admin["contexts"] if c["name"] == ctx_name)["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == ctx["cluster"])["cluster"]
    if "certificate-authority" in cluster:
        data = Path(cluster.pop("certificate-authority")).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(data).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "ui", "user": {"token": token}}],
        "contexts": [{"name": "ui", "context": {"cluster": "c", "user": "ui"}}],
        "current-context": "ui",
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@contextmanager
def ui_server(kubeconfig: Path, namespace: str, log: Path, *extra: str) -> Iterator[str]:
    """``kascade ui`` on a free loopback port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KUBECONFIG": str(kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    args = [sys.executable, "-m", "kascade", "ui", "--port", str(port), "--namespace", namespace]
    out = log.open("ab")
    proc = subprocess.Popen([*args, *extra], env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"kascade ui did not start: {log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium(sync_api: Any) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shoot(page: Any, name: str, docs: bool = False) -> Path:
    """A screenshot into the test artefacts (and into docs/ui/ when asked, for docs/ui.md)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("KASCADE_UI_DOC_SHOTS") == "1":
        shutil.copy(path, ROOT / "docs" / "ui" / f"{name}.png")
    return path
