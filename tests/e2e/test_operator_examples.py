"""Every example of manifests/examples runs on the cluster with the expected final states.

The same expectations (manifests/examples/expected.yaml) drive the local-runner
tests, so the two drivers of the engine are held to one truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from example_cases import cases, documents

from .conftest import kubeconfig_path
from .operator_support import Kascade, operator_namespace

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kas(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    # Two examples mount a hostPath (a file landing zone), which Pod Security
    # "restricted" and "baseline" forbid; this namespace is labelled privileged.
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "examples", log, "privileged") as k:
        yield k


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_example_runs_on_cluster(kas: Kascade, case: str, entry: dict[str, Any]) -> None:
    doc, objects = documents(case)
    for obj in objects:  # the Pools a file holds, as `kubectl apply -f` would create them
        kas.apply_object(obj)
    kas.apply_pipeline(doc)
    name = kas.create_run(
        doc["metadata"]["name"],
        logical_date=entry.get("logicalDate"),
        params=entry.get("params"),
    )
    run = kas.wait_run(name, timeout=240)
    states = kas.task_states(run)
    assert states == entry["tasks"], (run.get("status") or {}).get("message")
    assert run["status"]["phase"] == entry["phase"]
    for task, attempts in (entry.get("attempts") or {}).items():
        trs = [t for t in kas.list("taskruns") if t["spec"]["pipelineRunRef"]["name"] == name]
        tr = next(t for t in trs if t["spec"]["taskName"] == task)
        assert len(tr["status"]["attempts"]) == attempts, tr["status"]
