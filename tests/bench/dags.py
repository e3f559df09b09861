"""Benchmark DAG shapes, built as manifests so that compile time is measured too."""

from __future__ import annotations

import random
from typing import Any


def layered(layers: int, width: int, fan_in: int, seed: int = 7) -> dict[str, Any]:
    """``layers`` x ``width`` tasks; each depends on ``fan_in`` random tasks of the layer above."""
    rng = random.Random(seed)
    tasks: list[dict[str, Any]] = []
    for layer in range(layers):
        for i in range(width):
            task: dict[str, Any] = {"name": f"t{layer}-{i}", "command": ["true"]}
            if layer:
                ups = rng.sample(range(width), min(fan_in, width))
                task["dependsOn"] = [f"t{layer - 1}-{u}" for u in ups]
            tasks.append(task)
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": f"layered-{layers}x{width}"},
        "spec": {
            "maxActiveTasks": 100000,
            "defaults": {"image": "busybox:1.36"},
            "tasks": tasks,
        },
    }
