"""How big a pipeline compiles, measured before anything is expanded.

Group templates multiply: a 2.6 KB manifest of 21 nested group templates, each used
twice, expands to 1,048,576 tasks, and compiling it took two minutes and 3 GB before
failing. The admission webhook runs the same validation and must answer within its
timeout for any input, so the size is computed first, from the spec as written (each
template counted once, then multiplied by its uses), and a pipeline over a bound is
refused with the figure before a single task is expanded. Edges are bounded while
they are made (``compile.py``): group dependencies multiply too (every leaf of one
group upstream of every root of the other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kascade.api.pipeline import PipelineSpec, Task, TaskGroup, Template, TemplateKind, TemplateUse
from kascade.engine.errors import Issue

MAX_TASKS = 25_000
"""Tasks of a compiled pipeline (with every group template expanded); the engine and the
local runner are measured at 10,000 and 20,000 (``make bench``)."""
MAX_EDGES = 500_000
"""Dependencies of a compiled pipeline, group dependencies expanded."""
MAX_NESTING = 50
"""Levels of groups inside groups, template uses included."""


@dataclass(frozen=True)
class Size:
    tasks: int
    nesting: int


_Key = tuple[bool, str]
"""A template as a use names it: (a namespace's TaskTemplate?, name)."""


class _Measure:
    def __init__(self, spec: PipelineSpec, shared: Mapping[str, Template]) -> None:
        self.templates = {t.name: t for t in spec.templates or []}
        self.shared = shared
        """The TaskTemplates the spec may use: group templates multiply just the same."""
        self.done: dict[_Key, Size] = {}
        self.open: set[_Key] = set()
        self.depth = 0
        """Groups entered: past the limit nothing deeper is looked at (a chain of 1,000
        templates must not exhaust the stack); the spec is refused anyway."""

    def scope(self, tasks: Iterable[Task] | None, groups: Iterable[TaskGroup] | None) -> Size:
        count, nesting = len(list(tasks or [])), 0
        for group in groups or []:
            inner = self.group(group)
            count += inner.tasks
            nesting = max(nesting, inner.nesting)
        return Size(count, nesting)

    def group(self, group: TaskGroup) -> Size:
        if self.depth > MAX_NESTING:
            return Size(0, 1)
        self.depth += 1
        try:
            own = self.scope(group.tasks, group.groups)
            tasks, nesting = own.tasks, own.nesting
            if group.template is not None:
                used = self.template(group.template)
                tasks += used.tasks
                nesting = max(nesting, used.nesting)
        finally:
            self.depth -= 1
        return Size(tasks, nesting + 1)

    def template(self, use: TemplateUse) -> Size:
        """Counted once however often it is used; one that uses itself counts nothing
        here (the compiler reports it)."""
        shared = use.kind is TemplateKind.TASK_TEMPLATE
        key = (shared, use.name)
        if key in self.done:
            return self.done[key]
        tpl: Template | None = (self.shared if shared else self.templates).get(use.name)
        if tpl is None or key in self.open:
            return Size(0, 0)
        self.open.add(key)
        size = self.scope(tpl.tasks, tpl.groups)
        self.open.discard(key)
        self.done[key] = size
        return size


def size_issues(spec: PipelineSpec, shared: Mapping[str, Template] | None = None) -> list[Issue]:
    """The bounds a spec breaks, each with its figure; [] when it may be compiled.
    ``shared``: the TaskTemplates it may use (counted like its own templates)."""
    size = _Measure(spec, shared or {}).scope(spec.tasks, spec.groups)
    issues = []
    if size.tasks > MAX_TASKS:
        issues.append(
            Issue(
                "spec",
                f"the pipeline expands to {size.tasks:,} tasks, over the limit of "
                f"{MAX_TASKS:,} (group templates multiply: each use copies every task)",
            )
        )
    if size.nesting > MAX_NESTING:
        issues.append(
            Issue(
                "spec.groups",
                f"groups are nested more than {MAX_NESTING} levels deep (templates included)",
            )
        )
    return issues
