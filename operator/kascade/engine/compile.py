"""Compile a PipelineSpec into a flat Plan: groups, templates and defaults resolved.

Everything downstream (the run engine, the local runner, the operator, the
graph command) works on the Plan only, so group and template rules live in this
one module. Group dependencies follow Airflow: ``extract >> transform`` makes
every leaf of ``extract`` an upstream of every root of ``transform``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kascade.api.pipeline import (
    PipelineSpec,
    Task,
    TaskDefaults,
    TaskGroup,
    Template,
    TemplateKind,
)
from kascade.engine import bounds
from kascade.engine.compile_templates import TemplateResolution
from kascade.engine.dag import Graph
from kascade.engine.errors import Issue, PipelineInvalid, did_you_mean
from kascade.engine.plan import Plan, PlannedTask, priorities, run_policies, task_policies


@dataclass
class _Decl:
    """A task or group as written, before edges are known."""

    kind: str  # "task" | "group"
    id: str
    path: str
    scope: tuple[str, ...]
    raw_deps: list[tuple[str, str]]  # (ref, field path)
    task: Task | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    input_paths: dict[str, str] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    """Field name → the path of the defaults or template that set it (not the task)."""
    parent: str | None = None
    inner: list[str] = field(default_factory=list)
    """A group's declarations at any depth (tasks and groups)."""


