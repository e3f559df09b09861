"""Pools: the admission rule and the slot ledger, the same in the local runner and the operator.

Airflow's rules, which both drivers follow:

* a task in a pool that does not exist is not scheduled: it waits until the pool is
  created (the operator) or is refused before the run starts (the local runner, where
  pools come from the file and ``--pool``);
* a task that needs more slots than its pool has waits until the pool grows;
* otherwise it runs when its slots are free, and holds them while it runs.

Pool names are Kubernetes object names (a Pool is an object in the namespace), so a
name such as Airflow's ``large_processing_pool`` is refused with the name to use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum

from kascade.api.names import pool_name_problem as pool_name_problem


class Admission(Enum):
    GRANTED = "granted"
    FULL = "full"
    """Its slots are taken for now: it goes when some are given back."""
    UNKNOWN_POOL = "unknown pool"
    TOO_SMALL = "too small"
    """The task needs more slots than the pool has at all."""

    @property
    def granted(self) -> bool:
        return self is Admission.GRANTED


class PoolLedger:
    """The pools of one namespace (or one local run): their sizes, and the slots held.

    Usage is counted from the instances that hold slots (acquire at launch, release at
    the end), never stored, so a restart that rebuilds the instances rebuilds the count.
    """

    def __init__(
        self,
        sizes: Mapping[str, int] | None = None,
        *,
        where: str = "",
        on_change: Callable[[str, int], None] = lambda pool, used: None,
    ) -> None:
        self.sizes: dict[str, int] = dict(sizes or {})
        self.used: dict[str, int] = {}
        self.where = where
        """Where the pools live, for messages (`` in namespace ns``)."""
        self.on_change = on_change
        """Called with (pool, slots used) after every acquire and release."""

    def set_size(self, pool: str, slots: int | None) -> None:
        """A Pool was created or resized (None: deleted)."""
        if slots is None:
            self.sizes.pop(pool, None)
        else:
            self.sizes[pool] = slots

    def admit(self, pool: str, slots: int) -> Admission:
        size = self.sizes.get(pool)
        if size is None:
            return Admission.UNKNOWN_POOL
        if slots > size:
            return Admission.TOO_SMALL
        used = self.used.get(pool, 0)
        if used + slots > size:
            return Admission.FULL
        self.used[pool] = used + slots
        self.on_change(pool, used + slots)
        return Admission.GRANTED

    def hold(self, pool: str, slots: int) -> None:
        """Count slots an instance already holds (one found running after a restart)."""
        self.used[pool] = self.used.get(pool, 0) + slots
        self.on_change(pool, self.used[pool])

    def release(self, pool: str, slots: int) -> None:
        left = max(0, self.used.get(pool, 0) - slots)
        self.used[pool] = left
        self.on_change(pool, left)

    def why_waiting(self, admission: Admission, pool: str, slots: int) -> str | None:
        """What to tell the user about a task that waits (None for a plain full pool)."""
        if admission is Admission.UNKNOWN_POOL:
            return f"pool {pool!r} does not exist{self.where}"
        if admission is Admission.TOO_SMALL:
            return f"it needs {slots} slots and pool {pool!r} has {self.sizes.get(pool)}"
        return None


class UnlimitedPools(PoolLedger):
    """Every pool has room: for simulations and benchmarks that leave pools out of it."""

    def admit(self, pool: str, slots: int) -> Admission:
        self.hold(pool, slots)
        return Admission.GRANTED
