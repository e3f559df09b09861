"""Every check a Pipeline must pass before it runs, with the field path of each problem.

One function serves ``kascade validate``, the local runner, the operator's
status condition and the admission webhook, so a manifest is judged the same
way everywhere (the lesson of Tekton's shared ``dag.Build``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import yaml
from pydantic import ValidationError

from kascade.api.pipeline import PipelineSpec, Sensor, SensorKind, Task, Template
from kascade.api.resources import Pipeline
from kascade.engine import expressions, sensors, templating, value_checks
from kascade.engine.compile import compile_spec
from kascade.engine.errors import Issue, pydantic_issues
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.run_dates import is_relative, parse_date, relative_offset
from kascade.engine.schedule import ScheduleError, parse_schedule, zone

#: Template roots every task may use (Airflow's macros plus Kascade's own).
RUN_ROOTS = frozenset(
    {
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "logical_date",
        "data_interval_start",
        "data_interval_end",
        "run_id",
        "params",
        "pipeline",
        "tasks",
        "inputs",
        "task",
    }
)
MAPPED_ROOTS = frozenset({"item", "map_index"})


def load_documents(text: str, *, every_kind: bool = False) -> list[dict[str, Any]]:
    """The Pipeline documents of a YAML stream (or every object, with ``every_kind``);
    empty documents are left out. A document without ``kind`` is a Pipeline."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~6x faster
    docs = []
    for doc in yaml.load_all(text, Loader=loader):
        if isinstance(doc, dict) and (every_kind or is_pipeline(doc)):
            docs.append(doc)
    return docs


def is_pipeline(doc: dict[str, Any]) -> bool:
    return bool(doc.get("kind", "Pipeline") == "Pipeline")


def validate_document(
    doc: dict[str, Any], shared: Mapping[str, Template] | None = None
) -> tuple[Pipeline | None, Plan | None, list[Issue]]:
    """Parse and check one manifest; the plan is None whenever there is any issue.
    ``shared``: the TaskTemplates it may use (``template.kind: TaskTemplate``)."""
    try:
        pipeline = Pipeline.model_validate(doc)
    except ValidationError as exc:
        return None, None, pydantic_issues(exc.errors())  # type: ignore[arg-type]
    issues: list[Issue] = []
    if not pipeline.metadata.name:
        issues.append(Issue("metadata.name", "a pipeline needs a name"))
    plan, spec_issues = validate_spec(pipeline.spec, pipeline.metadata.name or "pipeline", shared)
    issues.extend(spec_issues)
    return pipeline, (plan if not issues else None), issues


def validate_spec(
    spec: PipelineSpec, name: str, shared: Mapping[str, Template] | None = None
) -> tuple[Plan | None, list[Issue]]:
    plan, issues = compile_spec(spec, name, shared)
    issues.extend(_schedule_issues(spec))
    for i, n in enumerate(spec.notifications or []):
        issues.extend(_notification_issues(n, f"spec.notifications[{i}]"))
    issues.extend(value_checks.spec_value_issues(spec))
    if plan is not None:
        for task in plan.tasks:
            issues.extend(_task_issues(plan, task, spec))
    return (plan if not issues else None), issues


def _schedule_issues(spec: PipelineSpec) -> list[Issue]:
    issues: list[Issue] = []
    try:
        parse_schedule(spec.schedule, spec.timezone)
    except ScheduleError as exc:
        if "timezone" in str(exc).lower():
            issues.append(Issue("spec.timezone", str(exc)))
            try:  # still judge the schedule itself
                parse_schedule(spec.schedule, "UTC")
            except ScheduleError as inner:
                issues.append(Issue("spec.schedule", str(inner)))
        else:
            issues.append(Issue("spec.schedule", str(exc)))
    try:
        tz = zone(spec.timezone)
    except ScheduleError:
        tz = zone("UTC")  # reported above
    start = None
    if spec.start_date and is_relative(spec.start_date):
        try:
            relative_offset(spec.start_date)
        except ValueError as exc:
            issues.append(Issue("spec.startDate", str(exc)))
    elif spec.start_date:
        start = parse_date(spec.start_date, "spec.startDate", issues, tz)
    end = None
    if spec.end_date and is_relative(spec.end_date):
        issues.append(
            Issue(
                "spec.endDate",
                f"{spec.end_date!r}: only startDate may be relative; write an ISO date "
                "(2024-12-31) or date-time",
            )
        )
    elif spec.end_date:
        end = parse_date(spec.end_date, "spec.endDate", issues, tz)
    if start and end and end < start:
        issues.append(Issue("spec.endDate", "endDate is before startDate"))
    if spec.schedule == "@once" and not spec.start_date:
        issues.append(Issue("spec.startDate", "@once needs a startDate (the time of its one run)"))
    return issues


