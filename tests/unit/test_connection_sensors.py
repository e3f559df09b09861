"""The ``sql`` and ``s3`` sensor kinds: validation, the pod that pokes, the author's rights.

One rule for both drivers lives in ``engine/sensors.py``: a pod of the operator's helper
image runs ``kascade poke`` with the pipeline connection's Secret as prefixed environment
variables; the local runner calls the same functions in-process
(tests/integration/test_connection_sensors.py runs both kinds against real servers).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from helpers_engine import NOT_MET, OK, plan, run, spec

from kascade.controller import config, rights
from kascade.controller.podspec import RunIdentity, build_pod
from kascade.engine.decisions import Launch
from kascade.engine.validation import validate_spec

CONNECTIONS = [{"name": "warehouse", "secret": "warehouse-db"}, {"name": "lake", "secret": "s3"}]
SQL = {
    "kind": "sql",
    "connection": "warehouse",
    "sql": "SELECT count(*) FROM loads WHERE day = %s",
    "parameters": ["{{ ds }}"],
    "pokeInterval": "5s",
}
S3 = {"kind": "s3", "connection": "lake", "bucket": "landing", "wildcard": "{{ ds }}/*.csv"}


def _sensor(sensor: dict[str, Any], name: str = "wait") -> dict[str, Any]:
    return {"name": name, "sensor": sensor}


def _issues(sensor: dict[str, Any], **fields: Any) -> list[tuple[str, str]]:
    s = spec([_sensor(sensor)], **{"connections": CONNECTIONS, **fields})
    _, issues = validate_spec(s, "p")
    return [(i.path, i.message) for i in issues]


def test_sql_and_s3_sensors_need_no_image_and_validate() -> None:
    assert _issues(SQL) == []
    assert _issues(S3) == []


@pytest.mark.parametrize(
    ("sensor", "fields", "expected"),
    [
        (
            {**SQL, "connection": "nope"},
            {},
            (
                "spec.tasks[0].sensor.connection",
                "no connection 'nope' in spec.connections (warehouse, lake): declare "
                "{name: nope, secret: <the Secret with its settings>}",
            ),
        ),
        (
            {k: v for k, v in SQL.items() if k != "connection"},
            {},
            (
                "spec.tasks[0].sensor.connection",
                "a sql sensor needs connection: the name of one of spec.connections",
            ),
        ),
        (
            {k: v for k, v in SQL.items() if k != "sql"},
            {},
            ("spec.tasks[0].sensor.sql", "a sql sensor needs sql"),
        ),
        (
            {**S3, "key": "a.csv"},
            {},
            ("spec.tasks[0].sensor", "an s3 sensor needs exactly one of key, prefix and wildcard"),
        ),
        ({**S3, "sql": "select 1"}, {}, ("spec.tasks[0].sensor.sql", "sql is for sql sensors")),
        (
            {"kind": "file", "path": "/x", "connection": "lake"},
            {"defaults": {"image": "busybox"}},
            ("spec.tasks[0].sensor.connection", "connection is for sql and s3 sensors"),
        ),
        (
            {**SQL, "sql": "SELECT {{ params.nope }}"},
            {"params": {"day": {"default": "x"}}},
            ("spec.tasks[0].sensor.sql", "params.nope is not declared in spec.params"),
        ),
    ],
)
def test_sensor_problems_name_the_field(
    sensor: dict[str, Any], fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert expected in _issues(sensor, **fields)


def _pod(sensor: dict[str, Any], image: str = "helper:1") -> dict[str, Any]:
    config.configure(config.OperatorConfig(helper_image=image))
    try:
        p = plan([_sensor(sensor)], connections=CONNECTIONS)
        rec = run(p, {"wait": [NOT_MET, OK]})
        (_, launch), *_ = rec.launches
        assert isinstance(launch, Launch)
        identity = RunIdentity("ns", "p", "r", "manual__1", datetime(2026, 1, 1, tzinfo=UTC))
        return build_pod(launch, name="pod", run=identity, pipeline=p.spec, owner={})
    finally:
        config.configure(config.OperatorConfig())


def test_a_sql_sensor_pod_runs_kascade_poke_in_the_helper_image_with_its_connection() -> None:
    pod = _pod(SQL)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "helper:1"
    command = container["command"]
    # mode: poke loops in the pod; the probe is `kascade poke sql`, the date bound, not pasted
    assert command[:2] == ["sh", "-c"] and "kascade-sensor" in command
    probe = command[command.index("kascade-sensor") + 1 :]
    assert probe == [
        "kascade",
        "poke",
        "sql",
        "--settings-prefix",
        "CONN_WAREHOUSE_",
        "--query",
        "SELECT count(*) FROM loads WHERE day = %s",
        "--timeout",
        "60",
        "--parameter",
        "2026-01-01",
    ]
    sources = {(s["secretRef"]["name"], s["prefix"]) for s in container["envFrom"]}
    assert ("warehouse-db", "CONN_WAREHOUSE_") in sources
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


def test_an_s3_sensor_in_reschedule_mode_pokes_once_per_pod() -> None:
    pod = _pod({**S3, "mode": "reschedule"})
    (container,) = pod["spec"]["containers"]
    assert container["command"] == [
        "kascade",
        "poke",
        "s3",
        "--settings-prefix",
        "CONN_LAKE_",
        "--wildcard",
        "2026-01-01/*.csv",
        "--bucket",
        "landing",
    ]


def test_the_author_must_be_allowed_to_read_the_connections_secret() -> None:
    p = plan([_sensor(SQL)], connections=[{"name": "warehouse", "secret": "warehouse-db"}])
    grants = {n.grant: n for n in rights.needs(p, p.spec)}
    assert grants["secret:warehouse-db"].checks[0].resource == "secrets"
    assert str(grants["secret:warehouse-db"].checks[0]) == "get secrets/warehouse-db"


SQL_DAG = """
from datetime import datetime
from kascade.sdk import DAG, BashOperator, S3KeySensor, SqlSensor
with DAG("landed", schedule="@daily", start_date=datetime(2024, 1, 1),
         connections={"warehouse": "warehouse-db", "lake": "lake-s3"}):
    rows = SqlSensor(task_id="rows", conn_id="warehouse",
                     sql="SELECT count(*) FROM loads WHERE day = %s", parameters=["{{ ds }}"],
                     poke_interval=30, mode="reschedule")
    files = S3KeySensor(task_id="files", aws_conn_id="lake",
                        bucket_key="s3://landing/{{ ds }}/*.csv", wildcard_match=True)
    [rows, files] >> BashOperator(task_id="load", bash_command="echo load")
"""


def test_the_sdk_compiles_sql_sensor_and_s3_key_sensor(tmp_path: Any) -> None:
    from kascade.sdk.compiler.project import Options, compile_paths

    path = tmp_path / "landed.py"
    path.write_text(SQL_DAG)
    result = compile_paths([path], Options(target="image", image="dags:1", dags_folder="/d"))
    assert not result.problems, [str(p) for p in result.problems]
    (compiled,) = result.dags
    tasks = {t["name"]: t for t in compiled.pipeline["spec"]["tasks"]}
    assert tasks["rows"]["sensor"] == {
        "kind": "sql",
        "pokeInterval": "30s",
        "timeout": "7d",
        "mode": "reschedule",
        "connection": "warehouse",
        "sql": "SELECT count(*) FROM loads WHERE day = %s",
        "parameters": ["{{ ds }}"],
    }
    assert tasks["files"]["sensor"]["bucket"] == "landing"
    assert tasks["files"]["sensor"]["wildcard"] == "{{ ds }}/*.csv"
    assert "key" not in tasks["files"]["sensor"]
