"""Caching, SQL/S3 sensors and large outputs on the real cluster, against real servers.

One namespace and one ``kascade operator`` (a local process, as in the other operator
tiers) configured like the chart does it: the helper image for ``kascade poke`` pods and
the outputs sidecar (``--helper-image``), and an object store for outputs
(``KASCADE_STORE_<key>``: versitygw on this host, which the operator reaches on
loopback; pods never see it). PostgreSQL and S3 for the sensors listen where pods
reach them (the node's address). Runs go at once to keep the tier short.

1. Cache hits across runs: the second run's cached task has no pod and says Cached in
   its TaskRun, the TaskCache holds the entry, and ``noCache`` runs the task again.
2. A ``sql`` sensor (reschedule mode) waits until a row lands in PostgreSQL.
3. An ``s3`` sensor (poke mode) waits until an object lands in the bucket.
4. A 1 MiB output goes through the object store: its TaskRun keeps a reference, the
   object is in the bucket, a downstream template reads its length, and
   ``kascade outputs`` prints it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

import servers
from feature_pipelines import CONNECTIONS, cached_tasks, landed_tasks
from kascade.engine.outputs import REF_KEY
from kascade.integrations.objectstore import ObjectStore
from kascade.integrations.settings import ObjectStoreSettings
from sdk_support import kascade

from .conftest import Cluster, kubeconfig_path, wait_until
from .images import operator_image
from .operator_support import (
    Kascade,
    OperatorProcess,
    apply_crds,
    delete_namespace,
    make_namespace,
    pipeline,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]  # may build the image first


@pytest.fixture(scope="module")
def store_bucket(s3_for_pods: servers.S3Server) -> str:
    return s3_for_pods.make_bucket()


@pytest.fixture(scope="module")
def kas(
    cluster: Cluster,
    s3_for_pods: servers.S3Server,
    store_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Kascade]:
    image = operator_image()
    namespace = make_namespace(cluster, "features-b")
    apply_crds(cluster.api)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    op = OperatorProcess(kubeconfig_path(), [namespace], log)
    op.extra_env = {
        "KASCADE_HELPER_IMAGE": image,
        **{f"KASCADE_STORE_{k}": v for k, v in s3_for_pods.settings(bucket=store_bucket).items()},
    }
    k = Kascade(cluster.api, namespace)
    try:
        op.start()
        k.operator = op
        yield k
    finally:
        op.kill()
        print(log.read_text()[-5000:] if log.exists() else "(no operator log)")
        delete_namespace(cluster, namespace)


def _secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    cluster.core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def _taskrun(kas: Kascade, run: str, task: str) -> dict[str, Any]:
    """The task's TaskRun ({} while it has none yet)."""
    found = [
        t for t in kas.list("taskruns", f"kascade.io/run={run}") if t["spec"]["taskName"] == task
    ]
    return found[0] if found else {}


def _pods(kas: Kascade, run: str) -> set[str]:
    pods = kas.core.list_namespaced_pod(kas.ns, label_selector=f"kascade.io/run={run}").items
    return {p.metadata.labels["kascade.io/task"] for p in pods}


def test_cache_hits_across_runs(kas: Kascade) -> None:
    kas.apply_pipeline(pipeline("cached", cached_tasks()))
    day = "2024-01-15T00:00:00+00:00"
    first = kas.wait_run(kas.create_run("cached", logical_date=day, name="cached-1"))
    assert first["status"]["phase"] == "success"
    stamp = _taskrun(kas, "cached-1", "fetch")["status"]["outputs"]["stamp"]
    cache = wait_until(
        lambda: (kas.get("taskcaches", "cached").get("status") or {}).get("entries"), 30
    )
    (entry,) = cache.values()
    assert (entry["task"], entry["key"], entry["outputs"]) == (
        "fetch",
        "rates-2024-01-15",
        {"stamp": stamp},
    )

    second = kas.wait_run(kas.create_run("cached", logical_date=day, name="cached-2"))
    assert second["status"]["tasks"] == {"fetch": "success", "use": "success"}
    fetch = _taskrun(kas, "cached-2", "fetch")["status"]
    assert fetch["outputs"] == {"stamp": stamp}
    assert [a["reason"] for a in fetch["attempts"]] == ["Cached"]
    assert fetch["message"] == f"cached: key 'rates-2024-01-15', from run manual__{day}"
    assert _pods(kas, "cached-2") == {"use"}  # no pod for the cached task

    # kascade trigger --no-cache: the task runs again and refreshes the entry.
    out = _kascade(kas, "trigger", "cached", "--logical-date", day, "--no-cache", "--wait")
    third = out.splitlines()[0].split()[0].removeprefix("pipelinerun/")
    assert _pods(kas, third) == {"fetch", "use"}
    fresh = _taskrun(kas, third, "fetch")["status"]["outputs"]["stamp"]
    assert fresh != stamp
    # kascade clear re-runs a cleared cached task instead of reusing its entry.
    _kascade(kas, "clear", "cached-2", "--task", "fetch")
    assert kas.get("pipelineruns", "cached-2")["spec"]["noCacheTasks"] == ["fetch", "use"]
    cleared = kas.wait_run("cached-2")
    assert cleared["status"]["tasks"] == {"fetch": "success", "use": "success"}
    assert "fetch" in _pods(kas, "cached-2")
    again = _taskrun(kas, "cached-2", "fetch")["status"]
    assert [a.get("reason") for a in again["attempts"]] == [None]
    assert again["outputs"]["stamp"] not in (stamp, fresh)


