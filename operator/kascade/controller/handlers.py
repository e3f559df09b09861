"""kopf registration: every handler forwards a watch event to the World, nothing more.

Raw ``on.event`` handlers are used on purpose: the World is idempotent and
recomputes from what it observes, so kopf's change-detection machinery (and the
progress records it would write) is not needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from typing import Any

import kopf

from kascade import metrics
from kascade.api.base import GROUP, VERSION
from kascade.controller import approval, config, log_archiving, masking, notify, outbound
from kascade.controller.leader import LeaderElector
from kascade.controller.podspec import LABEL_RUN
from kascade.controller.world import World
from kascade.kube import client
from kascade.kube.client import load_config

log = logging.getLogger("kascade.operator")
STATE: dict[str, Any] = {}
LEADING = asyncio.Event()
"""Set while this replica may act: it holds the Lease, or runs without election."""

if os.environ.get("KASCADE_WEBHOOK"):  # the Pipeline admission webhook (helm: webhook.enabled)
    from kascade.controller import admission  # noqa: F401  (registers its kopf handlers)


def _emit(obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
    """Post a Kubernetes Event, and log it: the operator's log is one line per event."""
    meta = obj.get("metadata") or {}
    log.log(
        logging.WARNING if kind == "Warning" else logging.INFO,
        "%s %s/%s: %s: %s",
        *(obj.get("kind") or "Object", meta.get("namespace"), meta.get("name"), reason),
        message[:500],
    )
    if kind == "Normal" and reason.startswith("Task") and not TASK_EVENTS_ALL:
        return  # --task-events=warnings: a busy installation keeps only what needs a look
    if client.FENCE is not None:
        client.FENCE()  # an Event is a write too: never from a replica that lost the Lease
    try:
        kopf.event(obj, type=kind, reason=reason, message=message[:1000])
    except Exception as exc:  # events are best effort
        log.debug("Event not posted: %s", exc)


TASK_EVENTS_ALL = os.environ.get("KASCADE_TASK_EVENTS", "all") != "warnings"
"""Events for every task state change (as Argo's node events), or only the warnings."""


def world() -> World:
    return STATE["world"]  # type: ignore[no-any-return]


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.ERROR
    settings.batching.batch_window = 0.001  # pod ends must reach the engine at once
    settings.watching.server_timeout = 300
    asyncio.get_running_loop().set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="kube")
    )
    load_config(os.environ.get("KUBECONFIG"))
    notify.configure(outbound.policy_from_env())
    config.configure(config.read_config())
    policy = approval.policy_from_env()
    approval.configure(policy)
    if not policy.required:
        log.warning(
            "Approval is off: every Pipeline and PipelineRun spec runs as written, whoever "
            "wrote it (any ServiceAccount, Secret or pod privilege of its namespace)"
        )
    kube = masking.MaskingKube()
    STATE["kube"] = kube
    STATE["world"] = World(kube, _emit)
    archive = config.CONFIG.log_archive
    log_archiving.configure(
        log_archiving.LogArchiver(kube, archive, emit=_emit) if archive is not None else None
    )
    if archive is not None:
        where, cap = archive.where, archive.max_bytes
        log.info("Task logs are archived in %s (at most %d bytes each)", where, cap)
    port = int(os.environ.get("KASCADE_METRICS_PORT", "8080"))
    if port:
        metrics.serve(port)
    lease_ns = os.environ.get("KASCADE_LEADER_NAMESPACE")
    if lease_ns:
        # A standby finishes starting (liveness, admission webhook) and waits for the
        # Lease in the background; no handler acts before it holds the Lease.
        elector = LeaderElector(
            kube, lease_ns, os.environ.get("KASCADE_LEADER_NAME", "kascade-operator")
        )
        STATE["leader"] = asyncio.get_running_loop().create_task(_lead(elector))
    else:
        metrics.IS_LEADER.set(1)
        _act()


def _act() -> None:
    STATE["clock"] = asyncio.get_running_loop().create_task(world().run_timers())
    LEADING.set()


async def _lead(elector: LeaderElector) -> None:
    await elector.acquire()
    client.FENCE = elector.fence
    elector.keep()
    _act()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    for name in ("clock", "leader"):
        task = STATE.pop(name, None)
        if task is not None:
            task.cancel()


async def _guard(kind: str, body: dict[str, Any], coro: Any) -> None:
    await LEADING.wait()
    try:
        await coro
    except Exception:
        metrics.RECONCILE_ERRORS.labels(kind).inc()
        meta = body.get("metadata") or {}
        log.exception("%s %s/%s: reconciling failed", kind, meta.get("namespace"), meta.get("name"))


@kopf.on.event(GROUP, VERSION, "pipelines")
async def pipeline_event(event: dict[str, Any], **_: Any) -> None:
    body = event["object"]
    if event.get("type") == "DELETED":
        metrics.forget_pipeline(body["metadata"]["namespace"], body["metadata"]["name"])
    else:
        metrics.seen_pipeline(body)
    await _guard("Pipeline", body, world().on_pipeline(str(event.get("type")), body))


@kopf.on.event(GROUP, VERSION, "pipelineruns")
async def run_event(event: dict[str, Any], **_: Any) -> None:
    body = event["object"]
    await _guard("PipelineRun", body, world().on_run(str(event.get("type")), body))


@kopf.on.event(GROUP, VERSION, "tasktemplates")
async def task_template_event(event: dict[str, Any], **_: Any) -> None:
    body = event["object"]
    await _guard("TaskTemplate", body, world().on_task_template(str(event.get("type")), body))


@kopf.on.event(GROUP, VERSION, "pools")
async def pool_event(event: dict[str, Any], **_: Any) -> None:
    meta = event["object"]["metadata"]
    metrics.seen_pool(meta["namespace"], meta["name"])
    await LEADING.wait()
    world().on_pool(str(event.get("type")), event["object"])


@kopf.on.event("", "v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def pod_event(event: dict[str, Any], **_: Any) -> None:
    body = event["object"]
    masker = STATE["kube"].masker
    if masking.pod_has_message(body):
        # Secret values in outputs are masked before anything reads them (reads run in a thread).
        body = await asyncio.to_thread(masker.mask_pod, body)
    await _guard("Pod", body, world().on_pod(str(event.get("type")), body))


def run(namespaces: list[str], clusterwide: bool, liveness: str | None) -> None:
    """Run the operator until interrupted (``kascade operator``)."""
    asyncio.run(
        kopf.operator(
            clusterwide=clusterwide,
            namespaces=namespaces,
            standalone=True,
            liveness_endpoint=liveness,
        )
    )
