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

HOME_ENV = "KASCADE_HOME"


def history_dir() -> Path:
    """``$KASCADE_HOME/local-runs``, by default ``~/.local/state/kascade/local-runs``."""
    home = os.environ.get(HOME_ENV)
    root = Path(home) if home else Path.home() / ".local" / "state" / "kascade"
    return root / "local-runs"


class LocalHistory:
    """Writes finished runs and answers ``ExternalLookup.state`` from them."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or history_dir()

    def run_dir(self, pipeline: str, run_id: str) -> Path:
        return self.root / pipeline / run_id

    def save(self, record: dict[str, Any]) -> Path:
        folder = self.root / str(record["pipeline"])
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{record['runId']}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)  # readers never see half a file
        return path

    def _runs(self, pipeline: str) -> list[dict[str, Any]]:
        out = []
        for path in (self.root / pipeline).glob("*.json"):
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