def _kascade(kas: Kascade, *args: str, env: dict[str, str] | None = None) -> str:
    full = {"KUBECONFIG": kubeconfig_path(), **(env or {})}
    proc = kascade(*args, "-n", kas.ns, env=full, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_sql_and_s3_sensors_against_real_servers(
    cluster: Cluster,
    kas: Kascade,
    postgres_for_pods: servers.PostgresServer,
    s3_for_pods: servers.S3Server,
    pod_host_address: str,
) -> None:
    table = f"loads_{uuid.uuid4().hex[:8]}"
    postgres_for_pods.execute(f"CREATE TABLE {table} (day date)")
    bucket = s3_for_pods.make_bucket()
    _secret(cluster, kas.ns, "warehouse-db", postgres_for_pods.settings(host=pod_host_address))
    _secret(cluster, kas.ns, "lake-s3", s3_for_pods.settings(host=pod_host_address))
    kas.apply_pipeline(
        pipeline(
            "landed",
            landed_tasks(table, bucket, interval="2s", sql_mode="reschedule", s3_mode="poke"),
            connections=CONNECTIONS,
        )
    )
    run = kas.create_run("landed", logical_date="2024-01-15T00:00:00+00:00", name="landed-1")
    # Both sensors have poked (and found nothing) before the data lands.
    wait_until(lambda: (_taskrun(kas, run, "rows").get("status") or {}).get("pokes", 0) >= 1, 120)
    wait_until(lambda: "files" in _pods(kas, run), 60)
    time.sleep(3)
    postgres_for_pods.execute(f"INSERT INTO {table} VALUES ('2024-01-15')")
    store = ObjectStore(ObjectStoreSettings.from_data(s3_for_pods.settings(), "test"), bucket)
    store.put("exports/2024-01-15/part-0.csv", b"id\n1\n")
    done = kas.wait_run(run, timeout=240)
    assert done["status"]["tasks"] == {"rows": "success", "files": "success", "load": "success"}
    assert _taskrun(kas, run, "rows")["status"]["pokes"] >= 1  # not met at least once
    pods = kas.core.list_namespaced_pod(kas.ns, label_selector=f"kascade.io/run={run}").items
    # reschedule: one pod per poke (a poke not met, then the one that was met)
    assert sum(1 for p in pods if p.metadata.labels["kascade.io/task"] == "rows") >= 2
    sensor_images = {
        p.spec.containers[0].image for p in pods if p.metadata.labels["kascade.io/task"] != "load"
    }
    assert sensor_images == {operator_image()}  # kascade poke, in the helper image


BIG_SCRIPT = """{
  printf '{"rows": 3, "data": "'
  head -c SIZE /dev/zero | tr '\\0' a
  printf '"}'
} > "$KASCADE_OUTPUTS"
"""


def test_a_1_mib_output_goes_through_the_object_store(
    kas: Kascade, s3_for_pods: servers.S3Server, store_bucket: str, tmp_path: Path
) -> None:
    size = 1 << 20
    kas.apply_pipeline(
        pipeline(
            "big-output",
            [
                {
                    "name": "big",
                    "script": BIG_SCRIPT.replace("SIZE", str(size)),
                },
                {
                    "name": "size",
                    "dependsOn": ["big"],
                    "when": "tasks.big.outputs.data | length > 1000",
                    "script": 'echo size={{ tasks.big.outputs.data | length }} >"$KASCADE_OUTPUTS"',
                },
            ],
        )
    )
    run = kas.create_run("big-output", logical_date="2024-01-15T00:00:00+00:00", name="big-1")
    done = kas.wait_run(run, timeout=240)
    assert done["status"]["phase"] == "success", done["status"]
    big = _taskrun(kas, run, "big")["status"]["outputs"]
    assert big["rows"] == 3
    ref = big["data"][REF_KEY]
    assert ref["key"] == f"{kas.ns}/big-output/manual__2024-01-15T00_00_00_00_00/big/1/data.json"
    assert ref["size"] == size + 2
    store = ObjectStore(ObjectStoreSettings.from_data(s3_for_pods.settings(), "test"), store_bucket)
    assert json.loads(store.get(ref["key"])) == "a" * size
    assert _taskrun(kas, run, "size")["status"]["outputs"] == {"size": size}
    store = {f"KASCADE_STORE_{k}": v for k, v in s3_for_pods.settings(bucket=store_bucket).items()}
    shown = _kascade(kas, "outputs", run, "--task", "big", "--name", "data", env=store)
    assert shown == "a" * size + "\n"
