"""Every example runs in the local runner to the final states of manifests/examples/expected.yaml.

The e2e tier holds the operator to the same file, so both drivers of the engine
agree on every example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from example_cases import EXAMPLES, ROOT, cases


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_example_runs_locally(case: str, entry: dict[str, Any], tmp_path: Path) -> None:
    args = [sys.executable, "-m", "kascade", "run", str(EXAMPLES / case.split("#")[0])]
    # The file's own documents (its Pools) come with it, as on a cluster.
    args += ["--output", "json", "--workdir", str(tmp_path / "work")]
    if entry.get("logicalDate"):
        args += ["--logical-date", entry["logicalDate"]]
    for key, value in (entry.get("params") or {}).items():
        args += ["--param", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "operator"),
        "KASCADE_HOME": str(tmp_path / "home"),
    }
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout, proc.stderr[-2000:]
    run = json.loads(proc.stdout)
    states = {key: task["state"] for key, task in run["tasks"].items()}
    assert states == entry["tasks"], proc.stderr[-2000:]
    assert run["phase"] == entry["phase"]
    assert proc.returncode == (0 if entry["phase"] == "success" else 1)
    for task, attempts in (entry.get("attempts") or {}).items():
        assert run["tasks"][task]["attempts"] == attempts
