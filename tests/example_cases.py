"""The cases of manifests/examples/expected.yaml, shared by the local-runner and e2e tiers.

Both drivers of the engine (the local runner and the operator) are held to this one
list, so a case can never exist in one tier and be forgotten in the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
EXPECTED: dict[str, Any] = yaml.safe_load((EXAMPLES / "expected.yaml").read_text())


def pipeline_of(case: str) -> str | None:
    """The Pipeline to run when the case's file holds several (``pipeline:``)."""
    name = EXPECTED[case.split("#")[0]].get("pipeline")
    return str(name) if name else None


def documents(case: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Pipeline of a case's file, and the other objects it needs (its Pools, the
    pipelines it triggers)."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / case.split("#")[0]).read_text()) if d]
    pipelines = [d for d in docs if d.get("kind") == "Pipeline"]
    wanted = pipeline_of(case)
    (pipeline,) = [p for p in pipelines if wanted in (None, p["metadata"]["name"])]
    return pipeline, [d for d in docs if d is not pipeline]


def cases() -> list[tuple[str, dict[str, Any]]]:
    """(id, expectation) per example and per variant; a variant's id is ``path#n``."""
    found = []
    for path, entry in EXPECTED.items():
        found.append((path, entry))
        for i, variant in enumerate(entry.get("variants") or []):
            found.append((f"{path}#{i + 1}", variant))
    return found
