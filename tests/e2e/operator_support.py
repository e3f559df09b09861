"""Run the real operator (a `kascade operator` process) against the test cluster.

Shared by the operator e2e modules: start/stop the process, apply manifests,
create runs and wait for them, read final states from the API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "kascade.io", "v1alpha1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _union(ours: Any, theirs: Any) -> Any:
    """Our schema, keeping the fields another version of it declares as well."""
    if not (isinstance(ours, dict) and isinstance(theirs, dict)):
        return ours
    merged = dict(ours)
    for key in ("properties",):
        if isinstance(ours.get(key), dict) and isinstance(theirs.get(key), dict):
            merged[key] = {
                **theirs[key],
                **{k: _union(v, theirs[key].get(k)) for k, v in ours[key].items()},
            }
    for key in ("items", "additionalProperties"):
        if key in ours:
            merged[key] = _union(ours[key], theirs.get(key))
    return merged


def apply_crds(api: client.ApiClient) -> None:
    """Apply crds/; a field the installed version declares and ours does not is kept (the
    shared test cluster runs the e2e tiers of several branches, each with its CRDs, and a
    field one prunes would break the runs of another)."""
    ext = client.ApiextensionsV1Api(api)
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        name = body["metadata"]["name"]
        try:
            current = api.sanitize_for_serialization(ext.read_custom_resource_definition(name))
            theirs = current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            version = body["spec"]["versions"][0]
            version["schema"]["openAPIV3Schema"] = _union(
                version["schema"]["openAPIV3Schema"], theirs
            )
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            ext.replace_custom_resource_definition(name, body)
        except ApiException as exc:
            if exc.status != 404:
                raise
            ext.create_custom_resource_definition(body)
    deadline = time.monotonic() + 60
    custom = client.CustomObjectsApi(api)
    for plural in (
        "pipelines",
        "pipelineruns",
        "taskruns",
        "pools",
        "pipelinesnapshots",
        "taskcaches",
        "tasktemplates",
    ):
        while True:
            try:
                custom.list_cluster_custom_object(GROUP, VERSION, plural, limit=1)
                break
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


class OperatorProcess:
    def __init__(self, kubeconfig: str, namespaces: list[str], log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.log = log
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}
        self.python_args: list[str] = []
        """Before ``-m kascade`` (``-m cProfile -o FILE`` to profile the operator)."""
        # No admission webhook here (it needs the API server to call this process), so
        # nothing is approved: run every spec as written. tests/e2e/test_security.py runs
        # the operator with its webhook and an approval key instead.
        self.approval_args: list[str] = ["--approval=off"]

    def start(self, *extra: str) -> None:
        args = [
            sys.executable,
            *self.python_args,
            "-m",
            "kascade",
            "operator",
            "--metrics-port",
            str(self.metrics_port),
        ]
        args += ["--liveness", "", *self.approval_args]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PYTHONPATH": str(ROOT / "operator"),
            **self.extra_env,
        }
        out = self.log.open("ab")
        self.proc = subprocess.Popen([*args, *extra], env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        import urllib.request

        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"operator exited: {self.log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        raise RuntimeError("operator did not come up")

    def kill(self, hard: bool = False) -> None:
        if self.proc is None:
            return
        if hard:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())


@contextmanager
def running_operator(
    kubeconfig: str, namespaces: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[OperatorProcess]:
    op = OperatorProcess(kubeconfig, namespaces, log)
    op.extra_env = dict(env or {})
    op.start()
    try:
        yield op
    finally:
        op.kill()


class Kascade:
    """Small helpers over the custom objects API for tests."""

    operator: OperatorProcess

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.ns = namespace

    def apply_pipeline(self, doc: dict[str, Any], *, suspend: bool = True) -> dict[str, Any]:
        doc = dict(doc)
        doc["spec"] = {**doc["spec"], "suspend": suspend}
        doc["metadata"] = {**doc["metadata"], "namespace": self.ns}
        name = doc["metadata"]["name"]
        try:
            return dict(
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.ns, "pipelines", doc
                )
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.ns, "pipelines", name
            )
            doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return dict(
                self.custom.replace_namespaced_custom_object(
                    GROUP, VERSION, self.ns, "pipelines", name, doc
                )
            )

    def apply_object(self, doc: dict[str, Any]) -> None:
        """Create a kascade object of a manifest (a Pool) in the test namespace, if new."""
        plural = {"Pool": "pools", "Pipeline": "pipelines", "TaskTemplate": "tasktemplates"}[
            doc["kind"]
        ]
        body = {**doc, "metadata": {**doc["metadata"], "namespace": self.ns}}
        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name))

    def list(self, plural: str, selector: str | None = None) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector} if selector else {}
        out = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, plural, **kwargs)
        return list(out["items"])

    def create_run(
        self,
        pipeline: str,
        *,
        logical_date: str | None = None,
        params: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> str:
        from kascade.controller import scheduling

        body = self.get("pipelines", pipeline)
        manifest = scheduling.manual_run_manifest(
            body,
            logical_date=datetime.fromisoformat(logical_date) if logical_date else None,
            now=datetime.now(UTC).replace(microsecond=0),
            params=params,
            name=name or f"{pipeline[:40]}-t{int(time.time() * 1000) % 10**9}",
        )
        run_name = str(manifest["metadata"]["name"])
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, "pipelineruns", manifest
        )
        return run_name

    def wait_run(self, name: str, timeout: float = 180) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            run = self.get("pipelineruns", name)
            if (run.get("status") or {}).get("phase") in ("success", "failed"):
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {name} did not finish: {run.get('status')}")

    def task_states(self, run: dict[str, Any]) -> dict[str, str]:
        return dict((run.get("status") or {}).get("tasks") or {})


def make_namespace(cluster: Any, stem: str, pod_security: str = "restricted") -> str:
    import uuid

    name = f"e2e-{stem}-{uuid.uuid4().hex[:6]}"
    labels = {
        "app.kubernetes.io/part-of": "kascade-e2e",
        "pod-security.kubernetes.io/enforce": pod_security,
    }
    cluster.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            cluster.core.read_namespaced_service_account("default", name)
            return name
        except ApiException:
            time.sleep(0.3)
    raise RuntimeError(f"no default service account in {name}")


def delete_namespace(cluster: Any, name: str) -> None:
    with suppress(ApiException):
        cluster.core.delete_namespace(name)


def pipeline(name: str, tasks: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    """A Pipeline manifest whose tasks default to busybox."""
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"defaults": {"image": "busybox:1.36"}, "tasks": tasks, **spec},
    }


@contextmanager
def operator_namespace(
    cluster: Any,
    kubeconfig: str,
    stem: str,
    log: Path,
    pod_security: str = "restricted",
    env: dict[str, str] | None = None,
) -> Iterator[Kascade]:
    """A fresh namespace with the CRDs applied and a `kascade operator` watching it
    (``env``: the operator's extra environment, e.g. its helper image and object store)."""
    namespace = make_namespace(cluster, stem, pod_security)
    apply_crds(cluster.api)
    k = Kascade(cluster.api, namespace)
    try:
        with running_operator(kubeconfig, [namespace], log, env) as op:
            k.operator = op
            yield k
    finally:
        print(log.read_text()[-5000:] if log.exists() else "(no operator log)")
        delete_namespace(cluster, namespace)
