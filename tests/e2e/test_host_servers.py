"""Pods of the local cluster reach the real servers on this host through the operator image.

What a SQL/S3 sensor pod and the in-cluster operator's mail will do, checked on the
real cluster before those features are wired:

1. ``kascade poke sql`` in a pod of the operator image answers "not yet" (exit 100)
   until the row exists in PostgreSQL on the host, then "met" (exit 0). Settings
   come from a Secret through ``envFrom`` with a prefix, as pipeline connections do.
2. ``kascade poke s3 --wildcard`` in the same way against versitygw on the host.
3. Mail sent from a pod with kascade.integrations.mailing over STARTTLS with login
   arrives at the host's SMTP server, its certificate checked against the test CA.
4. The operator's path for mail: the settings Secret read through the API
   (``Kube.read_secret_data``), parsed and used to send.

The pods run as a non-root user under the namespace's ``restricted`` Pod Security.
"""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

import servers
from kascade.api.protocol import SENSOR_NOT_MET
from kascade.integrations import mailing
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings, SmtpSettings
from kascade.kube.client import Kube

from .conftest import Cluster
from .images import operator_image

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]  # may build the image first

PREFIX = "CONN_SRC_"


@pytest.fixture(scope="module")
def image() -> str:
    return operator_image()


def secret(cluster: Cluster, namespace: str, data: dict[str, str]) -> str:
    name = f"conn-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespaced_secret(
        namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
    )
    return name


def run_pod(
    cluster: Cluster, namespace: str, image: str, secret_name: str, command: list[str]
) -> tuple[int, str]:
    """Run ``command`` in a pod with the Secret as prefixed env; its exit code and output."""
    name = f"poke-{uuid.uuid4().hex[:8]}"
    pod = cluster.pod(
        name, command, image=image, termination_message_policy="FallbackToLogsOnError"
    )
    pod.spec.containers[0].env_from = [
        client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=secret_name), prefix=PREFIX)
    ]
    cluster.core.create_namespaced_pod(namespace, pod)
    done = cluster.wait_pod_phase(namespace, name, timeout=120)
    terminated = done.status.container_statuses[0].state.terminated
    output = cluster.core.read_namespaced_pod_log(name, namespace)
    return terminated.exit_code, output


def test_sql_poke_from_a_pod(
    cluster: Cluster,
    namespace: str,
    image: str,
    postgres_for_pods: servers.PostgresServer,
    pod_host_address: str,
) -> None:
    table = f"landed_{uuid.uuid4().hex[:8]}"
    postgres_for_pods.execute(f"CREATE TABLE {table} (day date)")
    conn = secret(cluster, namespace, postgres_for_pods.settings(host=pod_host_address))
    query = f"SELECT count(*) FROM {table} WHERE day = '2024-01-01'"
    poke = ["kascade", "poke", "sql", "--settings-prefix", PREFIX, "--query", query]
    assert run_pod(cluster, namespace, image, conn, poke) == (SENSOR_NOT_MET, "not yet\n")
    postgres_for_pods.execute(f"INSERT INTO {table} VALUES ('2024-01-01')")
    assert run_pod(cluster, namespace, image, conn, poke) == (0, "met\n")


def test_s3_poke_from_a_pod(
    cluster: Cluster,
    namespace: str,
    image: str,
    s3_for_pods: servers.S3Server,
    pod_host_address: str,
) -> None:
    bucket = s3_for_pods.make_bucket()
    conn = secret(cluster, namespace, s3_for_pods.settings(host=pod_host_address))
    poke = ["kascade", "poke", "s3", "--settings-prefix", PREFIX, "--bucket", bucket]
    poke += ["--wildcard", "exports/2024-01-01/*.parquet"]
    assert run_pod(cluster, namespace, image, conn, poke)[0] == SENSOR_NOT_MET
    host_side = ObjectStore(ObjectStoreSettings.from_data(s3_for_pods.settings(), "test"), bucket)
    host_side.put("exports/2024-01-01/part-0.parquet", b"PAR1")
    assert run_pod(cluster, namespace, image, conn, poke) == (0, "met\n")


SEND_FROM_POD = f"""
import os
from kascade.integrations import mailing
from kascade.integrations.settings import SmtpSettings, from_env
smtp = SmtpSettings.from_data(from_env("{PREFIX}", os.environ), "pod env")
email = mailing.Email(to=("team@example.test",), subject=os.environ["SUBJECT"], html="<p>ok</p>")
mailing.send(smtp, mailing.compose(smtp, email))
print("sent")
"""


def test_mail_from_a_pod_over_starttls(
    cluster: Cluster,
    namespace: str,
    image: str,
    smtp_for_pods: servers.SmtpServer,
    pod_host_address: str,
) -> None:
    subject = f"from a pod {uuid.uuid4().hex[:6]}"
    conn = secret(cluster, namespace, smtp_for_pods.settings(host=pod_host_address))
    name = f"mail-{uuid.uuid4().hex[:8]}"
    pod = cluster.pod(
        name,
        ["python3", "-c", SEND_FROM_POD],
        image=image,
        termination_message_policy="FallbackToLogsOnError",
    )
    container = pod.spec.containers[0]
    container.env_from = [
        client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=conn), prefix=PREFIX)
    ]
    container.env = [client.V1EnvVar(name="SUBJECT", value=subject)]
    cluster.core.create_namespaced_pod(namespace, pod)
    done = cluster.wait_pod_phase(namespace, name, timeout=120)
    assert done.status.phase == "Succeeded", done.status.container_statuses[0].state.terminated
    (got,) = smtp_for_pods.mailbox.with_subject(subject)
    assert got.tls is True and got.authenticated_as == smtp_for_pods.user
    assert got.recipients == ("team@example.test",)


def test_mail_with_settings_read_from_a_secret(
    cluster: Cluster, namespace: str, smtp_for_pods: servers.SmtpServer
) -> None:
    """The operator's path: Secret data through the API, parsed, then sent (here, on loopback)."""
    conn = secret(cluster, namespace, smtp_for_pods.settings())
    data = Kube(cluster.api).read_secret_data(namespace, conn)
    assert data == smtp_for_pods.settings()  # base64 decoded, multi-line caCert intact
    smtp = SmtpSettings.from_data(data, f"Secret {namespace}/{conn}")
    subject = f"from the operator {uuid.uuid4().hex[:6]}"
    email = mailing.Email(to=("team@example.test",), subject=subject, html="<p>ok</p>")
    mailing.send(smtp, mailing.compose(smtp, email))
    (got,) = smtp_for_pods.mailbox.with_subject(subject)
    assert got.tls is True and got.authenticated_as == smtp_for_pods.user
    kube = Kube(cluster.api)
    assert kube.read_secret_data(namespace, "no-such-secret") is None
    # The webhook notifications' single-key read goes through the same call.
    assert kube.read_secret_key(namespace, conn, "host") == "127.0.0.1"
    assert kube.read_secret_key(namespace, conn, "no-such-key") is None
    assert kube.read_secret_key(namespace, "no-such-secret", "host") is None
