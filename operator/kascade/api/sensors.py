"""Sensors: a task that waits for a condition (Airflow's sensors), poking until a timeout."""

from __future__ import annotations

from enum import StrEnum

from kascade.api import defaults
from kascade.api.base import Duration, Model
from kascade.api.fields import Name, Ref
from kascade.api.names import ObjectName


class SensorKind(StrEnum):
    COMMAND = "command"
    FILE = "file"
    EXTERNAL_TASK = "externalTask"
    TIME = "time"
    DATETIME = "datetime"
    HTTP = "http"
    SQL = "sql"
    S3 = "s3"


class SensorMode(StrEnum):
    POKE = "poke"
    RESCHEDULE = "reschedule"


class Sensor(Model):
    """Waits for a condition, poking every ``pokeInterval`` until ``timeout``.

    ``command`` sensors run the task's container as the poke; its exit code says:
    0 = condition met, 100 = not yet (poke again later), anything else = error.
    """

    kind: SensorKind = SensorKind.COMMAND
    """command (the task's container pokes), file, http, sql, s3, externalTask, time or
    datetime."""
    poke_interval: Duration | None = None
    """Time between pokes (default 60s)."""
    timeout: Duration | None = None
    """Give up after this long (default 7d)."""
    mode: SensorMode = SensorMode.POKE
    """poke: one pod loops; reschedule: the slot and the pod are freed between pokes."""
    soft_fail: bool = False
    """On timeout, mark the task skipped instead of failed."""
    exponential_backoff: bool = False
    """Double the time between pokes after each one (capped at the timeout)."""
    path: str | None = None
    """file: a path (glob allowed, templated) that must exist, on a volume of the task."""
    pipeline: ObjectName | None = None
    """externalTask: the other pipeline's name."""
    task: Ref | None = None
    """externalTask: a task of that pipeline (omit to wait for the whole run)."""
    states: list[str] | None = None
    """externalTask: accepted states (default [success])."""
    failed_states: list[str] | None = None
    """externalTask: states that fail the sensor at once (default [failed])."""
    logical_date_offset: Duration | None = None
    """externalTask: look at the run whose logical date is this much earlier (e.g. 1d)."""
    target_time: str | None = None
    """time: HH:MM[:SS] on the data interval's end day; datetime: an ISO date-time (templated)."""
    url: str | None = None
    """http: the URL (templated); met when the status is expectedStatus."""
    method: str = defaults.HTTP_METHOD
    """http: the request method."""
    expected_status: int = defaults.HTTP_EXPECTED_STATUS
    """http: the status code that means the condition is met."""
    response_contains: str | None = None
    """http: the body must also contain this text."""
    connection: Name | None = None
    """sql, s3: the pipeline connection (``spec.connections[].name``) whose Secret holds the
    PostgreSQL or object store settings (docs/integrations.md)."""
    sql: str | None = None
    """sql: the query (templated); met when the first cell of the first row is not 0, '0',
    '', false or NULL (Airflow's SqlSensor). It runs read-only, with a statement timeout."""
    parameters: list[str] | None = None
    """sql: values bound to the query's ``%s`` placeholders (templated): pass ``{{ ds }}``
    here rather than into the SQL text."""
    bucket: str | None = None
    """s3: the bucket (templated; default: the connection's ``bucket``)."""
    key: str | None = None
    """s3: met when an object exists at this key (templated)."""
    prefix: str | None = None
    """s3: met when any object's key starts with this (templated)."""
    wildcard: str | None = None
    """s3: met when any key matches this shell pattern, ``*`` also crossing ``/`` (templated)."""
