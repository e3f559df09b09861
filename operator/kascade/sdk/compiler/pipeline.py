"""One DAG → one Pipeline manifest (plain data in wire form, validated by the caller).

Task groups become ``spec.groups`` (a group with ``prefix_group_id=False`` is
flattened into its parent, as its ids are not prefixed); edges become
``dependsOn``; ``default_args`` values shared by every task are hoisted into
``spec.defaults`` so the manifest reads like a hand-written one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kascade.sdk.baseoperator import BaseOperator
from kascade.sdk.compiler.refs import dependency_ref
from kascade.sdk.compiler.tasks import (
    callback_notification,
    container_fields,
    policy_fields,
    task_fields,
)
from kascade.sdk.dag import DAG
from kascade.sdk.exceptions import DagDefinitionError, UnsupportedFeature
from kascade.sdk.lowering import Target, hook
from kascade.sdk.naming import (
    DAG_ID_ANNOTATION,
    SOURCE_ANNOTATION,
    pipeline_name,
    task_name_problem,
)
from kascade.sdk.taskgroup import TaskGroup
from kascade.sdk.timing import RollingDate, duration, iso_date, schedule_text, zone_name

API_VERSION = "kascade.io/v1alpha1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kascade-sdk"}
#: Fields hoisted into spec.defaults when every task has the same value.
_HOISTABLE = (
    "image",
    "retries",
    "retryDelay",
    "retryExponentialBackoff",
    "maxRetryDelay",
    "timeout",
    "startTimeout",
    "securityContext",
    "imagePullPolicy",
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "resources",
    "notifications",
    "sla",
    "email",
    "emailOnFailure",
    "emailOnRetry",
)


class Located(DagDefinitionError):
    """A compile error tied to the task (and so the file and line) that caused it."""

    def __init__(self, op: BaseOperator | None, message: str) -> None:
        self.op = op
        super().__init__(message)


def _ancestors(dag: DAG, order: list[BaseOperator]) -> dict[str, list[str]]:
    """task id → every upstream task id, in topological order."""
    position = {t.task_id: i for i, t in enumerate(order)}
    found: dict[str, set[str]] = {}
    for t in order:
        acc: set[str] = set()
        for up in t.upstream_task_ids:
            acc.add(up)
            acc |= found[up]
        found[t.task_id] = acc
    return {k: sorted(v, key=position.__getitem__) for k, v in found.items()}


def _nodes(dag: DAG) -> set[str]:
    nodes: set[str] = set()
    for ident in [*dag.task_dict, *dag.group_dict]:
        parts = ident.split(".")
        nodes.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return nodes


def _check_names(dag: DAG) -> None:
    for op in dag.task_dict.values():
        label = op.task_id.rsplit(".", 1)[-1]
        problem = task_name_problem(label)
        if problem:
            raise Located(op, f"task id {label!r} {problem}")
    for gid, group in dag.group_dict.items():
        problem = task_name_problem(gid.rsplit(".", 1)[-1])
        if problem:
            first = next(iter(group.iter_tasks()), None)
            raise Located(first, f"task group id {gid!r} {problem}")


def _container_of(group: TaskGroup | None) -> TaskGroup | None:
    """The group a member is written in: the nearest enclosing group that prefixes ids."""
    while group is not None and not group.is_root and not group.prefix_group_id:
        group = group.parent_group
    return None if group is None or group.is_root else group


def _tree(dag: DAG, tasks: dict[str, dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Top-level tasks and groups, members in declaration order."""
    groups: dict[str, dict[str, Any]] = {}
    top_tasks: list[Any] = []
    top_groups: list[Any] = []

    def holder(group: TaskGroup | None) -> dict[str, Any] | None:
        container = _container_of(group)
        if container is None:
            return None
        gid = container.group_id or ""
        if gid not in groups:
            entry: dict[str, Any] = {"name": container.label}
            if container.tooltip:
                entry["description"] = container.tooltip
            groups[gid] = entry
            parent = holder(container.parent_group)
            (parent.setdefault("groups", []) if parent else top_groups).append(entry)
        return groups[gid]

    for op in dag.task_dict.values():
        where = holder(op.task_group)
        (where.setdefault("tasks", []) if where else top_tasks).append(tasks[op.task_id])
    return top_tasks, top_groups


def _declared_defaults(dag: DAG, default_image: str) -> dict[str, Any]:
    """What ``default_args`` says, in wire form (the values the hoisting prefers)."""
    args = dag.default_args
    out = policy_fields(args)
    out.update(container_fields(args))
    out["image"] = args.get("image") or default_image
    return out


def _hoist(dag: DAG, tasks: list[dict[str, Any]], default_image: str) -> dict[str, Any]:
    """spec.defaults: what default_args (or every task alike) sets, removed from the tasks.

    A field is hoisted only when every task sets it, so that no task inherits a
    value it did not have; tasks that differ keep their own value.
    """
    defaults: dict[str, Any] = {}
    if not tasks:
        return defaults
    declared = _declared_defaults(dag, default_image)
    for field in _HOISTABLE:
        values = [t.get(field) for t in tasks]
        if any(v is None for v in values):
            if field == "image" and default_image in values:
                defaults["image"] = default_image  # tasks without an image need none
            else:
                continue
        elif field in declared and declared[field] in values:
            defaults[field] = declared[field]
        elif all(v == values[0] for v in values) and len(tasks) > 1:
            defaults[field] = values[0]
        else:
            continue
        for t in tasks:
            if t.get(field) == defaults[field]:
                del t[field]
    return defaults


