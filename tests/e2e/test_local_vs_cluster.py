"""The differential tier: the same manifests in the local runner and on the real cluster.

Every example of manifests/examples (with its variants) and a set of generated DAGs
(random trigger rules, failing and flaky tasks with retries, branches, short circuits,
mapped tasks; see tests/differential.py) run in both drivers with the same logical date
and params. Final task states, attempt numbers, outputs (which carry the rendered
macros) and the run's phase must be identical, and the examples must also match
manifests/examples/expected.yaml. All cluster runs go at once in one namespace, and the
local runs beside them, to keep the tier to a few minutes; ``make bench`` runs a larger
generated set (``KASCADE_DIFF_DAGS``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

import differential
import servers
from example_cases import EXAMPLES, ROOT, cases, documents, service_setup, services
from kascade.engine.outputs import REF_KEY

from .conftest import kubeconfig_path
from .operator_support import Kascade, operator_namespace

pytestmark = pytest.mark.e2e
LOGICAL_DATE = (
    (datetime(2024, 3, 4, tzinfo=UTC) + timedelta(seconds=time.time() % 80_000))
    .replace(microsecond=0)
    .isoformat()
)
"""One logical date for both drivers (so every macro renders alike), unique per session:
two examples keep markers on the node under their run id, which must not meet a
marker an earlier session left."""
GENERATED = int(os.environ.get("KASCADE_DIFF_DAGS", "6"))
TIMEOUT = float(os.environ.get("KASCADE_DIFF_TIMEOUT", "420"))


@dataclass
class Case:
    id: str
    pipeline: dict[str, Any]
    objects: list[dict[str, Any]] = field(default_factory=list)
    logical_date: str = LOGICAL_DATE
    params: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] | None = None
    env: dict[str, str] = field(default_factory=dict)
    """The local run's extra environment (an object store for outputs)."""
    local_objects: list[dict[str, Any]] = field(default_factory=list)
    """Documents only the local run's file gets (Secrets with loopback addresses)."""

    @property
    def services(self) -> tuple[str, ...]:
        return services(self.expected or {})


def all_cases() -> list[Case]:
    found = []
    for case_id, entry in cases():
        pipeline, objects = documents(case_id)
        found.append(
            Case(
                case_id,
                pipeline,
                objects,
                entry.get("logicalDate") or LOGICAL_DATE,
                dict(entry.get("params") or {}),
                entry,
            )
        )
    for doc in differential.generated(GENERATED):
        found.append(Case(doc["metadata"]["name"], differential.manifest(doc)))
    return found


CASES = all_cases()


def _shape(phase: str, tasks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"phase": phase, "tasks": {k: _unplaced(v) for k, v in sorted(tasks.items())}}


def _unplaced(value: Any) -> Any:
    """An output kept in the object store is the same value in both drivers, under each
    run's own key (its namespace differs): compare its size and digest, not its key."""
    if isinstance(value, dict):
        if set(value) == {REF_KEY}:
            return {REF_KEY: {k: v for k, v in value[REF_KEY].items() if k != "key"}}
        return {k: _unplaced(v) for k, v in value.items()}
    return value


