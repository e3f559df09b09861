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
from kascade.controller.leader import LeaderElector
from kascade.controller.podspec import LABEL_RUN
from kascade.controller.world import World
from kascade.kube.client import Kube, load_config

log = logging.getLogger("kascade.operator")
STATE: dict[str, Any] = {}
LEADING = asyncio.Event()
"""Set while this replica may act: it holds the Lease, or runs without election."""

if os.environ.get("KASCADE_WEBHOOK"):  # the Pipeline admission webhook (helm: webhook.enabled)
    from kascade.controller import admission  # noqa: F401  (registers its kopf handlers)


def _emit(obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
    if kind == "Normal" and reason.startswith("Task") and not TASK_EVENTS_ALL:
        return  # --task-events=warnings: a busy installation keeps only what needs a look
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
    kube = Kube()
    STATE["world"] = World(kube, _emit)
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
    _act()
    await elector.keep()


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    for name in ("clock", "leader"):
        task = STATE.pop(name, None)
        if task is not None:
            task.cancel()


async def _guard(kind: str, coro: Any) -> None:
    await LEADING.wait()
    try:
        await coro
    except Exception:
        metrics.RECONCILE_ERRORS.labels(kind).inc()
        log.exception("Reconciling a %s failed", kind)


@kopf.on.event(GROUP, VERSION, "pipelines")
async def pipeline_event(event: dict[str, Any], **_: Any) -> None:
    await _guard("Pipeline", world().on_pipeline(str(event.get("type")), event["object"]))


@kopf.on.event(GROUP, VERSION, "pipelineruns")
async def run_event(event: dict[str, Any], **_: Any) -> None:
    await _guard("PipelineRun", world().on_run(str(event.get("type")), event["object"]))


@kopf.on.event(GROUP, VERSION, "pools")
async def pool_event(event: dict[str, Any], **_: Any) -> None:
    await LEADING.wait()
    world().on_pool(str(event.get("type")), event["object"])


@kopf.on.event("", "v1", "pods", labels={LABEL_RUN: kopf.PRESENT})
async def pod_event(event: dict[str, Any], **_: Any) -> None:
    await _guard("Pod", world().on_pod(str(event.get("type")), event["object"]))


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
