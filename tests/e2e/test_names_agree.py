"""The real API server and ``kascade validate`` agree on every name (issue 13).

Each name of tests/unit/test_names.py is sent to the API server as a Pipeline (a
server-side dry run: the name rule of custom resources and the generated CRD schema)
and judged by the engine's validation; both must accept it or both refuse it.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from kascade.engine.validation import validate_document
from name_cases import BAD_OBJECT_NAMES, GOOD_OBJECT_NAMES

from .conftest import Cluster
from .operator_support import GROUP, VERSION, apply_crds

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    apply_crds(cluster.api)


def _pipeline(name: str, **defaults: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {
            "defaults": defaults or None,
            "tasks": [{"name": "t", "image": "busybox", "command": ["true"]}],
        },
    }


def _server_accepts(cluster: Cluster, namespace: str, body: dict[str, Any]) -> bool:
    try:
        cluster.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "pipelines", body, dry_run="All"
        )
    except ApiException as exc:
        assert exc.status in (400, 422), exc.body
        return False
    return True


@pytest.mark.usefixtures("crds")
def test_object_names(cluster: Cluster, namespace: str) -> None:
    disagree = []
    for name in [*BAD_OBJECT_NAMES, *GOOD_OBJECT_NAMES]:
        body = _pipeline(name)
        body["spec"].pop("defaults")
        server = _server_accepts(cluster, namespace, body)
        ours = not validate_document(body)[2]
        if server != ours:
            disagree.append((name[:40], server, ours))
    assert not disagree, disagree


@pytest.mark.usefixtures("crds")
def test_names_of_referenced_objects(cluster: Cluster, namespace: str) -> None:
    disagree = []
    for name in [*BAD_OBJECT_NAMES[1:], *GOOD_OBJECT_NAMES]:  # [0]: "" is no name at all
        body = _pipeline("refs", serviceAccountName=name)
        server = _server_accepts(cluster, namespace, body)
        ours = not validate_document(body)[2]
        if server != ours:
            disagree.append((name[:40], server, ours))
    assert not disagree, disagree
