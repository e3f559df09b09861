"""Active/standby with a ``coordination.k8s.io`` Lease (kopf's peering is not leader election).

A replica that does not hold the Lease waits before any watcher starts; a
leader that cannot renew in time exits at once (crash-only), so two replicas
never act together, and the standby takes over within one lease duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from kascade import metrics
from kascade.kube.client import Kube

log = logging.getLogger("kascade.leader")


def _now() -> datetime:
    return datetime.now(UTC)


def _micro(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str = "kascade-operator",
        *,
        lease_seconds: int = 15,
        renew_seconds: float = 4.0,
        identity: str | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.renewed: datetime | None = None

    def try_acquire(self) -> bool:
        now = _now()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _micro(now),
        }
        lease = self.kube.get_lease(self.namespace, self.name)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            if not self.kube.create_lease(self.namespace, body):
                return False
            self.renewed = now
            return True
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        renew = _parse(current.get("renewTime"))
        duration = current.get("leaseDurationSeconds") or self.lease_seconds
        expired = renew is None or now > renew + timedelta(seconds=duration)
        if holder != self.identity and not expired:
            return False
        transitions = current.get("leaseTransitions") or 0
        new_spec = dict(spec)
        if holder != self.identity:
            new_spec["acquireTime"] = _micro(now)
            new_spec["leaseTransitions"] = transitions + 1
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": lease["metadata"]["resourceVersion"],
                # Kept: the chart's labels and Helm's ownership annotations.
                "labels": lease["metadata"].get("labels"),
                "annotations": lease["metadata"].get("annotations"),
            },
            "spec": new_spec,
        }
        if not self.kube.replace_lease(self.namespace, self.name, body):
            return False  # someone else renewed or took it first
        self.renewed = now
        return True

    async def acquire(self) -> None:
        log.info(
            "Waiting for the leader Lease %s/%s as %s", self.namespace, self.name, self.identity
        )
        while not await asyncio.to_thread(self._safe_try):
            await asyncio.sleep(2)
        metrics.IS_LEADER.set(1)
        log.info("Acquired the leader Lease as %s", self.identity)

    def _safe_try(self) -> bool:
        try:
            return self.try_acquire()
        except Exception as exc:
            log.warning("Lease request failed: %s", exc)
            return False

    async def keep(self) -> None:
        """Renew until lost; losing it ends the process so no stale leader acts."""
        while True:
            await asyncio.sleep(self.renew_seconds)
            ok = await asyncio.to_thread(self._safe_try)
            if ok:
                continue
            last = self.renewed or _now()
            if _now() - last > timedelta(seconds=self.lease_seconds * 2 / 3):
                metrics.IS_LEADER.set(0)
                log.error("Lost the leader Lease; exiting so that only one replica acts")
                os._exit(3)
