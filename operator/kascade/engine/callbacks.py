"""What a notification knows about its event: Airflow's callback context, as plain data.

Airflow hands ``on_failure_callback`` a context with the task instance (its id, state,
try number, duration, log URL), the exception, the run and its dates. Kascade builds
the same facts once, in the engine, when it decides to notify (``Fire.context``); the
drivers add the link to the log (they know where logs are) and then

* render a webhook's JSON ``body`` template over it (:func:`render_body`),
* give a hook task its environment (:func:`hook_env`: ``KASCADE_STATE``,
  ``KASCADE_EXCEPTION``, ``KASCADE_CONTEXT`` with all of it as JSON...),
* render an e-mail's recipients, subject and HTML body (:func:`render_email`).

All three are plain templating over data (no code runs), the same in both drivers.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kascade.api.messaging import EmailTemplate
from kascade.engine import addresses, templating
from kascade.engine.instances import Instance

#: What a webhook body, an e-mail or a hook can use (``{{ task.id }}``, ``{{ exception }}``).
_FACTS = ("event", "message", "state", "exception", "reason", "exit_code", "try_number",
          "max_tries", "duration", "start_date", "end_date", "task_id", "map_index", "task",
          "blocking_tasks", "log_url", "run")  # fmt: skip
CONTEXT_ROOTS = (templating.MACRO_NAMES - {"tasks"}) | frozenset(_FACTS)
"""What a webhook body, an e-mail or a hook can use: the run's macros (not other tasks'
outputs) and the event's facts (``{{ task.id }}``, ``{{ exception }}``)."""
MAX_BLOCKING_LISTED = 50
"""An SLA miss lists at most this many blocking task instances (the count says the rest)."""

DEFAULT_BODY = {"text": "[kascade] {{ pipeline.name }}: {{ message }}"}
"""A webhook without ``body`` posts Slack's simplest message."""
DEFAULT_SUBJECT = "[kascade] {{ pipeline.name }}: {{ message }}"
DEFAULT_HTML = (
    "<p>{{ message }}</p>"
    "<p>Pipeline: {{ pipeline.name }} ({{ pipeline.namespace }})<br>"
    "Run: {{ run_id }}<br>Logical date: {{ ts }}<br>"
    "Task: {{ task_id or '-' }}<br>"
    "State: {{ state }}<br>"
    "Try {{ try_number | default('-') }} out of {{ max_tries | default('-') }}<br>"
    "Exit code: {{ exit_code | default('-') }}<br>"
    "Duration: {{ duration | default('-') }} s</p>"
    "<p>Exception:<br>{{ exception or '-' }}</p>"
    "<p>Blocking tasks: {{ blocking_tasks | join(', ') or '-' }}</p>"
    "<p>Log: <a href='{{ log_url }}'>{{ log_url or '-' }}</a></p>"
)
"""Airflow's alert (try number, exception, log link), with Kascade's facts."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def task_facts(inst: Instance, retries: int) -> dict[str, Any]:
    """An instance's facts as of its latest attempt (Airflow's ``ti`` in a callback)."""
    last = inst.attempts[-1] if inst.attempts else None
    start = (last.start if last else None) or inst.started_at
    end = last.end if last else inst.ended_at
    reason = last.reason.value if last and last.reason else None
    exit_code = last.exit_code if last else inst.exit_code
    if reason is None and exit_code not in (None, 0):
        reason = "Error"
    return {
        "state": inst.state.value,
        "exception": inst.message,
        "reason": reason,
        "exit_code": exit_code,
        "try_number": inst.attempt,
        "max_tries": retries + 1,
        "duration": _seconds(start, end),
        "start_date": _iso(start),
        "end_date": _iso(end),
        "task_id": inst.key.split("[", 1)[0],
        "map_index": inst.map_index,
        "task": {
            "id": inst.key.split("[", 1)[0],
            "map_index": inst.map_index,
            "try_number": inst.attempt,
        },
    }


def run_facts(
    phase: str, message: str | None, started: datetime | None, now: datetime
) -> dict[str, Any]:
    """The run's facts for a run-level event (no task)."""
    return {
        "state": phase,
        "exception": message if phase == "failed" else None,
        "reason": None,
        "exit_code": None,
        "try_number": None,
        "max_tries": None,
        "duration": _seconds(started, now),
        "start_date": _iso(started),
        "end_date": _iso(now),
        "task_id": None,
        "map_index": None,
        "task": None,
    }


def context(
    macros: Mapping[str, Any],
    facts: Mapping[str, Any],
    *,
    event: str,
    message: str,
    blocking: Sequence[str] = (),
) -> dict[str, Any]:
    """The whole context: the run's macros, the facts, the event and its message."""
    out = {k: v for k, v in macros.items() if k in CONTEXT_ROOTS}
    out.update(facts)
    out["event"] = event
    out["message"] = message
    out["blocking_tasks"] = list(blocking[:MAX_BLOCKING_LISTED])
    out["run"] = {"id": macros.get("run_id"), "blocking_count": len(blocking)}
    out["log_url"] = ""
    return out


