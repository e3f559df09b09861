"""The fields of one task that validation reads: its templated strings and expressions
(with where each is written), and the checks that belong to a kind of task (podless
actions, mapped tasks, sensors and their connections).

Split from ``validation.py``, which walks the plan and judges references; both are pure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from kascade.api.pipeline import PipelineSpec, Sensor, SensorKind, Task
from kascade.engine import actions, sensors, templating
from kascade.engine.errors import Issue, did_you_mean
from kascade.engine.plan import PlannedTask


def action_issues(task: PlannedTask, action: actions.Action) -> Iterator[Issue]:
    """A task that runs no container is nothing else: not a sensor, branch or two actions;
    and a command written on it (not inherited from defaults) would never run."""
    t, p = task.spec, task.path
    if t.send_email is not None and t.trigger_pipeline is not None:
        yield Issue(f"{p}.triggerPipeline", "a task sends an e-mail or triggers, not both")
    for field, wire in (
        ("sensor", "sensor"),
        ("branch", "branch"),
        ("short_circuit", "shortCircuit"),
    ):
        if getattr(t, field):
            yield Issue(f"{p}.{wire}", f"a {action.value} task cannot be a {wire} too")
    for field in ("command", "args", "script"):
        if getattr(t, field) is not None and field not in task.sources:
            yield Issue(f"{p}.{field}", f"a {action.value} task runs no container: remove {field}")


_SENSOR_TEMPLATED = (
    ("path", "path"),
    ("url", "url"),
    ("target_time", "targetTime"),
    ("sql", "sql"),
    ("bucket", "bucket"),
    ("key", "key"),
    ("prefix", "prefix"),
    ("wildcard", "wildcard"),
)


def templated_strings(task: PlannedTask) -> Iterator[tuple[str, str]]:
    """Every templated string of a task, with where it is written (an inherited field: in
    the defaults or the template it came from)."""
    t = task.spec

    def at(name: str, wire: str) -> str:
        return task.field_path(name, wire)

    email = t.send_email
    if email is not None:
        for name in ("to", "cc", "bcc"):
            for i, value in enumerate(getattr(email, name) or []):
                yield f"{at('send_email', 'sendEmail')}.{name}[{i}]", value
        for name in ("subject", "html"):
            if getattr(email, name):
                yield f"{at('send_email', 'sendEmail')}.{name}", getattr(email, name)
    trigger = t.trigger_pipeline
    if trigger is not None:
        where = at("trigger_pipeline", "triggerPipeline")
        for name, wire in (
            ("pipeline", "pipeline"),
            ("run_id", "runId"),
            ("logical_date", "logicalDate"),
        ):
            if getattr(trigger, name):
                yield f"{where}.{wire}", getattr(trigger, name)
        yield from templating.string_leaves(trigger.params, f"{where}.params")
    for name, wire in (("image", "image"), ("script", "script"), ("working_dir", "workingDir")):
        value = getattr(t, name)
        if value:
            yield at(name, wire), value
    for name in ("command", "args"):
        for i, value in enumerate(getattr(t, name) or []):
            yield f"{at(name, name)}[{i}]", value
    for i, env in enumerate(t.env or []):
        if env.value:
            yield f"{at('env', 'env')}[{i}].value", env.value
    if t.cache is not None:
        yield f"{at('cache', 'cache')}.key", t.cache.key
    if t.sensor is not None:
        for name, wire in _SENSOR_TEMPLATED:
            value = getattr(t.sensor, name)
            if value:
                yield f"{at('sensor', 'sensor')}.{wire}", value
        for i, value in enumerate(t.sensor.parameters or []):
            yield f"{at('sensor', 'sensor')}.parameters[{i}]", value


def expressions(t: Task, p: str) -> Iterator[tuple[str, str]]:
    if t.when:
        yield f"{p}.when", t.when
    if t.expand is not None and t.expand.param:
        yield f"{p}.expand.param", t.expand.param


def expand_issues(t: Task, p: str) -> Iterator[Issue]:
    if t.expand is None:
        return
    if (t.expand.items is None) == (t.expand.param is None):
        yield Issue(f"{p}.expand", "set exactly one of items or param")
    if t.branch or t.short_circuit:
        yield Issue(f"{p}.expand", "a mapped task cannot be a branch or short-circuit")


def sensor_issues(t: Task, p: str, spec: PipelineSpec) -> Iterator[Issue]:
    s = t.sensor
    assert s is not None
    sp = f"{p}.sensor"
    need = sensors.KINDS[s.kind].required
    if need and not getattr(s, need[0]):
        yield Issue(f"{sp}.{need[1]}", f"a {s.kind.value} sensor needs {need[1]}")
    yield from _connection_sensor_issues(s, sp, spec)
    if s.kind is SensorKind.TIME and s.target_time and "{{" not in s.target_time:
        try:
            datetime.strptime(
                s.target_time, "%H:%M" if s.target_time.count(":") == 1 else "%H:%M:%S"
            )
        except ValueError:
            yield Issue(f"{sp}.targetTime", f"{s.target_time!r} is not HH:MM or HH:MM:SS")


_KIND_FIELDS = {
    SensorKind.SQL: ("sql", "parameters"),
    SensorKind.S3: ("bucket", "key", "prefix", "wildcard"),
}


def _connection_sensor_issues(s: Sensor, sp: str, spec: PipelineSpec) -> Iterator[Issue]:
    """sql and s3 sensors read a pipeline connection; their fields belong to their kind."""
    for kind, fields in _KIND_FIELDS.items():
        for name in fields if s.kind is not kind else ():
            if getattr(s, name):
                yield Issue(f"{sp}.{name}", f"{name} is for {kind.value} sensors")
    if s.kind not in _KIND_FIELDS:
        if s.connection:
            yield Issue(f"{sp}.connection", "connection is for sql and s3 sensors")
        return
    declared = [c.name for c in spec.connections or []]
    if not s.connection:
        yield Issue(
            f"{sp}.connection",
            f"a {s.kind.value} sensor needs connection: the name of one of spec.connections",
        )
    elif s.connection not in declared:
        known = ", ".join(declared) or "none declared"
        yield Issue(
            f"{sp}.connection",
            f"no connection {s.connection!r} in spec.connections ({known})"
            f"{did_you_mean(s.connection, declared)}: declare "
            f"{{name: {s.connection}, secret: <the Secret with its settings>}}",
        )
    if s.kind is SensorKind.S3:
        given = [name for name in ("key", "prefix", "wildcard") if getattr(s, name)]
        if len(given) != 1:
            yield Issue(sp, "an s3 sensor needs exactly one of key, prefix and wildcard")
