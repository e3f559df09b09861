"""Server-side apply for ``kascade apply`` (the Python SDK's Pipelines and the ConfigMaps of
their task code): the API server merges what the SDK owns, so a field set by hand with
another manager survives, and ``unchanged`` is the server's own answer (the
resourceVersion did not move)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from kascade.api.base import GROUP, VERSION
from kascade.kube.client import Kube, _count

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
FIELD_MANAGER = "kascade-sdk"


class Applier:
    """Server-side apply of Pipelines and ConfigMaps, and the reads ``--prune`` needs."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def _current(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            if kind == "ConfigMap":
                obj = self.kube.core.read_namespaced_config_map(name, namespace)
                return dict(self.kube.api.sanitize_for_serialization(obj))
            return self.kube.get("pipelines", namespace, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def apply(self, body: dict[str, Any], namespace: str) -> str:
        """Apply one object; 'created', 'configured' or 'unchanged'."""
        kind, name = body["kind"], body["metadata"]["name"]
        body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
        before = self._current(kind, namespace, name)
        options: dict[str, Any] = {
            "field_manager": FIELD_MANAGER,
            "force": True,
            "_content_type": APPLY_CONTENT_TYPE,
        }
        _count("apply", kind.lower() + "s")
        if kind == "ConfigMap":
            obj = self.kube.core.patch_namespaced_config_map(name, namespace, body, **options)
            after = self.kube.api.sanitize_for_serialization(obj)
        else:
            after = self.kube.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "pipelines", name, body, **options
            )
        if before is None:
            return "created"
        same = before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion")
        return "unchanged" if same else "configured"

    def current_pipeline(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._current("Pipeline", namespace, name)

    def list_configmaps(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        items = self.kube.core.list_namespaced_config_map(namespace, label_selector=selector).items
        return [dict(self.kube.api.sanitize_for_serialization(cm)) for cm in items]

    def delete_configmap(self, namespace: str, name: str) -> None:
        _count("delete", "configmaps")
        try:
            self.kube.core.delete_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
