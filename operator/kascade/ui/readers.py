"""Where the read model comes from: a cluster (one-off lists) or the local run history.

``kascade get`` and ``kascade logs`` read through these; the web UI server keeps
its own live cache (``ui/store.py``) but builds the same model dicts.
"""

from __future__ import annotations

from typing import Any, Protocol

from kascade.local.history import LocalHistory
from kascade.ui import model


class NotFound(LookupError):
    """A run, task or attempt that does not exist (the message says which)."""


class Reader(Protocol):
    local: bool

    def pipelines(self, namespace: str | None) -> list[dict[str, Any]]: ...

    def runs(self, namespace: str | None, pipeline: str | None = None) -> list[dict[str, Any]]: ...

    def run(self, namespace: str, name: str) -> dict[str, Any]: ...

    def tasks(self, namespace: str, run: str) -> list[dict[str, Any]]: ...


def no_cluster_configured() -> bool:
    """True when neither in-cluster credentials nor a kubeconfig file exist."""
    import os
    from pathlib import Path

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return False
    paths = os.environ.get("KUBECONFIG")
    candidates = paths.split(os.pathsep) if paths else [str(Path.home() / ".kube" / "config")]
    return not any(p and Path(p).is_file() for p in candidates)


class ClusterReader:
    local = False

    def __init__(self, kube: Any) -> None:
        self.kube = kube

    def pipelines(self, namespace: str | None) -> list[dict[str, Any]]:
        runs_by: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for run in self.runs(namespace):
            runs_by.setdefault((run["namespace"], run["pipeline"]), []).append(run)
        out = []
        for obj in self.kube.list_objects("pipelines", namespace):
            p = model.pipeline_from_object(obj)
            out.append(model.pipeline_row(p, runs_by.get((p["namespace"], p["name"]), [])))
        return sorted(out, key=lambda p: (p["namespace"], p["name"]))

    def runs(self, namespace: str | None, pipeline: str | None = None) -> list[dict[str, Any]]:
        runs = [model.run_from_object(o) for o in self.kube.list_objects("pipelineruns", namespace)]
        if pipeline is not None:
            runs = [r for r in runs if r["pipeline"] == pipeline]
        return sorted(runs, key=model.run_sort_key, reverse=True)

    def run(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.kube.get("pipelineruns", namespace, name)
        if obj is None:
            raise NotFound(f"pipelinerun {namespace}/{name} not found")
        return model.run_from_object(obj)

    def tasks(self, namespace: str, run: str) -> list[dict[str, Any]]:
        from kascade.actions import taskruns_of

        trs = taskruns_of(self.kube, namespace, run)
        return [model.task_from_taskrun(trs[k]) for k in sorted(trs)]


class LocalReader:
    """The runs ``kascade run`` recorded under $KASCADE_HOME (namespaces do not apply)."""

    local = True

    def __init__(self, history: LocalHistory | None = None) -> None:
        self.history = history or LocalHistory()

    def _records(self) -> dict[str, list[dict[str, Any]]]:
        return {name: self.history.records(name) for name in self.history.pipelines()}

    def pipelines(self, namespace: str | None) -> list[dict[str, Any]]:
        records = {k: v for k, v in self._records().items() if v}
        out = []
        for p in model.pipelines_from_records(records):
            runs = [model.run_from_record(r) for r in records[p["name"]]]
            out.append(model.pipeline_row(p, runs))
        return out

    def runs(self, namespace: str | None, pipeline: str | None = None) -> list[dict[str, Any]]:
        names = [pipeline] if pipeline else self.history.pipelines()
        runs = [model.run_from_record(r) for n in names for r in self.history.records(n)]
        return sorted(runs, key=model.run_sort_key, reverse=True)

    def record(self, name: str) -> dict[str, Any]:
        try:
            return self.history.find(name)
        except LookupError as exc:
            raise NotFound(str(exc)) from None

    def run(self, namespace: str, name: str) -> dict[str, Any]:
        return model.run_from_record(self.record(name))

    def tasks(self, namespace: str, run: str) -> list[dict[str, Any]]:
        return model.tasks_from_record(self.record(run))
