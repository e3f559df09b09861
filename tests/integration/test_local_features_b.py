"""The local runner's cache and its object store for large outputs, end to end.

``kascade run`` twice: the second run reuses the cached task's outputs (no process), and
``--no-cache`` runs it again. With ``KASCADE_STORE_<key>`` pointing at a real S3 server,
an output of 200 KB goes to the store under its run's key, the record keeps a
reference, and a downstream template reads the value; past the cap the attempt fails
with the cap in its message; without a store the 4 KiB rule stands.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers
from feature_pipelines import cached_tasks
from kascade.engine.outputs import REF_KEY
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings
from sdk_support import kascade, run_json

pytestmark = pytest.mark.timeout(900)  # the first S3 test may build versitygw


def _run(
    pipeline: dict[str, Any], tmp: Path, *args: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return run_json(path, *args, home=tmp / "home", env=env)


def _cli(args: list[str], tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return kascade(*args, home=tmp / "home", env=env)


def _pipeline(name: str, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"defaults": {"image": "busybox"}, "tasks": tasks},
    }


CACHED = _pipeline("rates", cached_tasks())


def test_a_second_local_run_reuses_the_cached_outputs_and_no_cache_runs_again(
    tmp_path: Path,
) -> None:
    first = _run(CACHED, tmp_path, "--logical-date", "2024-01-15")
    stamp = first["tasks"]["fetch"]["outputs"]["stamp"]
    assert first["tasks"]["fetch"]["cached"] is False
    workdir = tmp_path / "second"
    second = _run(CACHED, tmp_path, "--logical-date", "2024-01-15", "--workdir", str(workdir))
    fetch = second["tasks"]["fetch"]
    assert fetch["cached"] is True and fetch["state"] == "success"
    assert fetch["outputs"] == {"stamp": stamp}
    assert fetch["message"] == f"cached: key 'rates-2024-01-15', from run {first['runId']}"
    assert not (workdir / "logs" / "fetch").exists()  # no process ran
    assert (workdir / "logs" / "use").exists()
    other_day = _run(CACHED, tmp_path, "--logical-date", "2024-01-16")
    assert other_day["tasks"]["fetch"]["cached"] is False
    refreshed = _run(CACHED, tmp_path, "--logical-date", "2024-01-15", "--no-cache")
    assert refreshed["tasks"]["fetch"]["cached"] is False
    assert refreshed["tasks"]["fetch"]["outputs"]["stamp"] != stamp
    after = _run(CACHED, tmp_path, "--logical-date", "2024-01-15")
    assert after["tasks"]["fetch"]["outputs"] == refreshed["tasks"]["fetch"]["outputs"]


LARGE = _pipeline(
    "large",
    [
        {
            "name": "produce",
            "script": (
                "python3 -c \"import json,os; json.dump({'rows': 3, 'data': 'x' * 200000}, "
                "open(os.environ['KASCADE_OUTPUTS'], 'w'))\""
            ),
        },
        {
            "name": "consume",
            "dependsOn": ["produce"],
            "when": "tasks.produce.outputs.data | length > 1000",
            "script": 'echo "size={{ tasks.produce.outputs.data | length }}" > "$KASCADE_OUTPUTS"',
        },
    ],
)


def test_a_large_output_goes_to_the_store_and_is_read_back_downstream(
    s3_server: servers.S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.make_bucket()
    env = {f"KASCADE_STORE_{k}": v for k, v in s3_server.settings(bucket=bucket).items()}
    record = _run(LARGE, tmp_path, "--logical-date", "2024-01-15", env=env)
    assert record["phase"] == "success", record
    produced = record["tasks"]["produce"]["outputs"]
    assert produced["rows"] == 3
    ref = produced["data"][REF_KEY]
    # Under the run's own id (manual__<trigger time>, one folder per run): ':' and '+' -> '_'.
    assert record["runId"].startswith("manual__")
    run_part = record["runId"].replace(":", "_").replace("+", "_")
    assert ref["key"] == f"default/large/{run_part}/produce/1/data.json"
    assert ref["size"] == 200002
    assert record["tasks"]["consume"]["outputs"] == {"size": 200000}
    store = ObjectStore(ObjectStoreSettings.from_data(s3_server.settings(), "test"), bucket)
    assert json.loads(store.get(ref["key"])) == "x" * 200000
    # The CLI reads it back with the store settings of the shell.
    args = ["outputs", record["runId"], "--task", "produce", "--local", "large"]
    shown = _cli([*args, "--name", "data"], tmp_path, env)
    assert shown.returncode == 0 and shown.stdout == "x" * 200000 + "\n"
    assert json.loads(_cli(args, tmp_path, env).stdout) == {"rows": 3, "data": "x" * 200000}
    refused = _cli(args, tmp_path, {})
    assert refused.returncode == 1
    assert (
        "these outputs are kept in the object store: set KASCADE_STORE_endpoint" in refused.stderr
    )

    capped = _run(LARGE, tmp_path, env={**env, "KASCADE_OUTPUTS_MAX_BYTES": "100000"})
    produce = capped["tasks"]["produce"]
    assert produce["state"] == "failed"
    assert produce["message"].startswith("outputs are 200023 bytes, over the 100000-byte cap")


def test_without_a_store_the_4_kib_rule_stands(tmp_path: Path) -> None:
    record = _run(LARGE, tmp_path)
    produce = record["tasks"]["produce"]
    assert produce["state"] == "failed"
    assert "over the 4096-byte limit" in produce["message"]
    assert "configure an object store" in produce["message"]
