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
from pathlib import Path
from typing import Any

import pytest

import servers
from example_cases import EXAMPLES, ROOT, cases, pipeline_of


def smtp_env(server: servers.SmtpServer) -> dict[str, str]:
    return {f"KASCADE_SMTP_{key}": value for key, value in server.settings().items()}


def run_example(
    case: str, entry: dict[str, Any], tmp_path: Path, smtp: servers.SmtpServer
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    args = [sys.executable, "-m", "kascade", "run", str(EXAMPLES / case.split("#")[0])]
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
    }
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.stdout, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc


@pytest.mark.parametrize(("case", "entry"), cases(), ids=[c for c, _ in cases()])
def test_example_runs_locally(
    case: str, entry: dict[str, Any], tmp_path: Path, smtp_server: servers.SmtpServer
) -> None:
    run, proc = run_example(case, entry, tmp_path, smtp_server)
    states = {key: task["state"] for key, task in run["tasks"].items()}
    assert states == entry["tasks"], proc.stderr[-2000:]
    assert run["phase"] == entry["phase"]
    assert proc.returncode == (0 if entry["phase"] == "success" else 1)
    for task, attempts in (entry.get("attempts") or {}).items():
        assert run["tasks"][task]["attempts"] == attempts


def test_the_email_example_sends_its_report_and_summary(
    tmp_path: Path, smtp_server: servers.SmtpServer
) -> None:
    entry = {
        "logicalDate": "2024-01-15T00:00:00+00:00",
        "params": {"recipient": f"r-{tmp_path.name}@example.com"},
    }
    before = len(smtp_server.mailbox.messages)
    run, _ = run_example("email-alerts.yaml", entry, tmp_path, smtp_server)
    assert run["phase"] == "success"
    mails = smtp_server.mailbox.wait_for(before + 2)[before:]
    by_subject = {m.message["Subject"]: m for m in mails}
    report = by_subject["Orders for 2024-01-15: 128"]
    assert report.recipients == (entry["params"]["recipient"], "leads@example.com")
    assert "128 orders, revenue 5120.5." in report.html()
    summary = by_subject["email-alerts 2024-01-15: success"]
    assert summary.recipients == ("leads@example.com",)


def test_the_trigger_example_runs_the_child_with_its_params(
    tmp_path: Path, smtp_server: servers.SmtpServer
) -> None:
    entry = {"logicalDate": "2024-01-15T00:00:00+00:00"}
    run, _ = run_example("trigger-pipeline.yaml", entry, tmp_path, smtp_server)
    assert run["tasks"]["process-partitions"]["outputs"] == {
        "trigger_run_id": "triggered__2024-01-15T00:00:00+00:00",
        "trigger_logical_date_iso": "2024-01-15T00:00:00+00:00",
    }
    child = tmp_path / "home" / "local-runs" / "trigger-pipeline-child"
    record = json.loads((child / "triggered__2024-01-15T00:00:00+00:00.json").read_text())
    assert record["phase"] == "success"
    log = next(child.glob("*/logs/process/attempt-1.log")).read_text()
    assert log.strip() == "processing 3 partitions of orders for 2024-01-15"
