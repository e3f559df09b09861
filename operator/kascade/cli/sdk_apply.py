"""``kascade apply``: compiled objects to the cluster, and ``--prune``.

Objects carry the label ``kascade.io/project`` (the DAG folder), so pruning only
ever touches Pipelines and bundles of that folder that ``kascade apply`` made.
A bundle is kept while an unfinished run still mounts it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kascade.kube.apply import Applier
from kascade.kube.client import Kube
from kascade.sdk.compiler.bundle import LABEL as BUNDLE_LABEL
from kascade.sdk.compiler.project import Compilation
from kascade.sdk.naming import DAG_ID_ANNOTATION

PROJECT_LABEL = "kascade.io/project"
MANAGED = "app.kubernetes.io/managed-by=kascade-sdk"
_FINISHED = ("success", "failed")


def project_label(name: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")[:63].rstrip("-_.")
    return value or "dags"


def _labelled(obj: dict[str, Any], project: str) -> dict[str, Any]:
    metadata = dict(obj["metadata"])
    metadata["labels"] = {**(metadata.get("labels") or {}), PROJECT_LABEL: project}
    return {**obj, "metadata": metadata}


def _bundles_in_use(kube: Kube, namespace: str, pipelines: list[dict[str, Any]]) -> set[str]:
    used: set[str] = set()

    def scan(value: Any) -> None:
        if isinstance(value, dict):
            cm = value.get("configMap")
            if isinstance(cm, dict) and str(cm.get("name", "")).startswith("kascade-bundle-"):
                used.add(cm["name"])
            for item in value.values():
                scan(item)
        elif isinstance(value, list):
            for item in value:
                scan(item)

    for pipeline in pipelines:
        scan(pipeline.get("spec"))
    try:
        listed = kube.list_objects("pipelinesnapshots", namespace)
    except Exception:  # not readable here: which runs use which bundle cannot be told
        return {"*"}
    frozen = {s["metadata"]["name"]: s for s in listed}
    for run in kube.list_objects("pipelineruns", namespace):
        if (run.get("status") or {}).get("phase") not in _FINISHED:
            spec = run.get("spec") or {}
            scan(spec.get("pipelineSpec"))
            scan((frozen.get(spec.get("snapshot") or "") or {}).get("spec"))
    return used


def apply_compilation(
    kube: Kube,
    result: Compilation,
    namespace: str,
    project: str,
    prune: bool,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Apply everything; each line is echoed as it happens (an error may stop the rest)."""
    applier = Applier(kube)
    label = project_label(project)
    lines = []
    for compiled in result.dags:
        current = applier.current_pipeline(namespace, compiled.name)
        owner = ((current or {}).get("metadata", {}).get("annotations") or {}).get(
            DAG_ID_ANNOTATION
        )
        if current is not None and owner != compiled.dag.dag_id:
            raise ValueError(
                f"pipeline {namespace}/{compiled.name} exists and was not made from DAG "
                f"{compiled.dag.dag_id!r} (its dag-id annotation is {owner!r}); rename the DAG "
                "or delete that pipeline"
            )
    if result.bundle is not None:
        state = applier.apply(_labelled(result.bundle.configmap(), label), namespace)
        lines.append(f"configmap/{result.bundle.name} {state}")
        echo(lines[-1])
    for compiled in result.dags:
        state = applier.apply(_labelled(compiled.pipeline, label), namespace)
        lines.append(f"pipeline/{compiled.name} {state} (dag {compiled.dag.dag_id})")
        echo(lines[-1])
    if prune:
        for line in _prune(kube, applier, result, namespace, label):
            lines.append(line)
            echo(line)
    return lines


def _prune(
    kube: Kube, applier: Applier, result: Compilation, namespace: str, label: str
) -> list[str]:
    lines = []
    selector = f"{MANAGED},{PROJECT_LABEL}={label}"
    keep = {c.name for c in result.dags}
    ours = kube.list_objects("pipelines", namespace, selector)
    for pipeline in ours:
        name = pipeline["metadata"]["name"]
        if name not in keep:
            kube.delete("pipelines", namespace, name)
            lines.append(f"pipeline/{name} pruned")
    remaining = kube.list_objects("pipelines", namespace)
    used = _bundles_in_use(kube, namespace, remaining)
    if result.bundle is not None:
        used.add(result.bundle.name)
    for cm in applier.list_configmaps(namespace, f"{selector},{BUNDLE_LABEL}=true"):
        name = cm["metadata"]["name"]
        if name not in used and "*" not in used:
            applier.delete_configmap(namespace, name)
            lines.append(f"configmap/{name} pruned")
    return lines
