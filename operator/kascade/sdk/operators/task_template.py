"""``TaskTemplateOperator``: a task made from a namespace's TaskTemplate (Kascade's own).

Airflow shares a custom operator by importing its class; Kascade shares it as a
TaskTemplate object of the namespace (Tekton's Task), used by name. The inputs are
templated like any task field (``inputs={"url": "{{ params.api }}/{{ ds }}"}``), and a run
uses the version of the TaskTemplate it started with. Fields given here win over the
template's (``retries=5``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from kascade.sdk.baseoperator import BaseOperator

if TYPE_CHECKING:
    from kascade.sdk.lowering import Lowerer


class TaskTemplateOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("inputs",)
    ui_color = "#d6e4f0"

    def __init__(
        self, *, template: str, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(template, str) or not template:
            raise ValueError("TaskTemplateOperator: template must be a TaskTemplate's name")
        self.template = template
        self.inputs = dict(inputs or {})

    def execute(self, context: dict[str, Any]) -> Any:
        raise RuntimeError("a TaskTemplate's task runs as the template says, not in Python")

    def _lower(self, lo: Lowerer) -> dict[str, Any]:
        use: dict[str, Any] = {"name": self.template, "kind": "TaskTemplate"}
        if self.inputs:
            use["inputs"] = {
                name: lo.template(value, f"inputs[{name!r}]") if isinstance(value, str) else value
                for name, value in self.inputs.items()
            }
        own = "image" in self.container and "image" not in getattr(self, "_defaulted", set())
        return {"template": use, **({"image": self.container["image"]} if own else {})}


TaskTemplateOperator._native_execute = TaskTemplateOperator.execute
