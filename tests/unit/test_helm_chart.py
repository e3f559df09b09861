"""The Helm chart (helm/kascade): lint, rendering, RBAC modes, Pod Security, generated files.

Rendering needs the helm binary: $HELM, the one ``make cluster-build`` builds
(~/.cache/kascade/helm-*/helm) or one on PATH. Without it those tests skip (unit tests
stay hermetic: nothing is downloaded); the e2e tier installs the chart for real.
The checks that need no helm (CRD copy, README, schema, values) always run.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import hack_scripts

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "kascade"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


RENDER = hack_scripts.render_install_manifest()
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are big


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=LOADER) if doc]


HELM = RENDER.find_helm()
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="helm not found: `make cluster-build` builds it into ~/.cache/kascade/helm-*/, "
    "or put helm on PATH / set HELM (the e2e tier installs the chart for real)",
)


def helm(*args: str) -> str:
    assert HELM is not None
    proc = subprocess.run([HELM, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stderr}\n{proc.stdout}"
    return proc.stdout


def render(*args: str, namespace: str = "kascade-system") -> list[dict[str, Any]]:
    """Rendered documents (cached per arguments: helm renders the big CRDs slowly)."""
    return copy.deepcopy(_render(args, namespace))


@functools.cache
def _render(args: tuple[str, ...], namespace: str) -> list[dict[str, Any]]:
    return load_all(helm("template", "kascade", str(CHART), "--namespace", namespace, *args))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def rule_resources(rules: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                yield group, resource


# --------------------------------------------------------------------------- no helm needed


def test_chart_crds_are_an_exact_copy_of_crds_dir() -> None:
    source = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    copy = {p.name: p.read_text() for p in (CHART / "files" / "crds").glob("*.yaml")}
    assert source, "crds/ is empty"
    assert copy == source, "helm/kascade/files/crds drifted from crds/: run make helm-crds"
    assert not any(p.is_symlink() for p in (CHART / "files" / "crds").iterdir())


def test_readme_is_generated_from_values() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "helm-docs.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr + " (run make helm-docs)"


def test_every_top_level_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    readme = (CHART / "README.md").read_text()
    values = yaml.safe_load(text)
    for key in values:
        assert f"| {key}" in readme, f"values.yaml key {key!r} has no `# --` doc in the README"


def test_values_match_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)
    for path in CI_VALUES:
        merged = yaml.safe_load((CHART / "values.yaml").read_text())
        _merge(merged, yaml.safe_load(path.read_text()))
        jsonschema.validate(merged, schema)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def test_webhook_path_matches_the_admission_handler() -> None:
    from kascade.controller import admission

    template = (CHART / "templates" / "webhook.yaml").read_text()
    assert f'"path" "{admission.WEBHOOK_PATH}"' in template
    assert f'"path" "{admission.RUN_WEBHOOK_PATH}"' in template
    assert f'"path" "{admission.TEMPLATE_WEBHOOK_PATH}"' in template
    assert str(admission.DEFAULT_PORT) in (CHART / "values.yaml").read_text()


# --------------------------------------------------------------------------- with helm


@needs_helm
@pytest.mark.parametrize(
    "values", [None, *CI_VALUES], ids=["defaults", *(p.name for p in CI_VALUES)]
)
def test_lint_and_render(values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    helm("lint", "--strict", str(CHART), *extra)
    docs = render(*extra)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount"} <= kinds
    for doc in docs:
        assert doc.get("apiVersion") and doc["metadata"].get("name"), doc
    assert_restricted(one(docs, "Deployment")["spec"]["template"]["spec"])


def refused(*values: str) -> str:
    """`helm template` with these --set values must fail; its error."""
    assert HELM is not None
    proc = subprocess.run(
        [HELM, "template", "x", str(CHART), *(a for v in values for a in ("--set", v))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0, values
    return proc.stderr


@needs_helm
def test_schema_rejects_bad_values() -> None:
    assert "scope" in refused("scope=everything")


def assert_restricted(pod: dict[str, Any]) -> None:
    """The fields Pod Security "restricted" checks, on the pod and every container."""
    psc = pod.get("securityContext") or {}
    assert psc.get("runAsNonRoot") is True
    assert (psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for volume in pod.get("volumes") or []:
        assert "hostPath" not in volume, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext") or {}
        assert sc.get("allowPrivilegeEscalation") is False, container["name"]
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], container["name"]
        assert not sc.get("capabilities", {}).get("add"), container["name"]
        assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True
        assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0
        assert not sc.get("privileged")


@needs_helm
def test_deployment_defaults() -> None:
    docs = render()
    deploy = one(docs, "Deployment")
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert spec["replicas"] == 2
    assert "--leader-election-namespace=kascade-system" in container["args"]
    assert "--leader-election-name=kascade-operator" in container["args"]
    # Least privilege by default: the release namespace only, approvals required.
    assert "--namespace=kascade-system" in container["args"]
    assert "--all-namespaces" not in container["args"]
    assert "--approval=required" in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KASCADE_APPROVAL_KEY_FILE"] == "/etc/kascade/approval/key"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 8081 and ports["http-metrics"] == 8080
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    key = volumes[mounts["/etc/kascade/approval"]]["secret"]["secretName"]
    (key_secret,) = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == key]
    assert len(key_secret["data"]["key"]) >= 64
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert_restricted(pod)
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    service = next(s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("metrics"))
    assert service["spec"]["ports"][0]["name"] == "http-metrics"
    assert service["spec"]["ports"][0]["port"] == 8080
    assert not by_kind(docs, "ServiceMonitor") and not by_kind(docs, "PodMonitor")
    # `kubectl apply` of a bad Pipeline or PipelineRun is rejected out of the box.
    (mwc,) = by_kind(docs, "MutatingWebhookConfiguration")
    assert [w["failurePolicy"] for w in mwc["webhooks"]] == ["Fail", "Fail", "Fail"]
    assert not by_kind(docs, "ValidatingWebhookConfiguration")
    assert any(e["name"] == "KASCADE_WEBHOOK" for e in container["env"])


@needs_helm
def test_notifications_link_to_the_ui_when_its_address_is_given() -> None:
    def args(*values: str) -> list[str]:
        return list(one(render(*values), "Deployment")["spec"]["template"]["spec"][
            "containers"][0]["args"])  # fmt: skip

    assert not [a for a in args() if a.startswith("--ui-url")]
    given = args("--set", "notifications.uiUrl=https://kascade.example.com")
    assert "--ui-url=https://kascade.example.com" in given
    assert "uiUrl" in refused("notifications.uiUrl=not a url")


def test_install_manifest_carries_no_webhook_key() -> None:
    """A static file would give every cluster that applies it the same private key."""
    text = (ROOT / "manifests" / "install.yaml").read_text()
    assert "WebhookConfiguration" not in text
    assert "PRIVATE KEY" not in text and "tls.key" not in text
    assert "approval-key" not in text and "--approval=off" in text


@needs_helm
def test_approval_needs_the_webhook() -> None:
    assert "admission.requireApproval=true needs" in refused("webhook.enabled=false")


@needs_helm
def test_two_releases_in_one_namespace_elect_leaders_apart() -> None:
    docs = load_all(helm("template", "etl", str(CHART), "--namespace", "kascade-system"))
    (deploy,) = by_kind(docs, "Deployment")
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-election-name=etl-kascade-operator" in args
    lease_rules = [
        rule
        for role in by_kind(docs, "Role")
        for rule in role["rules"]
        if "leases" in rule["resources"] and "resourceNames" in rule
    ]
    assert [r["resourceNames"] for r in lease_rules] == [["etl-kascade-operator"]]


@needs_helm
def test_cluster_scope_rbac() -> None:
    docs = render("--set", "scope=cluster")
    cluster_roles = {r["metadata"]["name"]: r for r in by_kind(docs, "ClusterRole")}
    operator = cluster_roles["kascade-kascade-system"]
    resources = set(rule_resources(operator["rules"]))
    assert ("kascade.io", "pipelines") in resources
    assert ("kascade.io", "pipelineruns/status") in resources
    assert ("", "pods") in resources and ("", "secrets") in resources
    assert ("", "events") in resources and ("events.k8s.io", "events") in resources
    discovery = set(rule_resources(cluster_roles["kascade-kascade-system-discovery"]["rules"]))
    assert discovery == {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("", "namespaces"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    }
    bindings = {b["roleRef"]["name"] for b in by_kind(docs, "ClusterRoleBinding")}
    assert bindings == set(cluster_roles)
    # Leases only in the release namespace, through a Role, and only its own (which the
    # chart creates, so that uninstalling removes it).
    roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("election")]
    assert [r["metadata"]["namespace"] for r in roles] == ["kascade-system"]
    assert roles[0]["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["kascade-operator"],
            "verbs": ["get", "update"],
        }
    ]
    assert one(docs, "Lease")["metadata"]["name"] == "kascade-operator"
    assert not any(
        ("coordination.k8s.io", "leases") in set(rule_resources(r["rules"]))
        for r in cluster_roles.values()
    )


@needs_helm
def test_namespaced_scope_rbac() -> None:
    docs = render("--set", "scope=namespaced", "--set", "watchNamespaces={team-a,team-b}")
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--namespace=team-a" in container["args"] and "--namespace=team-b" in container["args"]
    assert "--all-namespaces" not in container["args"]
    for cluster_role in by_kind(docs, "ClusterRole"):
        groups = {g for g, _ in rule_resources(cluster_role["rules"])}
        assert "kascade.io" not in groups, cluster_role["metadata"]["name"]
        assert set(rule_resources(cluster_role["rules"])) == {
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("", "namespaces"),
            ("authorization.k8s.io", "subjectaccessreviews"),
        }
        for rule in cluster_role["rules"]:
            allowed = {"create"} if "subjectaccessreviews" in rule["resources"] else set()
            assert set(rule["verbs"]) <= {"get", "list", "watch"} | allowed
    operator_roles = {
        r["metadata"]["namespace"]
        for r in by_kind(docs, "Role")
        if ("kascade.io", "pipelines") in set(rule_resources(r["rules"]))
    }
    assert operator_roles == {"team-a", "team-b"}
    bound = {
        (b["metadata"]["namespace"], b["roleRef"]["kind"], b["subjects"][0]["namespace"])
        for b in by_kind(docs, "RoleBinding")
    }
    assert ("team-a", "Role", "kascade-system") in bound
    assert ("team-b", "Role", "kascade-system") in bound


@needs_helm
def test_namespaced_scope_defaults_to_release_namespace() -> None:
    docs = render(namespace="pipelines")
    roles = by_kind(docs, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"pipelines"}
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=pipelines" in args


@needs_helm
def test_secrets_permission_can_be_turned_off() -> None:
    docs = render("--set", "rbac.readSecrets=false") + render(
        "--set", "rbac.readSecrets=false", "--set", "scope=cluster"
    )
    for role in by_kind(docs, "ClusterRole") + by_kind(docs, "Role"):
        assert ("", "secrets") not in set(rule_resources(role["rules"]))


@needs_helm
def test_helper_image_and_object_store_for_outputs() -> None:
    def operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0])

    default = render()
    container = operator(default)
    assert "--helper-image=kascade-operator:dev" in container["args"]  # the operator's image
    assert "envFrom" not in container
    roles = by_kind(default, "Role")
    assert all(("", "pods/log") not in set(rule_resources(r["rules"])) for r in roles)
    assert any(("kascade.io", "taskcaches") in set(rule_resources(r["rules"])) for r in roles)
    docs = render(
        "--set",
        "objectStore.existingSecret=store",
        "--set",
        "objectStore.maxOutputBytes=1048576",
        "--set",
        "helperImage.repository=helper,helperImage.tag=1",
    )
    container = operator(docs)
    assert container["envFrom"] == [{"secretRef": {"name": "store"}, "prefix": "KASCADE_STORE_"}]
    assert "--outputs-max-bytes=1048576" in container["args"]
    assert "--helper-image=helper:1" in container["args"]
    roles = by_kind(docs, "Role")
    assert any(("", "pods/log") in set(rule_resources(r["rules"])) for r in roles)


@needs_helm
def test_log_archive_values() -> None:
    def args(*values: str) -> list[str]:
        docs = render("--set", "objectStore.existingSecret=store", *values)
        return list(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])

    assert "--log-archive-max-bytes=8388608" in args()  # on by default with a store
    assert "--no-log-archive" not in args()
    assert "--log-archive-max-bytes=4096" in args("--set", "logArchive.maxBytes=4096")
    off = args("--set", "logArchive.enabled=false")
    assert "--no-log-archive" in off and not any("log-archive-max" in a for a in off)


@needs_helm
def test_crds_rendered_from_crd_files_with_keep_policy() -> None:
    docs = render()
    crds = {c["metadata"]["name"]: c for c in by_kind(docs, "CustomResourceDefinition")}
    source = {
        d["metadata"]["name"]: d
        for d in (yaml.load(p.read_text(), Loader=LOADER) for p in (ROOT / "crds").glob("*.yaml"))
    }
    assert set(crds) == set(source)
    for name, crd in crds.items():
        assert crd["spec"] == source[name]["spec"], name
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    unkept = render("--set", "crds.keep=false")
    for crd in by_kind(unkept, "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {})
    assert not by_kind(render("--set", "crds.install=false"), "CustomResourceDefinition")


@needs_helm
def test_webhook_generated_certificate() -> None:
    docs = render("--set", "webhook.enabled=true", "--set", "scope=cluster")
    mwc = one(docs, "MutatingWebhookConfiguration")
    hook, run_hook, template_hook = mwc["webhooks"]
    assert hook["failurePolicy"] == "Fail" and hook["timeoutSeconds"] == 15
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["rules"][0]["resources"] == ["pipelines"]
    assert hook["clientConfig"]["service"]["path"] == "/admit-pipeline"
    assert run_hook["rules"][0]["resources"] == ["pipelineruns"]
    assert run_hook["clientConfig"]["service"]["path"] == "/admit-pipelinerun"
    assert template_hook["rules"][0]["resources"] == ["tasktemplates"]
    assert template_hook["clientConfig"]["service"]["path"] == "/admit-tasktemplate"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    (secret,) = [s for s in by_kind(docs, "Secret") if s["type"] == "kubernetes.io/tls"]
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert {"tls.crt", "tls.key"} <= set(secret["data"])
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["KASCADE_WEBHOOK"] == "1"
    assert any(p["name"] == "webhook" and p["containerPort"] == 9443 for p in container["ports"])
    assert "namespaceSelector" not in hook  # cluster scope: every namespace


@needs_helm
def test_webhook_cert_manager_and_namespaced_selector() -> None:
    docs = render(
        "--set",
        "webhook.enabled=true",
        "--set",
        "webhook.certManager.enabled=true",
        "--set",
        "scope=namespaced",
        "--set",
        "watchNamespaces={a,b}",
    )
    assert [s["type"] for s in by_kind(docs, "Secret")] == ["Opaque"]  # the approval key only
    cert = one(docs, "Certificate")
    assert cert["spec"]["secretName"] == "kascade-webhook-tls"
    mwc = one(docs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        "kascade-system/kascade-webhook"
    )
    for hook in mwc["webhooks"]:
        selector = hook["namespaceSelector"]["matchExpressions"][0]
        assert selector["key"] == "kubernetes.io/metadata.name"
        assert selector["values"] == ["a", "b"]
    cluster = render("--set", "scope=cluster", "--set", "webhook.namespaceSelector.matchLabels.x=y")
    for hook in one(cluster, "MutatingWebhookConfiguration")["webhooks"]:
        assert hook["namespaceSelector"] == {"matchLabels": {"x": "y"}}


@needs_helm
def test_monitors_and_dashboards() -> None:
    docs = render(
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.podMonitor.enabled=true",
    )
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "http-metrics"
    assert one(docs, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "http-metrics"
    dashboards = [
        c for c in by_kind(docs, "ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    files = sorted(p.name for p in (CHART / "dashboards").glob("*.json"))
    assert sorted(k for c in dashboards for k in c["data"]) == files
    for cm in dashboards:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        for text in cm["data"].values():
            assert json.loads(text)["uid"].startswith("kascade")
    custom = render("--set", "dashboards.label=my_dash", "--set", "dashboards.labelValue=yes")
    assert all(
        c["metadata"]["labels"].get("my_dash") == "yes" for c in by_kind(custom, "ConfigMap")
    )


@needs_helm
def test_helm_test_runs_a_pipeline_with_rights_for_that_only() -> None:
    docs = load_all(helm("template", "kascade", str(CHART), "--namespace", "kascade-system"))
    tests = [
        d for d in docs if (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    ]
    assert len(tests) == 1 and tests[0]["kind"] == "Pod"
    annotations = tests[0]["metadata"]["annotations"]
    # Removed once it passed, so that uninstalling leaves nothing behind.
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    pod = tests[0]["spec"]
    assert_restricted(pod)
    assert pod["serviceAccountName"] == "kascade-test"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["CHECK_RUN"] == "true" and env["TEST_NAMESPACE"] == "kascade-system"
    # Its account is part of the release (uninstall removes it) and may only manage
    # Pipelines and PipelineRuns in the namespace it tests.
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "kascade-test"]
    assert set(rule_resources(role["rules"])) == {
        ("kascade.io", "pipelines"),
        ("kascade.io", "pipelineruns"),
    }
    assert "helm.sh/hook" not in (role["metadata"].get("annotations") or {})
    assert "python3" in pod["containers"][0]["command"][0]
    assert "pipelineruns" in pod["containers"][0]["command"][2]


@needs_helm
def test_install_manifest_in_sync() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "image" / "render-install-manifest.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HELM": str(HELM)},
    )
    assert proc.returncode == 0, proc.stderr
    text = (ROOT / "manifests" / "install.yaml").read_text()
    assert text.startswith("# DO NOT EDIT")
    kinds = {d["kind"] for d in load_all(text)}
    assert {"Namespace", "CustomResourceDefinition", "Deployment", "ClusterRole"} <= kinds
    assert "helm.sh/hook" not in text  # no test pod in the plain manifest


# --------------------------------------------------------------------------- the webhook's handler
# (operator/kascade/controller/admission.py, served behind the chart's webhook Service)


def _pipeline(tasks: list[dict[str, Any]], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p", **meta},
        "spec": {"tasks": tasks},
    }


CYCLE = [
    {"name": "a", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["b"]},
    {"name": "b", "image": "busybox:1.36", "command": ["true"], "dependsOn": ["a"]},
]
GOOD = [{"name": "a", "image": "busybox:1.36", "command": ["true"]}]


def test_admission_rejects_with_every_issue() -> None:
    import kopf

    from kascade.controller import admission

    with pytest.raises(kopf.AdmissionError) as err:
        admission.judge("CREATE", _pipeline(CYCLE), None)
    assert err.value.code == 422
    assert "spec.tasks[0].dependsOn: dependency cycle: a -> b -> a" in str(err.value)
    two = [{"name": "a", "dependsOn": ["zzz"]}]
    with pytest.raises(kopf.AdmissionError) as err:
        admission.judge("CREATE", _pipeline(two), None)
    lines = str(err.value).splitlines()
    assert len(lines) >= 2 and all(": " in line for line in lines), lines


def test_admission_accepts_valid_and_metadata_only_updates() -> None:
    from kascade.controller import admission

    admission.judge("CREATE", _pipeline(GOOD), None)
    old = _pipeline(CYCLE)  # stored before the webhook existed
    relabelled = _pipeline(CYCLE, labels={"team": "x"})
    admission.judge("UPDATE", relabelled, old)  # spec unchanged: allowed
    leaving = _pipeline(CYCLE, deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[])
    admission.judge("UPDATE", leaving, old)
    admission.judge("DELETE", None, old)


def test_admission_handler_takes_kopf_bodies() -> None:
    import kopf

    from kascade.controller import admission

    with pytest.raises(kopf.AdmissionError):
        admission.judge("CREATE", admission._plain(kopf.Body(_pipeline(CYCLE))), None)
    admission.judge(
        "UPDATE",
        admission._plain(kopf.Body(_pipeline(GOOD))),
        admission._plain(kopf.Body(_pipeline(CYCLE))),
    )


@needs_helm
def test_the_ui_reads_the_log_archive_with_the_store_secret() -> None:
    def ui(*values: str) -> dict[str, Any]:
        docs = render("--set", "ui.enabled=true", *values)
        (dep,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-ui")]
        return dict(dep["spec"]["template"]["spec"]["containers"][0])

    assert "envFrom" not in ui()  # no store: logs from pods only
    with_store = ui("--set", "objectStore.existingSecret=store")
    assert with_store["envFrom"] == [{"secretRef": {"name": "store"}, "prefix": "KASCADE_STORE_"}]
    assert {"name": "KASCADE_LOG_ARCHIVE_MAX_BYTES", "value": "8388608"} in with_store["env"]
    off = ui("--set", "objectStore.existingSecret=store", "--set", "logArchive.enabled=false")
    assert "envFrom" not in off
