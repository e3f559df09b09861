"""Retry delays: Airflow's retry_delay, retry_exponential_backoff and max_retry_delay.

Airflow's backoff is ``retry_delay * 2 ** (try - 1)`` with a deterministic
jitter; ours keeps the doubling but no jitter (the engine is deterministic).
As in Airflow's ``TaskInstance.next_retry_datetime``, ``max_retry_delay`` (one
day when unset) only bounds the backoff: it exists to stop the doubling, so a
plain ``retry_delay`` is used as written, however long it is.
"""

from __future__ import annotations

from datetime import timedelta

from kascade.api import defaults


def retry_delay(
    failed_attempt: int,
    *,
    delay: timedelta = defaults.RETRY_DELAY,
    exponential: bool = False,
    max_delay: timedelta | None = None,
) -> timedelta:
    """The wait after attempt ``failed_attempt`` (1-based) failed, before the next one."""
    if not exponential:
        return delay
    cap = max_delay if max_delay is not None else defaults.MAX_RETRY_DELAY
    exponent = min(max(failed_attempt - 1, 0), 62)
    seconds = delay.total_seconds() * (2**exponent)
    return min(timedelta(seconds=min(seconds, cap.total_seconds())), cap)
