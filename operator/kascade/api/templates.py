"""The TaskTemplate kind: a task or group template shared by the pipelines of a namespace.

Tekton's Task, Argo's WorkflowTemplate: a custom operator written once and used by
reference, ``template: {kind: TaskTemplate, name: http-get, inputs: {...}}``, with the
same fields as an entry of a pipeline's ``spec.templates`` (the object's name is the
template's). A run uses the version it started with: the operator copies every
TaskTemplate a run uses into the run (``spec.taskTemplates``) before its first task, so
editing a TaskTemplate changes the next runs, never one in flight.
"""

from __future__ import annotations

from kascade.api.base import Condition, Model
from kascade.api.pipeline import Template, TemplateBody


class TaskTemplateSpec(TemplateBody):
    """A task template (``task``) or a group template (``tasks``/``groups``), with inputs."""

    def as_template(self, name: str) -> Template:
        """The same template as a pipeline's ``spec.templates`` entry named ``name``."""
        return Template.model_validate({"name": name, **self.model_dump(exclude_none=True)})


class TaskTemplateStatus(Model):
    """Whether the template is valid, as the operator judged it."""

    conditions: list[Condition] | None = None
    """Valid: whether the template passed validation."""
    errors: list[str] | None = None
    """Every validation error, each with its field path."""
    observed_generation: int | None = None
    """The generation these conditions were computed for."""


class PinnedTaskTemplate(Model):
    """A TaskTemplate as a run uses it: copied when the run started, never changed after."""

    name: str
    """The TaskTemplate's name."""
    generation: int | None = None
    """Its metadata.generation when it was copied (which version the run uses)."""
    uid: str | None = None
    """Its uid (a TaskTemplate deleted and made again is another one)."""
    spec: TaskTemplateSpec
    """Its spec, as copied."""
