"""Active/standby with a ``coordination.k8s.io`` Lease (kopf's peering is not leader election).

The timings (client-go's leader election, shortened so that a standby takes over within
about 4 s of a leader's death):

* the leader renews the Lease every ``RENEW_SECONDS`` (1 s), from a thread of its own so
  that a busy event loop cannot make it miss a renewal;
* a standby looks every ``RETRY_SECONDS`` (0.5 s) and takes the Lease once it has seen
  it unchanged for ``LEASE_SECONDS`` (3 s) *by its own clock* (it compares no clocks of
  other nodes, as client-go does): at most 1 + 0.5 + 3 + 0.5 = 5 s after the leader's
  last renewal, about 4 s after its death on average;
* a leader that has not renewed for ``RENEW_DEADLINE`` (2 s) stops at once
  (``os._exit``, crash-only), from a watchdog thread, and every API write checks the
  same deadline first (``Kube.fence``): a paused leader that wakes up after a standby
  took over dies before it writes anything.

No split brain: the leader stops no later than 2 s after the start of its last
successful renewal, and a standby cannot take over earlier than 3 s after it saw that
renewal, which happened after it started. The 1 s between the two absorbs scheduling
delays; each Lease call gives up after ``CALL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kascade import metrics
from kascade.kube.client import Kube

log = logging.getLogger("kascade.leader")

LEASE_SECONDS = 3
RENEW_SECONDS = 1.0
RENEW_DEADLINE = 2.0
RETRY_SECONDS = 0.5
CALL_SECONDS = 1.0


def _micro(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str = "kascade-operator",
        *,
        lease_seconds: int = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        renew_deadline: float = RENEW_DEADLINE,
        retry_seconds: float = RETRY_SECONDS,
        identity: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        stop: Callable[[int], Any] = os._exit,
    ) -> None:
        assert renew_seconds < renew_deadline < lease_seconds
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.renew_deadline = renew_deadline
        self.retry_seconds = retry_seconds
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}"
        self.clock = clock
        """Monotonic seconds: every comparison is against this process's own clock."""
        self.wall = wall
        """Only for the times written into the Lease, for people reading it."""
        self.stop = stop
        self.renewed: float | None = None
        """When the last successful acquire or renewal started (this clock)."""
        self.seen: tuple[Any, ...] | None = None
        self.seen_at = 0.0
        """The Lease as last seen, and when it was first seen so (this clock)."""

    # -- one try -------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Acquire or renew the Lease: True when this replica holds it now."""
        started = self.clock()
        now = self.wall()
        lease = self.kube.get_lease(self.namespace, self.name, timeout=CALL_SECONDS)
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.lease_seconds,
            "renewTime": _micro(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            if not self.kube.create_lease(self.namespace, body, timeout=CALL_SECONDS):
                return False
            self.renewed = started
            return True
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        record = (holder, current.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self.seen:
            self.seen, self.seen_at = record, started
        duration = current.get("leaseDurationSeconds") or self.lease_seconds
        if holder and holder != self.identity and started < self.seen_at + duration:
            return False  # held, and renewed within its duration as far as we have seen
        new_spec = dict(spec)
        if holder != self.identity:
            new_spec["acquireTime"] = _micro(now)
            new_spec["leaseTransitions"] = (current.get("leaseTransitions") or 0) + 1
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
        if not self.kube.replace_lease(self.namespace, self.name, body, timeout=CALL_SECONDS):
            return False  # someone else renewed or took it first
        self.renewed = started
        return True

    def _safe_try(self) -> bool:
        try:
            return self.try_acquire()
        except Exception as exc:
            log.warning("Lease request failed: %s", exc)
            return False

    # -- leading -------------------------------------------------------------------
    def valid(self) -> bool:
        """This replica may still act: it renewed within the renew deadline."""
        return self.renewed is not None and self.clock() - self.renewed < self.renew_deadline

    def fence(self) -> None:
        """Called before every API write: a replica that may no longer lead stops first."""
        if not self.valid():
            self._lost("a write was about to be made")

    def _lost(self, when: str) -> None:
        metrics.IS_LEADER.set(0)
        log.error("Lost the leader Lease (%s); exiting so that only one replica acts", when)
        self.stop(3)

    async def acquire(self) -> None:
        log.info(
            "Waiting for the leader Lease %s/%s as %s", self.namespace, self.name, self.identity
        )
        while not await asyncio.to_thread(self._safe_try):
            await asyncio.sleep(self.retry_seconds)
        metrics.IS_LEADER.set(1)
        log.info("Acquired the leader Lease as %s", self.identity)

    def keep(self) -> None:
        """Renew until lost, in threads of their own (the event loop may be busy)."""
        threading.Thread(target=self._renew_loop, name="lease-renew", daemon=True).start()
        threading.Thread(target=self._watchdog, name="lease-watchdog", daemon=True).start()

    def _renew_loop(self) -> None:
        while True:
            due = (self.renewed or self.clock()) + self.renew_seconds
            time.sleep(max(0.0, due - self.clock()))
            while not self._safe_try():
                time.sleep(self.retry_seconds / 2)

    def _watchdog(self) -> None:
        while True:
            time.sleep(0.05)
            if not self.valid():
                self._lost(f"not renewed for {self.renew_deadline:g} s")
                return
