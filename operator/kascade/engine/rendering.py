"""What a task's templates see, and its fields rendered for one attempt.

The run's macros (``ds``, ``params``...) are built once; each successful instance adds
its outputs under ``tasks.<id>.outputs`` (a list for a mapped task, in map-index order),
and a task that ended without success reads null there, as Airflow's ``xcom_pull``
gives None. Rendering happens just before each attempt, so a retry sees the outputs
and the ``task.try_number`` of its own time.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from typing import Any

from kascade.api.messaging import EmailTemplate, TriggerPipeline
from kascade.api.pipeline import Task
from kascade.engine import expressions, templating
from kascade.engine.context import RunContext, ValueStore
from kascade.engine.instances import Instance
from kascade.engine.outputs import OutputRef, pipeline_prefix
from kascade.engine.plan import Plan, PlannedTask

_TEMPLATED_FIELDS = ("image", "command", "args", "script", "working_dir")
_SENSOR_FIELDS = ("path", "url", "target_time", "sql", "bucket", "key", "prefix", "wildcard")
_SENSOR_LISTS = ("parameters",)
ITEM = "__item__"
"""Where a mapped instance keeps its element (never shown as an output)."""


class StoredOutput(expressions.Deferred):
    """An output kept in the object store, read (once) when an expression reaches it; only
    from under its own pipeline's prefix, so a run never reads another pipeline's data."""

    def __init__(self, ref: OutputRef, where: str, prefix: str, values: ValueStore | None):
        self.ref = ref
        self.where = where
        self.prefix = prefix
        self.values = values
        self._value: Any = None
        self._read = False

    def resolve(self) -> Any:
        if self._read:
            return self._value
        if self.values is None:
            raise expressions.ExpressionError(
                f"{self.where} is kept in the object store ({self.ref.key}), and no object "
                "store is configured here"
            )
        if not self.ref.key.startswith(self.prefix):
            raise expressions.ExpressionError(
                f"{self.where}: {self.ref.key} is not an output of this pipeline"
            )
        try:
            self._value = self.values.fetch(self.ref)
        except Exception as exc:  # the store's own error: the attempt fails and may retry
            raise expressions.ExpressionError(
                f"{self.where}: cannot read it from the object store: {exc}"
            ) from None
        self._read = True
        return self._value


class Renderer:
    def __init__(self, plan: Plan, ctx: RunContext, values: ValueStore | None = None) -> None:
        self.plan = plan
        self.values = values
        """Reads outputs kept in the object store (None: no store here)."""
        self.prefix = pipeline_prefix(ctx.namespace, ctx.pipeline)
        self.outputs: dict[str, dict[str, Any]] = {}
        """Task id -> the outputs downstream tasks read."""
        self.macros = templating.macro_context(
            logical_date=ctx.logical_date,
            interval=ctx.interval,
            run_id=ctx.run_id,
            pipeline_name=ctx.pipeline,
            namespace=ctx.namespace,
            params=ctx.params,
            task_outputs={},
        )

    def record_outputs(self, inst: Instance, instances_of_task: int) -> None:
        """A successful instance's outputs become readable downstream."""
        task = self.plan.tasks[inst.task]
        visible = {
            k: self._readable(f"tasks.{task.id}.outputs.{k}", v)
            for k, v in inst.outputs.items()
            if k != ITEM
        }
        if inst.map_index is None:
            self.outputs[task.id] = visible
        else:
            collected = self.outputs.setdefault(task.id, {})
            for name, value in visible.items():
                values = collected.setdefault(name, [None] * instances_of_task)
                values[inst.map_index] = value
        self._task_node(task.id)["outputs"] = self.outputs[task.id]

    def record_no_outputs(self, task: PlannedTask) -> None:
        """Let ``tasks.<id>.outputs.<name>`` read null once the task ended unsuccessfully.

        Airflow's ``xcom_pull`` gives None for a skipped or failed task, so a downstream
        task that still runs (a join after a branch, an ``all_done`` cleanup) renders
        instead of failing on an undefined path. Outputs a successful instance of the
        task recorded (a mapped task's other instances) are kept.
        """
        if task.id not in self.outputs:
            node = self._task_node(task.id)
            if not isinstance(node.get("outputs"), expressions.NullMap):
                node["outputs"] = expressions.NullMap()

    def _readable(self, where: str, value: Any) -> Any:
        ref = OutputRef.of(value)
        return value if ref is None else StoredOutput(ref, where, self.prefix, self.values)

    def cache_key(self, task: PlannedTask, inst: Instance) -> str:
        """The task's cache key for this attempt; raises ExpressionError."""
        assert task.spec.cache is not None
        return templating.render(task.spec.cache.key, self.context_for(task, inst))

    def outputs_of(self, task_id: str) -> Mapping[str, Any]:
        return self.outputs.get(task_id, {})

    def _task_node(self, task_id: str) -> dict[str, Any]:
        node: dict[str, Any] = self.macros["tasks"]
        for part in task_id.split("."):
            node = node.setdefault(part, {})
        return node

    def context_for(self, task: PlannedTask, inst: Instance | None) -> dict[str, Any]:
        """The names a task's templates and expressions see (``inst`` None: before any
        attempt, for ``when`` and ``expand``)."""
        ctx = dict(self.macros)
        if task.group is not None:
            # Sibling outputs resolve relative to the group, as dependsOn does, so a
            # group template can say ``tasks.a.outputs.x`` wherever it is instantiated.
            # Every enclosing group is merged, outermost first, so the innermost wins.
            node: Any = ctx["tasks"]
            merged = dict(node)
            for part in task.group.split("."):
                node = node.get(part, {}) if isinstance(node, dict) else {}
                merged.update(node)
            ctx["tasks"] = merged
        ctx["task"] = {
            "id": task.id,
            "try_number": inst.attempt if inst else 0,
            "map_index": inst.map_index if inst else None,
        }
        if inst is not None and inst.map_index is not None:
            ctx["item"] = inst.item
            ctx["map_index"] = inst.map_index
        ctx["inputs"] = RenderedInputs(task.inputs, ctx) if task.inputs else {}
        return ctx

    def render(self, task: PlannedTask, inst: Instance) -> Task:
        """The task's spec with its templated fields rendered; raises ExpressionError."""
        spec = task.spec
        if not _needs_render(spec):
            return spec
        ctx = self.context_for(task, inst)
        budget = templating.Budget()  # all the task's rendered fields together
        update: dict[str, Any] = {}
        for name in _TEMPLATED_FIELDS:
            value = getattr(spec, name)
            if value is not None:
                update[name] = templating.render_value(value, ctx, budget)
        if spec.env:
            update["env"] = [
                e.model_copy(update={"value": templating.render(e.value, ctx, budget=budget)})
                if e.value
                else e
                for e in spec.env
            ]
        if spec.sensor is not None:
            s = spec.sensor
            update["sensor"] = s.model_copy(
                update={
                    k: templating.render_value(getattr(s, k), ctx, budget)
                    for k in (*_SENSOR_FIELDS, *_SENSOR_LISTS)
                    if getattr(s, k)
                }
            )
        if spec.send_email is not None:
            update["send_email"] = _render_email(spec.send_email, ctx)
        if spec.trigger_pipeline is not None:
            update["trigger_pipeline"] = _render_trigger(spec.trigger_pipeline, ctx)
        return spec.model_copy(update=update)


