"""Every example runs in the local runner to the final states of manifests/examples/expected.yaml.

The e2e tier holds the operator to the same file, so both drivers of the engine
agree on every example. E-mail goes to a real SMTP server (aiosmtpd), whose
settings the runs get as the ``KASCADE_SMTP_*`` variables (on a cluster: the
Secret ``kascade-smtp``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

import servers
from example_cases import EXAMPLES, ROOT, cases, pipeline_of, service_setup, services


def with_services(
    path: Path, entry: dict[str, Any], tmp: Path, request: pytest.FixtureRequest
) -> tuple[Path, dict[str, str]]:
    """The file to run (with the Secrets of the servers it needs) and the environment
    (the object store for outputs); the file itself for a case that needs none."""
    wanted = services(entry)
    if not wanted:
        return path, {}
    postgres = request.getfixturevalue("postgres_server") if "postgres" in wanted else None
    s3 = request.getfixturevalue("s3_server") if {"s3", "store"} & set(wanted) else None
    ds = (entry.get("logicalDate") or datetime.now(UTC).isoformat())[:10]
    secrets, env = service_setup(entry, ds, postgres=postgres, s3=s3)
    copy = tmp / path.name
    copy.write_text(yaml.safe_dump_all([*secrets, *yaml.safe_load_all(path.read_text())]))
    return copy, env


def smtp_env(server: servers.SmtpServer) -> dict[str, str]:
    return {f"KASCADE_SMTP_{key}": value for key, value in server.settings().items()}


def run_example(
    case: str,
    entry: dict[str, Any],
    tmp_path: Path,
    smtp: servers.SmtpServer,
    request: pytest.FixtureRequest,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    path, extra_env = with_services(EXAMPLES / case.split("#")[0], entry, tmp_path, request)
    args = [sys.executable, "-m", "kascade", "run", str(path)]
    # The file's own documents (its Pools, the pipelines it triggers) come with it.
    args += ["--output", "json", "--workdir", str(tmp_path / "work")]
    if pipeline_of(case):
        args += ["--pipeline", str(pipeline_of(case))]
    if entry.get("logicalDate"):
        args += ["--logical-date", entry["logicalDate"]]
    for key, value in (entry.get("params") or {}).items():
        args += ["--param", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "operator"),
        "KASCADE_HOME": str(tmp_path / "home"),
        **smtp_env(smtp),
        **extra_env,
    }
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_example_runs_locally(
    case: str,
    entry: dict[str, Any],
    tmp_path: Path,
    smtp_server: servers.SmtpServer,
    request: pytest.FixtureRequest,
) -> None:
    run, proc = run_example(case, entry, tmp_path, smtp_server, request)
    states = {key: task["state"] for key, task in run["tasks"].items()}
    assert states == entry["tasks"], proc.stderr[-2000:]
    assert run["phase"] == entry["phase"]
    assert proc.returncode == (0 if entry["phase"] == "success" else 1)
    for task, attempts in (entry.get("attempts") or {}).items():
        assert run["tasks"][task]["attempts"] == attempts
    if "store" in services(entry):  # the example's large output went to the object store
        assert "kascade.io/ref" in json.dumps([t["outputs"] for t in run["tasks"].values()])


def test_the_email_example_sends_its_report_and_summary(
    tmp_path: Path, smtp_server: servers.SmtpServer, request: pytest.FixtureRequest
) -> None:
    entry = {
        "logicalDate": "2024-01-15T00:00:00+00:00",
        "params": {"recipient": f"r-{tmp_path.name}@example.com"},
    }
    before = len(smtp_server.mailbox.messages)
    run, _ = run_example("email-alerts.yaml", entry, tmp_path, smtp_server, request)
    assert run["phase"] == "success"
    mails = smtp_server.mailbox.wait_for(before + 2)[before:]
    by_subject = {m.message["Subject"]: m for m in mails}
    report = by_subject["Orders for 2024-01-15: 128"]
    assert report.recipients == (entry["params"]["recipient"], "leads@example.com")
    assert "128 orders, revenue 5120.5." in report.html()
    summary = by_subject["email-alerts 2024-01-15: success"]
    assert summary.recipients == ("leads@example.com",)


def test_the_trigger_example_runs_the_child_with_its_params(
    tmp_path: Path, smtp_server: servers.SmtpServer, request: pytest.FixtureRequest
) -> None:
    entry = {"logicalDate": "2024-01-15T00:00:00+00:00"}
    run, _ = run_example("trigger-pipeline.yaml", entry, tmp_path, smtp_server, request)
    assert run["tasks"]["process-partitions"]["outputs"] == {
        "trigger_run_id": "triggered__2024-01-15T00:00:00+00:00",
        "trigger_logical_date_iso": "2024-01-15T00:00:00+00:00",
    }
    child = tmp_path / "home" / "local-runs" / "trigger-pipeline-child"
    record = json.loads((child / "triggered__2024-01-15T00:00:00+00:00.json").read_text())
    assert record["phase"] == "success"
    log = next(child.glob("*/logs/process/attempt-1.log")).read_text()
    assert log.strip() == "processing 3 partitions of orders for 2024-01-15"
