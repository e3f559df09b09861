"""Every example has a Python twin (examples/python/) that runs to the same task states.

The twins use Airflow's snake_case task ids where the manifests use kebab-case,
so ids are compared with '_' read as '-'. Both runs must also match
manifests/examples/expected.yaml, the file the operator is held to on a cluster.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_examples_local import with_services

import servers
from example_cases import EXAMPLES, ROOT, cases, documents, pipeline_of, service_setup, services
from sdk_support import run_json

TWINS = ROOT / "examples" / "python"
#: manifest → (twin file, dag_id)
TWIN_OF = {
    "hello-world.yaml": ("hello_world.py", "hello_world"),
    "daily-etl.yaml": ("daily_etl.py", "daily_etl"),
    "weekday-branching.yaml": ("weekday_branching.py", "weekday_branching"),
    "etl-task-groups.yaml": ("etl_task_groups.py", "etl_task_groups"),
    "nested-groups.yaml": ("nested_groups.py", "nested_groups"),
    "data-size-branching-pools.yaml": ("data_size_branching_pools.py", "data_size_branching_pools"),
    "file-sensor.yaml": ("file_sensor.py", "file_sensor"),
    "customer-pipelines/generated/process-customer-a.yaml": (
        "customer_pipelines.py",
        "process_customer_a",
    ),
    "customer-pipelines/generated/process-customer-b.yaml": (
        "customer_pipelines.py",
        "process_customer_b",
    ),
    "customer-pipelines/generated/process-customer-c.yaml": (
        "customer_pipelines.py",
        "process_customer_c",
    ),
    "retries-with-callbacks.yaml": ("retries_with_callbacks.py", "retries_with_callbacks"),
    "data-quality-fails.yaml": ("data_quality_fails.py", "data_quality_fails"),
    "parallel-regions.yaml": ("parallel_regions.py", "parallel_regions"),
    "short-circuit-and-when.yaml": ("short_circuit_and_when.py", "short_circuit_and_when"),
    "email-alerts.yaml": ("email_alerts.py", "email_alerts"),
    "trigger-pipeline.yaml": ("trigger_pipeline.py", "trigger_pipeline"),
    "landing-zone.yaml": ("landing_zone.py", "landing_zone"),
    "shared-templates-and-cache.yaml": (
        "shared_templates_and_cache.py",
        "shared_templates_and_cache",
    ),
}


def pool_args(manifest: Path) -> list[str]:
    """A Python DAG has no Pool documents (Airflow's pools live apart from DAG files): its
    local run gets the twin manifest's Pools with --pool."""
    args: list[str] = []
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc.get("kind") == "Pool":
            args += ["--pool", f"{doc['metadata']['name']}={doc['spec']['slots']}"]
    return args


def run(
    path: Path,
    entry: dict[str, Any],
    tmp: Path,
    dag: str | None = None,
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    args = ["--workdir", str(tmp / "work"), *extra] + (["--dag", dag] if dag else [])
    if entry.get("logicalDate"):
        args += ["--logical-date", entry["logicalDate"]]
    for key, value in (entry.get("params") or {}).items():
        args += ["--param", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    return run_json(path, *args, home=tmp / "home", env=env)


def service_env(
    manifest: Path, entry: dict[str, Any], request: pytest.FixtureRequest
) -> dict[str, str]:
    """A twin's servers, for a local run: the connections' Secrets as the CONN_<NAME>_<key>
    variables a Python DAG reads, and the object store for outputs."""
    wanted = services(entry)
    if not wanted:
        return {}
    postgres = request.getfixturevalue("postgres_server") if "postgres" in wanted else None
    s3 = request.getfixturevalue("s3_server") if {"s3", "store"} & set(wanted) else None
    ds = (entry.get("logicalDate") or datetime.now(UTC).isoformat())[:10]
    secrets, env = service_setup(entry, ds, postgres=postgres, s3=s3)
    pipeline, _ = documents(manifest.relative_to(EXAMPLES).as_posix())
    for conn in pipeline["spec"].get("connections") or []:
        (secret,) = [s for s in secrets if s["metadata"]["name"] == conn["secret"]]
        prefix = "CONN_" + conn["name"].upper().replace("-", "_") + "_"
        env.update({prefix + k: v for k, v in secret["stringData"].items()})
    return env


#: Values some twins' tasks return (the YAML examples write the same numbers as outputs).
OUTPUTS = {
    "daily-etl.yaml": {"transform": {"return_value": 4}},
    "parallel-regions.yaml": {
        "merge": {"return_value": {"rows": 600, "best": "asia"}, "rows": 600, "best": "asia"}
    },
    "data-size-branching-pools.yaml": {
        "check_size": {
            "return_value": {"size_mb": 2048, "rows": 2048000},
            "size_mb": 2048,
            "rows": 2048000,
        }
    },
    "retries-with-callbacks.yaml": {"call_flaky_api": {"status": 200}},
    "email-alerts.yaml": {"count_orders": {"orders": 128, "revenue": 5120.5}},
    "trigger-pipeline.yaml": {
        "process_partitions": {
            "trigger_run_id": "triggered__2024-01-15T00:00:00+00:00",
            "trigger_logical_date_iso": "2024-01-15T00:00:00+00:00",
        }
    },
    "etl-task-groups.yaml": {
        "transform.clean": {"return_value": 122},
        "transform.aggregate": {"return_value": 7},
    },
}


def test_every_example_has_a_twin() -> None:
    assert {path for path, _ in cases() if "#" not in path} == set(TWIN_OF)


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_twin_runs_to_the_same_states(
    case: str,
    entry: dict[str, Any],
    tmp_path: Path,
    smtp_server: servers.SmtpServer,
    request: pytest.FixtureRequest,
) -> None:
    manifest = case.split("#")[0]
    file, dag = TWIN_OF[manifest]
    smtp = {f"KASCADE_SMTP_{k}": v for k, v in smtp_server.settings().items()}
    env = {**smtp, **service_env(EXAMPLES / manifest, entry, request)}
    pools = tuple(pool_args(EXAMPLES / manifest))
    twin = run(TWINS / file, entry, tmp_path / "py", dag, pools, env=env)
    chosen = ("--pipeline", str(pipeline_of(case))) if pipeline_of(case) else ()
    yaml_path, yaml_env = with_services(EXAMPLES / manifest, entry, tmp_path, request)
    yaml_run = run(yaml_path, entry, tmp_path / "yaml", extra=chosen, env={**smtp, **yaml_env})
    twin_states = {k.replace("_", "-"): v["state"] for k, v in twin["tasks"].items()}
    yaml_states = {k: v["state"] for k, v in yaml_run["tasks"].items()}
    assert twin_states == yaml_states == entry["tasks"]
    assert twin["phase"] == yaml_run["phase"] == entry["phase"]
    for task, attempts in (entry.get("attempts") or {}).items():
        assert twin["tasks"][task.replace("-", "_")]["attempts"] == attempts
    if "#" not in case:
        for task, outputs in OUTPUTS.get(manifest, {}).items():
            assert twin["tasks"][task]["outputs"] == outputs
