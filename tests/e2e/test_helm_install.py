"""The user's path, on the real cluster: build the image, helm install, run a pipeline, helm test,
upgrade, uninstall.

1. The operator image is built without Docker (hack/image/build-operator-image.sh) and
   imported into the local cluster's containerd as ``kascade-operator:e2e``; set
   ``KASCADE_E2E_IMAGE`` to use an image the cluster already has (``make kind-e2e`` does).
2. ``helm install`` into a fresh namespace ``e2e-helm-*`` (Pod Security "restricted"),
   namespaced scope watching that namespace, the admission webhook on, 2 replicas.
3. Both replicas become Available and exactly one holds the leader Lease.
4. A Pipeline with a dependency cycle is rejected by the webhook at ``kubectl apply``
   with the engine's message; hello-world (suspended) is accepted, and approved by its
   author; a user who may not create pods cannot have a privileged task run.
5. A manual PipelineRun of hello-world succeeds (pods created by the in-cluster operator).
6. The operator's ServiceAccount can do exactly what the chart's RBAC says
   (``kubectl auth can-i --list``), in a watched namespace and elsewhere.
7. ``helm test`` (a one-task pipeline runs to success; the metrics Service answers).
8. ``helm upgrade`` with a changed value rolls the Deployment; a run succeeds again.
9. ``helm uninstall`` removes everything the chart created (test pod and its account,
   the leader Lease, the webhook configuration, the approval key) and keeps the CRDs.

The kascade CRDs are cluster-wide and other e2e modules apply them directly, so before
installing, existing kascade CRDs are adopted into this release (Helm's ownership
labels/annotations), the documented way to bring existing CRDs under a release.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

import hack_scripts

from .conftest import Cluster, kubeconfig_path, wait_until
from .images import operator_image
from .operator_support import ROOT, Kascade, delete_namespace, make_namespace

pytestmark = pytest.mark.e2e

CHART = ROOT / "helm" / "kascade"
RELEASE = "kascade"
CRDS = (
    "pipelines.kascade.io",
    "pipelineruns.kascade.io",
    "taskruns.kascade.io",
    "pools.kascade.io",
    "tasktemplates.kascade.io",
    "taskcaches.kascade.io",
)


def find_kubectl() -> str | None:
    cache = Path(os.environ.get("KASCADE_CACHE", Path.home() / ".cache" / "kascade"))
    built = sorted(cache.glob("k8s-*/kubectl"))
    return os.environ.get("KUBECTL") or (str(built[-1]) if built else shutil.which("kubectl"))


def webhook_wired() -> bool:
    """Does `kascade operator` register the admission handler when KASCADE_WEBHOOK is set?

    KASCADE_E2E_WEBHOOK=1/0 overrides the check (for an image built from another tree)."""
    forced = os.environ.get("KASCADE_E2E_WEBHOOK")
    if forced in ("0", "1"):
        return forced == "1"
    code = (
        "import kopf, kascade.controller.handlers\n"
        "print(bool(kopf.get_default_registry()._webhooks.get_all_handlers()))"
    )
    proc = subprocess.run(
        ["python3", "-c", code],
        env={**os.environ, "KASCADE_WEBHOOK": "1", "PYTHONPATH": str(ROOT / "operator")},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() == "True"


@dataclass
class Install:
    cluster: Cluster
    namespace: str
    helm_bin: str
    kubectl_bin: str
    image: str
    webhook: bool
    kas: Kascade
    log: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": kubeconfig_path()}

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        proc = subprocess.run(
            [self.helm_bin, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        self.log.append(f"$ helm {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        if check:
            assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}\n{proc.stdout}"
        return proc.stdout + proc.stderr

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl_bin, "-n", self.namespace, *args],
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def values(self) -> list[str]:
        return [
            "--set",
            "scope=namespaced",
            "--set",
            f"watchNamespaces={{{self.namespace}}}",
            "--set",
            f"image.repository={self.image.rsplit(':', 1)[0]}",
            "--set",
            f"image.tag={self.image.rsplit(':', 1)[1]}",
            "--set",
            f"webhook.enabled={'true' if self.webhook else 'false'}",
        ]

    def deployment(self) -> client.V1Deployment:
        return client.AppsV1Api(self.cluster.api).read_namespaced_deployment(
            RELEASE, self.namespace
        )

    def operator_pods(self) -> list[client.V1Pod]:
        return list(
            self.cluster.core.list_namespaced_pod(
                self.namespace,
                label_selector=f"app.kubernetes.io/instance={RELEASE},"
                "app.kubernetes.io/component=operator",
            ).items
        )

    def wait_rolled_out(self, timeout: float = 180) -> client.V1Deployment:
        def done() -> client.V1Deployment | None:
            d = self.deployment()
            s = d.status
            want = d.spec.replicas
            available = any(
                c.type == "Available" and c.status == "True" for c in s.conditions or []
            )
            ok = (
                s.observed_generation == d.metadata.generation
                and (s.updated_replicas or 0) == want
                and (s.available_replicas or 0) == want
                and (s.replicas or 0) == want
                and available
            )
            return d if ok else None

        try:
            return wait_until(done, timeout, interval=1, what="the Deployment rolled out")
        except TimeoutError:
            raise AssertionError(f"not rolled out: {self.diagnose()}") from None

    def leader(self) -> str | None:
        try:
            lease = client.CoordinationV1Api(self.cluster.api).read_namespaced_lease(
                "kascade-operator", self.namespace
            )
        except ApiException:
            return None
        holder = lease.spec.holder_identity or ""
        renew = lease.spec.renew_time
        if renew is None or time.time() - renew.timestamp() > (
            lease.spec.lease_duration_seconds or 15
        ):
            return None
        pods = {
            p.metadata.name for p in self.operator_pods() if p.metadata.deletion_timestamp is None
        }
        # The identity is "<hostname>-<pid>"; the hostname is the pod name.
        return next((pod for pod in pods if holder.startswith(pod + "-")), None)

    def diagnose(self) -> str:
        out = [self.kubectl("get", "deploy,rs,pods,lease,events", "-o", "wide").stdout[-3000:]]
        for pod in self.operator_pods():
            logs = self.kubectl("logs", pod.metadata.name, "--tail=30").stdout
            out.append(f"--- {pod.metadata.name}\n{logs}")
        return "\n".join(out)


def adopt_crds(cluster: Cluster, namespace: str) -> None:
    """Bring existing kascade CRDs under this release (Helm adopts labelled+annotated objects)."""
    ext = client.ApiextensionsV1Api(cluster.api)
    for name in CRDS:
        try:
            ext.patch_custom_resource_definition(
                name,
                {
                    "metadata": {
                        "labels": {"app.kubernetes.io/managed-by": "Helm"},
                        "annotations": {
                            "meta.helm.sh/release-name": RELEASE,
                            "meta.helm.sh/release-namespace": namespace,
                        },
                    }
                },
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="module")
def install(cluster: Cluster) -> Iterator[Install]:
    helm_bin = hack_scripts.render_install_manifest().find_helm()
    kubectl_bin = find_kubectl()
    if helm_bin is None or kubectl_bin is None:
        pytest.skip("helm/kubectl not found: run make cluster-build (or set HELM and KUBECTL)")
    image = operator_image()
    namespace = make_namespace(cluster, "helm")
    inst = Install(
        cluster=cluster,
        namespace=namespace,
        helm_bin=helm_bin,
        kubectl_bin=kubectl_bin,
        image=image,
        webhook=webhook_wired(),
        kas=Kascade(cluster.api, namespace),
    )
    try:
        adopt_crds(cluster, namespace)
        t0 = time.monotonic()
        out = inst.helm(
            "install",
            RELEASE,
            str(CHART),
            "--namespace",
            namespace,
            *inst.values(),
            "--wait",
            "--timeout",
            "3m",
            check=False,
        )
        if "STATUS: deployed" not in out:
            pytest.fail(
                f"helm install did not become ready: {out.strip()[-500:]}\n"
                "Both replicas must pass the readiness probe (kopf's /healthz), including the "
                "standby that waits for the leader Lease.\n" + inst.diagnose()
            )
        print(f"helm install took {time.monotonic() - t0:.0f}s")
        yield inst
    finally:
        if os.environ.get("KASCADE_E2E_KEEP") != "1":
            if "not found" not in inst.helm("status", RELEASE, "-n", namespace, check=False):
                inst.helm("uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)
            delete_namespace(cluster, namespace)
        print("\n".join(inst.log)[-6000:])


def test_both_replicas_available_one_leader(install: Install) -> None:
    deploy = install.wait_rolled_out()
    assert deploy.spec.replicas == 2
    leader = wait_until(install.leader, timeout=60, interval=1, what="a leader Lease holder")
    pods = install.operator_pods()
    assert leader in {p.metadata.name for p in pods}
    for pod in pods:
        spec = pod.spec
        container = spec.containers[0]
        assert container.image == install.image
        assert container.security_context.read_only_root_filesystem is True
        assert spec.security_context.run_as_non_root is True
        assert f"--leader-election-namespace={install.namespace}" in container.args


def test_webhook_rejects_a_cycle(install: Install) -> None:
    if not install.webhook:
        pytest.skip(
            "`kascade operator` does not register the admission handler: "
            "kascade/controller/handlers.py must import kascade.controller.admission when "
            "KASCADE_WEBHOOK is set; installed with webhook.enabled=false"
        )
    bad = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "cycle"},
        "spec": {
            "tasks": [
                {"name": "a", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["b"]},
                {"name": "b", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["a"]},
            ]
        },
    }
    proc = install.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert proc.returncode != 0, f"a cyclic pipeline was accepted: {proc.stdout}"
    assert "denied the request" in proc.stderr, proc.stderr
    assert "dependency cycle: a -> b -> a" in proc.stderr, proc.stderr
    assert install.cluster.gone(
        lambda: install.kas.custom.get_namespaced_custom_object(
            "kascade.io", "v1alpha1", install.namespace, "pipelines", "cycle"
        )
    )


def test_hello_world_runs(install: Install) -> None:
    doc = yaml.safe_load((ROOT / "manifests" / "examples" / "hello-world.yaml").read_text())
    doc["spec"]["suspend"] = True  # no scheduled runs: only the manual one below
    proc = install.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert proc.returncode == 0, proc.stderr
    name = install.kas.create_run("hello-world")
    run = install.kas.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success", (run.get("status"), install.diagnose())
    assert install.kas.task_states(run) == {"say-hello": "success", "print-date": "success"}


def test_an_author_cannot_escalate_through_the_installed_operator(install: Install) -> None:
    """The in-cluster webhook asks the API server (SubjectAccessReview) with its own RBAC."""
    if not install.webhook:
        pytest.skip("installed with webhook.enabled=false")
    core, rbac = install.cluster.core, client.RbacAuthorizationV1Api(install.cluster.api)
    ns = install.namespace
    core.create_namespaced_service_account(ns, {"metadata": {"name": "author"}})
    rules = [{"apiGroups": ["kascade.io"], "resources": ["pipelines"], "verbs": ["get", "create"]}]
    rbac.create_namespaced_role(ns, {"metadata": {"name": "author"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "author"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "author"},
            "subjects": [{"kind": "ServiceAccount", "name": "author", "namespace": ns}],
        },
    )
    bad = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "escalate"},
        "spec": {
            "tasks": [
                {
                    "name": "a",
                    "image": "busybox:1.36",
                    "command": ["true"],
                    "serviceAccountName": RELEASE,  # the operator's own account
                }
            ]
        },
    }
    proc = install.kubectl(
        "apply", f"--as=system:serviceaccount:{ns}:author", "-f", "-", stdin=yaml.safe_dump(bad)
    )
    assert proc.returncode != 0, proc.stdout
    assert f"runs pods as ServiceAccount '{RELEASE}'" in proc.stderr, proc.stderr
    hello = install.kas.get("pipelines", "hello-world")
    approval = yaml.safe_load(hello["metadata"]["annotations"]["kascade.io/approval"])
    assert approval["by"] and approval["grants"] == []


def can_i(install: Install, namespace: str) -> set[tuple[str, str, str]]:
    """(resource, resourceNames, verbs) rows of `kubectl auth can-i --list` for the operator."""
    proc = subprocess.run(
        [
            install.kubectl_bin,
            "auth",
            "can-i",
            "--list",
            f"--as=system:serviceaccount:{install.namespace}:{RELEASE}",
            "-n",
            namespace,
        ],
        env=install.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows = set()
    for line in proc.stdout.splitlines()[1:]:  # Resources, Non-Resource URLs, Names, Verbs
        brackets = re.findall(r"\[[^\]]*\]", line)
        first = line.split()[0]
        if first.startswith("[") or len(brackets) != 3:
            continue  # a non-resource URL (/healthz, /api/*): every user's
        rows.add((first, brackets[1], brackets[2]))
    return rows


# What every authenticated user may do (system:basic-user, system:discovery,
# system:public-info-viewer): not the chart's doing.
EVERYONE = {
    ("selfsubjectreviews.authentication.k8s.io", "[]", "[create]"),
    ("selfsubjectaccessreviews.authorization.k8s.io", "[]", "[create]"),
    ("selfsubjectrulesreviews.authorization.k8s.io", "[]", "[create]"),
}
CLUSTER_WIDE = {
    ("customresourcedefinitions.apiextensions.k8s.io", "[]", "[get list watch]"),
    ("namespaces", "[]", "[list watch]"),
    ("subjectaccessreviews.authorization.k8s.io", "[]", "[create]"),
}


def test_the_operator_can_do_exactly_what_the_chart_says(install: Install) -> None:
    def resources(rows: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
        return {r for r in rows if r not in EVERYONE}

    watched = resources(can_i(install, install.namespace))
    assert watched == CLUSTER_WIDE | {
        ("pipelineruns.kascade.io", "[]", "[get list watch create update patch delete]"),
        ("pipelines.kascade.io", "[]", "[get list watch create update patch delete]"),
        ("pools.kascade.io", "[]", "[get list watch create update patch delete]"),
        ("pipelinesnapshots.kascade.io", "[]", "[get list create delete]"),
        ("taskruns.kascade.io", "[]", "[get list watch create update patch delete]"),
        ("taskcaches.kascade.io", "[]", "[get list watch create update patch delete]"),
        ("tasktemplates.kascade.io", "[]", "[get list watch]"),
        ("pipelineruns.kascade.io/status", "[]", "[get patch]"),
        ("pipelines.kascade.io/status", "[]", "[get patch]"),
        ("pools.kascade.io/status", "[]", "[get patch]"),
        ("taskruns.kascade.io/status", "[]", "[get patch]"),
        ("taskcaches.kascade.io/status", "[]", "[get patch]"),
        ("tasktemplates.kascade.io/status", "[]", "[get patch]"),
        ("pods", "[]", "[get list watch create delete]"),
        ("secrets", "[]", "[get]"),
        ("events", "[]", "[create patch]"),
        ("events.events.k8s.io", "[]", "[create patch]"),
        ("leases.coordination.k8s.io", "[kascade-operator]", "[get update]"),
    }, sorted(watched)
    # Nothing in a namespace it does not watch: no pods, no Secrets, no kube-system.
    for other in ("kube-system", "default"):
        assert resources(can_i(install, other)) == CLUSTER_WIDE, other


def test_helm_test_runs_a_pipeline(install: Install) -> None:
    # No --logs: a passed test pod is deleted at once (hook-succeeded); a failed one is kept.
    out = install.helm("test", RELEASE, "--namespace", install.namespace, timeout=300)
    assert "Phase:          Succeeded" in out, out
    # The test pod ran a pipeline through the webhook and the operator (the run's Event
    # outlives it), then cleaned up.
    events = install.cluster.core.list_namespaced_event(install.namespace).items
    assert any(
        e.involved_object.kind == "PipelineRun"
        and e.involved_object.name.startswith(f"{RELEASE}-helm-test-")
        and e.reason == "RunSuccess"
        for e in events
    ), [(e.involved_object.name, e.reason) for e in events]
    assert not install.kas.list("pipelines", "app.kubernetes.io/component=test")
    assert not install.kas.list("pipelineruns", "app.kubernetes.io/component=test")
    # A passed test pod is deleted (hook-succeeded), so nothing is left to uninstall.
    pods = install.cluster.core.list_namespaced_pod(
        install.namespace, label_selector="app.kubernetes.io/component=test"
    ).items
    assert [p.metadata.name for p in pods if p.metadata.deletion_timestamp is None] == []


def test_standby_replica_stays_up(install: Install) -> None:
    """Both replicas pass their probes for a while (no restarts): the standby waits for the
    Lease without failing its liveness probe (kopf's /healthz on :8081)."""
    grace = 80.0  # initialDelaySeconds 10 + 3 failed probes x 20 s would have restarted it

    def verdict() -> tuple[str, dict[str, int]] | None:
        pods = install.operator_pods()
        restarts = {
            p.metadata.name: sum(c.restart_count for c in p.status.container_statuses or [])
            for p in pods
        }
        if any(restarts.values()):
            return "restarted", restarts
        started = [
            c.state.running.started_at.timestamp()
            for p in pods
            for c in p.status.container_statuses or []
            if c.state and c.state.running and c.state.running.started_at
        ]
        if started and time.time() - max(started) >= grace:
            return "up", restarts
        return None

    outcome, restarts = wait_until(verdict, timeout=grace + 60, interval=2, what="pod ages")
    assert outcome == "up", (
        f"operator restarts {restarts}: the standby replica must answer its liveness probe "
        "while it waits for the leader Lease (kopf serves /healthz only once its startup "
        f"handlers are done)\n{install.diagnose()}"
    )
    assert install.leader() is not None


def test_helm_upgrade_with_a_changed_value(install: Install) -> None:
    before = {p.metadata.name for p in install.operator_pods()}
    install.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "--namespace",
        install.namespace,
        "--reset-then-reuse-values",  # as docs/operations.md says: install's values kept
        "--set-string",
        "podAnnotations.e2e-upgrade=changed",
        "--wait",
        "--timeout",
        "4m",
    )
    deploy = install.wait_rolled_out()
    assert deploy.spec.template.metadata.annotations.get("e2e-upgrade") == "changed"
    wait_until(
        lambda: not (before & {p.metadata.name for p in install.operator_pods()}),
        timeout=120,
        interval=1,
        what="the old operator pods gone",
    )
    wait_until(install.leader, timeout=60, interval=1, what="a leader among the new pods")
    name = install.kas.create_run("hello-world")
    run = install.kas.wait_run(name, timeout=120)
    assert run["status"]["phase"] == "success", (run.get("status"), install.diagnose())


