"""Every default of the API, in one place (what Tekton's ``SetDefaults`` holds).

The models, the compiler (which applies them: ``engine/plan.py``), both drivers and the
docs read these names; no other module writes a default as a literal. A default that
the API server would apply is deliberately not in the CRD schema (it would rewrite
stored objects); the compiled plan carries the effective values instead.
"""

from __future__ import annotations

from datetime import timedelta

# -- pipelines ------------------------------------------------------------------------------
TIMEZONE = "UTC"
MAX_ACTIVE_RUNS = 16
MAX_ACTIVE_TASKS = 16
HISTORY_SUCCESSFUL = 10
"""Finished successful runs kept per pipeline."""
HISTORY_FAILED = 10

# -- tasks ----------------------------------------------------------------------------------
RETRIES = 0
RETRY_DELAY = timedelta(minutes=5)
"""Airflow's default retry_delay."""
MAX_RETRY_DELAY = timedelta(days=1)
"""Caps exponential backoff only (Airflow's ``next_retry_datetime``)."""
START_TIMEOUT = timedelta(minutes=5)
"""A pod not running after this long fails its attempt (image pull, unschedulable)."""
TRIGGER_RULE = "all_success"
PRIORITY_WEIGHT = 1
POOL_SLOTS = 1
CACHE_EXPIRY = timedelta(days=1)
"""How long a cache entry may be used when ``cache.expiresAfter`` is not given."""

# -- sensors --------------------------------------------------------------------------------
POKE_INTERVAL = timedelta(seconds=60)
SENSOR_TIMEOUT = timedelta(days=7)
HTTP_METHOD = "GET"
HTTP_EXPECTED_STATUS = 200

# -- e-mail and triggered runs --------------------------------------------------------------
SMTP_SECRET = "kascade-smtp"
"""The Secret with the SMTP settings when ``spec.smtp`` is unset (Airflow's smtp_default)."""
EMAIL_ON_FAILURE = True
EMAIL_ON_RETRY = True
"""Airflow's defaults: ``email`` alone alerts on failures and on retries."""
TRIGGER_POKE_INTERVAL = timedelta(seconds=60)
TRIGGER_ALLOWED_STATES = ("success",)
TRIGGER_FAILED_STATES = ("failed",)
