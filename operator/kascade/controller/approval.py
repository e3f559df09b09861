"""Who approved a pipeline spec, recorded so that nobody but the operator can forge it.

The admission webhook knows who is asking. When it admits a Pipeline (or a
PipelineRun with a spec of its own), it checks that the requesting user may do
what the spec asks its pods to do, then writes the annotation
``kascade.io/approval``: the user, the grants it checked, and an HMAC-SHA256
over (namespace, spec digest, user, grants) made with a key only the operator
holds (a Secret the Helm chart creates and mounts). Before running anything the
operator verifies it: a spec that did not go through the webhook (webhook off,
``failurePolicy: Ignore`` while it was down, a hand-made annotation, a spec
changed by a later mutating webhook) does not run. The chart can opt out
(``admission.requireApproval=false``); then any spec runs as written, and a
user who may create Pipelines may run pods with any ServiceAccount, Secret or
privilege of the namespace (the confused deputy this module exists to prevent).

Pure: no Kubernetes, no clock; the key is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANNOTATION = "kascade.io/approval"
KEY_FILE_ENV = "KASCADE_APPROVAL_KEY_FILE"
MODE_ENV = "KASCADE_APPROVAL"
MIN_KEY_BYTES = 32


def spec_digest(spec: Any) -> str:
    """SHA-256 of the spec's canonical JSON (key order and whitespace do not matter)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Approval:
    """What the annotation says: who approved which spec, and which rights were checked."""

    by: str
    spec: str
    """The spec's digest."""
    grants: tuple[str, ...]
    signature: str

    def dump(self) -> str:
        return json.dumps(
            {"by": self.by, "spec": self.spec, "grants": list(self.grants), "sig": self.signature},
            separators=(",", ":"),
        )


def _mac(key: bytes, namespace: str, digest: str, by: str, grants: tuple[str, ...]) -> str:
    message = json.dumps([namespace, digest, by, list(grants)], separators=(",", ":"))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, namespace: str, spec: Any, by: str, grants: list[str]) -> str:
    """The annotation value approving ``spec`` in ``namespace`` on behalf of ``by``."""
    digest = spec_digest(spec)
    kept = tuple(sorted(set(grants)))
    return Approval(by, digest, kept, _mac(key, namespace, digest, by, kept)).dump()


def parse(value: str | None) -> Approval | None:
    if not value:
        return None
    try:
        data = json.loads(value)
        return Approval(
            by=str(data["by"]),
            spec=str(data["spec"]),
            grants=tuple(str(g) for g in data.get("grants") or ()),
            signature=str(data["sig"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def problem(key: bytes, namespace: str, spec: Any, value: str | None) -> str | None:
    """Why ``value`` does not approve ``spec`` in ``namespace``; None when it does."""
    approval = parse(value)
    if approval is None:
        if value:
            return f"the {ANNOTATION} annotation is not one the admission webhook wrote"
        return (
            "the spec was not approved by Kascade's admission webhook (it was created or "
            "changed while the webhook was off or not answering); apply it again with the "
            "webhook on"
        )
    expected = _mac(key, namespace, approval.spec, approval.by, approval.grants)
    if not hmac.compare_digest(expected, approval.signature):
        return f"the {ANNOTATION} annotation's signature does not verify (not written by Kascade)"
    if approval.spec != spec_digest(spec):
        return (
            f"the spec changed after {approval.by} had it approved (by something that "
            "bypassed the admission webhook); apply it again with the webhook on"
        )
    return None


def verifies(key: bytes, namespace: str, spec: Any, value: str | None) -> bool:
    return problem(key, namespace, spec, value) is None


@dataclass(frozen=True)
class Policy:
    """How this operator process treats approvals (set once at start-up)."""

    required: bool
    key: bytes | None

    def problem(self, namespace: str, spec: Any, annotations: dict[str, str] | None) -> str | None:
        """Why a spec must not run; None when it may."""
        if not self.required:
            return None
        if self.key is None:
            return "the operator has no approval key (KASCADE_APPROVAL_KEY_FILE)"
        return problem(self.key, namespace, spec, (annotations or {}).get(ANNOTATION))


def read_key(path: str | Path) -> bytes:
    key = Path(path).read_bytes().strip()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: the approval key must be at least {MIN_KEY_BYTES} bytes")
    return key


def policy_from_env() -> Policy:
    """``KASCADE_APPROVAL=off`` opts out; otherwise the key file must be readable."""
    mode = os.environ.get(MODE_ENV, "required").strip().lower()
    if mode in ("off", "0", "false", "no"):
        return Policy(required=False, key=None)
    path = os.environ.get(KEY_FILE_ENV)
    return Policy(required=True, key=read_key(path) if path else None)


POLICY = Policy(required=False, key=None)
"""Replaced at operator start-up (``configure``); the CLI and unit tests never need a key."""


def configure(policy: Policy) -> None:
    global POLICY
    POLICY = policy


def run_problem(namespace: str, spec: Any, metadata: dict[str, Any]) -> str | None:
    """The operator's check before it runs a spec: None when it may run."""
    return POLICY.problem(namespace, spec, metadata.get("annotations"))


def grants_problem(metadata: dict[str, Any], needs: list[Any]) -> str | None:
    """Why a run's spec asks for more than its approval granted (a TaskTemplate it pinned
    changed since the Pipeline was approved); ``needs`` are ``rights.Need`` objects."""
    if not POLICY.required:
        return None
    found = parse((metadata.get("annotations") or {}).get(ANNOTATION))
    granted = set(found.grants) if found is not None else set()
    missing = [n for n in needs if n.grant not in granted]
    if not missing:
        return None
    asked = "; ".join(f"{n.path}: {n.why}" for n in missing)
    return (
        f"its TaskTemplates ask for more than {found.by if found else 'the approval'} was "
        f"approved for ({asked}); apply the Pipeline again to have it approved"
    )


def pipeline_problems(body: dict[str, Any]) -> list[str]:
    """A Pipeline's approval problem as a validation error (its Valid condition shows it)."""
    meta = body.get("metadata") or {}
    refused = run_problem(str(meta.get("namespace") or ""), body.get("spec"), meta)
    return [f"metadata.annotations[{ANNOTATION}]: {refused}"] if refused else []


def carried(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The Pipeline's approval for a run that copies its spec (``{}`` when it has none)."""
    value = ((pipeline.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
    return {"annotations": {ANNOTATION: value}} if value else {}


def stale_condition(body: dict[str, Any]) -> bool:
    """The Pipeline's Valid condition disagrees with its approval as it is now (an annotation
    added or removed without a spec change, which does not bump the generation)."""
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Valid":
            refused_for_it = ANNOTATION in str(cond.get("message") or "")
            return refused_for_it != bool(pipeline_problems(body))
    return False


def granted(metadata: dict[str, Any], grant: str) -> bool:
    """Whether the spec's approval covers ``grant`` (``secret:kascade-smtp``): what the
    operator checks before it reads a Secret for a spec on its own (SMTP settings). With
    approvals off every spec runs as written, so everything is covered."""
    if not POLICY.required:
        return True
    approval = parse(((metadata or {}).get("annotations") or {}).get(ANNOTATION))
    return approval is not None and grant in approval.grants
