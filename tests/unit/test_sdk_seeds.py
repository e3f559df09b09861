"""The seed tutorials' DAGs, with only their imports changed, run locally (tests/unit/seed_dags).

Data sources the machine does not have are local files (see seed_dags/README.md).
The seeds that send e-mail on failure run with a real SMTP server (aiosmtpd): when a
task fails for good, the alert arrives at the seed's own address, once (they set
email_on_retry=False). The seed that needs PostgresOperator (not built) must fail to
compile with the message that names the feature.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers
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
    seeds: Path,
    file: str,
    dag: str,
    date: str = "2024-01-15T00:00:00+00:00",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    path = f"{seeds.parent / 'bin'}{os.pathsep}{os.environ['PATH']}"
    args = ("--dag", dag, "--logical-date", date)
    home = seeds.parent / "home"
    full = {"PATH": path, **(env or {})}
    return run_json(seeds / file, *args, home=home, env=full, cwd=seeds / "scripts")


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


def test_seeds_using_features_not_built_yet_say_so(seeds: Path) -> None:
    file, line = "section8_orders_daily_etl.py", 5
    proc = kascade("validate", str(seeds / file))
    assert proc.returncode == 1
    message = "kascade.sdk has no PostgresOperator: run the SQL"
    assert f"{seeds / file}:{line}: " in proc.stdout and message in proc.stdout, proc.stdout


def smtp_env(server: servers.SmtpServer) -> dict[str, str]:
    """The local runner's SMTP settings (what the Secret kascade-smtp holds on a cluster)."""
    return {f"KASCADE_SMTP_{key}": value for key, value in server.settings().items()}


def test_the_email_seeds_compile_with_their_alert_addresses(seeds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = kascade("compile", str(seeds / "beginner_hello_world.py"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    pipeline = yaml.safe_load((out / "hello-world.yaml").read_text())
    defaults = pipeline["spec"]["defaults"]
    assert defaults["email"] == ["alerts@company.com"]
    assert defaults["emailOnRetry"] is False and defaults["emailOnFailure"] is True


def test_email_seeds_succeed_and_send_nothing(seeds: Path, smtp_server: servers.SmtpServer) -> None:
    before = len(smtp_server.mailbox.messages)
    hello = run(seeds, "beginner_hello_world.py", "hello_world", env=smtp_env(smtp_server))
    assert states(hello) == {
        "say_hello": "success",
        "print_date": "success",
        "sleep_5_seconds": "success",
    }
    etl = run(seeds, "skill_customer_etl.py", "customer_etl_pipeline", env=smtp_env(smtp_server))
    assert states(etl) == {"extract": "success", "transform": "success", "load": "success"}
    assert etl["tasks"]["transform"]["outputs"] == {"return_value": {"transformed_rows": 1000}}
    assert len(smtp_server.mailbox.messages) == before  # nothing failed: no alert


def _no_wait(path: Path) -> None:
    """The test's only change to a seed: retries wait 0 s instead of 5 min (3 retries)."""
    text = path.read_text()
    text = text.replace("timedelta(minutes=5)", "timedelta(0)").replace(
        "timedelta(minutes=30)", "timedelta(0)"
    )
    path.write_text(text)


def test_a_failing_seed_task_alerts_its_email_once(
    seeds: Path, smtp_server: servers.SmtpServer
) -> None:
    _no_wait(seeds / "beginner_hello_world.py")
    shim = seeds.parent / "bin" / "sleep"  # a machine whose `sleep` is broken
    shim.write_text("#!/bin/sh\necho 'sleep: broken on this machine' >&2\nexit 3\n")
    shim.chmod(0o755)
    before = len(smtp_server.mailbox.messages)
    result = run(seeds, "beginner_hello_world.py", "hello_world", env=smtp_env(smtp_server))
    assert states(result)["sleep_5_seconds"] == "failed"
    assert result["tasks"]["sleep_5_seconds"]["attempts"] == 4  # retries: 3
    (mail,) = smtp_server.mailbox.wait_for(before + 1)[before:]
    assert mail.recipients == ("alerts@company.com",)
    assert "sleep_5_seconds failed" in mail.message["Subject"]
    assert "Try 4 out of 4" in mail.html() and "Exit code: 3" in mail.html()
    assert len(smtp_server.mailbox.messages) == before + 1  # email_on_retry=False


def test_a_failing_python_seed_task_alerts_its_email(
    seeds: Path, smtp_server: servers.SmtpServer
) -> None:
    path = seeds / "skill_customer_etl.py"
    _no_wait(path)
    path.write_text(
        path.read_text().replace(
            "return {'row_count': 1000}", "raise ValueError('the source database is down')"
        )
    )
    before = len(smtp_server.mailbox.messages)
    result = run(seeds, "skill_customer_etl.py", "customer_etl_pipeline", env=smtp_env(smtp_server))
    assert states(result) == {
        "extract": "failed",
        "transform": "upstream_failed",
        "load": "upstream_failed",
    }
    (mail,) = smtp_server.mailbox.wait_for(before + 1)[before:]
    assert mail.recipients == ("alerts@example.com",)
    assert "customer-etl-pipeline: extract failed" in mail.message["Subject"]
