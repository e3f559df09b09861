"""Airflow's ``TriggerRule`` enum (the same eleven rules the engine implements)."""

from __future__ import annotations

from enum import Enum, StrEnum

from kascade.sdk.exceptions import UnsupportedFeature


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"

    def __str__(self) -> str:
        return self.value


_RENAMED = {
    # Airflow 2.2 renamed it; old DAGs (and the seeds) still use the old name.
    "none_failed_or_skipped": TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    "dummy": TriggerRule.ALWAYS,
}
_UNSUPPORTED = {
    "all_done_setup_success": "setup/teardown tasks are not supported: use all_done",
    "all_done_min_one_success": "use none_failed_min_one_success or all_done",
    "all_skipped_or_none_failed": "use none_failed",
}


def coerce(value: object) -> TriggerRule:
    """A ``TriggerRule`` from a string or enum; renamed and unknown rules are explained."""
    raw = value.value if isinstance(value, Enum) else value
    if not isinstance(raw, str):
        raise TypeError(f"trigger_rule must be a string or TriggerRule, got {type(value).__name__}")
    if raw in _RENAMED:
        return _RENAMED[raw]
    if raw in _UNSUPPORTED:
        raise UnsupportedFeature(f"trigger_rule={raw!r}", _UNSUPPORTED[raw])
    try:
        return TriggerRule(raw)
    except ValueError:
        known = ", ".join(r.value for r in TriggerRule)
        raise ValueError(f"trigger_rule {raw!r} is not a trigger rule ({known})") from None
