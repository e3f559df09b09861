"""Turn an engine Launch into a Pod manifest (plain data; creating it is kube's job).

Secure by default: pods run as non-root with no privilege escalation, no
capabilities and the RuntimeDefault seccomp profile (Pod Security "restricted"),
and do not mount a service account token unless the task names an account.
Outputs travel in the termination message, so the outputs file *is*
``/dev/termination-log``. With an object store for outputs, the file is on a small
volume shared with an outputs sidecar (:data:`OUTPUTS_SIDECAR`, a native sidecar of the
helper image): when the task's container has ended, the sidecar puts outputs that fit
in its own termination message, and prints larger ones to its log with only their size
in the message; the operator reads that log and writes the values to the store. The
pod never holds the store's credentials.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kascade.api.pipeline import PipelineSpec, Task
from kascade.api.protocol import OUTPUTS_LIMIT_BYTES, TERMINATION_MESSAGE_PATH
from kascade.controller import config
from kascade.controller.naming import label_value
from kascade.engine import environment, sensors
from kascade.engine.decisions import Launch

LABEL_PIPELINE = "kascade.io/pipeline"
LABEL_RUN = "kascade.io/run"
LABEL_TASK = "kascade.io/task"
LABEL_POOL = "kascade.io/pool"
ANN_KEY = "kascade.io/task-key"
ANN_ATTEMPT = "kascade.io/attempt"
ANN_POKE = "kascade.io/poke"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kascade"}

DEFAULT_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}
DEFAULT_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}
OUTPUTS_SIDECAR = "kascade-outputs"
OUTPUTS_DIR = "/kascade/outputs"
OUTPUTS_FILE = f"{OUTPUTS_DIR}/outputs"
LARGE_MARKER = "kascade:large-outputs:"
"""The sidecar's termination message when the outputs are in its log: the marker, then
their size in bytes."""
_SIDECAR_SCRIPT = f"""f={OUTPUTS_FILE}
finish() {{
  size=0; [ -f "$f" ] && size=$(wc -c < "$f")
  if [ "$size" -le {OUTPUTS_LIMIT_BYTES} ]; then
    [ "$size" -eq 0 ] || cat "$f" > /dev/termination-log
  else
    printf '%s%s' '{LARGE_MARKER}' "$size" > /dev/termination-log; cat "$f"
  fi
  exit 0
}}
trap finish TERM
while :; do sleep 3600 & wait $!; done"""
"""Runs until the kubelet stops it, which it does once the task's container has ended."""


@dataclass(frozen=True)
class RunIdentity:
    namespace: str
    pipeline: str
    run: str
    run_id: str
    logical_date: datetime


def _command(spec: Task) -> tuple[list[str] | None, list[str] | None]:
    """Scripts are passed with ``-c`` to their interpreter (sh, bash, python all accept it)."""
    if spec.script is None:
        return spec.command, spec.args
    interpreter = spec.command
    if not interpreter:
        first = spec.script.splitlines()[0] if spec.script else ""
        interpreter = shlex.split(first[2:]) if first.startswith("#!") else ["sh", "-e"]
    name = interpreter[0].rsplit("/", 1)[-1]
    argv0 = ["kascade-script"] if name in ("sh", "bash", "ash", "dash", "zsh") else []
    return [*interpreter, "-c", spec.script, *argv0], spec.args