class _Compiler(TemplateResolution):
    def __init__(self, spec: PipelineSpec, shared: Mapping[str, Template]) -> None:
        self.spec = spec
        self.shared = shared
        """The namespace's TaskTemplates (``template.kind: TaskTemplate``), by name."""
        self.issues: list[Issue] = []
        self.decls: dict[str, _Decl] = {}
        self.order: list[str] = []  # task ids in declaration order
        self.templates: dict[str, Template] = {}
        self.template_paths: dict[str, str] = {}
        self.layer_paths: dict[int, str] = {}  # id(defaults object) → its field path
        for i, tpl in enumerate(spec.templates or []):
            if tpl.name in self.templates:
                self.issues.append(
                    Issue(f"spec.templates[{i}].name", f"duplicate template name {tpl.name!r}")
                )
            has_task = tpl.task is not None
            has_group = bool(tpl.tasks or tpl.groups)
            if has_task == has_group:
                self.issues.append(
                    Issue(
                        f"spec.templates[{i}]",
                        "a template sets exactly one of `task` (a task template) "
                        "or `tasks`/`groups` (a group template)",
                    )
                )
            self.templates[tpl.name] = tpl
            self.template_paths[tpl.name] = f"spec.templates[{i}]"  # the one used: the last
        for name in shared:
            self.template_paths[f"{TemplateKind.TASK_TEMPLATE.value}:{name}"] = (
                f"tasktemplates/{name}.spec"
            )
        self._leaves: dict[str, set[str]] = {}
        self._roots: dict[str, set[str]] = {}
        self.too_many_edges = False

    # -- declarations ---------------------------------------------------------
    def walk(self) -> None:
        defaults = [self.spec.defaults] if self.spec.defaults else []
        if self.spec.defaults:
            self.layer_paths[id(self.spec.defaults)] = "spec.defaults"
        self._walk_scope(
            self.spec.tasks or [], self.spec.groups or [], (), "spec", defaults, None, ({}, {}), ()
        )

    def _register(self, decl: _Decl, name_path: str) -> bool:
        if decl.id in self.decls:
            self.issues.append(
                Issue(
                    name_path,
                    f"duplicate name {decl.id!r} (task and group ids share one namespace)",
                )
            )
            return False
        self.decls[decl.id] = decl
        parent = decl.parent
        while parent is not None:
            self.decls[parent].inner.append(decl.id)
            parent = self.decls[parent].parent
        return True

    def _walk_scope(
        self,
        tasks: list[Task],
        groups: list[TaskGroup],
        scope: tuple[str, ...],
        path: str,
        defaults: list[TaskDefaults],
        parent: str | None,
        inputs: tuple[dict[str, Any], dict[str, str]],
        template_stack: tuple[str, ...],
        paths: tuple[list[str], list[str]] | None = None,
    ) -> None:
        """``paths``: where each task and group is written, when not ``path``'s own lists
        (a group template's members are written in the template, not in the group)."""
        prefix = ".".join(scope) + "." if scope else ""
        for i, task in enumerate(tasks):
            tpath = paths[0][i] if paths else f"{path}.tasks[{i}]"
            merged, task_inputs, sources = self._merge_task(task, defaults, inputs, tpath)
            decl = _Decl(
                "task",
                prefix + task.name,
                tpath,
                scope,
                [(r, f"{tpath}.dependsOn[{j}]") for j, r in enumerate(task.depends_on or [])],
                task=merged,
                sources=sources,
                inputs=task_inputs[0],
                input_paths=task_inputs[1],
                parent=parent,
            )
            if self._register(decl, f"{tpath}.name"):
                self.order.append(decl.id)
                self._add_member(decl.id)
        for i, group in enumerate(groups):
            gpath = paths[1][i] if paths else f"{path}.groups[{i}]"
            gid = prefix + group.name
            decl = _Decl(
                "group",
                gid,
                gpath,
                scope,
                [(r, f"{gpath}.dependsOn[{j}]") for j, r in enumerate(group.depends_on or [])],
                parent=parent,
            )
            if not self._register(decl, f"{gpath}.name"):
                continue
            inner_defaults = defaults + ([group.defaults] if group.defaults else [])
            if group.defaults:
                self.layer_paths[id(group.defaults)] = f"{gpath}.defaults"
            sub_tasks, sub_groups, sub_inputs = group.tasks or [], group.groups or [], inputs
            task_paths = [f"{gpath}.tasks[{j}]" for j in range(len(sub_tasks))]
            group_paths = [f"{gpath}.groups[{j}]" for j in range(len(sub_groups))]
            stack = template_stack
            if group.template is not None:
                tpl = self._template(group.template, f"{gpath}.template.name", group=True)
                if tpl is not None and self._tkey(tpl) in template_stack:
                    self.issues.append(
                        Issue(
                            f"{gpath}.template.name", f"template {tpl.name!r} instantiates itself"
                        )
                    )
                    tpl = None
                if tpl is not None:
                    sub_tasks = list(tpl.tasks or []) + sub_tasks
                    sub_groups = list(tpl.groups or []) + sub_groups
                    tp = self._path(tpl)
                    task_paths = [f"{tp}.tasks[{j}]" for j in range(len(tpl.tasks or []))]
                    task_paths += [f"{gpath}.tasks[{j}]" for j in range(len(group.tasks or []))]
                    group_paths = [f"{tp}.groups[{j}]" for j in range(len(tpl.groups or []))]
                    group_paths += [f"{gpath}.groups[{j}]" for j in range(len(group.groups or []))]
                    sub_inputs = self._inputs(tpl, group.template.inputs, f"{gpath}.template")
                    stack = (*template_stack, self._tkey(tpl))
            if not sub_tasks and not sub_groups:
                self.issues.append(Issue(gpath, f"group {gid!r} has no tasks"))
            self._walk_scope(
                sub_tasks,
                sub_groups,
                (*scope, group.name),
                gpath,
                inner_defaults,
                gid,
                sub_inputs,
                stack,
                (task_paths, group_paths),
            )

    def _add_member(self, task_id: str) -> None:
        parent = self.decls[task_id].parent
        while parent is not None:
            self.decls[parent].members.append(task_id)
            parent = self.decls[parent].parent

    # -- edges ----------------------------------------------------------------
    def resolve(self, ref: str, scope: tuple[str, ...], path: str) -> str | None:
        for depth in range(len(scope), -1, -1):
            candidate = ".".join((*scope[:depth], ref))
            if candidate in self.decls:
                return candidate
        self.issues.append(Issue(path, f"unknown task or group {ref!r}{self._hint(ref)}"))
        return None

    def _hint(self, ref: str) -> str:
        """The same name in another group, else a close spelling (``lod`` → ``load``)."""
        tail = ref.rsplit(".", 1)[-1]
        near = sorted(d for d in self.decls if d.rsplit(".", 1)[-1] == tail)
        if near:
            return f" (did you mean {', '.join(near)}?)"
        return did_you_mean(ref, self.decls)

    def _inside(self, node: str, group: str) -> bool:
        return node.startswith(group + ".")

    def _sources(self, node: str) -> set[str]:
        return {node} if self.decls[node].kind == "task" else self.leaves(node)

    def _targets(self, node: str) -> set[str]:
        return {node} if self.decls[node].kind == "task" else self.roots(node)

    def _inner_deps(self, group: str) -> Iterator[tuple[str, str]]:
        """(declaration, its upstream) pairs with both inside ``group``: linear in the
        group's size (group dependencies are never multiplied out here)."""
        for decl_id in self.decls[group].inner:
            decl = self.decls[decl_id]
            for _ref, path in decl.raw_deps:
                target = self._resolved.get((decl.id, path))
                if target is not None and self._inside(target, group):
                    yield decl.id, target

    def leaves(self, group: str) -> set[str]:
        """The group's tasks with nothing downstream inside the group."""
        if group not in self._leaves:
            self._leaves[group] = set()  # guards against pathological recursion
            has_down: set[str] = set()
            for decl_id, target in self._inner_deps(group):
                if self._targets(decl_id):
                    has_down |= self._sources(target)
            self._leaves[group] = set(self.decls[group].members) - has_down
        return self._leaves[group]

    def roots(self, group: str) -> set[str]:
        """The group's tasks with nothing upstream inside the group."""
        if group not in self._roots:
            self._roots[group] = set()
            has_up: set[str] = set()
            for decl_id, target in self._inner_deps(group):
                if self._sources(target):
                    has_up |= self._targets(decl_id)
            self._roots[group] = set(self.decls[group].members) - has_up
        return self._roots[group]

    def edges(self) -> dict[str, set[str]]:
        self._resolved: dict[tuple[str, str], str] = {}
        for decl in self.decls.values():
            for ref, path in decl.raw_deps:
                target = self.resolve(ref, decl.scope, path)
                if target is None:
                    continue
                if target == decl.id or self._inside(decl.id, target):
                    self.issues.append(
                        Issue(
                            path, f"{decl.id!r} cannot depend on itself or on a group containing it"
                        )
                    )
                    continue
                self._resolved[(decl.id, path)] = target
        upstream: dict[str, set[str]] = {tid: set() for tid in self.order}
        made = 0
        for decl in self.decls.values():
            for _ref, path in decl.raw_deps:
                target = self._resolved.get((decl.id, path))
                if target is None:
                    continue
                sources, targets = self._sources(target), self._targets(decl.id)
                made += len(sources) * len(targets)
                if made > bounds.MAX_EDGES:  # counted before they are made
                    self.too_many_edges = True
                    self.issues.append(
                        Issue(
                            path,
                            f"the dependencies expand to more than {bounds.MAX_EDGES:,} edges "
                            "(a group dependency joins every leaf of one group to every root "
                            "of the other): depend on a single task between the groups",
                        )
                    )
                    return upstream
                for dst in targets:
                    upstream[dst].update(sources)
        return upstream


