"""Airflow's trigger rules, decided from counts of upstream states.

This mirrors Airflow's ``TriggerRuleDep._evaluate_direct_relatives`` rule for
rule: a rule either lets the task run, keeps it waiting, or settles it as
skipped / upstream_failed before it ever runs. Counting (not listing) upstream
states is what keeps one event's cost proportional to the task's neighbourhood.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from kascade.api.pipeline import TriggerRule


class Verdict(Enum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skipped"
    UPSTREAM_FAILED = "upstream_failed"


@dataclass
class Counts:
    """Upstream task instances by terminal state; ``total`` counts all upstream instances."""

    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed


def decide(rule: TriggerRule, c: Counts) -> Verdict:
    all_done = c.done >= c.total
    failures = c.failed + c.upstream_failed
    r = TriggerRule
    if rule is r.ALWAYS:
        return Verdict.RUN
    if rule is r.ALL_SUCCESS:
        if failures:
            return Verdict.UPSTREAM_FAILED
        if c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if c.success >= c.total else Verdict.WAIT
    if rule is r.ALL_FAILED:
        if c.success or c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if failures >= c.total else Verdict.WAIT
    if rule is r.ALL_DONE:
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule is r.ALL_SKIPPED:
        if c.success or failures:
            return Verdict.SKIP
        return Verdict.RUN if c.skipped >= c.total else Verdict.WAIT
    if rule is r.ONE_SUCCESS:
        if c.success:
            return Verdict.RUN
        if all_done:
            return Verdict.SKIP if c.skipped >= c.total else Verdict.UPSTREAM_FAILED
        return Verdict.WAIT
    if rule is r.ONE_FAILED:
        if failures:
            return Verdict.RUN
        return Verdict.SKIP if all_done else Verdict.WAIT
    if rule is r.ONE_DONE:
        # Airflow counts success + failed here: an upstream_failed parent never ran.
        if c.success or c.failed:
            return Verdict.RUN
        return Verdict.SKIP if all_done else Verdict.WAIT
    if rule is r.NONE_FAILED:
        if failures:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule is r.NONE_FAILED_MIN_ONE_SUCCESS:
        if failures:
            return Verdict.UPSTREAM_FAILED
        if all_done:
            return Verdict.SKIP if c.skipped >= c.total else Verdict.RUN
        return Verdict.WAIT
    if rule is r.NONE_SKIPPED:
        if c.skipped:
            return Verdict.SKIP
        return Verdict.RUN if all_done else Verdict.WAIT
    raise AssertionError(f"unhandled trigger rule {rule}")
