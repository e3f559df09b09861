"""Pools on the cluster: one slot ledger (``engine/pools.py``) per namespace, sized from the
Pool objects and exported as metrics. Usage is counted from the instances that hold slots,
so a restart rebuilds it and a crash cannot leak a slot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kascade import metrics
from kascade.api.pools import PoolStatus
from kascade.engine.pools import PoolLedger

POOL_STATUS_SECONDS = 5.0
"""A Pool's status (used and queued slots, for ``kubectl get pools``) is written at most
this often, and only when it changed."""


class ClusterPools:
    """One pool ledger per namespace; freeing capacity bumps ``version`` so that runs with
    queued tasks get a tick (a pool slot or a maxActiveTasks slot)."""

    def __init__(self) -> None:
        self.ledgers: dict[str, PoolLedger] = {}
        self.version = 0
        self.written: dict[tuple[str, str], dict[str, Any]] = {}

    def for_namespace(self, namespace: str) -> PoolLedger:
        ledger = self.ledgers.get(namespace)
        if ledger is None:
            ledger = PoolLedger(
                where=f" in namespace {namespace}", on_change=self._watch(namespace)
            )
            self.ledgers[namespace] = ledger
        return ledger

    def _watch(self, namespace: str) -> Callable[[str, int], None]:
        last: dict[str, int] = {}

        def on_change(pool: str, used: int) -> None:
            if used < last.get(pool, 0):
                self.changed()
            last[pool] = used
            metrics.POOL_SLOTS_USED.labels(namespace, pool).set(used)

        return on_change

    def changed(self) -> None:
        """Capacity was freed (a pool slot or a maxActiveTasks slot)."""
        self.version += 1

    def status_writes(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(namespace, pool, status) of every existing Pool whose usage or queue changed
        since its status was last written."""
        writes = []
        for namespace, ledger in self.ledgers.items():
            for pool in ledger.sizes:
                status = PoolStatus(
                    used=ledger.used.get(pool, 0),
                    queued=metrics.RUN_GAUGES.queued(namespace, pool),
                ).model_dump(by_alias=True, mode="json")
                if self.written.get((namespace, pool)) != status:
                    self.written[(namespace, pool)] = status
                    writes.append((namespace, pool, status))
        return writes