def _plan_task(
    decl: _Decl, index: int, upstream: tuple[str, ...], issues: list[Issue]
) -> PlannedTask:
    assert decl.task is not None

    def at(name: str, wire: str) -> str:
        """Where the value was written: the task, or the defaults/template it came from."""
        return f"{decl.sources.get(name, decl.path)}.{wire}"

    return PlannedTask(
        id=decl.id,
        index=index,
        spec=decl.task,
        path=decl.path,
        group=decl.parent,
        inputs=decl.inputs,
        input_paths=decl.input_paths,
        upstream=upstream,
        sources=dict(decl.sources),
        **task_policies(decl.task, at, issues),
    )


def compile_spec(
    spec: PipelineSpec, name: str = "pipeline", shared: Mapping[str, Template] | None = None
) -> tuple[Plan | None, list[Issue]]:
    """The plan and every structural problem (the plan is None when the DAG is unusable).
    ``shared``: the TaskTemplates the spec may use (``template.kind: TaskTemplate``).

    A spec over the size bounds (``engine/bounds.py``) is refused before it is expanded.
    """
    too_big = bounds.size_issues(spec, shared)
    if too_big:
        return None, too_big
    comp = _Compiler(spec, shared or {})
    comp.walk()
    upstream = comp.edges()
    issues = comp.issues
    if comp.too_many_edges:
        return None, issues
    if not comp.order:
        issues.append(Issue("spec.tasks", "a pipeline needs at least one task"))
    ids = comp.order
    index = {tid: i for i, tid in enumerate(ids)}
    graph = Graph.build(ids, [sorted(index[u] for u in upstream[t]) for t in ids])
    cycle = graph.find_cycle()
    if cycle:
        first = comp.decls[cycle[0]].path
        issues.append(Issue(f"{first}.dependsOn", "dependency cycle: " + cycle_text(cycle)))
    tasks = tuple(
        _plan_task(comp.decls[t], i, tuple(ids[u] for u in graph.upstream[i]), issues)
        for i, t in enumerate(ids)
    )
    if cycle or not ids:
        return None, list(dict.fromkeys(issues))
    order = graph.topological_order()
    priority = priorities(graph, order, [t.priority_weight for t in tasks])
    groups = {g: tuple(d.members) for g, d in comp.decls.items() if d.kind == "group"}
    plan = Plan(
        name=name,
        spec=spec,
        tasks=tasks,
        graph=graph,
        index=index,
        order=tuple(order),
        priority=tuple(priority),
        groups=groups,
        **run_policies(spec, issues),
    )
    # A bad value in shared defaults or a template is one issue, not one per task.
    return plan, list(dict.fromkeys(issues))


CYCLE_SHOWN = 6
"""Tasks shown at each end of a long cycle (a 20,000-task cycle was one 189 KB line)."""


def cycle_text(cycle: list[str]) -> str:
    """``a -> b -> a``; a long cycle keeps its ends and says how many tasks it has."""
    if len(cycle) <= 2 * CYCLE_SHOWN + 1:
        return " -> ".join(cycle)
    hidden = len(cycle) - 2 * CYCLE_SHOWN
    middle = f"... ({hidden} more) ..."
    text = " -> ".join([*cycle[:CYCLE_SHOWN], middle, *cycle[-CYCLE_SHOWN:]])
    return f"{text} ({len(cycle) - 1} tasks)"


def compile_or_raise(
    spec: PipelineSpec, name: str = "pipeline", shared: Mapping[str, Template] | None = None
) -> Plan:
    plan, issues = compile_spec(spec, name, shared)
    if issues or plan is None:
        raise PipelineInvalid(issues)
    return plan
