"""Leader election on simulated time: a standby takes over within 5 s of the leader's last
renewal, and never while the leader may still act (issue 14: failover under 5 s without
split brain; the e2e test in test_operator_scale_and_ha.py does it with real processes)."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kascade.controller.leader import (
    LEASE_SECONDS,
    RENEW_DEADLINE,
    RENEW_SECONDS,
    RETRY_SECONDS,
    LeaderElector,
)


class Leases:
    """The API server's Lease store: replace succeeds only on the resourceVersion read."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.versions = itertools.count(1)

    def get_lease(self, namespace: str, name: str, timeout: float | None = None) -> Any:
        return copy.deepcopy(self.lease)

    def create_lease(
        self, namespace: str, body: dict[str, Any], timeout: float | None = None
    ) -> bool:
        if self.lease is not None:
            return False
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(next(self.versions))
        return True

    def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float | None = None
    ) -> bool:
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            return False
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(next(self.versions))
        return True


class Replica:
    def __init__(self, leases: Leases, name: str, clock: list[float]) -> None:
        self.stopped: int | None = None
        self.elector = LeaderElector(
            leases,  # type: ignore[arg-type]
            "ns",
            identity=name,
            clock=lambda: clock[0],
            wall=lambda: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=clock[0]),
            stop=self._stop,
        )

    def _stop(self, code: int) -> None:
        self.stopped = code


def _sim(kill_at: float, *, pause: bool = False, until: float = 30.0) -> dict[str, Any]:
    """Leader `a` renews every RENEW_SECONDS until ``kill_at`` (killed, or paused: it comes
    back later and tries to write); standby `b` tries every RETRY_SECONDS. Steps of 10 ms."""
    leases, clock = Leases(), [0.0]
    a, b = Replica(leases, "a", clock), Replica(leases, "b", clock)
    assert a.elector.try_acquire()
    next_a, next_b = RENEW_SECONDS, 0.0
    b_leads_at = None
    overlap = []
    a_wrote_after = []
    for step in range(int(until * 100)):
        clock[0] = step / 100
        if (
            clock[0] >= next_a
            and a.stopped is None
            and (clock[0] < kill_at or (pause and clock[0] > kill_at + 8))
        ):
            if pause and clock[0] > kill_at + 8:  # back from its pause: it tries to write
                a.elector.fence()
                if a.stopped is None:
                    a_wrote_after.append(clock[0])
            a.elector._safe_try()
            next_a = clock[0] + RENEW_SECONDS
        if a.stopped is None and not a.elector.valid() and clock[0] < kill_at:
            a.elector.fence()  # the watchdog
        if b_leads_at is None and clock[0] >= next_b:
            if b.elector._safe_try():
                b_leads_at = clock[0]
            next_b = clock[0] + RETRY_SECONDS
        if (
            b_leads_at is not None
            and a.stopped is None
            and a.elector.valid()
            and clock[0] < kill_at
        ):
            overlap.append(clock[0])
    return {"b": b_leads_at, "overlap": overlap, "a_wrote_after": a_wrote_after, "a": a}


@pytest.mark.parametrize("kill_at", [3.0, 3.37, 3.5, 3.99, 7.25])
def test_a_standby_takes_over_within_5_s_of_the_leaders_death(kill_at: float) -> None:
    out = _sim(kill_at)
    assert out["b"] is not None and out["overlap"] == []
    took = out["b"] - kill_at
    assert LEASE_SECONDS - RENEW_SECONDS <= took <= 5.0, took


def test_a_standby_never_takes_a_lease_that_is_being_renewed() -> None:
    out = _sim(kill_at=1e9, until=20.0)
    assert out["b"] is None


def test_a_paused_leader_that_wakes_after_a_takeover_stops_before_it_writes() -> None:
    out = _sim(kill_at=4.0, pause=True)
    assert out["b"] is not None
    assert out["a_wrote_after"] == [] and out["a"].stopped == 3


def test_the_timings_leave_a_margin_between_the_leaders_stop_and_a_takeover() -> None:
    # The leader stops RENEW_DEADLINE after its last renewal began; a standby takes over
    # no earlier than LEASE_SECONDS after it saw that renewal (which came later).
    assert RENEW_SECONDS < RENEW_DEADLINE <= LEASE_SECONDS - 1.0
    assert RENEW_SECONDS + RETRY_SECONDS + LEASE_SECONDS + RETRY_SECONDS <= 5.0
