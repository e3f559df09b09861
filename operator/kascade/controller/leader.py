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

from kubernetes.client.exceptions import ApiException

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
        api = self.kube.coordination
        now = _now()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _micro(now),
        }
        try:
            lease = api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            try:
                api.create_namespaced_lease(self.namespace, body)
            except ApiException as exc2:
                if exc2.status == 409:
                    return False
                raise
            self.renewed = now
            return True
        current = lease.spec
        holder = current.holder_identity
        renew = _parse(current.renew_time)
        duration = current.lease_duration_seconds or self.lease_seconds
        expired = renew is None or now > renew + timedelta(seconds=duration)
        if holder != self.identity and not expired:
            return False
        transitions = current.lease_transitions or 0
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
                "resourceVersion": lease.metadata.resource_version,
                # Kept: the chart's labels and Helm's ownership annotations.
                "labels": lease.metadata.labels,
                "annotations": lease.metadata.annotations,
            },
            "spec": new_spec,
        }
        try:
            api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as exc:
            if exc.status == 409:  # someone else renewed or took it first
                return False
            raise
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
