"""Render a compiled plan: a layered text listing, Mermaid, or Graphviz dot.

Works on the Plan, so what is drawn is what runs: group dependencies already
expanded into task edges, ids qualified by their groups.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from kascade.api.pipeline import TriggerRule
from kascade.engine.plan import Plan, PlannedTask

_MAX_LISTED_UPSTREAM = 8


def markers(task: PlannedTask) -> list[str]:
    spec = task.spec
    out = []
    if spec.branch:
        out.append("branch")
    if spec.short_circuit:
        out.append("short-circuit")
    if spec.sensor is not None:
        out.append(f"sensor:{spec.sensor.kind.value}")
    if spec.expand is not None:
        out.append("mapped")
    if spec.when:
        out.append("when")
    if task.trigger_rule is not TriggerRule.ALL_SUCCESS:
        out.append(f"trigger:{task.trigger_rule.value}")
    return out


def layers(plan: Plan) -> list[list[int]]:
    """Tasks by depth (longest path from a root), in declaration order within a layer."""
    depth = [0] * len(plan.tasks)
    for node in plan.order:
        for up in plan.graph.upstream[node]:
            depth[node] = max(depth[node], depth[up] + 1)
    out: list[list[int]] = [[] for _ in range(max(depth, default=-1) + 1)]
    for node, d in enumerate(depth):
        out[d].append(node)
    return out


def render_text(plan: Plan) -> str:
    lines = [f"{plan.name}: {len(plan.tasks)} tasks"]
    for number, layer in enumerate(layers(plan)):
        lines.append(f"layer {number}:")
        for node in layer:
            task = plan.tasks[node]
            line = f"  {task.id}"
            tags = markers(task)
            if tags:
                line += "  [" + ", ".join(tags) + "]"
            ups = list(task.upstream)
            if ups:
                shown = ups[:_MAX_LISTED_UPSTREAM]
                rest = len(ups) - len(shown)
                line += "  <- " + ", ".join(shown) + (f", ... (+{rest})" if rest else "")
            lines.append(line)
    return "\n".join(lines) + "\n"


def _node_ids(plan: Plan) -> dict[str, str]:
    ids: dict[str, str] = {}
    used: set[str] = set()
    for task in plan.tasks:
        base = "t_" + re.sub(r"[^A-Za-z0-9_]", "_", task.id)
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        ids[task.id] = name
    return ids


def _children(plan: Plan) -> tuple[dict[str | None, list[str]], dict[str | None, list[str]]]:
    """Group tree: parent group → child groups, and group → its direct tasks."""
    groups: dict[str | None, list[str]] = {}
    for gid in plan.groups:
        parent = gid.rsplit(".", 1)[0] if "." in gid else None
        groups.setdefault(parent, []).append(gid)
    tasks: dict[str | None, list[str]] = {}
    for task in plan.tasks:
        tasks.setdefault(task.group, []).append(task.id)
    return groups, tasks


def _short(ident: str) -> str:
    return ident.rsplit(".", 1)[-1]


def _label(task: PlannedTask) -> str:
    tags = markers(task)
    return _short(task.id) + (f" ({', '.join(tags)})" if tags else "")


def _edges(plan: Plan) -> Iterator[tuple[str, str]]:
    for task in plan.tasks:
        for up in task.upstream:
            yield up, task.id


def render_mermaid(plan: Plan) -> str:
    ids = _node_ids(plan)
    groups, tasks = _children(plan)
    out = ["flowchart LR"]

    def node(task_id: str) -> str:
        task = plan.task(task_id)
        text = _label(task).replace('"', "#quot;")
        spec = task.spec
        if spec.branch or spec.short_circuit:
            return f'{ids[task_id]}{{"{text}"}}'
        if spec.sensor is not None:
            return f'{ids[task_id]}(["{text}"])'
        if spec.expand is not None:
            return f'{ids[task_id]}[["{text}"]]'
        return f'{ids[task_id]}["{text}"]'

    def scope(group: str | None, indent: str) -> None:
        for gid in groups.get(group, []):
            gname = "g_" + re.sub(r"[^A-Za-z0-9_]", "_", gid)
            out.append(f'{indent}subgraph {gname}["{_short(gid)}"]')
            scope(gid, indent + "  ")
            out.append(f"{indent}end")
        for task_id in tasks.get(group, []):
            out.append(indent + node(task_id))

    scope(None, "  ")
    out.extend(f"  {ids[a]} --> {ids[b]}" for a, b in _edges(plan))
    return "\n".join(out) + "\n"


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(plan: Plan) -> str:
    groups, tasks = _children(plan)
    out = [f"digraph {_q(plan.name)} {{", "  rankdir=LR;", "  node [shape=box];"]

    def node(task_id: str) -> str:
        task = plan.task(task_id)
        spec = task.spec
        shape = ""
        if spec.branch or spec.short_circuit:
            shape = ", shape=diamond"
        elif spec.sensor is not None:
            shape = ", shape=ellipse"
        elif spec.expand is not None:
            shape = ", shape=box3d"
        return f"{_q(task_id)} [label={_q(_label(task))}{shape}];"

    def scope(group: str | None, indent: str) -> None:
        for gid in groups.get(group, []):
            out.append(f"{indent}subgraph {_q('cluster_' + gid)} {{")
            out.append(f"{indent}  label={_q(_short(gid))};")
            scope(gid, indent + "  ")
            out.append(f"{indent}}}")
        for task_id in tasks.get(group, []):
            out.append(indent + node(task_id))

    scope(None, "  ")
    out.extend(f"  {_q(a)} -> {_q(b)};" for a, b in _edges(plan))
    out.append("}")
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_text, "mermaid": render_mermaid, "dot": render_dot}
