"""Reads the web UI makes on demand, as the user: a run's Events, an attempt's pod.

A pod's rendered fields are shown as the pod spec holds them: literal values
and references (``valueFrom``, ``envFrom``), never a Secret's content.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException


def events_of(kube: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events about the object ``name`` (a PipelineRun), oldest first."""
    listed = kube.core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name}"
    )
    out = []
    for e in listed.items:
        last = e.last_timestamp or e.event_time or e.first_timestamp
        out.append(
            {
                "type": e.type,
                "reason": e.reason,
                "message": e.message,
                "count": e.count or 1,
                "lastTime": last.isoformat() if last else None,
            }
        )
    out.sort(key=lambda ev: ev["lastTime"] or "")
    return out


def rendered_fields(kube: Any, namespace: str, pod: str) -> dict[str, Any] | None:
    """The task container's command, args, env and working dir after templating."""
    try:
        body = kube.core.read_namespaced_pod(pod, namespace)
    except ApiException as exc:
        if exc.status in (403, 404):
            return None
        raise
    data = kube.api.sanitize_for_serialization(body)
    containers = (data.get("spec") or {}).get("containers") or []
    task = next(
        (c for c in containers if c.get("name") == "task"), containers[0] if containers else {}
    )
    env = [e for e in task.get("env") or [] if not str(e.get("name", "")).startswith("KASCADE_")]
    out = {
        "pod": pod,
        "image": task.get("image"),
        "command": task.get("command"),
        "args": task.get("args"),
        "workingDir": task.get("workingDir"),
        "env": env,
        "envFrom": task.get("envFrom"),
        "node": (data.get("spec") or {}).get("nodeName"),
    }
    return {k: v for k, v in out.items() if v not in (None, [])}
