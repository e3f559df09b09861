"""Thin, counted access to the Kubernetes API (the official client, called from threads).

Every write goes through ``_count`` so the API economy of the operator (writes
per task attempt) is measured, not guessed, and exported as a metric.

Transient failures (429, 5xx, a conflict on a patch, a connection reset or refused)
are retried with exponential backoff (tenacity) before they reach the caller, so an
API server that hiccups delays an attempt instead of leaving it queued until its start
timeout. A create answered with 409 is not retried: the name exists, which
deterministic names make a success.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import tenacity
import urllib3.exceptions
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException as ApiException

from kascade.api.base import GROUP, VERSION
from kascade.kube import KubeConfigError

log = logging.getLogger("kascade.kube")

WRITES: Counter[str] = Counter()
"""(verb resource) → calls; read by the metrics module and the benchmarks."""


def load_config(kubeconfig: str | None = None) -> None:
    """In-cluster credentials, else the kubeconfig; KubeConfigError says which was missing."""
    try:
        config.load_incluster_config()
        return
    except config.ConfigException:
        pass
    try:
        config.load_kube_config(config_file=kubeconfig)
    except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        where = kubeconfig or "~/.kube/config (set KUBECONFIG or --kubeconfig)"
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise KubeConfigError(
            f"cannot reach a cluster: not running in one, and no usable kubeconfig at {where}: "
            f"{detail}"
        ) from None


FENCE: Callable[[], None] | None = None
"""Called before every write: with leader election, it stops a replica whose Lease may
have passed to another (``controller/leader.py``), so two replicas never write together."""


def _count(verb: str, resource: str) -> None:
    if FENCE is not None:
        FENCE()
    WRITES[f"{verb} {resource}"] += 1
    from kascade import metrics  # local import: metrics is optional for CLI users

    metrics.API_WRITES.labels(verb=verb, resource=resource).inc()


T = TypeVar("T")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_SECONDS = 30.0
"""A transient failure is retried for this long at most, then raised."""
_CONNECTION_ERRORS = (
    ConnectionError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.TimeoutError,
)


class Refused(Exception):
    """The API server refused a request for what it asks (a 4xx other than a conflict or
    throttling): sent again as it is, it would be refused again."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        """The Status reason: Invalid, Forbidden, BadRequest..."""
        self.message = message
        """The server's own words."""

    @classmethod
    def of(cls, exc: ApiException) -> Refused:
        reason, message = str(exc.reason or ""), ""
        try:
            body = json.loads(exc.body or "{}")
            reason = str(body.get("reason") or reason)
            message = str(body.get("message") or "")
        except (TypeError, ValueError):
            message = str(exc.body or "")
        return cls(int(exc.status or 0), reason, message or reason)


def refused(exc: BaseException) -> bool:
    return (
        isinstance(exc, ApiException)
        and 400 <= int(exc.status or 0) < 500
        and exc.status not in (404, 408, 409, 429)
    )


def transient(exc: BaseException, *, conflicts: bool = True) -> bool:
    """Worth another try: the server was busy or briefly away (``conflicts``: a 409 too)."""
    if isinstance(exc, ApiException):
        return exc.status in RETRY_STATUSES or (conflicts and exc.status == 409)
    return isinstance(exc, _CONNECTION_ERRORS)


class PodLogGone(LookupError):
    """The pod (or its container) is gone or was never started: its log cannot be read."""


