"""An in-memory stand-in for ``kascade.kube.client.Kube``, for unit tests of the operator's
decisions (the e2e tier runs the same code against a real kube-apiserver).

It keeps objects as plain dicts the way the API server returns them (metadata with
uid, generation, creationTimestamp), answers creates of existing names with None as
the real adapter does, and records every write so tests can assert on them.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Key = tuple[str, str, str]  # (plural, namespace, name)


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        name, _, value = term.partition("=")
        if labels.get(name) != value:
            return False
    return True


@dataclass
class FakeKube:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, str, str, Any]] = field(default_factory=list)
    """(verb, plural, name, body) in the order they were made."""
    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    logs: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(namespace, pod, container) -> that container's log."""
    _uids: itertools.count[int] = field(default_factory=itertools.count)

    # -- the Kube interface --------------------------------------------------------------
    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.objects.get((plural, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(
        self, plural: str, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(o)
            for (p, ns, _), o in sorted(self.objects.items())
            if p == plural
            and (namespace is None or ns == namespace)
            and _matches(o["metadata"].get("labels") or {}, selector)
        ]

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        self.writes.append(("create", plural, body["metadata"]["name"], body))
        key = (plural, namespace, body["metadata"]["name"])
        if key in self.objects:
            return None
        obj = copy.deepcopy(body)
        meta = obj["metadata"]
        meta["namespace"] = namespace
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", self.now.isoformat().replace("+00:00", "Z"))
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(("patch", plural, name, body))
        obj = self.objects[(plural, namespace, name)]
        _merge(obj, body)
        return copy.deepcopy(obj)

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.writes.append(("patch", f"{plural}/status", name, status))
        obj = self.objects.get((plural, namespace, name))
        if obj is not None:
            _merge(obj.setdefault("status", {}), copy.deepcopy(status))

    def delete(self, plural: str, namespace: str, name: str) -> None:
        self.writes.append(("delete", plural, name, None))
        self.objects.pop((plural, namespace, name), None)

    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        return self.create("pods", namespace, body) is not None

    def delete_pod(self, namespace: str, name: str, grace: int = 5) -> None:
        self.delete("pods", namespace, name)

    def list_pods(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        return self.list_objects("pods", namespace, selector)

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        return (self.read_secret_data(namespace, name) or {}).get(key)

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret kept with ``stringData`` (tests write values in the clear)."""
        obj = self.objects.get(("secrets", namespace, name))
        return dict(obj.get("stringData") or {}) if obj is not None else None

    def read_pod_log(self, namespace: str, name: str, container: str, limit_bytes: int) -> str:
        self.writes.append(("get", "pods/log", name, container))
        return self.logs[(namespace, name, container)].encode()[:limit_bytes].decode()

    def read_log_bytes(self, namespace: str, name: str, container: str, limit_bytes: int) -> bytes:
        from kascade.kube.client import PodLogGone

        self.writes.append(("get", "pods/log", name, container))
        if (namespace, name, container) not in self.logs or not self.get("pods", namespace, name):
            raise PodLogGone(f"pod {namespace}/{name}: Not Found")
        return self.logs[(namespace, name, container)].encode()[:limit_bytes]

    def secret_values(self, namespace: str, pod: str) -> list[str]:
        """As the operator's Kube: the values of the Secrets the pod uses (its env's
        secretKeyRefs and envFrom, read from the fake's Secrets)."""
        from kascade.controller.masking import SecretMasker

        body = self.get("pods", namespace, pod)
        return SecretMasker(self.read_secret_data).values(namespace, body) if body else []

    def read_outputs_log(self, pod: dict[str, Any], container: str, limit_bytes: int) -> str:
        meta = pod["metadata"]
        return self.read_pod_log(meta["namespace"], meta["name"], container, limit_bytes)

    # -- for tests -------------------------------------------------------------------------
    def names(self, plural: str) -> list[str]:
        return sorted(name for (p, _, name) in self.objects if p == plural)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch (RFC 7386): None deletes a key, dicts merge, the rest replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
