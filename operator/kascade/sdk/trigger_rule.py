"""Airflow's ``TriggerRule``: the API's enum, and Airflow's renamed and unsupported spellings."""

from __future__ import annotations

from enum import Enum

from kascade.api.trigger_rules import TriggerRule
from kascade.sdk.exceptions import UnsupportedFeature

__all__ = ["TriggerRule", "coerce"]


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