class Kube:
    """The handful of calls the operator and the CLI make."""

    def __init__(
        self, api_client: client.ApiClient | None = None, *, retry_wait: float = 0.2
    ) -> None:
        self.api = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.coordination = client.CoordinationV1Api(self.api)
        self.retry_wait = retry_wait
        """The first backoff, doubled at each try (tests set 0)."""

    def _call(self, fn: Callable[..., T], *args: Any, conflicts: bool = True, **kw: Any) -> T:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: transient(e, conflicts=conflicts)),
            wait=tenacity.wait_exponential(multiplier=self.retry_wait, max=5),
            stop=tenacity.stop_after_delay(RETRY_SECONDS),
            before_sleep=_log_retry,
            reraise=True,
        )
        return retrying(fn, *args, **kw)

    # -- kascade objects -------------------------------------------------------
    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    def list_objects(
        self, plural: str, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        if namespace is None:
            out = self._call(
                self.custom.list_cluster_custom_object, GROUP, VERSION, plural, **kwargs
            )
        else:
            out = self._call(
                self.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                **kwargs,
            )
        return list(out.get("items", []))

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Create; None when it already exists (deterministic names make that a no-op)."""
        _count("create", plural)
        try:
            obj = self._call(
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                body,
                conflicts=False,
            )
        except ApiException as exc:
            if exc.status == 409:
                return None
            raise
        return dict(obj)

    def patch(self, plural: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch an object; the object as stored afterwards."""
        _count("patch", plural)
        stored = self._call(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body,
        )
        return dict(stored)

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        _count("patch", f"{plural}/status")
        log.debug(
            "Patching %s/%s status: %s %s",
            plural,
            name,
            status.get("state") or status.get("phase"),
            sorted(status),
        )
        try:
            self._call(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": status},
            )
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report on
                raise

    def delete(self, plural: str, namespace: str, name: str) -> None:
        _count("delete", plural)
        try:
            self._call(
                self.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                propagation_policy="Background",
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    # -- pods ----------------------------------------------------------------------
    def create_pod(self, namespace: str, body: dict[str, Any]) -> bool:
        """True if created, False if a pod of that name already existed; raises Refused
        when the API server will not have it (an invalid field, a Pod Security violation,
        a ServiceAccount it cannot find, a quota)."""
        _count("create", "pods")
        try:
            self._call(self.core.create_namespaced_pod, namespace, body, conflicts=False)
        except ApiException as exc:
            if exc.status == 409:
                return False
            if refused(exc):
                raise Refused.of(exc) from exc
            raise
        return True

    def delete_pod(self, namespace: str, name: str, grace: int = 5) -> None:
        _count("delete", "pods")
        try:
            self._call(self.core.delete_namespaced_pod, name, namespace, grace_period_seconds=grace)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def list_pods(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        if namespace is None:
            pods = self._call(self.core.list_pod_for_all_namespaces, label_selector=selector)
        else:
            pods = self._call(self.core.list_namespaced_pod, namespace, label_selector=selector)
        return [self.api.sanitize_for_serialization(p) for p in pods.items]

    def read_pod_log(self, namespace: str, name: str, container: str, limit_bytes: int) -> str:
        """The first ``limit_bytes`` of a container's log (a finished container's too)."""
        data = self.read_log_bytes(namespace, name, container, limit_bytes)
        return data.decode("utf-8", errors="replace")

    def read_log_bytes(self, namespace: str, name: str, container: str, limit_bytes: int) -> bytes:
        """The first ``limit_bytes`` of a finished container's log, as the kubelet kept it.

        PodLogGone when the pod no longer exists (or never ran its container): reading
        again cannot help."""
        _count("get", "pods/log")
        try:
            answer = self._call(
                self.core.read_namespaced_pod_log,
                name,
                namespace,
                container=container,
                limit_bytes=limit_bytes,
                _preload_content=False,
            )
        except ApiException as exc:
            if exc.status in (400, 404):
                raise PodLogGone(f"pod {namespace}/{name}: {exc.reason or exc.status}") from None
            raise
        return bytes(answer.data)

    def secret_values(self, namespace: str, pod: str) -> list[str]:
        """The values of the Secrets a pod uses, to mask in what is kept of its log: none
        here; the operator's Kube (``controller/masking.py``) reads them."""
        return []

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        _count("get", "pods")
        try:
            pod = self._call(self.core.read_namespaced_pod, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.api.sanitize_for_serialization(pod))

    def read_outputs_log(self, pod: dict[str, Any], container: str, limit_bytes: int) -> str:
        """A container's log that carries outputs (the operator's Kube masks Secrets in it)."""
        meta = pod.get("metadata") or {}
        return self.read_pod_log(
            str(meta.get("namespace") or ""), str(meta.get("name") or ""), container, limit_bytes
        )

    def read_secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """Every value of a Secret, decoded (for masking them); never logged."""
        import base64

        try:
            secret = self._call(self.core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return {
            k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()
        }

    # -- leases ----------------------------------------------------------------------
    def get_lease(
        self, namespace: str, name: str, timeout: float | None = None
    ) -> dict[str, Any] | None:
        try:
            lease = self.coordination.read_namespaced_lease(
                name, namespace, _request_timeout=timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(self.api.sanitize_for_serialization(lease))

    def create_lease(
        self, namespace: str, body: dict[str, Any], timeout: float | None = None
    ) -> bool:
        """False when another replica created it first."""
        try:
            self.coordination.create_namespaced_lease(namespace, body, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float | None = None
    ) -> bool:
        """False when another replica changed it since it was read (resourceVersion)."""
        try:
            self.coordination.replace_namespaced_lease(
                name, namespace, body, _request_timeout=timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def read_secret_key(self, namespace: str, name: str, key: str) -> str | None:
        """A Secret value, for webhooks whose URL is a credential; never logged."""
        import base64

        try:
            secret = self._call(self.core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raw = (secret.data or {}).get(key)
        return base64.b64decode(raw).decode() if raw else None


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    status = getattr(exc, "status", None) or type(exc).__name__
    log.info("Kubernetes API call failed (%s), try %d; retrying", status, state.attempt_number)
