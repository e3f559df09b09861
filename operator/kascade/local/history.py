"""Local runs on disk: for externalTask sensors, ``kascade logs``/``get`` and the web UI.

The operator answers externalTask from PipelineRuns in the cluster; locally the
same question is answered from the JSON each ``kascade run`` leaves behind.

Layout: ``<root>/<pipeline>/<ref>.json`` is the run's record and
``<root>/<pipeline>/<ref>/`` its directory (``logs/<task>/attempt-<n>.log``).
``ref`` is the run id, made unique with ``~2``, ``~3``... when a run with the
same id (same logical date) already exists, so a later run never overwrites an
earlier run's logs. The record is written when the run starts and while it
runs (at most once a second), so readers see running runs too.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from kascade.engine import strict_json

HOME_ENV = "KASCADE_HOME"


def history_dir() -> Path:
    """``$KASCADE_HOME/local-runs``, by default ``~/.local/state/kascade/local-runs``."""
    home = os.environ.get(HOME_ENV)
    root = Path(home) if home else Path.home() / ".local" / "state" / "kascade"
    return root / "local-runs"


def path_part(name: str) -> str:
    """``name`` as one component of a path under the history folder, or ValueError.

    Pipeline names are DNS-1123 names (validated by the models) and run ids are made
    by the runner, so this never fails for them; it stands guard so that no other
    string can make a path that leaves ``$KASCADE_HOME`` (``../x``, ``/tmp/x``).
    """
    if not name or name in (".", "..") or "/" in name or "\0" in name or "\\" in name:
        raise ValueError(f"{name!r} cannot name a folder of the run history")
    return name


class LocalHistory:
    """Writes finished runs and answers ``ExternalLookup.state`` from them."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or history_dir()

    def run_dir(self, pipeline: str, run_id: str) -> Path:
        return self.root / path_part(pipeline) / path_part(run_id)

    def new_run_dir(self, pipeline: str, run_id: str) -> Path:
        """A directory no earlier run used: ``run_id``, else ``run_id~2``, ``run_id~3``..."""
        folder = self.root / path_part(pipeline)
        folder.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:
            ref = run_id if n == 1 else f"{run_id}~{n}"
            path = folder / path_part(ref)
            try:
                path.mkdir()  # atomic: two runs started at once never share a directory
            except FileExistsError:
                n += 1
                continue
            return path

    def save(self, record: dict[str, Any]) -> Path:
        folder = self.root / path_part(str(record["pipeline"]))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{path_part(str(record.get('ref') or record['runId']))}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(strict_json.dumps(record, indent=2) + "\n")
        tmp.replace(path)  # readers never see half a file
        return path

    def _runs(self, pipeline: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            folder = self.root / path_part(pipeline)
        except ValueError:
            return out
        for path in folder.glob("*.json"):
            record = read_record(path)
            if record is not None:
                out.append(record)
        return out

    def pipelines(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if p.is_dir())
        except OSError:
            return []

    def records(self, pipeline: str) -> list[dict[str, Any]]:
        """Every run of ``pipeline``, newest first."""
        runs = self._runs(pipeline)
        runs.sort(key=lambda r: (r.get("startTime") or "", r.get("ref") or ""), reverse=True)
        return runs

    def find(self, run: str, pipeline: str | None = None) -> dict[str, Any]:
        """The run named ``run`` (its ref or run id, or ``pipeline/ref``); LookupError if none.

        A run id shared by several runs names the latest of them.
        """
        if pipeline is None and "/" in run:
            pipeline, run = run.split("/", 1)
        names = [pipeline] if pipeline else self.pipelines()
        hits = [
            r for name in names for r in self.records(name) if run in (r.get("ref"), r.get("runId"))
        ]
        exact = [r for r in hits if r.get("ref") == run]
        if exact:
            hits = exact
        pipelines = {r.get("pipeline") for r in hits}
        if len(pipelines) > 1:
            raise LookupError(
                f"run {run!r} exists in pipelines {', '.join(sorted(map(str, pipelines)))}: "
                "give PIPELINE/RUN"
            )
        if not hits:
            raise LookupError(f"no local run {run!r} in {self.root}")
        return hits[0]

    def log_path(self, record: dict[str, Any], key: str, attempt: int) -> Path:
        """Where the local runner wrote that attempt's output."""
        workdir = record.get("workdir")
        base = Path(workdir) if workdir else self.run_dir(record["pipeline"], record["runId"])
        return base / "logs" / key / f"attempt-{attempt}.log"

    def state(self, pipeline: str, task: str | None, logical_date: datetime) -> str | None:
        """The state of ``task`` (or of the whole run) in the latest run for that logical date."""
        matches = [
            r for r in self._runs(pipeline) if _same_instant(r.get("logicalDate"), logical_date)
        ]
        if not matches:
            return None
        latest = max(matches, key=lambda r: r.get("endTime") or "")
        if task is None:
            phase = latest.get("phase")
            return phase if isinstance(phase, str) else None
        info = latest.get("tasks", {}).get(task)
        state = info.get("state") if isinstance(info, dict) else None
        return state if isinstance(state, str) else None


def read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or "pipeline" not in record or "runId" not in record:
        return None
    record.setdefault("ref", path.stem)
    return record


def _same_instant(value: Any, when: datetime) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value) == when
    except ValueError:
        return False