def _render_email(email: EmailTemplate, ctx: Mapping[str, Any]) -> EmailTemplate:
    """Recipients and subject as text; the body's substituted values HTML-escaped."""
    update: dict[str, Any] = {
        name: [templating.render(v, ctx) for v in getattr(email, name)]
        for name in ("to", "cc", "bcc")
        if getattr(email, name)
    }
    if email.subject:
        update["subject"] = templating.render(email.subject, ctx)
    if email.html:
        update["html"] = templating.render(email.html, ctx, escape=html.escape)
    return email.model_copy(update=update)


def _render_trigger(trigger: TriggerPipeline, ctx: Mapping[str, Any]) -> TriggerPipeline:
    update: dict[str, Any] = {"pipeline": templating.render(trigger.pipeline, ctx)}
    for name in ("run_id", "logical_date"):
        value = getattr(trigger, name)
        if value is not None:
            update[name] = templating.render(value, ctx)
    if trigger.params:
        update["params"] = templating.render_native(trigger.params, ctx)
    return trigger.model_copy(update=update)


class RenderedInputs(Mapping[str, Any]):
    """A template's inputs, rendered in the task's context like its own fields (Airflow
    renders an operator's ``template_fields`` the same way), each when first read: a
    ``when`` that reads one input is not failed by another that needs the mapped item.
    An input cannot use another; reading one that does not render raises ExpressionError
    naming it."""

    def __init__(self, raw: Mapping[str, Any], ctx: Mapping[str, Any]) -> None:
        self._raw = raw
        self._ctx = ctx
        self._done: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._done:
            value = self._raw[name]
            try:
                self._done[name] = templating.render_value(value, self._ctx)
            except expressions.ExpressionError as exc:
                raise expressions.ExpressionError(f"inputs.{name}: {exc}") from None
        return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _needs_render(spec: Task) -> bool:
    if spec.send_email is not None or spec.trigger_pipeline is not None:
        return True  # rendered at every launch: they are small, and seldom many
    for name in _TEMPLATED_FIELDS:
        value = getattr(spec, name)
        if isinstance(value, str) and "{{" in value:
            return True
        if isinstance(value, list) and any("{{" in v for v in value):
            return True
    if spec.env and any(e.value and "{{" in e.value for e in spec.env):
        return True
    sensor = spec.sensor
    return sensor is not None and (
        any(
            isinstance(getattr(sensor, k), str) and "{{" in getattr(sensor, k)
            for k in _SENSOR_FIELDS
        )
        or any("{{" in v for k in _SENSOR_LISTS for v in getattr(sensor, k) or [])
    )
