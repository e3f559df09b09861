"""Branching, as Airflow 3's ``BranchMixIn.do_branch`` and ``skip_all_except`` decide it.

Pure functions of the plan and a branch task's outputs; the engine applies the skips.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kascade.api.protocol import BRANCH_OUTPUT
from kascade.engine.plan import Plan, PlannedTask


def choice(plan: Plan, task: PlannedTask, outputs: Mapping[str, Any]) -> set[int] | str:
    """The tasks a branch follows, or why its choice is an error (a failed attempt).

    No choice (no output, null, an empty list) follows nothing: every direct downstream
    task is skipped. A name is a task or a group (its root tasks) anywhere in the
    pipeline, resolved from the branch's own group outwards as dependsOn is; only a name
    that is neither fails the branch task.
    """
    raw = outputs.get(BRANCH_OUTPUT)
    if raw is None:
        return set()
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return f"branch output must be a task name or a list of names, got {raw!r}"
    parts = task.id.split(".")[:-1]
    scopes = [".".join(parts[:depth]) + "." for depth in range(len(parts), 0, -1)] + [""]
    follow: set[int] = set()
    for name in names:
        targets = _resolve(plan, name, scopes)
        if targets is None:
            direct = plan.graph.downstream[task.index]
            options = ", ".join(plan.tasks[d].id for d in sorted(direct))
            return (
                f"branch chose {name!r}, which is not a task or group of this pipeline "
                f"(the tasks directly downstream of {task.id}: {options})"
            )
        follow |= targets
    return follow


def _resolve(plan: Plan, name: str, scopes: list[str]) -> set[int] | None:
    for candidate in (scope + name for scope in scopes):
        if candidate in plan.index:
            return {plan.index[candidate]}
        members = plan.groups.get(candidate)
        if members:
            inside = {plan.index[m] for m in members}
            return {m for m in inside if not inside & set(plan.graph.upstream[m])}
    return None


def not_followed(plan: Plan, task: PlannedTask, follow: set[int]) -> list[int]:
    """The direct downstream tasks a branch skips: those neither chosen nor below a chosen
    task (Airflow keeps a join that is also downstream of the choice)."""
    keep = set(follow)
    for chosen in follow:
        keep |= plan.graph.descendants(chosen)
    return [down for down in plan.graph.downstream[task.index] if down not in keep]
