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

from collections.abc import Iterable
from dataclasses import dataclass

from kascade.api.pipeline import PipelineSpec, Task, TaskGroup, Template
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


class _Measure:
    def __init__(self, spec: PipelineSpec) -> None:
        self.templates = {t.name: t for t in spec.templates or []}
        self.done: dict[str, Size] = {}
        self.open: set[str] = set()
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
                used = self.template(group.template.name)
                tasks += used.tasks
                nesting = max(nesting, used.nesting)
        finally:
            self.depth -= 1
        return Size(tasks, nesting + 1)

    def template(self, name: str) -> Size:
        """Counted once however often it is used; one that uses itself counts nothing
        here (the compiler reports it)."""
        if name in self.done:
            return self.done[name]
        tpl: Template | None = self.templates.get(name)
        if tpl is None or name in self.open:
            return Size(0, 0)
        self.open.add(name)
        size = self.scope(tpl.tasks, tpl.groups)
        self.open.discard(name)
        self.done[name] = size
        return size


def size_issues(spec: PipelineSpec) -> list[Issue]:
    """The bounds a spec breaks, each with its figure; [] when it may be compiled."""
    size = _Measure(spec).scope(spec.tasks, spec.groups)
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
