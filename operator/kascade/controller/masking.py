"""Secret values never reach a TaskRun's outputs or messages as they are.

A task that reads a Secret (``env`` from a secretKeyRef, ``envFrom`` a Secret,
a connection, a secret volume) can echo it into its outputs, and outputs are
shown to anyone who may read TaskRuns (``kubectl get ktr -o yaml``, Events,
the CLI). Like Airflow's secrets masker, the operator replaces every value of
those Secrets found in the pod's termination message (where outputs travel)
with ``***`` before anything reads it: the parsed outputs, the TaskRun status,
Events and the operator's log all see the masked text.

The values come from the Secrets the pod itself references, read with the
operator's ``get secrets`` right (chart: ``rbac.readSecrets``; without it
nothing can be masked, and outputs are a side channel: see docs/security.md).
Values shorter than :data:`MIN_LENGTH` characters are not masked (they would
blank out ordinary words and numbers), as in Airflow.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from kascade.controller.podspec import LARGE_MARKER
from kascade.kube.client import Kube

log = logging.getLogger("kascade.masking")

MASK = "***"
MIN_LENGTH = 5
CACHE_SECONDS = 60.0

Reader = Callable[[str, str], dict[str, str] | None]


def secret_refs(pod: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(Secret name, key or None for every key) for each Secret the pod's containers see."""
    spec = pod.get("spec") or {}
    for container in spec.get("containers") or []:
        for var in container.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                yield str(ref["name"]), str(ref.get("key") or "") or None
        for source in container.get("envFrom") or []:
            ref = source.get("secretRef") or {}
            if ref.get("name"):
                yield str(ref["name"]), None
    for volume in spec.get("volumes") or []:
        name = (volume.get("secret") or {}).get("secretName")
        if name:
            yield str(name), None
        for item in (volume.get("projected") or {}).get("sources") or []:
            name = (item.get("secret") or {}).get("name")
            if name:
                yield str(name), None


def _forms(values: list[str]) -> Iterator[str]:
    """What to replace: each value long enough, as written and as JSON escapes it, longest
    first (so a value inside another is not masked first)."""
    for value in sorted(set(values), key=len, reverse=True):
        if len(value) >= MIN_LENGTH:
            yield from dict.fromkeys((value, json.dumps(value)[1:-1]))


def mask_bytes(data: bytes, values: list[str]) -> bytes:
    """``mask_text`` for a log's bytes (kept as they are where they are not UTF-8)."""
    for form in _forms(values):
        data = data.replace(form.encode(), MASK.encode())
    return data


def mask_text(text: str, values: list[str]) -> str:
    """Each value, as written and as JSON escapes it, replaced by ``***`` (longest first)."""
    for form in _forms(values):
        text = text.replace(form, MASK)
    return text


class SecretMasker:
    """Masks a pod's termination message with the values of the Secrets it uses (cached)."""

    def __init__(self, read: Reader, clock: Callable[[], float] = time.monotonic) -> None:
        self.read = read
        self.clock = clock
        self.cache: dict[tuple[str, str], tuple[float, dict[str, str] | None]] = {}

    def values(self, namespace: str, pod: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for name, key in secret_refs(pod):
            data = self._secret(namespace, name)
            if data:
                out += (
                    [data[key]] if key and key in data else list(data.values()) if not key else []
                )
        return out

    def _secret(self, namespace: str, name: str) -> dict[str, str] | None:
        now = self.clock()
        hit = self.cache.get((namespace, name))
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            data = self.read(namespace, name)
        except Exception as exc:  # no right to read it: nothing to mask with
            log.warning("Secret %s/%s: cannot read it to mask outputs: %s", namespace, name, exc)
            data = None
        self.cache[(namespace, name)] = (now, data)
        return data

    def mask_pod(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The pod with its termination messages masked (the same object when nothing to do):
        the task's, and the outputs sidecar's (an init container) when it has one."""
        if not pod_has_message(pod):
            return pod
        namespace = str((pod.get("metadata") or {}).get("namespace") or "")
        values = self.values(namespace, pod)
        if not values:
            return pod
        masked = copy.deepcopy(pod)
        for field in STATUS_FIELDS:
            for status in masked["status"].get(field) or []:
                for state in ("state", "lastState"):
                    terminated = (status.get(state) or {}).get("terminated") or {}
                    message = terminated.get("message")
                    if message and not _size_marker(message):
                        terminated["message"] = mask_text(message, values)
        return masked


STATUS_FIELDS = ("containerStatuses", "initContainerStatuses")


def _size_marker(message: str) -> bool:
    """The outputs sidecar's "outputs are in my log" message holds only a size: nothing to
    mask, and masking it would hide the outputs (the log is masked when it is read)."""
    return message.startswith(LARGE_MARKER) and message[len(LARGE_MARKER) :].isdigit()


def has_message(status: dict[str, Any]) -> bool:
    return any(
        ((status.get(state) or {}).get("terminated") or {}).get("message")
        for state in ("state", "lastState")
    )


def pod_has_message(pod: dict[str, Any]) -> bool:
    """A container of the pod ended with a termination message (outputs, maybe secrets)."""
    status = pod.get("status") or {}
    return any(has_message(s) for field in STATUS_FIELDS for s in status.get(field) or [])


class MaskingKube(Kube):
    """The operator's Kube: pods it lists come back masked (a restarted operator replays them)."""

    def __init__(self) -> None:
        super().__init__()
        self.masker = SecretMasker(self.read_secret_data)

    def list_pods(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        return [self.masker.mask_pod(p) for p in super().list_pods(namespace, selector)]

    def secret_values(self, namespace: str, pod: str) -> list[str]:
        """The values to mask in a pod's archived log, as in its outputs: the archive's
        readers are not the pod's (bucket credentials, the UI), and Airflow masks task
        logs too."""
        body = self.get_pod(namespace, pod)
        return self.masker.values(namespace, body) if body is not None else []

    def read_outputs_log(self, pod: dict[str, Any], container: str, limit_bytes: int) -> str:
        """A container's log that carries outputs, masked like its termination message."""
        meta = pod.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        text = self.read_pod_log(namespace, name, container, limit_bytes)
        values = self.masker.values(namespace, pod)
        return mask_text(text, values) if values else text
