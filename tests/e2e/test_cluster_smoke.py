"""Smoke tests: the cluster behaves like a real one for what the operator relies on.

CRDs with a status subresource, run-to-completion pods (phase, exit code, logs,
termination message), locally built images, and owner-reference garbage collection.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from base64 import b64encode
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .conftest import Cluster, wait_until

pytestmark = pytest.mark.e2e

GROUP = "e2e.kascade.dev"


def test_node_ready_and_version(cluster: Cluster) -> None:
    version = client.VersionApi(cluster.api).get_code()
    assert version.major == "1"
    nodes = cluster.core.list_node().items
    assert nodes, "no node registered"
    ready = {
        n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready")
        for n in nodes
    }
    assert "True" in ready.values(), ready


@pytest.fixture(scope="module")
def widget_crd(cluster: Cluster) -> str:
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    name = f"{plural}.{GROUP}"
    schema = client.V1JSONSchemaProps(
        type="object",
        properties={
            "spec": client.V1JSONSchemaProps(
                type="object", properties={"size": client.V1JSONSchemaProps(type="integer")}
            ),
            "status": client.V1JSONSchemaProps(
                type="object",
                properties={
                    "phase": client.V1JSONSchemaProps(type="string"),
                    "observedGeneration": client.V1JSONSchemaProps(type="integer"),
                },
            ),
        },
    )
    crd = client.V1CustomResourceDefinition(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1CustomResourceDefinitionSpec(
            group=GROUP,
            scope="Namespaced",
            names=client.V1CustomResourceDefinitionNames(
                plural=plural, singular=plural[:-1], kind=f"Widget{plural[7:].upper()}"
            ),
            versions=[
                client.V1CustomResourceDefinitionVersion(
                    name="v1",
                    served=True,
                    storage=True,
                    schema=client.V1CustomResourceValidation(open_apiv3_schema=schema),
                    subresources=client.V1CustomResourceSubresources(status={}),
                )
            ],
        ),
    )
    cluster.apiext.create_custom_resource_definition(crd)

    def established() -> bool:
        got = cluster.apiext.read_custom_resource_definition(name)
        return any(
            c.type == "Established" and c.status == "True" for c in got.status.conditions or []
        )

    wait_until(established, timeout=30, what=f"CRD {name} Established")
    yield plural
    cluster.apiext.delete_custom_resource_definition(name)


def test_crd_status_subresource(cluster: Cluster, namespace: str, widget_crd: str) -> None:
    plural = widget_crd
    kind = cluster.apiext.read_custom_resource_definition(f"{plural}.{GROUP}").spec.names.kind
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": kind,
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
        "status": {"phase": "ignored-on-create"},
    }
    # The CRD may take a moment to be served after Established.
    created = wait_until(
        lambda: _try_create(cluster, namespace, plural, body), timeout=30, what="CR create"
    )
    assert created["metadata"]["generation"] == 1
    assert "status" not in created or not created["status"], "status must be ignored on create"

    patched = cluster.custom.patch_namespaced_custom_object_status(
        GROUP,
        "v1",
        namespace,
        plural,
        "w1",
        {"status": {"phase": "Running", "observedGeneration": 1}},
    )
    assert patched["status"] == {"phase": "Running", "observedGeneration": 1}
    assert patched["metadata"]["generation"] == 1, "status writes must not bump generation"

    # Writes to the main resource cannot change status, and do bump generation.
    updated = cluster.custom.patch_namespaced_custom_object(
        GROUP, "v1", namespace, plural, "w1", {"spec": {"size": 4}, "status": {"phase": "X"}}
    )
    assert updated["spec"]["size"] == 4
    assert updated["status"]["phase"] == "Running"
    assert updated["metadata"]["generation"] == 2


def _try_create(cluster: Cluster, namespace: str, plural: str, body: dict) -> dict | None:
    try:
        return cluster.custom.create_namespaced_custom_object(GROUP, "v1", namespace, plural, body)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def test_pod_succeeds_with_logs_and_termination_message(cluster: Cluster, namespace: str) -> None:
    cmd = ["sh", "-c", "echo hello from kascade; id -u; printf 'all good' > /dev/termination-log"]
    cluster.core.create_namespaced_pod(namespace, cluster.pod("ok", cmd))
    pod = cluster.wait_pod_phase(namespace, "ok")
    assert pod.status.phase == "Succeeded"
    state = pod.status.container_statuses[0].state.terminated
    assert state.exit_code == 0
    assert state.reason == "Completed"
    assert state.message == "all good"
    logs = cluster.core.read_namespaced_pod_log("ok", namespace)
    assert logs == "hello from kascade\n65534\n"


def test_pod_fails_with_exit_code(cluster: Cluster, namespace: str) -> None:
    cmd = ["sh", "-c", "echo about to fail; echo boom >&2; exit 3"]
    pod = cluster.pod("fail", cmd, termination_message_policy="FallbackToLogsOnError")
    cluster.core.create_namespaced_pod(namespace, pod)
    pod = cluster.wait_pod_phase(namespace, "fail")
    assert pod.status.phase == "Failed"
    state = pod.status.container_statuses[0].state.terminated
    assert state.exit_code == 3
    assert state.reason == "Error"
    # No termination-log written: the kubelet falls back to the tail of the log.
    assert "boom" in state.message
    logs = cluster.core.read_namespaced_pod_log("fail", namespace)
    assert "about to fail" in logs and "boom" in logs


def test_python_image(cluster: Cluster, namespace: str) -> None:
    script = "import sys, json; print(json.dumps({'py': sys.version_info[:2]}))"
    cmd = ["sh", "-c", f'python3 -c "{script}" && exec python -c "import ssl; print(42)"']
    cluster.core.create_namespaced_pod(namespace, cluster.pod("py", cmd, image="python:3.11-slim"))
    pod = cluster.wait_pod_phase(namespace, "py")
    logs = cluster.core.read_namespaced_pod_log("py", namespace)
    assert pod.status.phase == "Succeeded", logs
    assert logs == '{"py": [3, 11]}\n42\n'


def test_owner_deletion_garbage_collects_pods(cluster: Cluster, namespace: str) -> None:
    owner = cluster.core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1",
        kind="ConfigMap",
        name="owner",
        uid=owner.metadata.uid,
        block_owner_deletion=True,
    )
    names = [f"child-{i}" for i in range(2)]
    for name in names:
        cluster.core.create_namespaced_pod(
            namespace, cluster.pod(name, ["sleep", "3600"], owner=ref, grace_seconds=0)
        )
    for name in names:
        cluster.wait_pod_phase(namespace, name, phases=("Running",))

    cluster.core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    for name in names:
        wait_until(
            lambda name=name: cluster.gone(
                lambda: cluster.core.read_namespaced_pod(name, namespace)
            ),
            timeout=90,
            what=f"pod {name} garbage-collected",
        )


IN_CLUSTER_SCRIPT = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
host = os.environ["KUBERNETES_SERVICE_HOST"]
port = os.environ["KUBERNETES_SERVICE_PORT"]
token = open(sa + "/token").read()
ctx = ssl.create_default_context(cafile=sa + "/ca.crt")
req = urllib.request.Request(
    f"https://{host}:{port}/apis/authentication.k8s.io/v1/selfsubjectreviews",
    data=b'{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}',
    headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
)
review = json.load(urllib.request.urlopen(req, context=ctx, timeout=10))
print(review["status"]["userInfo"]["username"])
"""


