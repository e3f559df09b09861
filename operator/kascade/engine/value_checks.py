"""Checks of single values that would otherwise fail only at run time, or never.

A zero poke interval, a relative working directory or a notification URL without
a host all pass the schema, and used to surface as a failed attempt hours later
(or as a busy loop). ``validate_spec`` calls these so that ``kascade validate``,
the admission webhook and the Pipeline's status reject them at once, each with
its field path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from kascade.api.pipeline import Param, PipelineSpec, Task, TaskBody, TaskDefaults, TaskGroup
from kascade.engine import durations, message_checks
from kascade.engine.errors import Issue
from kascade.engine.params import check_param

TEMPLATE_START = "{{"
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def positive_duration(value: str | None, path: str) -> Iterator[Issue]:
    """A duration that must be more than zero (a timeout of 0 s can never be met)."""
    if not value:
        return
    try:
        parsed = durations.parse_duration(value)
    except ValueError:
        return  # reported where the duration is parsed
    if parsed.total_seconds() <= 0:
        yield Issue(path, f"{value!r} must be more than zero")


def url(value: str | None, path: str, *, templated: bool) -> Iterator[Issue]:
    """An http(s) URL with a host; a templated one is judged by its literal beginning."""
    if not value:
        return
    if templated and TEMPLATE_START in value:
        literal = value.split(TEMPLATE_START, 1)[0]
        if "://" in literal:
            ok = urlsplit(literal).scheme in ("http", "https")
        else:  # "{{ params.url }}" or "http{{ ... }}": nothing to judge yet
            ok = "http://".startswith(literal) or "https://".startswith(literal)
        if not ok:
            yield Issue(path, f"{value!r} is not an http:// or https:// URL")
        return
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        yield Issue(path, f"{value!r} is not an http:// or https:// URL")
    elif not parts.hostname:
        yield Issue(path, f"{value!r} has no host")
    elif any(c.isspace() for c in value):
        yield Issue(path, f"{value!r} contains whitespace")


def absolute_path(value: str | None, path: str) -> Iterator[Issue]:
    """Kubernetes' workingDir: the runtime refuses a relative one when the pod starts."""
    if not value or value.startswith(TEMPLATE_START):
        return
    if not value.startswith("/"):
        yield Issue(path, f"{value!r} must be an absolute path (start with /)")


def param_issues(params: Mapping[str, Param] | None) -> Iterator[Issue]:
    """A param whose own default breaks its type, enum or bounds fails every run that uses it."""
    for name, param in (params or {}).items():
        path = f"spec.params.{name}"
        low, high = param.minimum, param.maximum
        if low is not None and high is not None and low > high:
            yield Issue(f"{path}.minimum", "minimum is above maximum")
        if param.default is not None:
            yield from check_param(name, param, param.default, f"{path}.default")


def spec_value_issues(spec: PipelineSpec) -> Iterator[Issue]:
    """Every value check, reported where the value is written (a default once, not per task)."""
    yield from param_issues(spec.params)
    yield from positive_duration(spec.run_timeout, "spec.runTimeout")
    for i, n in enumerate(spec.notifications or []):
        if n.webhook is not None:
            yield from url(n.webhook.url, f"spec.notifications[{i}].webhook.url", templated=False)
        yield from message_checks.notification_issues(n, f"spec.notifications[{i}]", run_level=True)
    if spec.smtp is not None and not _SECRET_NAME.fullmatch(spec.smtp.secret):
        yield Issue("spec.smtp.secret", f"{spec.smtp.secret!r} is not a Secret name")
    for path, fields in _declarations(spec):
        yield from _fields_issues(fields, path, spec)


def _declarations(spec: PipelineSpec) -> Iterator[tuple[str, TaskDefaults | TaskBody]]:
    if spec.defaults is not None:
        yield "spec.defaults", spec.defaults
    yield from _tasks_and_groups(spec.tasks, spec.groups, "spec")
    for i, tpl in enumerate(spec.templates or []):
        base = f"spec.templates[{i}]"
        if tpl.task is not None:
            yield f"{base}.task", tpl.task
        yield from _tasks_and_groups(tpl.tasks, tpl.groups, base)


def _tasks_and_groups(
    tasks: list[Task] | None, groups: list[TaskGroup] | None, base: str
) -> Iterator[tuple[str, TaskDefaults | TaskBody]]:
    for i, task in enumerate(tasks or []):
        yield f"{base}.tasks[{i}]", task
    for i, group in enumerate(groups or []):
        path = f"{base}.groups[{i}]"
        if group.defaults is not None:
            yield f"{path}.defaults", group.defaults
        yield from _tasks_and_groups(group.tasks, group.groups, path)


def _fields_issues(t: TaskDefaults | TaskBody, p: str, spec: PipelineSpec) -> Iterator[Issue]:
    yield from positive_duration(t.timeout, f"{p}.timeout")
    yield from positive_duration(t.start_timeout, f"{p}.startTimeout")
    yield from absolute_path(t.working_dir, f"{p}.workingDir")
    for i, n in enumerate(t.notifications or []):
        if n.webhook is not None:
            yield from url(n.webhook.url, f"{p}.notifications[{i}].webhook.url", templated=False)
        where = f"{p}.notifications[{i}]"
        yield from message_checks.notification_issues(n, where, run_level=False)
    yield from message_checks.task_fields_issues(t, p)
    if isinstance(t, TaskBody):
        if t.sensor is not None:
            yield from positive_duration(t.sensor.poke_interval, f"{p}.sensor.pokeInterval")
            yield from positive_duration(t.sensor.timeout, f"{p}.sensor.timeout")
            yield from url(t.sensor.url, f"{p}.sensor.url", templated=True)
        if t.expand is not None and t.expand.param:
            yield from _expand_param(t.expand.param, f"{p}.expand.param", spec)
        if t.cache is not None:
            yield from positive_duration(t.cache.expires_after, f"{p}.cache.expiresAfter")


def _expand_param(expression: str, path: str, spec: PipelineSpec) -> Iterator[Issue]:
    """``expand.param: params.x`` needs x declared: a scheduled run passes no params."""
    head = expression.strip()
    if not head.startswith("params."):
        return
    name = head.removeprefix("params.").split(".", 1)[0].split("[", 1)[0]
    if name and name not in (spec.params or {}):
        yield Issue(
            path,
            f"params.{name} is not declared in spec.params "
            "(expand needs a list: declare the param with a default)",
        )
