"""``sql`` and ``s3`` sensors in the local runner, against real PostgreSQL and S3 servers.

The run file carries the connections' Secrets, as a namespace would: ``kascade run``
gives their keys to the sensors as ``CONN_<NAME>_<key>``, and the sensors poke with the
same functions a pod's ``kascade poke`` runs. The condition becomes true while the run
waits (a row inserted, an object written), in poke mode and in reschedule mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers
from feature_pipelines import CONNECTIONS, landed_tasks
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings

pytestmark = pytest.mark.timeout(900)  # the first S3 test may build versitygw

ROOT = Path(__file__).resolve().parents[2]


def _run(docs: list[dict[str, Any]], tmp: Path, *args: str) -> subprocess.Popen[str]:
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONN_")}
    env.update(PYTHONPATH=str(ROOT / "operator"), KASCADE_HOME=str(tmp / "home"))
    argv = [sys.executable, "-m", "kascade", "run", str(path), "--output", "json", *args]
    return subprocess.Popen(
        [*argv, "--workdir", str(tmp / "work")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def test_sql_and_s3_sensors_wait_until_the_data_lands(
    postgres_server: servers.PostgresServer, s3_server: servers.S3Server, tmp_path: Path
) -> None:
    table = f"loads_{uuid.uuid4().hex[:8]}"
    postgres_server.execute(f"CREATE TABLE {table} (day date)")
    bucket = s3_server.make_bucket()
    pipeline = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "landed"},
        "spec": {
            "connections": CONNECTIONS,
            "defaults": {"image": "busybox"},
            "tasks": landed_tasks(
                table, bucket, interval="0.3s", sql_mode="poke", s3_mode="reschedule"
            ),
        },
    }
    docs = [
        _secret("warehouse-db", postgres_server.settings()),
        _secret("lake-s3", s3_server.settings()),
        pipeline,
    ]
    proc = _run(docs, tmp_path, "--logical-date", "2024-01-15")

    def land() -> None:
        time.sleep(3.0)  # a few pokes find nothing first (the runner starts within ~1 s)
        postgres_server.execute(f"INSERT INTO {table} VALUES ('2024-01-15')")
        store = ObjectStore(ObjectStoreSettings.from_data(s3_server.settings(), "test"), bucket)
        store.put("exports/2024-01-15/part-0.csv", b"id\n1\n")

    lander = threading.Thread(target=land)
    lander.start()
    out, err = proc.communicate(timeout=120)
    lander.join()
    record = json.loads(out)
    assert record["phase"] == "success", err[-2000:]
    states = {k: t["state"] for k, t in record["tasks"].items()}
    assert states == {"rows": "success", "files": "success", "load": "success"}
    assert record["tasks"]["files"]["pokes"] >= 3  # reschedule: one poke per attempt launch
    # Poke mode: one attempt, looping until the row lands (a margin for a loaded machine).
    assert record["tasks"]["rows"]["durationSeconds"] >= 1.0
    assert postgres_server.password not in out + err


def test_a_failing_query_fails_the_sensor_with_the_servers_reason(
    postgres_server: servers.PostgresServer, tmp_path: Path
) -> None:
    pipeline = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "broken"},
        "spec": {
            "connections": [{"name": "warehouse", "secret": "warehouse-db"}],
            "tasks": [
                {
                    "name": "rows",
                    "sensor": {
                        "kind": "sql",
                        "connection": "warehouse",
                        "sql": "SELECT * FROM no_such_table",
                        "pokeInterval": "0.2s",
                        "timeout": "30s",
                    },
                }
            ],
        },
    }
    proc = _run([_secret("warehouse-db", postgres_server.settings()), pipeline], tmp_path)
    out, _ = proc.communicate(timeout=60)
    record = json.loads(out)
    assert record["tasks"]["rows"]["state"] == "failed"
    assert record["tasks"]["rows"]["message"] == 'sql: relation "no_such_table" does not exist'


def test_a_connection_with_no_settings_here_says_how_to_give_them(tmp_path: Path) -> None:
    pipeline = {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "nowhere"},
        "spec": {
            "connections": [{"name": "lake", "secret": "lake-s3"}],
            "tasks": [
                {
                    "name": "files",
                    "sensor": {"kind": "s3", "connection": "lake", "key": "a", "timeout": "5s"},
                }
            ],
        },
    }
    proc = _run([pipeline], tmp_path)
    out, _ = proc.communicate(timeout=60)
    record = json.loads(out)
    assert record["tasks"]["files"]["state"] == "failed"
    assert record["tasks"]["files"]["message"].startswith(
        "connection 'lake': no settings (no CONN_LAKE_* variables)"
    )
