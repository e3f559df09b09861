"""Templates in a compiled spec: which template a use names (the pipeline's own, or a
namespace's TaskTemplate), the values of its inputs, and a task's fields layered from
its defaults, its template and itself.

A mixin of ``compile._Compiler`` (``compile.py``), which holds the state declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kascade.api.pipeline import Task, TaskDefaults, Template, TemplateKind, TemplateUse
from kascade.engine.errors import Issue


class TemplateResolution:
    shared: Mapping[str, Template]
    issues: list[Issue]
    templates: dict[str, Template]
    template_paths: dict[str, str]
    layer_paths: dict[int, str]

    def _tkey(self, tpl: Template) -> str:
        shared = self.shared.get(tpl.name) is tpl
        return f"{TemplateKind.TASK_TEMPLATE.value}:{tpl.name}" if shared else tpl.name

    def _path(self, tpl: Template) -> str:
        """Where a template is written (its TaskTemplate, for a shared one)."""
        return self.template_paths.get(self._tkey(tpl), "spec.templates")

    def _template(self, use: TemplateUse, path: str, *, group: bool) -> Template | None:
        name = use.name
        if use.kind is TemplateKind.TASK_TEMPLATE:
            tpl = self.shared.get(name)
            if tpl is None:
                known = ", ".join(sorted(self.shared)) or "none found"
                self.issues.append(
                    Issue(
                        path, f"no TaskTemplate {name!r} in the namespace (TaskTemplates: {known})"
                    )
                )
                return None
        else:
            tpl = self.templates.get(name)
        if tpl is None:
            known = ", ".join(sorted(self.templates)) or "none declared"
            self.issues.append(Issue(path, f"unknown template {name!r} (templates: {known})"))
            return None
        if group and tpl.task is not None:
            self.issues.append(
                Issue(path, f"template {name!r} is a task template, used as a group")
            )
            return None
        if not group and tpl.task is None:
            self.issues.append(
                Issue(path, f"template {name!r} is a group template, used as a task")
            )
            return None
        return tpl

    def _inputs(
        self, tpl: Template, given: Mapping[str, Any] | None, path: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The inputs' values, and where each was written (its use, or the default)."""
        declared = {i.name: i for i in tpl.inputs or []}
        tpath = self._path(tpl)
        values = {n: i.default for n, i in declared.items() if i.default is not None}
        paths = {
            i.name: f"{tpath}.inputs[{k}].default"
            for k, i in enumerate(tpl.inputs or [])
            if i.default is not None
        }
        for key, value in (given or {}).items():
            if key not in declared:
                self.issues.append(
                    Issue(f"{path}.inputs.{key}", f"template {tpl.name!r} has no input {key!r}")
                )
            values[key] = value
            paths[key] = f"{path}.inputs.{key}"
        for name in declared:
            if name not in values:
                self.issues.append(
                    Issue(
                        f"{path}.inputs", f"input {name!r} of template {tpl.name!r} needs a value"
                    )
                )
        return values, paths

    def _merge_task(
        self,
        task: Task,
        defaults: list[TaskDefaults],
        inputs: tuple[dict[str, Any], dict[str, str]],
        path: str,
    ) -> tuple[Task, tuple[dict[str, Any], dict[str, str]], dict[str, str]]:
        """Layer defaults (outer to inner), then the template's task, then the task itself."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for layer in defaults:
            for name in layer.model_fields_set:
                values[name] = getattr(layer, name)
                sources[name] = self.layer_paths.get(id(layer), path)
        task_inputs = (dict(inputs[0]), dict(inputs[1]))
        if task.template is not None:
            tpl = self._template(task.template, f"{path}.template.name", group=False)
            if tpl is not None and tpl.task is not None:
                for name in tpl.task.model_fields_set:
                    values[name] = getattr(tpl.task, name)
                    sources[name] = f"{self._path(tpl)}.task"
                given, where = self._inputs(tpl, task.template.inputs, f"{path}.template")
                task_inputs[0].update(given)
                task_inputs[1].update(where)
        # The task's own fields win; copying the validated task with the inherited
        # fields is ~10x cheaper than constructing a model from scratch.
        inherited = {k: v for k, v in values.items() if k not in task.model_fields_set}
        if task.template is not None:
            inherited["template"] = None
        sources = {k: v for k, v in sources.items() if k in inherited}
        return (task.model_copy(update=inherited) if inherited else task), task_inputs, sources
