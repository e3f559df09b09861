"""Send notifications: webhooks, hook pods and e-mail.

A notification never changes a run's outcome: failures are logged and counted.
Webhook URLs are usually credentials, so they are read from Secrets at send
time and never written to logs, events or status. Each one gets the callback
context the engine built (``Fire.context``) with the link to the task's page in
the web UI: a webhook's body is rendered over it, a hook pod gets it as
environment variables, an e-mail's subject and body are rendered over it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from kascade import metrics
from kascade.controller import links, outbound
from kascade.controller.mailing import Mailer
from kascade.controller.naming import bounded, label_value
from kascade.controller.podspec import (
    DEFAULT_CONTAINER_SECURITY,
    DEFAULT_POD_SECURITY,
    LABEL_PIPELINE,
    MANAGED_BY,
)
from kascade.engine import callbacks
from kascade.engine.decisions import Fire
from kascade.integrations.mailing import message_id
from kascade.kube.client import Kube

log = logging.getLogger("kascade.notify")


POLICY = outbound.Policy()
"""Where webhooks may go; set at operator start-up from the chart's notifications values."""


def configure(policy: outbound.Policy) -> None:
    global POLICY
    POLICY = policy


def _post(url: str, body: Any) -> int:
    status = outbound.post_json(url, body, POLICY)
    if status >= 400:
        raise OSError(f"HTTP {status}")
    return status


def hook_pod(
    namespace: str, pipeline: str, fire: Fire, owner: dict[str, Any], ctx: Any = None
) -> dict[str, Any]:
    """A hook pod named after (run, notification, event, task): created once, owned by the run."""
    hook = fire.notification.hook
    assert hook is not None
    command = hook.command
    args = hook.args
    if hook.script is not None:
        command = [*(command or ["sh", "-e"]), "-c", hook.script]
    contract = callbacks.hook_env(ctx if ctx is not None else fire.context, fire.task)
    contract["KASCADE_PIPELINE"] = pipeline
    contract["KASCADE_EVENT"] = fire.event
    contract["KASCADE_MESSAGE"] = fire.message
    env = [{"name": k, "value": v} for k, v in contract.items()] + [
        e.dump() for e in hook.env or []
    ]
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
    kube: Kube,
    namespace: str,
    pipeline: str,
    run: str,
    fire: Fire,
    owner: dict[str, Any],
    mailer: Mailer,
) -> None:
    """Every channel of one notification; one failing never stops the others."""
    n = fire.notification
    ctx = callbacks.with_log_url(
        fire.context, links.task_page(links.ui_base(), namespace, run, fire.task)
    )
    outcome = "sent"
    for channel in ("webhook", "hook", "email"):
        if getattr(n, channel) is None:
            continue
        try:
            if channel == "webhook":
                outcome = await _webhook(kube, namespace, fire, ctx, pipeline) or outcome
            elif channel == "hook":
                body = hook_pod(namespace, pipeline, fire, owner, ctx)
                await asyncio.to_thread(kube.create_pod, namespace, body)
            else:
                outcome = await _email(mailer, fire, ctx) or outcome
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


async def _webhook(
    kube: Kube, namespace: str, fire: Fire, ctx: dict[str, Any], pipeline: str
) -> str | None:
    webhook = fire.notification.webhook
    assert webhook is not None
    url = webhook.url
    if webhook.url_from is not None:
        ref = webhook.url_from
        url = await asyncio.to_thread(kube.read_secret_key, namespace, ref.name, ref.key)
    if not url:
        return "no_url"
    await asyncio.to_thread(_post, url, callbacks.render_body(webhook.body, ctx))
    return None


async def _email(mailer: Mailer, fire: Fire, ctx: dict[str, Any]) -> str | None:
    template = fire.notification.email
    assert template is not None
    email = callbacks.render_email(template, ctx)
    ident = mailing_id(ctx, fire)
    what = f"notification {fire.notification.name} ({fire.event} of {fire.task or 'the run'})"
    return None if await mailer.send(email, ident, what) is None else "error"


def mailing_id(ctx: dict[str, Any], fire: Fire) -> str:
    """The same alert sent again (an operator restart) has the same Message-ID."""
    return message_id(
        ctx.get("run_id"),
        fire.notification.name,
        fire.event,
        fire.task or "run",
        ctx.get("try_number") or 0,
    )
