"""The SDK's e-mail, trigger and callback features: what they compile to, and how a Python
callback sees Airflow's context when a task fails (run locally, for real)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import yaml

from sdk_support import kascade, run_json

DAGS = """
from datetime import datetime, timedelta
from kascade.sdk import DAG, BashOperator, EmailOperator, SmtpNotifier, TriggerDagRunOperator, task

alert = SmtpNotifier(to=["oncall@example.com"], subject="{{ ti.task_id }} {{ ti.state }}")

with DAG("parent_dag", start_date=datetime(2024, 1, 1), smtp_secret="mail-relay",
         default_args={"email": "ops@example.com", "email_on_retry": False},
         on_failure_callback=alert):
    @task
    def count():
        return 3
    trig = TriggerDagRunOperator(
        task_id="run_child", trigger_dag_id="child_dag", conf={"n": count(), "tag": "x"},
        trigger_run_id="{{ run_id }}-child", logical_date="{{ ds }}", reset_dag_run=True,
        wait_for_completion=True, poke_interval=timedelta(seconds=5),
        allowed_states=["success"], failed_states=["failed", "queued"])
    to = ["a@example.com", "{{ params.x | default('b@example.com') }}"]
    mail = EmailOperator(task_id="tell", to=to, cc="c@example.com", subject="done {{ ds }}",
                         html_content="<p>ok</p>")
    trig >> mail

with DAG("child_dag", start_date=datetime(2024, 1, 1)):
    BashOperator(task_id="work", bash_command="true")
"""


def compiled(tmp_path: Path, source: str) -> dict[str, dict[str, Any]]:
    path = tmp_path / "dags.py"
    path.write_text(textwrap.dedent(source))
    out = tmp_path / "out"
    proc = kascade("compile", str(path), "-o", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    docs = [yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Pipeline"}


def test_email_trigger_and_notifier_compile_to_the_pipeline_fields(tmp_path: Path) -> None:
    parent = compiled(tmp_path, DAGS)["parent-dag"]
    spec = parent["spec"]
    assert spec["smtp"] == {"secret": "mail-relay"}
    assert spec["defaults"]["email"] == ["ops@example.com"]
    assert spec["defaults"]["emailOnRetry"] is False and "emailOnFailure" not in spec["defaults"]
    assert spec["notifications"] == [
        {
            "name": "dag-on-failure-callback",
            "events": ["failure"],
            "email": {"to": ["oncall@example.com"], "subject": "{{ task.id }} {{ state }}"},
        }
    ]
    tasks = {t["name"]: t for t in spec["tasks"]}
    assert tasks["run_child"]["triggerPipeline"] == {
        "pipeline": "child-dag",
        "runId": "{{ run_id }}-child",
        "logicalDate": "{{ ds }}",
        "params": {"n": "{{ tasks.count.outputs.return_value }}", "tag": "x"},
        "resetDagRun": True,
        "waitForCompletion": True,
        "pokeInterval": "5s",
        "allowedStates": ["success"],
        "failedStates": ["failed", "queued"],
    }
    assert tasks["run_child"]["dependsOn"] == ["count"]  # the XComArg in conf is an edge
    assert tasks["tell"]["sendEmail"] == {
        "to": ["a@example.com", "{{ params.x | default('b@example.com') }}"],
        "subject": "done {{ ds }}",
        "html": "<p>ok</p>",
        "cc": ["c@example.com"],
    }
    assert "image" not in tasks["tell"] and "command" not in tasks["tell"]


def test_a_python_callback_gets_airflows_context(tmp_path: Path) -> None:
    out = tmp_path / "context.json"
    source = f"""
    import json
    from datetime import datetime, timedelta
    from kascade.sdk import DAG, BashOperator

    def record(context):
        ti = context["ti"]
        facts = {{
            "exception": str(context["exception"]), "kind": type(context["exception"]).__name__,
            "reason": context["reason"], "try_number": ti.try_number, "max_tries": ti.max_tries,
            "state": ti.state, "duration": ti.duration, "log_url": ti.log_url,
            "task_id": ti.task_id, "exit_code": context["exit_code"],
            "started": ti.start_date is not None,
        }}
        with open({str(out)!r}, "w") as f:
            json.dump(facts, f)

    with DAG("cb", start_date=datetime(2024, 1, 1)):
        BashOperator(task_id="boom", bash_command="sleep 0.2; exit 4", retries=1,
                     retry_delay=timedelta(0), on_failure_callback=record)
    """
    path = tmp_path / "cb.py"
    path.write_text(textwrap.dedent(source))
    result = run_json(path, "--logical-date", "2024-01-15", home=tmp_path / "home")
    assert result["tasks"]["boom"]["state"] == "failed"
    facts = json.loads(out.read_text())
    assert facts["kind"] == "AirflowException"
    assert facts["exception"] == "exit code 4"
    assert (facts["reason"], facts["exit_code"]) == ("Error", 4)
    assert (facts["try_number"], facts["max_tries"], facts["state"]) == (2, 1, "failed")
    assert facts["task_id"] == "boom" and facts["started"]
    assert 0.2 <= facts["duration"] < 5
    assert facts["log_url"].startswith("file://") and facts["log_url"].endswith(
        "/logs/boom/attempt-2.log"
    )
