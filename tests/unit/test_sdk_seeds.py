"""The seed tutorials' DAGs, with only their imports changed, run locally (tests/unit/seed_dags).

Data sources the machine does not have are local files (see seed_dags/README.md).
Seeds that need e-mail or PostgresOperator (not built yet) must fail to compile
with the message that names the feature; with only their e-mail lines removed
they run too.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from sdk_support import kascade, run_json, states

SEEDS = Path(__file__).parent / "seed_dags"


@pytest.fixture()
def seeds(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    shutil.copytree(SEEDS, folder)
    db = sqlite3.connect(folder / "metadata.db")
    db.execute("CREATE TABLE customers (customer_id, table_name, schedule, active)")
    db.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        [
            (1, "customers_1", "@daily", True),
            (2, "customers_2", "@hourly", False),
            (3, "customers_3", "0 4 * * *", True),
        ],
    )
    db.commit()
    db.close()
    (folder / "data").mkdir()
    (folder / "data" / "input.csv").write_text("id,value\n1,2\n")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)  # the seeds' bash commands call `python`
    return folder


def run(
    seeds: Path, file: str, dag: str, date: str = "2024-01-15T00:00:00+00:00"
) -> dict[str, Any]:
    path = f"{seeds.parent / 'bin'}{os.pathsep}{os.environ['PATH']}"
    args = ("--dag", dag, "--logical-date", date)
    home = seeds.parent / "home"
    return run_json(seeds / file, *args, home=home, env={"PATH": path}, cwd=seeds / "scripts")


@pytest.mark.parametrize("dag", ["process_customer_A", "process_customer_B", "process_customer_C"])
def test_dynamic_dags_from_a_config_file(seeds: Path, dag: str) -> None:
    result = run(seeds, "intermediate_dynamic_dags.py", dag)
    assert result["phase"] == "success"
    assert states(result) == {f"process_{dag.removeprefix('process_')}": "success"}


def test_dynamic_dags_from_a_database(seeds: Path) -> None:
    for dag in ("process_customer_1", "process_customer_3"):
        result = run(seeds, "intermediate_db_dynamic_dags.py", dag)
        assert states(result) == {f"process_{dag[-1]}": "success"}
    listed = kascade("validate", str(seeds))
    assert "process_customer_2" not in listed.stdout  # inactive in the database


def test_file_sensor(seeds: Path) -> None:
    result = run(seeds, "intermediate_file_sensor.py", "wait_for_file")
    assert states(result) == {"wait_for_input_file": "success", "process_file": "success"}


def test_external_task_sensor_waits_for_the_other_dag(seeds: Path) -> None:
    assert run(seeds, "intermediate_external_task.py", "upstream_pipeline")["phase"] == "success"
    result = run(seeds, "intermediate_external_task.py", "downstream_pipeline")
    assert states(result) == {"wait_for_upstream": "success", "task_b": "success"}


@pytest.mark.parametrize(
    ("date", "weekday", "weekend"),
    [
        ("2024-01-15T00:00:00+00:00", "success", "skipped"),  # a Monday
        ("2024-01-13T00:00:00+00:00", "skipped", "success"),
    ],  # a Saturday
)
def test_branching_on_the_execution_date(
    seeds: Path, date: str, weekday: str, weekend: str
) -> None:
    result = run(seeds, "intermediate_branching.py", "branching_example", date)
    assert states(result) == {
        "start": "success",
        "decide_branch": "success",
        "weekday_task": weekday,
        "weekend_task": weekend,
        "end": "success",
    }


def test_task_groups(seeds: Path) -> None:
    result = run(seeds, "intermediate_taskgroups.py", "etl_with_taskgroups")
    assert result["phase"] == "success"
    assert set(states(result).values()) == {"success"} and len(result["tasks"]) == 10


def test_nested_task_groups(seeds: Path) -> None:
    result = run(seeds, "intermediate_nested_taskgroups.py", "nested_taskgroups")
    assert states(result) == {
        "processing.data_quality.check_nulls": "success",
        "processing.data_quality.check_duplicates": "success",
        "processing.transformations.transform_a": "success",
        "processing.transformations.transform_b": "success",
    }


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("beginner_hello_world.py", 29, "email=['alerts@company.com'] with email_on_failure"),
        ("skill_customer_etl.py", 52, "email=['alerts@example.com'] with email_on_failure"),
        ("section8_orders_daily_etl.py", 5, "kascade.sdk has no PostgresOperator: run the SQL"),
    ],
)
def test_seeds_using_features_not_built_yet_say_so(
    seeds: Path, file: str, line: int, message: str
) -> None:
    proc = kascade("validate", str(seeds / file))
    assert proc.returncode == 1
    assert f"{seeds / file}:{line}: " in proc.stdout and message in proc.stdout, proc.stdout


def test_without_their_email_lines_the_email_seeds_run(seeds: Path) -> None:
    for file in ("beginner_hello_world.py", "skill_customer_etl.py"):
        path = seeds / file
        path.write_text(
            "".join(
                line for line in path.read_text().splitlines(keepends=True) if "'email" not in line
            )
        )
    hello = run(seeds, "beginner_hello_world.py", "hello_world")
    assert states(hello) == {
        "say_hello": "success",
        "print_date": "success",
        "sleep_5_seconds": "success",
    }
    etl = run(seeds, "skill_customer_etl.py", "customer_etl_pipeline")
    assert states(etl) == {"extract": "success", "transform": "success", "load": "success"}
    assert etl["tasks"]["transform"]["outputs"] == {"return_value": {"transformed_rows": 1000}}
