"""Send notifications: Slack-compatible webhooks and hook pods.

A notification never changes a run's outcome: failures are logged and counted.
Webhook URLs are usually credentials, so they are read from Secrets at send
time and never written to logs, events or status.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from kascade import metrics
from kascade.controller import outbound
from kascade.controller.naming import bounded, label_value
from kascade.controller.podspec import (
    DEFAULT_CONTAINER_SECURITY,
    DEFAULT_POD_SECURITY,
    LABEL_PIPELINE,
    MANAGED_BY,
)
from kascade.engine.decisions import Fire
from kascade.kube.client import Kube

log = logging.getLogger("kascade.notify")


POLICY = outbound.Policy()
"""Where webhooks may go; set at operator start-up from the chart's notifications values."""


def configure(policy: outbound.Policy) -> None:
    global POLICY
    POLICY = policy


def _post(url: str, text: str) -> int:
    status = outbound.post_json(url, {"text": text}, POLICY)
    if status >= 400:
        raise OSError(f"HTTP {status}")
    return status


def hook_pod(
    namespace: str, pipeline: str, run_id: str, fire: Fire, owner: dict[str, Any]
) -> dict[str, Any]:
    """A hook pod named after (run, notification, event, task): created once, owned by the run."""
    hook = fire.notification.hook
    assert hook is not None
    command = hook.command
    args = hook.args
    if hook.script is not None:
        command = [*(command or ["sh", "-e"]), "-c", hook.script]
    env = [
        {"name": "KASCADE_EVENT", "value": fire.event},
        {"name": "KASCADE_TASK", "value": fire.task or ""},
        {"name": "KASCADE_MESSAGE", "value": fire.message},
        {"name": "KASCADE_PIPELINE", "value": pipeline},
        {"name": "KASCADE_RUN_ID", "value": run_id},
    ] + [e.dump() for e in hook.env or []]
    container: dict[str, Any] = {
        "name": "hook",
        "image": hook.image,
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "securityContext": DEFAULT_CONTAINER_SECURITY,
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    key = f"{owner['name']}/{fire.notification.name}/{fire.event}/{fire.task}"
    base = f"{owner['name']}-hook-{fire.notification.name}-{fire.event}-{fire.task or 'run'}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": bounded(base, key, 57) + "-" + hashlib.sha256(key.encode()).hexdigest()[:5],
            "namespace": namespace,
            "labels": {
                **MANAGED_BY,
                "kascade.io/hook": "true",
                LABEL_PIPELINE: label_value(pipeline),
            },
            "ownerReferences": [owner],
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [container],
            "securityContext": DEFAULT_POD_SECURITY,
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 600,
        },
    }


async def send(
    kube: Kube, namespace: str, pipeline: str, run_id: str, fire: Fire, owner: dict[str, Any]
) -> None:
    n = fire.notification
    outcome = "sent"
    try:
        if n.webhook is not None:
            url = n.webhook.url
            if n.webhook.url_from is not None:
                ref = n.webhook.url_from
                url = await asyncio.to_thread(kube.read_secret_key, namespace, ref.name, ref.key)
            if url:
                await asyncio.to_thread(_post, url, f"[kascade] {pipeline}: {fire.message}")
            else:
                outcome = "no_url"
        if n.hook is not None:
            await asyncio.to_thread(
                kube.create_pod, namespace, hook_pod(namespace, pipeline, run_id, fire, owner)
            )
    except outbound.Refused as exc:
        outcome = "refused"
        log.warning(
            "Notification %s (%s) of %s/%s not sent: %s",
            n.name,
            fire.event,
            namespace,
            pipeline,
            exc,
        )
    except Exception as exc:  # a notification must never break a run
        outcome = "error"
        log.warning(
            "Notification %s (%s) of %s/%s failed: %s",
            n.name,
            fire.event,
            namespace,
            pipeline,
            type(exc).__name__,
        )
    metrics.NOTIFICATIONS.labels(namespace, pipeline, fire.event, outcome).inc()