def _notification_issues(n: Any, path: str) -> Iterator[Issue]:
    if n.webhook is None and n.hook is None:
        yield Issue(path, "a notification needs a webhook or a hook task")
    if n.webhook is not None and not (n.webhook.url or n.webhook.url_from):
        yield Issue(f"{path}.webhook", "set url or urlFrom (a Secret key)")
    if n.hook is not None and not (n.hook.command or n.hook.script):
        yield Issue(f"{path}.hook", "a hook task needs command or script")


def _task_issues(plan: Plan, task: PlannedTask, spec: PipelineSpec) -> Iterator[Issue]:
    t = task.spec
    p = task.path
    kind = sensors.KINDS[t.sensor.kind] if t.sensor else None
    if (kind is None or kind.needs_image) and not t.image:
        yield Issue(
            f"{p}.image", f"task {task.id!r} needs an image (set it here or in spec.defaults)"
        )
    if (kind is None or kind.needs_command) and not (t.command or t.script or t.args):
        yield Issue(f"{p}.command", f"task {task.id!r} needs command, args or script")
    if t.branch and t.short_circuit:
        yield Issue(f"{p}.shortCircuit", "a task is either a branch or a short-circuit, not both")
    if t.branch_targets and not t.branch:
        yield Issue(f"{p}.branchTargets", "branchTargets needs branch: true")
    if t.cache is not None and t.sensor is not None:
        yield Issue(f"{p}.cache", "a sensor waits for something new each run: it cannot be cached")
    yield from _branch_issues(plan, task)
    yield from _expand_issues(t, p)
    if t.sensor is not None:
        yield from _sensor_issues(t, p, spec)
    for i, n in enumerate(task.notifications):
        yield from _notification_issues(n, f"{p}.notifications[{i}]")
    if task.pool_slots > 1 and task.pool is None:
        yield Issue(f"{p}.poolSlots", "poolSlots needs a pool")
    roots = RUN_ROOTS | (MAPPED_ROOTS if t.expand is not None else frozenset())
    for path, text in _templated_strings(task):
        errors = templating.check(text)
        for error in errors:
            yield Issue(path, error)
        if not errors:
            for ref in templating.references(text):
                yield from _reference_issues(plan, task, spec, ref, roots, path)
    yield from _input_issues(plan, task, spec, roots)
    for path, text in _expressions(t, p):
        try:
            expr = expressions.parse(text)
        except expressions.ExpressionError as exc:
            yield Issue(path, str(exc))
            continue
        for ref in expr.references():
            yield from _reference_issues(plan, task, spec, ref, roots - MAPPED_ROOTS, path)


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


def _templated_strings(task: PlannedTask) -> Iterator[tuple[str, str]]:
    """Every templated string of a task, with where it is written (an inherited field: in
    the defaults or the template it came from)."""
    t = task.spec

    def at(name: str, wire: str) -> str:
        return task.field_path(name, wire)

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


def _input_issues(
    plan: Plan, task: PlannedTask, spec: PipelineSpec, roots: frozenset[str]
) -> Iterator[Issue]:
    """A template's inputs are templated like the task's fields, judged where written."""
    for name, value in task.inputs.items():
        path = task.input_paths.get(name, f"{task.path}.template.inputs.{name}")
        for text in _strings(value):
            errors = templating.check(text)
            yield from (Issue(path, error) for error in errors)
            for ref in [] if errors else templating.references(text):
                if ref and ref[0] == "inputs":
                    yield Issue(path, "an input's value cannot use another input; give the value")
                else:
                    yield from _reference_issues(plan, task, spec, ref, roots, path)


