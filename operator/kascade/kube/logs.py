"""Pod logs: read at once or streamed while the container runs.

A container that has not started yet answers 400 ("waiting to start"); that is
reported as ``LogNotReady`` so followers can wait and try again, and a pod that
is gone as ``LogGone`` (where an archive reader will take over).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubernetes.client.exceptions import ApiException

CHUNK_BYTES = 16384


class LogNotReady(Exception):
    """The container has not started: no log yet."""


class LogGone(Exception):
    """The pod no longer exists."""


def pod_log(
    kube: Any,
    namespace: str,
    pod: str,
    *,
    follow: bool = False,
    container: str = "task",
    limit_bytes: int | None = None,
) -> Iterator[bytes]:
    """The pod's log as byte chunks; with ``follow``, until the container ends."""
    kwargs: dict[str, Any] = {"container": container, "follow": follow}
    if limit_bytes is not None:
        kwargs["limit_bytes"] = limit_bytes
    try:
        resp = kube.core.read_namespaced_pod_log(pod, namespace, _preload_content=False, **kwargs)
    except ApiException as exc:
        if exc.status == 404:
            raise LogGone(f"pod {namespace}/{pod} is gone") from None
        if exc.status == 400:
            raise LogNotReady(_reason(exc)) from None
        raise
    try:
        yield from resp.stream(CHUNK_BYTES, decode_content=True)
    finally:
        resp.release_conn()


def _reason(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)
