"""Fixtures for the e2e tier: tests against a real Kubernetes cluster.

The cluster comes from ``KUBECONFIG``; when unset, the local cluster started by
``make cluster-up`` (``~/.local/state/kascade/cluster/kubeconfig``) is used. When no
cluster answers, the tests are skipped with a message saying how to start one
(set ``KASCADE_E2E_REQUIRE_CLUSTER=1`` to make that an error instead, e.g. in CI).
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

import servers

LOCAL_KUBECONFIG = Path.home() / ".local/state/kascade/cluster/kubeconfig"
NON_ROOT_UID = 65534


def kubeconfig_path() -> str:
    return os.environ.get("KUBECONFIG") or str(LOCAL_KUBECONFIG)


def wait_until(
    predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)


def non_root_security_context() -> client.V1SecurityContext:
    """Container security context that passes the ``restricted`` pod security profile."""
    return client.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=NON_ROOT_UID,
        run_as_group=NON_ROOT_UID,
        allow_privilege_escalation=False,
        capabilities=client.V1Capabilities(drop=["ALL"]),
        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
    )


@dataclass
class Cluster:
    """Typed API handles plus small helpers shared by the e2e tests."""

    api: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    apiext: client.ApiextensionsV1Api

    def pod(
        self,
        name: str,
        command: list[str],
        *,
        image: str = "busybox:1.36",
        owner: client.V1OwnerReference | None = None,
        termination_message_policy: str = "File",
        grace_seconds: int = 1,
    ) -> client.V1Pod:
        """A run-to-completion pod running ``command`` as a non-root user."""
        return client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={"app.kubernetes.io/part-of": "kascade-e2e"},
                owner_references=[owner] if owner else None,
            ),
            spec=client.V1PodSpec(
                restart_policy="Never",
                termination_grace_period_seconds=grace_seconds,
                automount_service_account_token=False,
                containers=[
                    client.V1Container(
                        name="main",
                        image=image,
                        image_pull_policy="IfNotPresent",
                        command=command,
                        termination_message_policy=termination_message_policy,
                        security_context=non_root_security_context(),
                    )
                ],
            ),
        )

    def wait_pod_phase(
        self,
        namespace: str,
        name: str,
        phases: tuple[str, ...] = ("Succeeded", "Failed"),
        timeout: float = 90.0,
    ) -> client.V1Pod:
        def done() -> client.V1Pod | None:
            pod = self.core.read_namespaced_pod(name, namespace)
            return pod if pod.status.phase in phases else None

        try:
            return wait_until(done, timeout, what=f"pod {namespace}/{name} in {phases}")
        except TimeoutError:
            pod = self.core.read_namespaced_pod(name, namespace)
            events = self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={name}"
            )
            detail = "; ".join(f"{e.reason}: {e.message}" for e in events.items)
            raise TimeoutError(
                f"pod {name} stuck in {pod.status.phase}: {pod.status.container_statuses} "
                f"events: {detail}"
            ) from None

    def gone(self, read: Callable[[], Any]) -> bool:
        try:
            read()
        except ApiException as e:
            if e.status == 404:
                return True
            raise
        return False


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    path = kubeconfig_path()
    required = os.environ.get("KASCADE_E2E_REQUIRE_CLUSTER") == "1"
    hint = "start the local cluster with `make cluster-up` or point KUBECONFIG at one"
    problem = None
    if not Path(path).exists():
        problem = f"no kubeconfig at {path}: {hint}"
    else:
        try:
            api = config.new_client_from_config(config_file=path)
            client.VersionApi(api).get_code(_request_timeout=5)
        except Exception as e:  # connection refused, TLS, auth ...
            problem = (
                f"no Kubernetes cluster reachable via {path} ({type(e).__name__}: {e}); {hint}"
            )
    if problem:
        if required:
            pytest.fail(problem)
        pytest.skip(problem)
    c = Cluster(
        api=api,
        core=client.CoreV1Api(api),
        custom=client.CustomObjectsApi(api),
        apiext=client.ApiextensionsV1Api(api),
    )
    # A cluster that was just started may still be registering its node.
    wait_until(
        lambda: any(
            cond.type == "Ready" and cond.status == "True"
            for node in c.core.list_node().items
            for cond in node.status.conditions or []
        ),
        timeout=120,
        what="a Ready node",
    )
    yield c
    api.close()


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test module, deleted (with everything in it) afterwards."""
    stem = re.sub(r"[^a-z0-9-]", "-", request.module.__name__.rsplit(".", 1)[-1].lower())
    stem = stem.removeprefix("test-").removeprefix("test_")[:30].strip("-")
    name = f"e2e-{stem}-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    "app.kubernetes.io/part-of": "kascade-e2e",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            )
        )
    )
    # Pods are rejected until the service-account controller made the default account.
    wait_until(
        lambda: (
            not cluster.gone(lambda: cluster.core.read_namespaced_service_account("default", name))
        ),
        timeout=60,
        what=f"default service account in {name}",
    )
    yield name
    cluster.core.delete_namespace(name, propagation_policy="Background")


# ------------------------------------------------- real servers that pods can reach


@pytest.fixture(scope="session")
def pod_host_address(cluster: Cluster) -> str:
    """The address a pod of the local cluster reaches a server on this host at.

    The local cluster is one node made of processes on this host, without cluster
    DNS. The node's InternalIP (kubelet --node-ip, also the API server's advertised
    address) is an address of this host; a pod's packets to it go through the pods'
    bridge and are delivered to the host. Servers for pods listen on it and on
    loopback, never on every interface.
    """
    nodes = cluster.core.list_node().items
    addresses = [
        a.address
        for node in nodes
        for a in node.status.addresses or []
        if a.type == "InternalIP" and ":" not in a.address
    ]
    if len(nodes) != 1 or not addresses:
        servers.unavailable(
            f"servers for pods need the single-node local cluster (found {len(nodes)} nodes, "
            f"InternalIPs {addresses})"
        )
    with socket.socket() as probe:
        try:
            probe.bind((addresses[0], 0))
        except OSError:
            servers.unavailable(
                f"the node's InternalIP {addresses[0]} is not an address of this host, so pods "
                "cannot reach servers started here (is KUBECONFIG the local cluster?)"
            )
    return addresses[0]


@pytest.fixture(scope="session")
def postgres_for_pods(pod_host_address: str) -> Iterator[servers.PostgresServer]:
    """PostgreSQL on loopback and the pod-reachable host address."""
    server = servers.start_postgres(("127.0.0.1", pod_host_address))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_for_pods(pod_host_address: str) -> Iterator[servers.S3Server]:
    """versitygw on loopback and the pod-reachable host address."""
    server = servers.start_s3(("127.0.0.1", pod_host_address))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_for_pods(pod_host_address: str) -> Iterator[servers.SmtpServer]:
    """SMTP with STARTTLS and login; its certificate names the pod-reachable address."""
    server = servers.start_smtp("starttls", ("127.0.0.1", pod_host_address))
    yield server
    server.stop()