def _strings(value: Any) -> Iterator[str]:
    """Every string inside plain data (an input's value may be a list or an object)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _expressions(t: Task, p: str) -> Iterator[tuple[str, str]]:
    if t.when:
        yield f"{p}.when", t.when
    if t.expand is not None and t.expand.param:
        yield f"{p}.expand.param", t.expand.param


def _reference_issues(
    plan: Plan,
    task: PlannedTask,
    spec: PipelineSpec,
    ref: tuple[str | int, ...],
    roots: frozenset[str],
    path: str,
) -> Iterator[Issue]:
    root = ref[0] if ref else ""
    if not isinstance(root, str) or root not in roots:
        where = "" if root not in MAPPED_ROOTS else " (only in tasks with expand)"
        yield Issue(path, f"unknown template variable {root!r}{where}")
        return
    if root == "params" and spec.params and len(ref) > 1 and ref[1] not in spec.params:
        yield Issue(path, f"params.{ref[1]} is not declared in spec.params")
    if root == "inputs" and len(ref) > 1 and ref[1] not in task.inputs:
        yield Issue(path, f"inputs.{ref[1]} is not an input of this task's template")
    if root == "tasks":
        yield from _task_reference_issues(plan, task, ref, path)


def _task_reference_issues(
    plan: Plan, task: PlannedTask, ref: tuple[str | int, ...], path: str
) -> Iterator[Issue]:
    parts = [str(s) for s in ref[1:]]
    if "outputs" not in parts:
        yield Issue(path, "task references look like tasks.<task id>.outputs.<name>")
        return
    cut = parts.index("outputs")
    written = ".".join(parts[:cut])
    target = resolve_task_ref(plan, task.id, written)
    if target is None:
        yield Issue(path, f"tasks.{written}: no such task")
        return
    if not plan.is_upstream(target, task.id):
        yield Issue(path, f"tasks.{written} is not upstream of {task.id!r}: add it to dependsOn")
        return
    declared = plan.task(target).spec.outputs
    if declared is not None and len(parts) > cut + 1 and parts[cut + 1] not in declared:
        yield Issue(path, f"task {target!r} declares no output {parts[cut + 1]!r}")


def resolve_task_ref(plan: Plan, from_task: str, written: str) -> str | None:
    """Resolve a task id as dependsOn does: the innermost enclosing group first."""
    scope = from_task.split(".")[:-1]
    for depth in range(len(scope), -1, -1):
        candidate = ".".join([*scope[:depth], written])
        if candidate in plan.index:
            return candidate
    return None


def _branch_issues(plan: Plan, task: PlannedTask) -> Iterator[Issue]:
    t = task.spec
    if not t.branch:
        return
    direct = {plan.tasks[d].id for d in plan.graph.downstream[task.index]}
    if not direct:
        yield Issue(f"{task.path}.branch", f"branch task {task.id!r} has no downstream task")
    for i, target in enumerate(t.branch_targets or []):
        resolved = resolve_task_ref(plan, task.id, target)
        members: set[str] = set()
        if resolved is None:
            scope = task.id.split(".")[:-1]
            for depth in range(len(scope), -1, -1):
                gid = ".".join([*scope[:depth], target])
                if gid in plan.groups:
                    members = set(plan.groups[gid])
                    break
        else:
            members = {resolved}
        if not members & direct:
            yield Issue(
                f"{task.path}.branchTargets[{i}]",
                f"{target!r} is not directly downstream of branch {task.id!r} "
                f"(downstream: {', '.join(sorted(direct)) or 'none'})",
            )


def _expand_issues(t: Task, p: str) -> Iterator[Issue]:
    if t.expand is None:
        return
    if (t.expand.items is None) == (t.expand.param is None):
        yield Issue(f"{p}.expand", "set exactly one of items or param")
    if t.branch or t.short_circuit:
        yield Issue(f"{p}.expand", "a mapped task cannot be a branch or short-circuit")


def _sensor_issues(t: Task, p: str, spec: PipelineSpec) -> Iterator[Issue]:
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
            f"no connection {s.connection!r} in spec.connections ({known}): declare "
            f"{{name: {s.connection}, secret: <the Secret with its settings>}}",
        )
    if s.kind is SensorKind.S3:
        given = [name for name in ("key", "prefix", "wildcard") if getattr(s, name)]
        if len(given) != 1:
            yield Issue(sp, "an s3 sensor needs exactly one of key, prefix and wildcard")