def build_pod(
    launch: Launch,
    *,
    name: str,
    run: RunIdentity,
    pipeline: PipelineSpec,
    owner: dict[str, Any],
) -> dict[str, Any]:
    spec = launch.spec
    command, args = _command(spec)
    image = spec.image
    if launch.sensor is not None and sensors.KINDS[launch.sensor.kind].helper:
        image = config.CONFIG.helper_image  # `kascade poke`, with the connection's Secret
    if launch.sensor is not None and launch.sensor_policy is not None:
        command, args = sensors.pod_command(launch.sensor, launch.sensor_policy, command, args)
    sidecar = config.CONFIG.outputs is not None and launch.sensor is None
    # The task's env, then the contract (environment.py): later entries win in a pod.
    env: list[dict[str, Any]] = [e.dump() for e in spec.env or []]
    contract = environment.contract(
        pipeline=run.pipeline,
        run_id=run.run_id,
        logical_date=run.logical_date,
        task_id=launch.task_id,
        attempt=launch.attempt,
        map_index=launch.map_index,
        outputs=OUTPUTS_FILE if sidecar else TERMINATION_MESSAGE_PATH,
        outputs_max=config.CONFIG.outputs.max_bytes if config.CONFIG.outputs and sidecar else None,
    )
    env += [{"name": name, "value": value} for name, value in contract.items()]
    env_from: list[dict[str, Any]] = [
        {"configMapRef": {"name": var.config_map}, "prefix": var.prefix}
        for var in pipeline.variables or []
    ]
    for conn in pipeline.connections or []:
        prefix = environment.connection_prefix(conn.name)
        env_from.append({"secretRef": {"name": conn.secret}, "prefix": prefix})
    env_from += list(spec.env_from or [])
    container: dict[str, Any] = {
        "name": "task",
        "image": image,
        "imagePullPolicy": spec.image_pull_policy or "IfNotPresent",
        "env": env,
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "securityContext": {**DEFAULT_CONTAINER_SECURITY, **(spec.security_context or {})},
    }
    if command:
        container["command"] = command
    if args:
        container["args"] = args
    if env_from:
        container["envFrom"] = env_from
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if spec.resources:
        container["resources"] = spec.resources
    if spec.volume_mounts:
        container["volumeMounts"] = spec.volume_mounts
    if sidecar:
        container["volumeMounts"] = [*(spec.volume_mounts or []), _OUTPUTS_MOUNT]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": dict(DEFAULT_POD_SECURITY),
        "automountServiceAccountToken": spec.service_account_name is not None,
        "enableServiceLinks": False,
    }
    if launch.timeout is not None:
        pod_spec["activeDeadlineSeconds"] = max(1, math.ceil(launch.timeout.total_seconds()))
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if spec.volumes:
        pod_spec["volumes"] = spec.volumes
    if sidecar:
        pod_spec["volumes"] = [*(spec.volumes or []), _outputs_volume()]
        pod_spec["initContainers"] = [_outputs_sidecar()]
    if spec.node_selector:
        pod_spec["nodeSelector"] = spec.node_selector
    if spec.tolerations:
        pod_spec["tolerations"] = spec.tolerations
    labels = {
        **MANAGED_BY,
        LABEL_PIPELINE: label_value(run.pipeline),
        LABEL_RUN: label_value(run.run),
        LABEL_TASK: label_value(launch.key),
    }
    if launch.pool:
        labels[LABEL_POOL] = label_value(launch.pool)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": run.namespace,
            "labels": labels,
            "annotations": {
                ANN_KEY: launch.key,
                ANN_ATTEMPT: str(launch.attempt),
                ANN_POKE: str(launch.poke),
            },
            "ownerReferences": [owner],
        },
        "spec": pod_spec,
    }


_OUTPUTS_MOUNT = {"name": OUTPUTS_SIDECAR, "mountPath": OUTPUTS_DIR}


def _outputs_volume() -> dict[str, Any]:
    """Room for the largest outputs the store takes (and a little more, to see them over)."""
    assert config.CONFIG.outputs is not None
    limit = config.CONFIG.outputs.max_bytes + 1024 * 1024
    return {"name": OUTPUTS_SIDECAR, "emptyDir": {"sizeLimit": str(limit)}}


def _outputs_sidecar() -> dict[str, Any]:
    """A native sidecar (an init container that keeps running) passing the outputs on."""
    return {
        "name": OUTPUTS_SIDECAR,
        "image": config.CONFIG.helper_image,
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",
        "command": ["sh", "-c", _SIDECAR_SCRIPT],
        "volumeMounts": [_OUTPUTS_MOUNT],
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "File",
        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
        "securityContext": dict(DEFAULT_CONTAINER_SECURITY),
    }


def taskrun_manifest(
    *,
    name: str,
    namespace: str,
    run: str,
    key: str,
    task_id: str,
    map_index: int | None,
    item: Any,
    labels: dict[str, str],
    owner: dict[str, Any],
    launched: int = 0,
) -> dict[str, Any]:
    """The TaskRun of one task instance, owned by its PipelineRun; ``launched`` is the
    attempt whose pod is about to be created (recorded first: see ``observed.py``)."""
    spec: dict[str, Any] = {"pipelineRunRef": {"name": run}, "taskName": task_id}
    if map_index is not None:
        spec["mapIndex"] = map_index
        spec["item"] = item
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "TaskRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                **MANAGED_BY,
                **labels,
                LABEL_RUN: label_value(run),
                LABEL_TASK: label_value(key),
            },
            **({"annotations": {ANN_ATTEMPT: str(launched)}} if launched else {}),
            "ownerReferences": [owner],
        },
        "spec": spec,
    }
