"""The Pod Security "restricted" profile, as a pure check of a pod manifest.

Task pods are restricted by default (non-root, no privilege escalation, every
capability dropped, RuntimeDefault seccomp, no service-account token). A task
may loosen that with ``securityContext`` or a volume; whatever it loosens is
listed here, so that the admission webhook can require the author to hold the
right to create such pods directly (and the namespace's own Pod Security level
still applies when the pod is created). Mirrors the checks of
k8s.io/pod-security-admission for the fields a Kascade task can set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Volume types the restricted profile allows.
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
        "name",
    }
)
SAFE_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
SAFE_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})


def violations(pod: dict[str, Any]) -> list[str]:
    """What in ``pod`` the restricted profile forbids (empty: the pod is restricted)."""
    spec = pod.get("spec") or {}
    out: list[str] = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append(f"{flag}: true")
    for volume in spec.get("volumes") or []:
        kinds = sorted(set(volume) - RESTRICTED_VOLUMES)
        if kinds:
            out.append(f"volume {volume.get('name')!r} of type {', '.join(kinds)}")
    pod_ctx = spec.get("securityContext") or {}
    out.extend(f"pod {v}" for v in _context(pod_ctx))
    if pod_ctx.get("sysctls"):
        out.append("pod sysctls")
    for container in spec.get("containers") or []:
        name = container.get("name")
        ctx = container.get("securityContext") or {}
        out.extend(f"container {name!r} {v}" for v in _container(ctx, pod_ctx))
        if any(port.get("hostPort") for port in container.get("ports") or []):
            out.append(f"container {name!r} hostPort")
    return out


def _context(ctx: dict[str, Any]) -> Iterator[str]:
    """Fields of a pod or container securityContext that are never restricted."""
    if ctx.get("runAsUser") == 0:
        yield "runAsUser: 0"
    if ctx.get("runAsNonRoot") is False:
        yield "runAsNonRoot: false"
    seccomp = (ctx.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SAFE_SECCOMP:
        yield f"seccompProfile {seccomp}"
    apparmor = (ctx.get("appArmorProfile") or {}).get("type")
    if apparmor == "Unconfined":
        yield "appArmorProfile Unconfined"
    selinux = ctx.get("seLinuxOptions") or {}
    if (
        selinux.get("type", "") not in SAFE_SELINUX_TYPES
        or selinux.get("user")
        or selinux.get("role")
    ):
        yield "seLinuxOptions"
    if (ctx.get("windowsOptions") or {}).get("hostProcess"):
        yield "windowsOptions.hostProcess"


def _container(ctx: dict[str, Any], pod_ctx: dict[str, Any]) -> Iterator[str]:
    yield from _context(ctx)
    if ctx.get("privileged"):
        yield "privileged: true"
    if ctx.get("allowPrivilegeEscalation") is not False:
        yield "allowPrivilegeEscalation is not false"
    caps = ctx.get("capabilities") or {}
    added = [c for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]
    if added:
        yield f"capabilities.add {added}"
    if "ALL" not in (caps.get("drop") or []):
        yield "capabilities.drop does not include ALL"
    if ctx.get("procMount") not in (None, "Default"):
        yield f"procMount {ctx.get('procMount')}"
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if non_root is not True:
        yield "runAsNonRoot is not true"
    seccomp = ctx.get("seccompProfile", pod_ctx.get("seccompProfile")) or {}
    if seccomp.get("type") not in SAFE_SECCOMP:
        yield "no RuntimeDefault or Localhost seccompProfile"
