"""Read what happened to a pod: started or not, and how an attempt ended.

Every way a pod can end is an attempt result that the engine retries by policy:
a non-zero exit, the deadline (timeout), an eviction, a deletion by someone
else, or an image that will never come (the peers' most common complaint is
that these hang or are not retried).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kascade.api.protocol import OUTPUTS_LIMIT_BYTES
from kascade.api.runs import AttemptReason
from kascade.controller.podspec import LARGE_MARKER, OUTPUTS_SIDECAR
from kascade.engine.decisions import Result
from kascade.engine.outputs import OutputsError, parse_outputs

#: Waiting reasons that will not fix themselves; fail the attempt at once.
FATAL_WAITING = {
    reason.value: reason
    for reason in (
        AttemptReason.IMAGE_NEVER_PULL,
        AttemptReason.INVALID_IMAGE_NAME,
        AttemptReason.CREATE_CONTAINER_CONFIG_ERROR,
        AttemptReason.CREATE_CONTAINER_ERROR,
    )
}


@dataclass(frozen=True)
class PodView:
    started: bool
    result: Result | None
    waiting_reason: str | None = None
    waiting_message: str | None = None
    large_outputs: int | None = None
    """The attempt succeeded and its outputs (this many bytes) are in the outputs sidecar's
    log: the driver reads them and writes them to the object store (``result`` waits)."""


def task_container(
    pod: dict[str, Any], name: str = "task", field: str = "containerStatuses"
) -> dict[str, Any]:
    """The status of one of the pod's containers, the task's by default ({} before it has one)."""
    statuses = (pod.get("status") or {}).get(field) or []
    for status in statuses:
        if status.get("name") == name:
            return dict(status)
    return {}


def _outputs_message(pod: dict[str, Any], task_message: str) -> str | None:
    """Where the outputs are: the task's termination message, or the outputs sidecar's
    (None while a pod with a sidecar has not recorded its end yet)."""
    names = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
    if OUTPUTS_SIDECAR not in names:
        return task_message
    sidecar = task_container(pod, OUTPUTS_SIDECAR, "initContainerStatuses")
    terminated = (sidecar.get("state") or {}).get("terminated")
    return str(terminated.get("message") or "") if terminated else None


def _outputs_result(exit_code: int, message: str) -> Result:
    if len(message.encode()) >= OUTPUTS_LIMIT_BYTES:
        return Result(
            exit_code,
            reason=AttemptReason.OUTPUTS_TOO_LARGE,
            message=(
                f"outputs reached the {OUTPUTS_LIMIT_BYTES}-byte limit of a termination message "
                "and were cut by Kubernetes; pass large data by reference"
            ),
        )
    try:
        outputs = parse_outputs(message)
    except OutputsError as exc:
        return Result(exit_code, reason=AttemptReason.BAD_OUTPUTS, message=str(exc))
    return Result(exit_code, outputs=outputs)


def view(pod: dict[str, Any], *, deleted: bool = False) -> PodView:
    status = pod.get("status") or {}
    phase = status.get("phase")
    container = task_container(pod)
    state = container.get("state") or {}
    terminated = state.get("terminated")
    running = "running" in state or phase in ("Running", "Succeeded", "Failed")
    if status.get("reason") == "DeadlineExceeded":
        timeout = Result(None, reason=AttemptReason.TIMEOUT, message="the attempt hit its timeout")
        return PodView(True, timeout)
    if status.get("reason") == "Evicted" or (phase == "Failed" and not terminated):
        kube_reason = status.get("reason") or "PodFailed"
        reason = AttemptReason.EVICTED if kube_reason == "Evicted" else AttemptReason.POD_FAILED
        message = status.get("message") or kube_reason
        if reason is AttemptReason.POD_FAILED and kube_reason not in message:
            message = f"{kube_reason}: {message}"
        return PodView(running, Result(None, reason=reason, message=message))
    if terminated and phase in ("Succeeded", "Failed"):
        code = int(terminated.get("exitCode", 1))
        if code == 0:
            message = _outputs_message(pod, terminated.get("message") or "")
            if message is None:
                return PodView(True, None)  # the sidecar's end is the next update
            if message.startswith(LARGE_MARKER):
                size = message.removeprefix(LARGE_MARKER)
                return PodView(True, Result(0), large_outputs=int(size) if size.isdigit() else 0)
            return PodView(True, _outputs_result(0, message))
        detail = terminated.get("reason") or "Error"
        return PodView(True, Result(code, message=f"exit code {code} ({detail})"))
    if deleted:
        return PodView(
            running, Result(None, reason=AttemptReason.POD_DELETED, message="the pod was deleted")
        )
    waiting = state.get("waiting") or {}
    waiting_reason = waiting.get("reason")
    if waiting_reason in FATAL_WAITING:
        message = f"{waiting_reason}: {waiting.get('message', '')}".strip()
        return PodView(False, Result(None, reason=FATAL_WAITING[waiting_reason], message=message))
    if waiting_reason is None and not running:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return PodView(
                    False, None, cond.get("reason") or "Unschedulable", cond.get("message")
                )
    return PodView(running, None, waiting_reason, waiting.get("message"))


#: Waiting reasons of a pod that is starting normally; any other is worth showing.
STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def trouble(seen: PodView) -> str | None:
    """Why a pod that has not started is stuck (image pull, unschedulable...), if it is."""
    if seen.started or seen.result is not None or seen.waiting_reason in (None, *STARTING):
        return None
    return (
        f"{seen.waiting_reason}: {seen.waiting_message}"
        if seen.waiting_message
        else seen.waiting_reason
    )


#: Refusals that trying again as is cannot get past: the pod itself is wrong for this
#: cluster (a field the API server finds invalid, a Pod Security violation, a policy
#: webhook's denial). Others (a quota, a ServiceAccount not created yet) may pass later.
_FINAL_REASONS = frozenset({"Invalid", "BadRequest"})
_FINAL_WORDS = ("violates PodSecurity", "denied the request")


def rejected(status: int, reason: str, message: str) -> Result:
    """A pod the API server refused to create, as the attempt's result (``PodRejected``),
    in the server's words; retried by policy only if the reason can change."""
    text = message
    for cut in (" is forbidden: ", " is invalid: "):
        if cut in text:
            text = text.split(cut, 1)[1]
            break
    final = reason in _FINAL_REASONS or any(word in message for word in _FINAL_WORDS)
    return Result(
        None,
        reason=AttemptReason.POD_REJECTED,
        message=f"PodRejected: {text}" if text else f"PodRejected: {status} {reason}",
        retryable=not final,
    )
