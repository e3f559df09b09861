"""The cases of manifests/examples/expected.yaml, shared by the local-runner and e2e tiers.

Both drivers of the engine (the local runner and the operator) are held to this one
list, so a case can never exist in one tier and be forgotten in the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "manifests" / "examples"
EXPECTED: dict[str, Any] = yaml.safe_load((EXAMPLES / "expected.yaml").read_text())


def pipeline_of(case: str) -> str | None:
    """The Pipeline to run when the case's file holds several (``pipeline:``)."""
    name = EXPECTED[case.split("#")[0]].get("pipeline")
    return str(name) if name else None


def documents(case: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Pipeline of a case's file, and the other objects it needs (its Pools, the
    pipelines it triggers)."""
    docs = [d for d in yaml.safe_load_all((EXAMPLES / case.split("#")[0]).read_text()) if d]
    pipelines = [d for d in docs if d.get("kind") == "Pipeline"]
    wanted = pipeline_of(case)
    (pipeline,) = [p for p in pipelines if wanted in (None, p["metadata"]["name"])]
    return pipeline, [d for d in docs if d is not pipeline]


def cases() -> list[tuple[str, dict[str, Any]]]:
    """(id, expectation) per example and per variant; a variant's id is ``path#n``."""
    found = []
    for path, entry in EXPECTED.items():
        found.append((path, entry))
        for i, variant in enumerate(entry.get("variants") or []):
            found.append((f"{path}#{i + 1}", variant))
    return found


# -- examples that need real servers (expected.yaml: ``services``) ---------------------------
SERVICES = ("postgres", "s3", "store")
WAREHOUSE_SECRET = "warehouse-db"
LAKE_SECRET = "lake-s3"
LANDING_BUCKET = "landing"
OUTPUTS_BUCKET = "kascade-outputs"


def services(entry: dict[str, Any]) -> tuple[str, ...]:
    """The servers a case needs; a variant needs its file's."""
    found = tuple(entry.get("services") or ())
    unknown = set(found) - set(SERVICES)
    assert not unknown, f"unknown services {unknown} (known: {SERVICES})"
    return found


def service_setup(
    entry: dict[str, Any],
    ds: str,
    *,
    postgres: Any = None,
    s3: Any = None,
    host: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """What a service case needs around its Pipeline: the Secrets its connections read
    (settings for ``host``: loopback for the local runner, the node's address for pods),
    the data its sensors wait for (the day's row, the day's export), and the object store
    for outputs as ``KASCADE_STORE_<key>`` variables (for a local run, or the operator)."""
    wanted = services(entry)
    secrets: list[dict[str, Any]] = []
    env: dict[str, str] = {}
    if "postgres" in wanted:
        postgres.execute("CREATE TABLE IF NOT EXISTS landed_orders (day date, orders int)")
        postgres.execute("INSERT INTO landed_orders VALUES (%s, 3)", (ds,))
        secrets.append(_secret(WAREHOUSE_SECRET, postgres.settings(host=host)))
    if "s3" in wanted or "store" in wanted:
        from kascade.integrations.objectstore import ObjectStore
        from kascade.integrations.settings import ObjectStoreSettings

        for bucket in (LANDING_BUCKET, OUTPUTS_BUCKET):
            if not (s3.data / bucket).exists():
                s3.make_bucket(bucket)
        if "s3" in wanted:
            lake = ObjectStore(
                ObjectStoreSettings.from_data(s3.settings(), "tests"), LANDING_BUCKET
            )
            lake.put(f"exports/{ds}/orders.csv", b"order_id,amount\n1,9.99\n")
            secrets.append(_secret(LAKE_SECRET, s3.settings(host=host)))
        if "store" in wanted:  # the operator or the local runner reaches it on loopback
            env = {f"KASCADE_STORE_{k}": v for k, v in s3.settings(bucket=OUTPUTS_BUCKET).items()}
    return secrets, env


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}
