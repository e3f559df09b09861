"""Finished local runs on disk, so that externalTask sensors can wait on other pipelines.

The operator answers externalTask from PipelineRuns in the cluster; locally the
same question is answered from the JSON each ``kascade run`` leaves behind.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from kascade.engine import strict_json

HOME_ENV = "KASCADE_HOME"
MAX_SAME_ID = 1000


def history_dir() -> Path:
    """``$KASCADE_HOME/local-runs``, by default ``~/.local/state/kascade/local-runs``."""
    home = os.environ.get(HOME_ENV)
    root = Path(home) if home else Path.home() / ".local" / "state" / "kascade"
    return root / "local-runs"


def path_part(name: str) -> str:
    """``name`` as one component of a path under the history folder, or ValueError.

    Pipeline names are DNS-1123 names (validated by the models) and run ids are made
    here, so this never fails for them; it stands guard so that no other string can
    make a path that leaves ``$KASCADE_HOME`` (``../x``, ``/tmp/x``).
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

    def claim(self, pipeline: str, run_id: str) -> tuple[str, Path]:
        """A folder of its own for a new run: ``run_id``'s, or ``run_id.2``, ``.3``... when
        another run already has it (two runs started in the same microsecond). The folder
        is made here, atomically, so two runs never share one (and never mix outputs)."""
        folder = self.root / path_part(pipeline)
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, MAX_SAME_ID + 1):
            candidate = run_id if n == 1 else f"{run_id}.{n}"
            try:
                (folder / path_part(candidate)).mkdir()
            except FileExistsError:
                continue
            return candidate, folder / candidate
        raise FileExistsError(f"{MAX_SAME_ID} runs of {pipeline} have the id {run_id}")

    def save(self, record: dict[str, Any]) -> Path:
        folder = self.root / path_part(str(record["pipeline"]))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{path_part(str(record['runId']))}.json"
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
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return out

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


def _same_instant(value: Any, when: datetime) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return datetime.fromisoformat(value) == when
    except ValueError:
        return False
