"""Airflow's trigger rules: the one list the API, the engine and kascade.sdk share.

Standard library only, so that the Kascade runtime (which runs in a plain
Python image, without pydantic) can import it too.
"""

from __future__ import annotations

from enum import StrEnum


class TriggerRule(StrEnum):
    """Airflow's trigger rules, with their exact semantics (see docs/concepts.md)."""

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