def run_locally(case: Case, work: Path, smtp: dict[str, str]) -> dict[str, Any]:
    folder = work / case.id.replace("/", "_").replace("#", "_")
    folder.mkdir(parents=True)
    path = folder / "pipeline.yaml"
    docs = [*case.local_objects, *case.objects, case.pipeline]
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    args = [sys.executable, "-m", "kascade", "run", str(path), "--output", "json"]
    args += ["--pipeline", case.pipeline["metadata"]["name"]]  # a file may hold several
    logical_date = case.logical_date
    if "hostPath" in json.dumps(case.pipeline):
        # The cluster's node is this machine: a folder named after the run id would be
        # shared with the cluster's run of the same case. One second later keeps ds and
        # the outputs these examples write, and gives the local run a folder of its own.
        shifted = datetime.fromisoformat(logical_date) + timedelta(seconds=1)
        logical_date = shifted.isoformat()
    args += ["--workdir", str(folder / "work"), "--logical-date", logical_date]
    for key, value in case.params.items():
        args += ["--param", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator"), "KASCADE_HOME": str(folder)}
    env.update({f"KASCADE_SMTP_{key}": value for key, value in smtp.items()})
    env.update(case.env)
    proc = subprocess.run(
        args, capture_output=True, text=True, env=env, timeout=300, cwd=folder, check=False
    )
    assert proc.stdout, f"{case.id}: {proc.stderr[-2000:]}"
    record = json.loads(proc.stdout)
    tasks = {
        key: {
            "state": info["state"],
            "attempt": info["attempts"],
            "outputs": info["outputs"] or {},
        }
        for key, info in record["tasks"].items()
    }
    return _shape(record["phase"], tasks)


def on_cluster(kas: Kascade, run_name: str) -> dict[str, Any]:
    run = kas.get("pipelineruns", run_name)
    states = kas.task_states(run)
    taskruns = {}
    for tr in kas.list("taskruns", f"kascade.io/run={run_name}"):
        index = tr["spec"].get("mapIndex")
        key = tr["spec"]["taskName"] + (f"[{index}]" if index is not None else "")
        taskruns[key] = tr.get("status") or {}
    tasks = {}
    for key, state in states.items():
        st = taskruns.get(key, {})
        numbers = [a.get("number", 0) for a in st.get("attempts") or []]
        tasks[key] = {
            "state": state,
            "attempt": max(numbers, default=0),
            "outputs": st.get("outputs") or {},
        }
    return _shape(run["status"]["phase"], tasks)


def _start(kas: Kascade, batch: list[Case], offset: int) -> dict[str, str]:
    """Apply the batch's pipelines (and their objects) and create one run per case."""
    runs: dict[str, str] = {}
    applied: set[str] = set()
    for i, case in enumerate(batch, offset):
        if case.pipeline["metadata"]["name"] not in applied:  # variants share one
            applied.add(case.pipeline["metadata"]["name"])
            for obj in case.objects:
                kas.apply_object(obj)
            kas.apply_pipeline(case.pipeline)
        runs[case.id] = kas.create_run(
            case.pipeline["metadata"]["name"],
            logical_date=case.logical_date,
            params=case.params or None,
            name=f"diff-{i}-{case.pipeline['metadata']['name']}"[:60].rstrip("-"),
        )
    return runs


def _wait(kas: Kascade, runs: dict[str, str], deadline: float) -> None:
    pending = set(runs)
    while pending and time.monotonic() < deadline:
        for case_id in list(pending):
            phase = (kas.get("pipelineruns", runs[case_id]).get("status") or {}).get("phase")
            if phase in ("success", "failed"):
                pending.discard(case_id)
        time.sleep(2)
    assert not pending, f"runs not finished in {TIMEOUT:.0f}s: {sorted(pending)}"


@contextmanager
def _served(
    cluster: Any, request: pytest.FixtureRequest, batch: list[Case], log: Path
) -> Iterator[Kascade | None]:
    """A second operator for the cases that need real servers (expected.yaml ``services``),
    set up as the chart sets it (the helper image, the object store), with the servers'
    Secrets in its namespace and the data their sensors wait for; None without such cases."""
    if not batch:
        yield None
        return
    from .images import operator_image

    wanted = {name for case in batch for name in case.services}
    postgres = request.getfixturevalue("postgres_for_pods") if "postgres" in wanted else None
    s3 = request.getfixturevalue("s3_for_pods") if {"s3", "store"} & wanted else None
    host = request.getfixturevalue("pod_host_address")
    env: dict[str, str] = {"KASCADE_HELPER_IMAGE": operator_image()}
    pod_secrets: dict[str, dict[str, Any]] = {}
    for case in batch:
        ds = case.logical_date[:10]
        local, case.env = service_setup(case.expected or {}, ds, postgres=postgres, s3=s3)
        case.local_objects = local
        remote, store = service_setup(case.expected or {}, ds, postgres=postgres, s3=s3, host=host)
        pod_secrets.update({secret["metadata"]["name"]: secret for secret in remote})
        env.update(store)
    with operator_namespace(cluster, kubeconfig_path(), "diff-served", log, env=env) as kas:
        for secret in pod_secrets.values():
            kas.core.create_namespaced_secret(kas.ns, secret)
        yield kas


@pytest.fixture(scope="module")
def results(
    cluster: Any,
    tmp_path_factory: pytest.TempPathFactory,
    smtp_server: servers.SmtpServer,
    request: pytest.FixtureRequest,
) -> Iterator[dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
    """Every case run once in each driver: case id -> (local, cluster)."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    work = tmp_path_factory.mktemp("local")
    # E-mail goes to a real SMTP server: the operator (a process here) and the local
    # runs reach it on loopback, with the settings of the Secret kascade-smtp.
    smtp = smtp_server.settings()
    plain = [c for c in CASES if not c.services]
    served = [c for c in CASES if c.services]
    # file-sensor mounts a hostPath, which only a privileged namespace admits.
    with (
        operator_namespace(cluster, kubeconfig_path(), "diff", log, "privileged") as kas,
        _served(cluster, request, served, log.with_name("served.log")) as other,
    ):
        kas.core.create_namespaced_secret(
            kas.ns,
            client.V1Secret(metadata=client.V1ObjectMeta(name="kascade-smtp"), string_data=smtp),
        )
        runs = _start(kas, plain, 0)
        served_runs = _start(other, served, len(plain)) if other is not None else {}
        with ThreadPoolExecutor(4) as pool:
            local = dict(
                zip(
                    [c.id for c in CASES],
                    pool.map(lambda c: run_locally(c, work, smtp), CASES),
                    strict=True,
                )
            )
        deadline = time.monotonic() + TIMEOUT
        _wait(kas, runs, deadline)
        if other is not None:
            _wait(other, served_runs, deadline)
        found = {cid: (local[cid], on_cluster(kas, runs[cid])) for cid in runs}
        if other is not None:
            found.update(
                {cid: (local[cid], on_cluster(other, served_runs[cid])) for cid in served_runs}
            )
        yield found


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_local_runner_and_cluster_agree(
    case: Case, results: dict[str, tuple[dict[str, Any], dict[str, Any]]]
) -> None:
    local, cluster = results[case.id]
    assert cluster == local
    if case.expected is not None:
        assert local["phase"] == case.expected["phase"]
        assert {k: t["state"] for k, t in local["tasks"].items()} == case.expected["tasks"]
        for task, attempts in (case.expected.get("attempts") or {}).items():
            assert local["tasks"][task]["attempt"] == attempts


def test_the_examples_and_generated_dags_are_all_here() -> None:
    files = {c.id.split("#")[0] for c in CASES if c.expected is not None}
    on_disk = {
        p.relative_to(EXAMPLES).as_posix()
        for p in EXAMPLES.rglob("*.yaml")
        if p.name not in ("expected.yaml", "customers.yaml")
    }
    assert files == on_disk
    assert sum(1 for c in CASES if c.expected is None) == GENERATED