def test_pod_reaches_api_through_kubernetes_service(cluster: Cluster, namespace: str) -> None:
    """In-cluster config works: Service IP (kube-proxy), TLS SANs, service-account tokens."""
    pod = cluster.pod("incluster", ["python3", "-c", IN_CLUSTER_SCRIPT], image="python:3.11-slim")
    pod.spec.automount_service_account_token = True
    cluster.core.create_namespaced_pod(namespace, pod)
    pod = cluster.wait_pod_phase(namespace, "incluster")
    logs = cluster.core.read_namespaced_pod_log("incluster", namespace)
    assert pod.status.phase == "Succeeded", logs
    assert logs.strip() == f"system:serviceaccount:{namespace}:default"


WEBHOOK_SERVER = """
import http.server, json, ssl

class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        data = (request.get("object") or {}).get("data") or {}
        response = {"uid": request["uid"], "allowed": data.get("verdict") != "deny"}
        if not response["allowed"]:
            response["status"] = {"code": 403, "message": "denied by the e2e webhook"}
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

server = http.server.HTTPServer(("0.0.0.0", 8443), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def _self_signed(tmp_path: Path, dns: str) -> tuple[bytes, bytes]:
    crt, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={dns}", "-addext", f"subjectAltName=DNS:{dns}",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt.read_bytes(), key.read_bytes()


def test_validating_admission_webhook(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """The API server calls a webhook served by a pod, found through its Service."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the webhook's certificate")
    name = "e2e-webhook"
    crt, key = _self_signed(tmp_path, f"{name}.{namespace}.svc")
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=name),
            type="kubernetes.io/tls",
            data={"tls.crt": b64encode(crt).decode(), "tls.key": b64encode(key).decode()},
        ),
    )
    pod = cluster.pod(name, ["python3", "-c", WEBHOOK_SERVER], image="python:3.11-slim")
    pod.metadata.labels["app"] = name
    container = pod.spec.containers[0]
    container.ports = [client.V1ContainerPort(container_port=8443)]
    container.readiness_probe = client.V1Probe(
        tcp_socket=client.V1TCPSocketAction(port=8443), period_seconds=1
    )
    container.volume_mounts = [client.V1VolumeMount(name="tls", mount_path="/tls")]
    pod.spec.volumes = [
        client.V1Volume(name="tls", secret=client.V1SecretVolumeSource(secret_name=name))
    ]
    cluster.core.create_namespaced_pod(namespace, pod)
    cluster.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ServiceSpec(
                selector={"app": name},
                ports=[client.V1ServicePort(port=443, target_port=8443)],
            ),
        ),
    )
    admission = client.AdmissionregistrationV1Api(cluster.api)
    config_name = f"{name}-{namespace}"
    admission.create_validating_webhook_configuration(
        client.V1ValidatingWebhookConfiguration(
            metadata=client.V1ObjectMeta(name=config_name),
            webhooks=[
                client.V1ValidatingWebhook(
                    name=f"configmaps.{namespace}.e2e.kascade.dev",
                    client_config=client.AdmissionregistrationV1WebhookClientConfig(
                        service=client.AdmissionregistrationV1ServiceReference(
                            namespace=namespace, name=name, port=443, path="/validate"
                        ),
                        ca_bundle=b64encode(crt).decode(),
                    ),
                    rules=[
                        client.V1RuleWithOperations(
                            operations=["CREATE"],
                            api_groups=[""],
                            api_versions=["v1"],
                            resources=["configmaps"],
                        )
                    ],
                    namespace_selector=client.V1LabelSelector(
                        match_labels={"kubernetes.io/metadata.name": namespace}
                    ),
                    object_selector=client.V1LabelSelector(match_labels={"e2e-webhook": "yes"}),
                    failure_policy="Fail",
                    side_effects="None",
                    admission_review_versions=["v1"],
                    timeout_seconds=5,
                )
            ],
        )
    )
    try:
        cluster.wait_pod_phase(namespace, name, phases=("Running",))

        def config_map(cm_name: str, verdict: str) -> client.V1ConfigMap:
            return client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=cm_name, labels={"e2e-webhook": "yes"}),
                data={"verdict": verdict},
            )

        attempt = iter(range(1000))

        def allowed_once_reachable() -> bool:
            # Until the pod is Ready and in the Service's endpoints, the call fails.
            try:
                cluster.core.create_namespaced_config_map(
                    namespace, config_map(f"allowed-{next(attempt)}", "allow")
                )
                return True
            except ApiException as e:
                if "failed calling webhook" in str(e.body):
                    return False
                raise

        wait_until(allowed_once_reachable, timeout=60, interval=0.5, what="webhook reachable")
        with pytest.raises(ApiException) as denied:
            cluster.core.create_namespaced_config_map(namespace, config_map("denied", "deny"))
        assert denied.value.status == 403
        assert "denied by the e2e webhook" in denied.value.body
    finally:
        admission.delete_validating_webhook_configuration(config_name)
