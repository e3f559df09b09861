"""Pipelines the local (tests/integration) and cluster (tests/e2e) tiers of issue 10's
caching and sensors both run, so that the two tiers run the same scenario."""

from __future__ import annotations

from typing import Any

CONNECTIONS = [
    {"name": "warehouse", "secret": "warehouse-db"},
    {"name": "lake", "secret": "lake-s3"},
]


def cached_tasks() -> list[dict[str, Any]]:
    """A task whose output differs at every run, cached per day, and its reader."""
    return [
        {
            "name": "fetch",
            "script": 'echo "stamp=$(date +%s%N)" > "$KASCADE_OUTPUTS"',
            "cache": {"key": "rates-{{ ds }}", "expiresAfter": "1h"},
        },
        {
            "name": "use",
            "dependsOn": ["fetch"],
            "command": ["echo", "{{ tasks.fetch.outputs.stamp }}"],
        },
    ]


def landed_tasks(
    table: str, bucket: str, *, interval: str, sql_mode: str, s3_mode: str
) -> list[dict[str, Any]]:
    """A sql sensor on the day's row of ``table``, an s3 sensor on the day's export in
    ``bucket`` (connections ``warehouse`` and ``lake``), and a task after both."""
    return [
        {
            "name": "rows",
            "sensor": {
                "kind": "sql",
                "connection": "warehouse",
                "sql": f"SELECT count(*) FROM {table} WHERE day = %s",
                "parameters": ["{{ ds }}"],
                "mode": sql_mode,
                "pokeInterval": interval,
                "timeout": "5m",
            },
        },
        {
            "name": "files",
            "sensor": {
                "kind": "s3",
                "connection": "lake",
                "bucket": bucket,
                "wildcard": "exports/{{ ds }}/*.csv",
                "mode": s3_mode,
                "pokeInterval": interval,
                "timeout": "5m",
            },
        },
        {"name": "load", "dependsOn": ["rows", "files"], "command": ["true"]},
    ]
