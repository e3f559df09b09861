"""Notifications: Airflow's on_failure/on_success/on_retry/sla_miss callbacks, as webhooks,
hook containers or e-mails."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from kascade.api.base import JsonValue, Model
from kascade.api.fields import EnvVar, Name, SecretKeyRef
from kascade.api.messaging import EmailTemplate


class HookTask(Model):
    """A small container run for a notification; it never affects the run's state."""

    image: str
    """The container image."""
    command: list[str] | None = None
    """The entrypoint (with ``script``: the interpreter, default ``[sh, -e]``)."""
    args: list[str] | None = None
    """Arguments to the command."""
    script: str | None = None
    """An inline script, run by ``command``."""
    env: list[EnvVar] | None = None
    """Extra environment variables (KASCADE_EVENT, KASCADE_TASK, KASCADE_MESSAGE are set)."""


class Webhook(Model):
    """An HTTP POST of a JSON body: Slack, Teams, PagerDuty or any JSON webhook."""

    url: str | None = None
    """The URL, when it is not secret."""
    url_from: SecretKeyRef | None = None
    """Read the URL from a Secret (recommended: webhook URLs are credentials)."""
    body: JsonValue | None = None
    """The JSON to post: every string in it is a template over the callback context
    (``{{ task.id }}``, ``{{ exception }}``, ``{{ log_url }}``...). Default:
    ``{"text": "[kascade] {{ pipeline.name }}: {{ message }}"}`` (Slack's simplest form)."""


class NotificationEvent(StrEnum):
    FAILURE = "failure"
    SUCCESS = "success"
    RETRY = "retry"
    SLA_MISS = "slaMiss"


class Notification(Model):
    """Airflow's on_failure/on_success/on_retry/sla_miss callbacks, as webhooks or hook tasks."""

    name: Name
    """A name for the notification, unique in its list."""
    events: list[NotificationEvent] = Field(min_length=1)
    """The events that fire it (not ``on``: YAML 1.1 reads a bare ``on`` key as true)."""
    webhook: Webhook | None = None
    """Post a JSON message to a webhook (Slack, Teams, PagerDuty...)."""
    hook: HookTask | None = None
    """A container run once per event (its env gets KASCADE_EVENT, KASCADE_TASK, ...)."""
    email: EmailTemplate | None = None
    """Send an e-mail (subject and body default to an alert like Airflow's)."""
