"""TaskTemplates (shared templates) as the compiler sees them, wherever they come from.

A pipeline names a TaskTemplate with ``template: {kind: TaskTemplate, name: ...}``; the
compiler takes the namespace's TaskTemplates as a ``name -> Template`` mapping
(``compile_spec(..., shared=...)``). This module builds that mapping from manifests
(``kascade run``/``validate``: the file's TaskTemplate documents; the operator and the
webhook: the namespace's objects) or from a run's pinned copies, lists the TaskTemplates
a spec uses, and validates a TaskTemplate on its own (every problem with its path).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from kascade.api.pipeline import PipelineSpec, Task, TaskGroup, Template, TemplateKind
from kascade.api.resources import TaskTemplate
from kascade.api.templates import PinnedTaskTemplate
from kascade.engine.errors import Issue, pydantic_issues

KIND = "TaskTemplate"
PLACEHOLDER = "example"
"""The value an input without a default gets when a TaskTemplate is validated alone."""


def used(spec: PipelineSpec) -> set[str]:
    """The names of the TaskTemplates a spec uses (tasks, groups, and its own templates)."""
    return {name for name in _uses(spec.tasks, spec.groups)} | {
        name
        for tpl in spec.templates or []
        for name in _uses(
            tpl.tasks, tpl.groups, [tpl.task.template] if tpl.task and tpl.task.template else []
        )
    }


def _uses(
    tasks: list[Task] | None, groups: list[TaskGroup] | None, extra: Iterable[Any] = ()
) -> Iterator[str]:
    for use in extra:
        if use.kind is TemplateKind.TASK_TEMPLATE:
            yield use.name
    for task in tasks or []:
        if task.template is not None and task.template.kind is TemplateKind.TASK_TEMPLATE:
            yield task.template.name
    for group in groups or []:
        if group.template is not None and group.template.kind is TemplateKind.TASK_TEMPLATE:
            yield group.template.name
        yield from _uses(group.tasks, group.groups)


def from_manifests(docs: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Template], list[str]]:
    """The TaskTemplate documents among ``docs``, as templates; and the problems of those
    that do not parse (``name: path: message``)."""
    shared: dict[str, Template] = {}
    problems: list[str] = []
    for doc in docs:
        if doc.get("kind") != KIND:
            continue
        model, issues = parse(doc)
        name = ((doc.get("metadata") or {}).get("name")) or "?"
        if model is None:
            problems += [f"TaskTemplate {name}: {issue}" for issue in issues]
            continue
        shared[model.name] = model.spec.as_template(model.name)
    return shared, problems


def pinned(copies: Iterable[PinnedTaskTemplate]) -> dict[str, Template]:
    """A run's pinned TaskTemplates, as templates."""
    return {copy.name: copy.spec.as_template(copy.name) for copy in copies}


def parse(doc: Mapping[str, Any]) -> tuple[TaskTemplate | None, list[Issue]]:
    try:
        model = TaskTemplate.model_validate(doc)
    except ValidationError as exc:
        return None, pydantic_issues(exc.errors())  # type: ignore[arg-type]
    if not model.metadata.name:
        return None, [Issue("metadata.name", "a TaskTemplate needs a name")]
    return model, []


def validate(doc: Mapping[str, Any]) -> list[Issue]:
    """Every problem of a TaskTemplate on its own: it is compiled and validated inside a
    pipeline that uses it once (inputs without a default get a placeholder value), and
    each problem is reported at its path in the TaskTemplate (``spec.task.command[0]``)."""
    from kascade.engine.validation import validate_spec

    model, issues = parse(doc)
    if model is None:
        return issues
    name = model.name
    spec = model.spec
    if (spec.task is not None) == bool(spec.tasks or spec.groups):
        return [Issue("spec", "a TaskTemplate sets exactly one of task, or tasks/groups")]
    inputs = {i.name: PLACEHOLDER for i in spec.inputs or [] if i.default is None}
    use = {"name": name, "kind": KIND, "inputs": inputs}
    body: dict[str, Any] = (
        {"tasks": [{"name": "use", "template": use}]}
        if spec.task is not None
        else {"groups": [{"name": "use", "template": use}]}
    )
    pipeline = PipelineSpec.model_validate(body)
    _, found = validate_spec(pipeline, "template", {name: spec.as_template(name)})
    prefix = f"tasktemplates/{name}."
    out: list[Issue] = []
    for issue in found:
        if issue.path.startswith(prefix):
            out.append(Issue(issue.path.removeprefix(prefix), issue.message))
        elif issue.path.startswith("spec.") and "template" not in issue.path:
            continue  # the synthetic pipeline's own fields
        else:
            out.append(Issue("spec", issue.message))
    return list(dict.fromkeys(out))
