"""A `kascade operator` process with its admission webhook wired into the real API server.

The local cluster's kube-apiserver runs on this machine, so it can call a webhook
served by a local operator process at ``https://127.0.0.1:<port>``. The
MutatingWebhookConfiguration made here is scoped (namespaceSelector) to the
test's own namespace and deleted afterwards, so it never catches another test's
objects. Users are ServiceAccounts of that namespace with Roles of their own,
and act with real tokens (TokenRequest), as a person's kubectl would.
"""

from __future__ import annotations

import base64
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .operator_support import (
    GROUP,
    VERSION,
    Kascade,
    OperatorProcess,
    apply_crds,
    delete_namespace,
    free_port,
    make_namespace,
)

AUTHOR_RULES = [
    {
        "apiGroups": [GROUP],
        "resources": ["pipelines", "pipelineruns"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": [GROUP], "resources": ["taskruns"], "verbs": ["get", "list", "watch"]},
]
"""A pipeline author: Pipelines and runs, nothing else (no pods, no Secrets)."""
ADMIN_RULES = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
"""A namespace admin: everything in the namespace."""


def self_signed(directory: Path) -> bytes:
    """A certificate for 127.0.0.1 (the API server calls the webhook by IP)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the webhook's certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(directory / "tls.key"), "-out", str(directory / "tls.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    return (directory / "tls.crt").read_bytes()


@dataclass
class Secured:
    """The namespace, the operator process and a way to act as a user."""

    cluster: Any
    namespace: str
    other_namespace: str
    """Watched by the same operator but not covered by the webhook (nothing is approved)."""
    operator: OperatorProcess
    kas: Kascade
    log: Path
    clients: dict[str, client.ApiClient] = field(default_factory=dict)

    def user(self, name: str, rules: list[dict[str, Any]], namespace: str | None = None) -> str:
        """A ServiceAccount with a Role of ``rules``; its user name."""
        ns = namespace or self.namespace
        core, rbac = self.cluster.core, client.RbacAuthorizationV1Api(self.cluster.api)
        with suppress(ApiException):
            core.create_namespaced_service_account(
                ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            )
        with suppress(ApiException):
            rbac.create_namespaced_role(ns, {"metadata": {"name": name}, "rules": rules})
        with suppress(ApiException):
            rbac.create_namespaced_role_binding(
                ns,
                {
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": name,
                    },
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
                },
            )
        return f"system:serviceaccount:{ns}:{name}"

    def as_user(self, name: str, namespace: str | None = None) -> client.CustomObjectsApi:
        """The custom objects API with the user's own token (no impersonation)."""
        ns = namespace or self.namespace
        key = f"{ns}/{name}"
        if key not in self.clients:
            token = self.cluster.core.create_namespaced_service_account_token(
                name, ns, {"spec": {"expirationSeconds": 3600}}
            ).status.token
            config = client.Configuration()
            base = self.cluster.api.configuration
            config.host = base.host
            config.ssl_ca_cert = base.ssl_ca_cert
            config.verify_ssl = base.verify_ssl
            config.api_key = {"authorization": f"Bearer {token}"}
            self.clients[key] = client.ApiClient(config)
        return client.CustomObjectsApi(self.clients[key])

    def create(
        self, user: str, plural: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        ns = namespace or self.namespace
        api = self.as_user(user, ns)
        return dict(api.create_namespaced_custom_object(GROUP, VERSION, ns, plural, body))

    def refused(
        self, user: str, plural: str, body: dict[str, Any], namespace: str | None = None
    ) -> tuple[int, str]:
        """Create as ``user`` expecting a refusal; (HTTP status, message)."""
        try:
            self.create(user, plural, body, namespace)
        except ApiException as exc:
            import json

            return exc.status, str(json.loads(exc.body or "{}").get("message", exc.body))
        raise AssertionError(f"{plural} {body['metadata'].get('name')} was admitted")

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def webhook_configuration(name: str, namespace: str, port: int, ca: bytes) -> dict[str, Any]:
    hooks = []
    for plural, path in (("pipelines", "/admit-pipeline"), ("pipelineruns", "/admit-pipelinerun")):
        hooks.append(
            {
                "name": f"{plural}.admit.kascade.io",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 15,
                "reinvocationPolicy": "IfNeeded",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}{path}",
                    "caBundle": base64.b64encode(ca).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": [plural],
                        "scope": "Namespaced",
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            }
        )
    return {"metadata": {"name": name}, "webhooks": hooks}


@contextmanager
def secured_operator(
    cluster: Any, kubeconfig: str, tmp: Path, extra_args: list[str] | None = None
) -> Iterator[Secured]:
    """A fresh namespace behind the webhook, a second one without it, one operator for both."""
    namespace = make_namespace(cluster, "sec")
    other = make_namespace(cluster, "sec-nohook")
    apply_crds(cluster.api)
    ca = self_signed(tmp)
    key = tmp / "approval.key"
    key.write_text(secrets.token_urlsafe(48))
    port = free_port()
    log = tmp / "operator.log"
    op = OperatorProcess(kubeconfig, [namespace, other], log)
    op.approval_args = ["--approval=required", "--approval-key-file", str(key)]
    op.extra_env = {
        "KASCADE_WEBHOOK": "1",
        "KASCADE_WEBHOOK_ADDR": "127.0.0.1",
        "KASCADE_WEBHOOK_PORT": str(port),
        "KASCADE_WEBHOOK_CERT_DIR": str(tmp),
    }
    admission = client.AdmissionregistrationV1Api(cluster.api)
    config_name = f"kascade-e2e-{namespace}"
    admission.create_mutating_webhook_configuration(
        webhook_configuration(config_name, namespace, port, ca)
    )
    kas = Kascade(cluster.api, namespace)
    secured = Secured(cluster, namespace, other, op, kas, log)
    try:
        op.start(*(extra_args or []))
        kas.operator = op
        _wait_for_webhook(secured)
        yield secured
    finally:
        with suppress(ApiException):
            admission.delete_mutating_webhook_configuration(config_name)
        op.kill()
        for api in secured.clients.values():
            api.close()
        print(secured.log_text()[-6000:])
        delete_namespace(cluster, namespace)
        delete_namespace(cluster, other)


def _wait_for_webhook(secured: Secured) -> None:
    """Until the API server reaches the webhook, a create fails with 'failed calling webhook'."""
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Pipeline",
        "metadata": {"name": "webhook-probe"},
        "spec": {
            "suspend": True,
            "tasks": [{"name": "a", "image": "busybox:1.36", "command": ["true"]}],
        },
    }
    deadline = time.monotonic() + 60
    while True:
        try:
            secured.kas.custom.create_namespaced_custom_object(
                GROUP, VERSION, secured.namespace, "pipelines", probe
            )
            break
        except ApiException as exc:
            if time.monotonic() > deadline or "calling webhook" not in str(exc.body):
                raise
            time.sleep(0.5)
    secured.kas.custom.delete_namespaced_custom_object(
        GROUP, VERSION, secured.namespace, "pipelines", "webhook-probe"
    )