def _run_notifications(dag: DAG, target: Target) -> list[dict[str, Any]]:
    out = []
    for attr, event in (("on_failure_callback", "failure"), ("on_success_callback", "success")):
        value = getattr(dag, attr)
        callbacks = value if isinstance(value, list | tuple) else [value] if value else []
        for i, callback in enumerate(callbacks):
            out.append(callback_notification(target, dag, "dag", attr, event, i, callback))
    if dag.sla is not None and dag.sla_miss_callback is not None:
        spec = hook(target, dag, "dag", "sla_miss_callback", 0)
        out.append({"name": "dag-sla-miss-callback", "events": ["slaMiss"], "hook": spec})
    return out


def _start_date(dag: DAG) -> str | None:
    if isinstance(dag.start_date, RollingDate):
        if dag.start_date.relative is not None:
            return dag.start_date.relative  # resolved once by the operator: it never moves
        if dag.catchup:
            raise UnsupportedFeature(
                "start_date=days_ago(n, hour=...) with catchup=True",
                "a relative startDate has no time of day; use days_ago(n) or a fixed datetime",
            )
        return None  # catchup=False: only the latest interval runs either way
    return iso_date(dag.start_date, "start_date")


def _spec(dag: DAG, target: Target) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if dag.description:
        spec["description"] = dag.description
    schedule = schedule_text(dag.schedule)
    if schedule is not None:
        spec["schedule"] = schedule
    zone = dag.timezone or zone_name(getattr(dag.start_date, "tzinfo", None))
    if zone:
        spec["timezone"] = zone
    start = _start_date(dag)
    if start:
        spec["startDate"] = start
    end = iso_date(dag.end_date, "end_date")
    if end:
        spec["endDate"] = end
    spec["catchup"] = bool(dag.catchup)
    spec["maxActiveRuns"] = dag.max_active_runs
    spec["maxActiveTasks"] = dag.max_active_tasks
    if dag.dagrun_timeout is not None:
        spec["runTimeout"] = duration(dag.dagrun_timeout, "dagrun_timeout")
    if dag.is_paused_upon_creation:
        spec["suspend"] = True
    if dag.sla is not None:
        spec["sla"] = duration(dag.sla, "sla")
    if dag.params:
        spec["params"] = {name: p.dump(name) for name, p in dag.params.items()}
    if dag.variables:
        spec["variables"] = [{"configMap": name} for name in dag.variables]
    if dag.connections:
        spec["connections"] = [{"name": k, "secret": v} for k, v in dag.connections.items()]
    if dag.smtp_secret:
        spec["smtp"] = {"secret": dag.smtp_secret}
    run_hooks = _run_notifications(dag, target)
    if run_hooks:
        spec["notifications"] = run_hooks
    if dag.tags:
        spec["tags"] = [str(t) for t in dag.tags]
    return spec


def _metadata(dag: DAG, source: str | None) -> dict[str, Any]:
    annotations = {DAG_ID_ANNOTATION: dag.dag_id}
    if source:
        annotations[SOURCE_ANNOTATION] = source
    owners = sorted({str(t.owner) for t in dag.task_dict.values() if t.owner})
    if owners:
        annotations["kascade.io/owners"] = ",".join(owners)
    if dag.display_name:
        annotations["kascade.io/display-name"] = dag.display_name
    if dag.doc_md:
        annotations["kascade.io/doc-md"] = str(dag.doc_md).strip()
    return {
        "name": target_name(dag),
        "labels": dict(MANAGED_BY),
        "annotations": annotations,
    }


def target_name(dag: DAG) -> str:
    return pipeline_name(dag.dag_id)


def compile_dag(
    dag: DAG, target: Target, source: str | None = None
) -> tuple[dict[str, Any], dict[int, BaseOperator]]:
    """The Pipeline for ``dag`` and, per task entry (by id()), the operator it came from.

    Raises ``Located``/``DagDefinitionError`` on a DAG that cannot be compiled.
    """
    order = dag.topological_sort()
    _check_names(dag)
    ancestors = _ancestors(dag, order)
    nodes = _nodes(dag)
    ids = set(dag.task_dict) | set(dag.group_dict)
    wire: dict[str, dict[str, Any]] = {}
    position = {task_id: i for i, task_id in enumerate(dag.task_dict)}
    for op in dag.task_dict.values():
        fields: dict[str, Any] = _located(
            op, functools.partial(task_fields, dag, op, target, ancestors[op.task_id], nodes)
        )
        entry: dict[str, Any] = {"name": op.task_id.rsplit(".", 1)[-1]}
        deps = sorted(op.upstream_task_ids, key=position.__getitem__)
        if deps:
            entry["dependsOn"] = [
                _located(op, functools.partial(dependency_ref, d, op.task_id, ids)) for d in deps
            ]
        entry.update(fields)
        wire[op.task_id] = entry
    spec = _spec(dag, target)
    defaults = _hoist(dag, list(wire.values()), target.default_image)
    if defaults:
        spec["defaults"] = defaults
    tasks, groups = _tree(dag, wire)
    if tasks:
        spec["tasks"] = tasks
    if groups:
        spec["groups"] = groups
    doc = {
        "apiVersion": API_VERSION,
        "kind": "Pipeline",
        "metadata": _metadata(dag, source),
        "spec": spec,
    }
    return doc, {id(wire[op.task_id]): op for op in dag.task_dict.values()}


def _located(op: BaseOperator, make: Callable[[], Any]) -> Any:
    try:
        return make()
    except Located:
        raise
    except (DagDefinitionError, ValueError, TypeError, FileNotFoundError) as exc:
        raise Located(op, str(exc)) from exc