def with_log_url(ctx: Mapping[str, Any], url: str | None) -> dict[str, Any]:
    """The context with the driver's link to the log (the run's page for run events)."""
    return {**ctx, "log_url": url or ""}


# -- what the drivers send --------------------------------------------------------------------
def render_body(body: Any, ctx: Mapping[str, Any]) -> Any:
    """A webhook's JSON body: every string rendered over the context (keys stay literal).
    Raises ExpressionError on a template that does not render."""
    return templating.render_value(DEFAULT_BODY if body is None else body, ctx)


def _env_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


HOOK_ENV = (
    ("KASCADE_EVENT", "event"),
    ("KASCADE_MESSAGE", "message"),
    ("KASCADE_STATE", "state"),
    ("KASCADE_EXCEPTION", "exception"),
    ("KASCADE_REASON", "reason"),
    ("KASCADE_EXIT_CODE", "exit_code"),
    ("KASCADE_TRY_NUMBER", "try_number"),
    ("KASCADE_MAX_TRIES", "max_tries"),
    ("KASCADE_DURATION_SECONDS", "duration"),
    ("KASCADE_START_DATE", "start_date"),
    ("KASCADE_END_DATE", "end_date"),
    ("KASCADE_RUN_ID", "run_id"),
    ("KASCADE_LOGICAL_DATE", "ts"),
    ("KASCADE_DS", "ds"),
    ("KASCADE_DATA_INTERVAL_START", "data_interval_start"),
    ("KASCADE_DATA_INTERVAL_END", "data_interval_end"),
    ("KASCADE_LOG_URL", "log_url"),
)
"""A hook's environment: one variable per fact, and ``KASCADE_CONTEXT`` with them all."""


def hook_env(ctx: Mapping[str, Any], instance: str | None) -> dict[str, str]:
    """The variables a hook task gets (``KASCADE_TASK`` is the instance, ``t[2]`` if mapped)."""
    env = {name: _env_text(ctx.get(key)) for name, key in HOOK_ENV}
    env["KASCADE_TASK"] = instance or ""
    env["KASCADE_PIPELINE"] = str((ctx.get("pipeline") or {}).get("name", ""))
    env["KASCADE_MAP_INDEX"] = "" if ctx.get("map_index") is None else str(ctx["map_index"])
    env["KASCADE_BLOCKING_TASKS"] = ",".join(ctx.get("blocking_tasks") or [])
    env["KASCADE_CONTEXT"] = json.dumps(ctx, separators=(",", ":"), sort_keys=True, default=str)
    return env


@dataclass(frozen=True)
class RenderedEmail:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    subject: str
    html: str


def sent_email(template: EmailTemplate) -> RenderedEmail:
    """A ``sendEmail`` task's message from its fields as the engine rendered them (no second
    rendering: a value that looked like ``{{ }}`` stays text); recipients checked."""
    return RenderedEmail(
        to=addresses.parse_recipients(template.to, "sendEmail.to"),
        cc=addresses.parse_recipients(template.cc, "sendEmail.cc"),
        bcc=addresses.parse_recipients(template.bcc, "sendEmail.bcc"),
        subject=template.subject or "",
        html=template.html or "",
    )


def render_email(
    template: EmailTemplate,
    ctx: Mapping[str, Any],
    *,
    default_to: Sequence[str] = (),
    defaults: bool = True,
) -> RenderedEmail:
    """Recipients, subject and body rendered over ``ctx``; values in the body are HTML-escaped.

    ``defaults`` gives a notification Airflow's alert subject and body when it sets none.
    Raises ExpressionError (a template that does not render) or ValueError (a recipient
    that is not an address, naming the field)."""

    def recipients(values: Sequence[str] | None, field: str) -> tuple[str, ...]:
        rendered = [templating.render(v, ctx) for v in values or ()]
        return addresses.parse_recipients(rendered, field)

    to = recipients(template.to if template.to is not None else default_to, "to")
    if not to:
        raise ValueError("to: no recipient (set to, or the task's email)")
    subject = (
        template.subject if template.subject is not None else (DEFAULT_SUBJECT if defaults else "")
    )
    body = template.html if template.html is not None else (DEFAULT_HTML if defaults else "")
    return RenderedEmail(
        to=to,
        cc=recipients(template.cc, "cc"),
        bcc=recipients(template.bcc, "bcc"),
        subject=templating.render(subject, ctx),
        html=templating.render(body, ctx, escape=html.escape),
    )
