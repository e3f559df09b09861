"""E-mail and triggering other pipelines: Airflow's ``email`` arguments, ``EmailOperator``
and ``TriggerDagRunOperator``, as fields of a Pipeline.

E-mail goes out over SMTP with settings from a Secret (``spec.smtp``, by default the
Secret ``kascade-smtp`` of the pipeline's namespace); see docs/integrations.md for its
keys. A ``sendEmail`` or ``triggerPipeline`` task runs no container: the operator (or
the local runner) does the work itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kascade.api.base import Duration, JsonValue, Model

#: A run's phase as a trigger task waits for it (``allowedStates``/``failedStates``).
RunPhaseName = Literal["queued", "running", "success", "failed"]


class SmtpRef(Model):
    """Where the SMTP settings are (Airflow's ``smtp_default`` connection)."""

    secret: str = Field(min_length=1, max_length=253)
    """A Secret of the pipeline's namespace with the keys host, port, security, user,
    password, from (its author must be allowed to read it)."""


class EmailTemplate(Model):
    """An e-mail: recipients and templated subject and HTML body (Airflow's EmailOperator)."""

    to: Annotated[list[str], Field(max_length=100)] | None = None
    """Recipients (each entry templated; one may hold several addresses separated by , or ;).
    A notification without ``to`` writes to the task's ``email`` addresses."""
    cc: Annotated[list[str], Field(max_length=100)] | None = None
    """Copy recipients (templated)."""
    bcc: Annotated[list[str], Field(max_length=100)] | None = None
    """Blind copy recipients (templated): in the envelope, never in a header."""
    subject: str | None = None
    """The subject (templated). Notifications default to a one-line alert."""
    html: str | None = None
    """The HTML body (templated; every substituted value is HTML-escaped). Notifications
    default to Airflow's alert (try number, error, log link)."""


class TriggerPipeline(Model):
    """Start a run of another pipeline (Airflow's TriggerDagRunOperator); no pod runs."""

    pipeline: str = Field(min_length=1, max_length=253)
    """The pipeline to run (templated)."""
    namespace: str | None = Field(default=None, min_length=1, max_length=63)
    """Its namespace (default: this pipeline's). The author must be allowed to create
    PipelineRuns there, and the operator must watch it for the run to start."""
    run_id: str | None = Field(default=None, max_length=250)
    """The new run's id (templated; default ``triggered__<logical date>``). A run with this
    id (its PipelineRun name is derived from it) that exists already fails the task,
    unless ``resetDagRun`` replaces it."""
    logical_date: str | None = None
    """Its logical date (templated ISO date-time, e.g. ``{{ ts }}``; default: when it is
    triggered)."""
    params: dict[str, JsonValue] | None = None
    """Its params (Airflow's ``conf``); every string in them is templated."""
    wait_for_completion: bool = False
    """Wait until the run ends in one of ``allowedStates`` or ``failedStates``."""
    poke_interval: Duration | None = None
    """How often to look at the run while waiting (default 60s)."""
    allowed_states: list[RunPhaseName] | None = None
    """Run phases that make the task succeed (default [success])."""
    failed_states: list[RunPhaseName] | None = None
    """Run phases that make the task fail (default [failed])."""
    reset_dag_run: bool = False
    """Replace a run with the same id (delete it, then create it again) instead of failing.
    Only ever a run that another task, a person or a schedule made: the run this task
    made itself (before an operator restart) is kept and followed."""
