"""A Pipeline's spec frozen for its runs: an immutable PipelineSnapshot named after its content.

A run of a Pipeline must keep executing the spec it started with, whatever happens to
the Pipeline meanwhile. It used to carry a copy (``spec.pipelineSpec``), so a run grew
with its pipeline (a 2,000-task run was 386 KB, 311 KB of it the copy; a 10,000-task one
would not fit in etcd). Now the runs of one version of a Pipeline share one
PipelineSnapshot, named ``<pipeline>-<hash of the spec>`` and referenced by
``spec.snapshot``: a run stays small, and a new version costs one object, not one per run.

The snapshot carries its Pipeline's approval (``kascade.io/approval``), which signs the
spec's digest in its namespace: the operator runs a snapshot's spec only if that
approval verifies, and only if the spec still has the hash its name says (so a snapshot
changed after it was made is refused). It is owned by its Pipeline (deleted with it),
and pruned once no run refers to it and it is not the Pipeline's current version.
A run with a spec of its own (``spec.pipelineSpec``, approved by the webhook) has none.

Pure functions; the World creates, reads and deletes them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import TYPE_CHECKING, Any

from kascade.controller import approval, naming
from kascade.controller.podspec import LABEL_PIPELINE, MANAGED_BY

if TYPE_CHECKING:
    from kascade.kube.client import Kube

PLURAL = "pipelinesnapshots"


def spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def name_of(pipeline: str, digest: str) -> str:
    return naming.bounded(f"{pipeline}-{digest[:12]}", f"{pipeline}/{digest}")


def manifest(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of a Pipeline's spec as it is now (with its approval)."""
    meta = pipeline["metadata"]
    spec = pipeline["spec"]
    digest = spec_hash(spec)
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineSnapshot",
        "metadata": {
            "name": name_of(meta["name"], digest),
            "namespace": meta["namespace"],
            "labels": {**MANAGED_BY, LABEL_PIPELINE: naming.label_value(meta["name"])},
            **approval.carried(pipeline),
            "ownerReferences": [
                {
                    "apiVersion": "kascade.io/v1alpha1",
                    "kind": "Pipeline",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "spec": {"pipelineRef": {"name": meta["name"]}, "specHash": digest, "pipelineSpec": spec},
    }


def problem(snapshot: dict[str, Any], run: dict[str, Any]) -> str | None:
    """Why a run must not execute this snapshot's spec (None: it may)."""
    name = snapshot["metadata"]["name"]
    spec = snapshot.get("spec") or {}
    frozen = spec.get("pipelineSpec")
    digest = spec_hash(frozen) if isinstance(frozen, dict) else None
    pipeline = ((spec.get("pipelineRef") or {}).get("name")) or ""
    if digest is None or digest != spec.get("specHash") or name != name_of(pipeline, digest):
        return f"PipelineSnapshot {name} was changed after it was made (its spec has another hash)"
    wanted = ((run.get("spec") or {}).get("pipelineRef") or {}).get("name")
    if wanted != pipeline:
        return f"PipelineSnapshot {name} is a version of {pipeline!r}, not of {wanted!r}"
    return None


def frozen(run: dict[str, Any], snapshot: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
    """(the spec a run executes, the metadata carrying its approval): its own spec, or its
    snapshot's."""
    own = (run.get("spec") or {}).get("pipelineSpec")
    if own:
        return own, run["metadata"]
    assert snapshot is not None
    return snapshot["spec"]["pipelineSpec"], snapshot["metadata"]


def read_frozen(kube: Any, run: dict[str, Any]) -> Any:
    """The spec a run executes, read through a blocking client (the CLI, the UI): its own,
    or its snapshot's; None when it has neither yet (its snapshot is made when it starts)."""
    spec = run.get("spec") or {}
    if spec.get("pipelineSpec"):
        return spec["pipelineSpec"]
    name = spec.get("snapshot")
    if not name:
        return None
    snapshot = kube.get(PLURAL, run["metadata"]["namespace"], name)
    return ((snapshot or {}).get("spec") or {}).get("pipelineSpec")


def to_prune(
    snapshots: list[dict[str, Any]], referenced: set[str], current: str | None
) -> list[str]:
    """The snapshots no run refers to, but the Pipeline's current version."""
    names = [s["metadata"]["name"] for s in snapshots]
    return sorted(n for n in names if n not in referenced and n != current)


class Snapshots:
    """The snapshots of the watched namespaces: made once per version, read once (they never
    change, so the cache is never stale), pruned with the runs that referred to them."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.cache.get((namespace, name))
        if found is None:
            found = await asyncio.to_thread(self.kube.get, PLURAL, namespace, name)
            if found is not None:
                self.cache[(namespace, name)] = found
        return found

    async def ensure(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        """The snapshot of the Pipeline's spec as it is now, made if new."""
        body = manifest(pipeline)
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        found = await self.get(namespace, name)
        if found is None:
            made = await asyncio.to_thread(self.kube.create, PLURAL, namespace, body)
            found = made or await asyncio.to_thread(self.kube.get, PLURAL, namespace, name)
            if found is not None:
                self.cache[(namespace, name)] = found
        return found or body

    async def prune(self, pipeline: dict[str, Any], referenced: set[str]) -> list[str]:
        """Delete the Pipeline's snapshots that no run refers to (but its current one)."""
        meta = pipeline["metadata"]
        selector = f"{LABEL_PIPELINE}={naming.label_value(meta['name'])}"
        listed = await asyncio.to_thread(
            self.kube.list_objects, PLURAL, meta["namespace"], selector
        )
        current = name_of(meta["name"], spec_hash(pipeline["spec"]))
        doomed = to_prune(listed, referenced, current)
        for name in doomed:
            await asyncio.to_thread(self.kube.delete, PLURAL, meta["namespace"], name)
            self.cache.pop((meta["namespace"], name), None)
        return doomed