def test_uninstall_cleans_up_and_keeps_crds(install: Install) -> None:
    out = install.helm("uninstall", RELEASE, "--namespace", install.namespace, "--wait")
    # Helm keeps what the release manifest marks helm.sh/resource-policy: keep.
    assert "kept due to the resource policy" in out, out
    for name in CRDS:
        assert f"[CustomResourceDefinition] {name}" in out, out
    apps = client.AppsV1Api(install.cluster.api)
    assert install.cluster.gone(lambda: apps.read_namespaced_deployment(RELEASE, install.namespace))
    ext = client.ApiextensionsV1Api(install.cluster.api)
    for name in CRDS:
        crd = ext.read_custom_resource_definition(name)
        assert crd.metadata.deletion_timestamp is None, name
    # The pipeline (a custom object) survived with its CRD.
    assert install.kas.get("pipelines", "hello-world")["metadata"]["name"] == "hello-world"
    admission = client.AdmissionregistrationV1Api(install.cluster.api)
    names = [w.metadata.name for w in admission.list_mutating_webhook_configuration().items]
    names += [w.metadata.name for w in admission.list_validating_webhook_configuration().items]
    assert f"{RELEASE}-{install.namespace}" not in names
    # What the chart created is gone: the leader Lease, the test pod and its account, the
    # approval key; nothing cluster-wide is left either.
    core = install.cluster.core
    coordination = client.CoordinationV1Api(install.cluster.api)
    assert install.cluster.gone(
        lambda: coordination.read_namespaced_lease("kascade-operator", install.namespace)
    )
    assert install.cluster.gone(
        lambda: core.read_namespaced_service_account(f"{RELEASE}-test", install.namespace)
    )
    assert install.cluster.gone(
        lambda: core.read_namespaced_secret(f"{RELEASE}-approval-key", install.namespace)
    )
    left = core.list_namespaced_pod(
        install.namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    ).items
    assert [p.metadata.name for p in left if p.metadata.deletion_timestamp is None] == []
    rbac = client.RbacAuthorizationV1Api(install.cluster.api)
    cluster_roles = [r.metadata.name for r in rbac.list_cluster_role().items]
    assert not [n for n in cluster_roles if n.startswith(f"{RELEASE}-{install.namespace}")]
