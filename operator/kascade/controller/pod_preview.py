"""The pods a spec will create, built before it runs, and API errors mapped back to the spec.

The admission webhook sends these pods to the API server as a server-side dry
run, so that every pod field Kubernetes would refuse (an env name with a space,
a volume mount without its volume, ``resources`` that do not parse, a
ServiceAccount that does not exist, a Pod Security violation of the namespace)
is reported at ``kubectl apply`` with the manifest's field path, instead of
failing the task's first attempt. Pods come from the operator's own builders
(:func:`podspec.build_pod`, :func:`notify.hook_pod`), so what is checked is
what will run; templated strings are left as written (they are values, which
the API server does not judge).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kascade.api.pipeline import Notification, PipelineSpec
from kascade.controller.podspec import RunIdentity, build_pod
from kascade.engine.actions import runs_pod
from kascade.engine.decisions import Fire, Launch
from kascade.engine.plan import Plan, PlannedTask

_IDENTITY = RunIdentity(
    namespace="",
    pipeline="preview",
    run="preview",
    run_id="preview",
    logical_date=datetime(1970, 1, 1, tzinfo=UTC),
)


@dataclass(frozen=True)
class Preview:
    """One pod to dry-run, and how its fields map to the manifest."""

    pod: dict[str, Any]
    path: str
    """The task (or notification hook) in the manifest."""
    own_env: int
    """The index of the task's (or hook's) own first ``env`` entry in the container."""
    own_env_from: int
    """The index of the task's own first ``envFrom`` entry (variables and connections come
    before it, in that order)."""


def preview_pod(task: PlannedTask, spec: PipelineSpec, namespace: str) -> dict[str, Any]:
    """The pod of the task's first attempt (tasks with no pod get an empty one)."""
    t = task.spec
    if not runs_pod(t):
        return {"spec": {}}
    launch = Launch(
        key=task.id,
        task_id=task.id,
        map_index=0 if t.expand is not None else None,
        attempt=1,
        spec=t,
        timeout=task.timeout,
        sensor=t.sensor,
        pool=task.pool,
        pool_slots=task.pool_slots,
        ready_at=None,
    )
    identity = RunIdentity(**{**_IDENTITY.__dict__, "namespace": namespace})
    pod = build_pod(launch, name=_name(task.id), run=identity, pipeline=spec, owner={})
    del pod["metadata"]["ownerReferences"]
    return pod


def _name(key: str) -> str:
    return "kascade-dry-run-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def previews(plan: Plan, spec: PipelineSpec, namespace: str) -> list[Preview]:
    """One pod per distinct pod shape (tasks that differ only in commands share one)."""
    from kascade.controller.notify import hook_pod  # notify imports podspec too

    seen: set[str] = set()
    out: list[Preview] = []

    def add(preview: Preview) -> None:
        shape = _shape(preview.pod)
        if shape not in seen:
            seen.add(shape)
            out.append(preview)

    for task in plan.tasks:
        if not runs_pod(task.spec):
            continue
        pod = preview_pod(task, spec, namespace)
        shared_env_from = len(spec.variables or []) + len(spec.connections or [])
        # podspec.build_pod: the task's env comes first (the KASCADE_* contract follows).
        add(Preview(pod, task.path, 0, shared_env_from))
    hooks: list[tuple[str, Notification]] = [
        (f"spec.notifications[{i}].hook", n) for i, n in enumerate(spec.notifications or [])
    ]
    for task in plan.tasks:
        hooks += [
            (f"{task.path}.notifications[{j}].hook", n) for j, n in enumerate(task.notifications)
        ]
    for path, n in hooks:
        if n.hook is None:
            continue
        fire = Fire(notification=n, event="failure", task=None, message="")
        pod = hook_pod(namespace, "preview", fire, {"name": "preview"})
        pod["metadata"]["name"] = _name(path)
        del pod["metadata"]["ownerReferences"]
        builtin = len(pod["spec"]["containers"][0]["env"]) - len(n.hook.env or [])
        add(Preview(pod, path, builtin, 0))  # a hook's own env follows the KASCADE_* ones
    return out


def _shape(pod: dict[str, Any]) -> str:
    """The pod without what the API server does not judge (names, commands, env values)."""
    spec = json.loads(json.dumps(pod["spec"]))
    for container in spec.get("containers") or []:
        container.pop("command", None)
        container.pop("args", None)
        for var in container.get("env") or []:
            var.pop("value", None)
    return json.dumps(spec, sort_keys=True)


_CONTAINER_FIELD = re.compile(r"^spec\.containers\[0\]\.(env|envFrom)\[(\d+)\](.*)$")


def manifest_path(preview: Preview, field: str, spec: PipelineSpec) -> str:
    """Where in the manifest a pod field (``spec.containers[0].env[8].name``) comes from."""
    match = _CONTAINER_FIELD.match(field)
    if match:
        kind, index, rest = match.group(1), int(match.group(2)), match.group(3)
        if kind == "env":
            own = index - preview.own_env
            return f"{preview.path}.env[{own}]{rest}" if own >= 0 else f"{preview.path}.env"
        if index >= preview.own_env_from:
            return f"{preview.path}.envFrom[{index - preview.own_env_from}]{rest}"
        variables = len(spec.variables or [])
        if index < variables:
            return f"spec.variables[{index}]"
        return f"spec.connections[{index - variables}]"
    for prefix in ("spec.containers[0].", "spec."):
        if field.startswith(prefix):
            return f"{preview.path}.{field.removeprefix(prefix)}"
    return f"{preview.path} ({field})" if field else preview.path


#: Kubernetes' quantity syntax (resource.Quantity); the API server cannot decode a pod without it.
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")


def quantity_problems(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """Resource quantities that do not parse, as (pod field path, message)."""
    out = []
    for i, container in enumerate((pod.get("spec") or {}).get("containers") or []):
        resources = container.get("resources") or {}
        if not isinstance(resources, dict):
            out.append((f"spec.containers[{i}].resources", "must be an object"))
            continue
        for kind in ("limits", "requests"):
            values = resources.get(kind) or {}
            if not isinstance(values, dict):
                out.append((f"spec.containers[{i}].resources.{kind}", "must be an object"))
                continue
            for name, value in values.items():
                if not _QUANTITY.match(str(value)):
                    out.append(
                        (
                            f"spec.containers[{i}].resources.{kind}.{name}",
                            f"{value!r} is not a quantity (e.g. 500m, 2, 1Gi)",
                        )
                    )
    return out
