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


def attempt_pods(kube: Any, namespace: str, run: str, key: str) -> list[dict[str, Any]]:
    """The task instance's pods as attempts (number, pod, start, end, exit code, phase).

    The operator may write a short attempt into its TaskRun only when it ends; the
    pod is there from the start, so logs can be followed while it runs.
    """
    from kascade.controller.naming import label_value
    from kascade.controller.podspec import ANN_ATTEMPT, LABEL_RUN, LABEL_TASK

    selector = f"{LABEL_RUN}={label_value(run)},{LABEL_TASK}={label_value(key)}"
    out = []
    for pod in kube.core.list_namespaced_pod(namespace, label_selector=selector).items:
        annotations = pod.metadata.annotations or {}
        try:
            number = int(annotations.get(ANN_ATTEMPT, "0"))
        except ValueError:
            continue
        terminated = None
        for status in (pod.status.container_statuses if pod.status else None) or []:
            if status.name == "task" and status.state and status.state.terminated:
                terminated = status.state.terminated
        start = pod.status.start_time if pod.status else None
        out.append(
            {
                "number": number,
                "pod": pod.metadata.name,
                "startTime": start.isoformat() if start else None,
                "endTime": terminated.finished_at.isoformat()
                if terminated and terminated.finished_at
                else None,
                "exitCode": terminated.exit_code if terminated else None,
                "reason": terminated.reason if terminated else None,
                "message": None,
                "phase": pod.status.phase if pod.status else None,
            }
        )
    return sorted(out, key=lambda a: a["number"])
