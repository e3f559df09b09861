"""Every check a Pipeline must pass before it runs, with the field path of each problem.

One function serves ``kascade validate``, the local runner, the operator's
status condition and the admission webhook, so a manifest is judged the same
way everywhere (the lesson of Tekton's shared ``dag.Build``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from kascade.api.pipeline import PipelineSpec, Template
from kascade.api.resources import Pipeline
from kascade.engine import (
    actions,
    expressions,
    repair,
    sensors,
    task_fields,
    templating,
    value_checks,
)
from kascade.engine.compile import compile_spec
from kascade.engine.errors import Issue
from kascade.engine.loading import is_pipeline as is_pipeline
from kascade.engine.loading import load_documents as load_documents
from kascade.engine.plan import Plan, PlannedTask
from kascade.engine.run_dates import is_relative, parse_date, relative_offset
from kascade.engine.schedule import ScheduleError, parse_schedule, zone

#: Template roots every task may use (Airflow's macros plus Kascade's own).
RUN_ROOTS = templating.MACRO_NAMES | {"inputs", "task"}
MAPPED_ROOTS = frozenset({"item", "map_index"})


def validate_document(
    doc: dict[str, Any], shared: Mapping[str, Template] | None = None
) -> tuple[Pipeline | None, Plan | None, list[Issue]]:
    """Parse and check one manifest; the plan is None whenever there is any issue.
    ``shared``: the TaskTemplates it may use (``template.kind: TaskTemplate``).

    Every problem is reported in one pass: fields the schema refuses are left out
    (``engine.repair``) and the rest of the document is still compiled and checked.
    """
    pipeline, repaired, issues = repair.parse(Pipeline, doc)
    checked = pipeline or repaired
    if checked is None:
        return None, None, issues
    more: list[Issue] = []
    if not checked.metadata.name:
        more.append(Issue("metadata.name", "a pipeline needs a name"))
    plan, spec_issues = validate_spec(checked.spec, checked.metadata.name or "pipeline", shared)
    # A field the schema refused was taken out: what the rest says of its absence is noise.
    refused = {i.path for i in issues}
    issues.extend(i for i in [*more, *spec_issues] if i.path not in refused)
    return pipeline, (plan if not issues else None), issues


def validate_spec(
    spec: PipelineSpec, name: str, shared: Mapping[str, Template] | None = None
) -> tuple[Plan | None, list[Issue]]:
    plan, issues = compile_spec(spec, name, shared)
    issues.extend(_schedule_issues(spec))
    issues.extend(value_checks.spec_value_issues(spec))
    if plan is not None:
        reach = _Reach(plan)
        for task in plan.tasks:
            issues.extend(_task_issues(plan, task, spec, reach))
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


class _Reach:
    """Which tasks are upstream of which, for the checks of every task's references.

    Walking the graph per reference is quadratic (a chain of 8,000 tasks reading the
    first one's outputs took 38 s to validate); the descendant bitmasks are computed
    once, on the first reference that is not to a direct upstream.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._masks: list[int] | None = None

    def is_upstream(self, maybe_upstream: str, of: str) -> bool:
        up, down = self.plan.index[maybe_upstream], self.plan.index[of]
        if up in self.plan.graph.upstream[down]:
            return True
        if self._masks is None:
            self._masks = self.plan.graph.descendant_masks(self.plan.order)
        return bool(self._masks[up] >> down & 1)


def _task_issues(
    plan: Plan, task: PlannedTask, spec: PipelineSpec, reach: _Reach
) -> Iterator[Issue]:
    t = task.spec
    p = task.path
    kind = sensors.KINDS[t.sensor.kind] if t.sensor else None
    action = actions.action_of(t)
    if action is not None:
        yield from task_fields.action_issues(task, action)
    elif (kind is None or kind.needs_image) and not t.image:
        yield Issue(
            f"{p}.image", f"task {task.id!r} needs an image (set it here or in spec.defaults)"
        )
    if (
        action is None
        and (kind is None or kind.needs_command)
        and not (t.command or t.script or t.args)
    ):
        yield Issue(f"{p}.command", f"task {task.id!r} needs command, args or script")
    for i, n in enumerate(task.notifications):
        if n.email is not None and not n.email.to and not t.email:
            yield Issue(
                f"{p}.notifications[{i}].email.to",
                f"no recipient: set email.to, or the task's email (task {task.id!r})",
            )
    if t.branch and t.short_circuit:
        yield Issue(f"{p}.shortCircuit", "a task is either a branch or a short-circuit, not both")
    if t.branch_targets and not t.branch:
        yield Issue(f"{p}.branchTargets", "branchTargets needs branch: true")
    if t.cache is not None and t.sensor is not None:
        yield Issue(f"{p}.cache", "a sensor waits for something new each run: it cannot be cached")
    yield from _branch_issues(plan, task)
    yield from task_fields.expand_issues(t, p)
    if t.sensor is not None:
        yield from task_fields.sensor_issues(t, p, spec)
    if task.pool_slots > 1 and task.pool is None:
        yield Issue(f"{p}.poolSlots", "poolSlots needs a pool")
    roots = RUN_ROOTS | (MAPPED_ROOTS if t.expand is not None else frozenset())
    for path, text in task_fields.templated_strings(task):
        errors = templating.check(text)
        for error in errors:
            yield Issue(path, error)
        if not errors:
            for ref in templating.references(text):
                yield from _reference_issues(reach, task, spec, ref, roots, path)
    yield from _input_issues(reach, task, spec, roots)
    for path, text in task_fields.expressions(t, p):
        try:
            expr = expressions.parse(text)
        except expressions.ExpressionError as exc:
            yield Issue(path, str(exc))
            continue
        for ref in expr.references():
            yield from _reference_issues(reach, task, spec, ref, roots - MAPPED_ROOTS, path)


def params_used(plan: Plan) -> set[str]:
    """The names every template and expression of the plan reads as ``params.<name>``."""
    used: set[str] = set()
    for task in plan.tasks:
        refs: list[tuple[str | int, ...]] = []
        texts = [text for _, text in task_fields.templated_strings(task)]
        texts.extend(
            text
            for name, value in task.inputs.items()
            for _, text in templating.string_leaves(value, name)
        )
        for text in texts:
            if not templating.check(text):
                refs.extend(templating.references(text))
        for _, text in task_fields.expressions(task.spec, task.path):
            try:
                refs.extend(expressions.parse(text).references())
            except expressions.ExpressionError:
                continue
        used.update(str(ref[1]) for ref in refs if len(ref) > 1 and ref[0] == "params")
    return used


def _input_issues(
    reach: _Reach, task: PlannedTask, spec: PipelineSpec, roots: frozenset[str]
) -> Iterator[Issue]:
    """A template's inputs are templated like the task's fields, judged where written."""
    for name, value in task.inputs.items():
        path = task.input_paths.get(name, f"{task.path}.template.inputs.{name}")
        for _, text in templating.string_leaves(value, path):
            errors = templating.check(text)
            yield from (Issue(path, error) for error in errors)
            for ref in [] if errors else templating.references(text):
                if ref and ref[0] == "inputs":
                    yield Issue(path, "an input's value cannot use another input; give the value")
                else:
                    yield from _reference_issues(reach, task, spec, ref, roots, path)


def _reference_issues(
    reach: _Reach,
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
        yield from _task_reference_issues(reach, task, ref, path)


def _task_reference_issues(
    reach: _Reach, task: PlannedTask, ref: tuple[str | int, ...], path: str
) -> Iterator[Issue]:
    plan = reach.plan
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
    if not reach.is_upstream(target, task.id):
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
