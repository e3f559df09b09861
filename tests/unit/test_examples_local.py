"""Every example runs in the local runner to the final states of manifests/examples/expected.yaml.

The e2e tier holds the operator to the same file, so both drivers of the engine
agree on every example.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from example_cases import EXAMPLES, ROOT, cases, service_setup, services


def with_services(
    path: Path, entry: dict[str, Any], tmp: Path, request: pytest.FixtureRequest
) -> tuple[Path, dict[str, str]]:
    """The file to run (with the Secrets of the servers it needs) and the environment
    (the object store for outputs); the file itself for a case that needs none."""
    wanted = services(entry)
    if not wanted:
        return path, {}
    postgres = request.getfixturevalue("postgres_server") if "postgres" in wanted else None
    s3 = request.getfixturevalue("s3_server") if {"s3", "store"} & set(wanted) else None
    ds = (entry.get("logicalDate") or datetime.now(UTC).isoformat())[:10]
    secrets, env = service_setup(entry, ds, postgres=postgres, s3=s3)
    copy = tmp / path.name
    copy.write_text(yaml.safe_dump_all([*secrets, *yaml.safe_load_all(path.read_text())]))
    return copy, env


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_example_runs_locally(
    case: str, entry: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path, extra_env = with_services(EXAMPLES / case.split("#")[0], entry, tmp_path, request)
    args = [sys.executable, "-m", "kascade", "run", str(path)]
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
        **extra_env,
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
    if "store" in services(entry):  # the example's large output went to the object store
        assert "kascade.io/ref" in json.dumps([t["outputs"] for t in run["tasks"].values()])
