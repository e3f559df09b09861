"""Checks of e-mail, trigger and notification fields, where they are written.

An address that is not one, a run phase listed as both allowed and failed, a
notification template that names a variable no notification has: each would only
show when the event happens (maybe weeks later, maybe never noticed, as a lost
alert), so ``validate_spec`` reports them at once with their field paths.
Templated values (``{{ params.to }}``) are judged once rendered, by the drivers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kascade.api.messaging import EmailTemplate, TriggerPipeline
from kascade.api.pipeline import Notification, TaskBody, TaskDefaults
from kascade.engine import addresses, callbacks, durations, templating
from kascade.engine.errors import Issue
from kascade.engine.run_dates import read_date

TEMPLATE_START = "{{"
_DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def literal_addresses(values: list[str] | None, path: str) -> Iterator[Issue]:
    """Addresses written as they are (a templated entry is judged once rendered)."""
    for i, value in enumerate(values or []):
        if TEMPLATE_START in value:
            continue
        try:
            addresses.parse_recipients([value], path)
        except addresses.RecipientError as exc:
            yield Issue(f"{path}[{i}]", str(exc).split(": ", 1)[-1])


def task_fields_issues(t: TaskDefaults | TaskBody, p: str) -> Iterator[Issue]:
    """A task's (or defaults') ``email`` and its actions."""
    yield from literal_addresses(t.email, f"{p}.email")
    if not isinstance(t, TaskBody):
        return
    if t.send_email is not None:
        yield from _send_email_issues(t.send_email, f"{p}.sendEmail")
    if t.trigger_pipeline is not None:
        yield from _trigger_issues(t.trigger_pipeline, f"{p}.triggerPipeline")


def _send_email_issues(email: EmailTemplate, p: str) -> Iterator[Issue]:
    if not email.to:
        yield Issue(f"{p}.to", "an e-mail task needs at least one recipient")
    if email.subject is None:
        yield Issue(f"{p}.subject", "an e-mail task needs a subject")
    for name in ("to", "cc", "bcc"):
        yield from literal_addresses(getattr(email, name), f"{p}.{name}")


def _trigger_issues(trigger: TriggerPipeline, p: str) -> Iterator[Issue]:
    name = trigger.pipeline
    if TEMPLATE_START not in name and not _DNS_NAME.fullmatch(name):
        yield Issue(f"{p}.pipeline", f"{name!r} is not a pipeline name (a DNS name)")
    if trigger.namespace is not None and not _DNS_LABEL.fullmatch(trigger.namespace):
        yield Issue(f"{p}.namespace", f"{trigger.namespace!r} is not a namespace name")
    if trigger.poke_interval is not None:
        try:
            if durations.parse_duration(trigger.poke_interval).total_seconds() <= 0:
                yield Issue(
                    f"{p}.pokeInterval", f"{trigger.poke_interval!r} must be more than zero"
                )
        except ValueError:
            pass  # reported where the plan parses it
    both = set(trigger.allowed_states or ()) & set(trigger.failed_states or ())
    if both:
        yield Issue(
            f"{p}.failedStates",
            f"{', '.join(sorted(both))} is both allowed and failed",
        )
    if not trigger.wait_for_completion and (
        trigger.allowed_states or trigger.failed_states or trigger.poke_interval
    ):
        yield Issue(
            f"{p}.waitForCompletion",
            "allowedStates, failedStates and pokeInterval need waitForCompletion: true",
        )
    date = trigger.logical_date
    if date is not None and TEMPLATE_START not in date:
        try:
            read_date(date)
        except ValueError as exc:
            yield Issue(f"{p}.logicalDate", str(exc))
    if trigger.run_id is not None and not trigger.run_id.strip():
        yield Issue(f"{p}.runId", "must not be empty")


def notification_issues(n: Notification, path: str, *, run_level: bool) -> Iterator[Issue]:
    """What a notification needs, and its templates (over the callback context)."""
    if n.webhook is None and n.hook is None and n.email is None:
        yield Issue(path, "a notification needs a webhook, a hook task or an email")
    if n.webhook is not None and not (n.webhook.url or n.webhook.url_from):
        yield Issue(f"{path}.webhook", "set url or urlFrom (a Secret key)")
    if n.hook is not None and not (n.hook.command or n.hook.script):
        yield Issue(f"{path}.hook", "a hook task needs command or script")
    if n.webhook is not None and n.webhook.body is not None:
        for where, text in templating.string_leaves(n.webhook.body, f"{path}.webhook.body"):
            yield from _context_template(text, where)
    email = n.email
    if email is not None:
        if run_level and not email.to:
            yield Issue(f"{path}.email.to", "a run notification's e-mail needs recipients")
        for name in ("to", "cc", "bcc"):
            yield from literal_addresses(getattr(email, name), f"{path}.email.{name}")
            for i, value in enumerate(getattr(email, name) or []):
                yield from _context_template(value, f"{path}.email.{name}[{i}]")
        for name in ("subject", "html"):
            value = getattr(email, name)
            if value:
                yield from _context_template(value, f"{path}.email.{name}")


def _context_template(text: str, path: str) -> Iterator[Issue]:
    errors = templating.check(text)
    for error in errors:
        yield Issue(path, error)
    if errors:
        return
    for ref in templating.references(text):
        root = ref[0] if ref else ""
        if not isinstance(root, str) or root not in callbacks.CONTEXT_ROOTS:
            known = ", ".join(sorted(callbacks.CONTEXT_ROOTS))
            yield Issue(path, f"unknown variable {root!r} in a notification (known: {known})")
