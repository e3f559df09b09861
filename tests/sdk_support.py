"""The `kascade` command from tests of the Python SDK: this worktree's code, a private home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def kascade(
    *args: str,
    home: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    if home is not None:
        full["KASCADE_HOME"] = str(home)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=timeout,
    )


def run_json(
    path: Path, *args: str, home: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> dict[str, Any]:
    """`kascade run PATH --output json ARGS`: the run's record (states, outputs, attempts)."""
    proc = kascade("run", str(path), "--output", "json", *args, home=home, env=env, cwd=cwd)
    assert proc.stdout, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout))


def states(record: dict[str, Any]) -> dict[str, str]:
    return {key: task["state"] for key, task in record["tasks"].items()}
