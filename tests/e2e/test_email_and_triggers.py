"""E-mail and trigger tasks on the real cluster, with a real SMTP server (aiosmtpd).

- E-mail: the operator reads the pipeline's SMTP Secret and delivers an alert (with
  the callback context and a link to the UI) and a ``sendEmail`` task's message to a
  STARTTLS server with a login; what arrived is asserted.
- A mail server that refuses never blocks the run: the run ends at once, and the
  failures show as Events and in ``kascade_emails_total``.
- A trigger task that waits for the run it made, across a hard kill of the operator in
  the middle: exactly one triggered run exists, and the task succeeds with it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

import servers

from .conftest import kubeconfig_path, wait_until
from .operator_support import Kascade, operator_namespace, pipeline

pytestmark = pytest.mark.e2e
UI = "https://kascade.example.test"


@pytest.fixture(scope="module")
def env(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kascade]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with operator_namespace(cluster, kubeconfig_path(), "mail", log) as k:
        # The operator runs on this machine: it reaches the SMTP server on loopback.
        k.operator.kill()
        k.operator.extra_env.update({"KASCADE_UI_URL": UI, "KASCADE_EMAIL_RETRY_DELAYS": "1,1"})
        k.operator.start()
        yield k


def secret(k: Kascade, name: str, data: dict[str, str]) -> None:
    encoded = {key: base64.b64encode(v.encode()).decode() for key, v in data.items()}
    k.core.create_namespaced_secret(
        k.ns, client.V1Secret(metadata=client.V1ObjectMeta(name=name), data=encoded)
    )


def events(k: Kascade, name: str) -> list[tuple[str, str]]:
    found = k.core.list_namespaced_event(k.ns, field_selector=f"involvedObject.name={name}")
    return [(e.reason, e.message) for e in found.items]


def test_alerts_and_email_tasks_reach_the_smtp_server(
    env: Kascade, smtp_starttls_server: servers.SmtpServer
) -> None:
    secret(env, "kascade-smtp", smtp_starttls_server.settings())
    mailbox = smtp_starttls_server.mailbox
    before = len(mailbox.messages)
    env.apply_pipeline(
        pipeline(
            "mailer",
            [
                {"name": "count", "command": ["sh", "-c", 'echo "rows=42" > $KASCADE_OUTPUTS']},
                {
                    "name": "report",
                    "dependsOn": ["count"],
                    "sendEmail": {
                        "to": ["team@example.com"],
                        "subject": "Report {{ ds }}: {{ tasks.count.outputs.rows }} rows",
                        "html": "<p>{{ tasks.count.outputs.rows }} rows, run {{ run_id }}</p>",
                    },
                },
                {
                    "name": "broken",
                    "command": ["sh", "-c", "echo disk full >&2; exit 3"],
                    "email": ["oncall@example.com"],
                    "emailOnRetry": False,
                },
            ],
        )
    )
    name = env.create_run("mailer", logical_date="2024-01-15T00:00:00+00:00")
    run = env.wait_run(name)
    assert env.task_states(run) == {"count": "success", "report": "success", "broken": "failed"}
    got = {m.recipients: m for m in mailbox.wait_for(before + 2, timeout=60)[before:]}
    report = got[("team@example.com",)]
    assert report.message["Subject"] == "Report 2024-01-15: 42 rows"
    assert "42 rows, run manual__2024-01-15T00:00:00+00:00" in report.html()
    assert report.tls and report.authenticated_as == smtp_starttls_server.user
    alert = got[("oncall@example.com",)]
    assert alert.message["Subject"] == "[kascade] mailer: broken failed: exit code 3 (Error)"
    html = alert.html()
    assert "Try 1 out of 1" in html and "Exit code: 3" in html and "State: failed" in html
    assert f"{UI}/#/task/{env.ns}/{name}/broken" in html
    assert ("EmailSent", "task report: sent to team@example.com") in events(env, name)
    report_tr = env.get("taskruns", f"{name}-report")
    assert report_tr["status"]["attempts"][0].get("podName") is None  # no pod ran
    assert not [p for p in env.core.list_namespaced_pod(env.ns).items
                if p.metadata.name.startswith(f"{name}-report")]  # fmt: skip


def test_a_refusing_smtp_server_never_blocks_the_run(env: Kascade) -> None:
    port = servers.free_port(("127.0.0.1",))  # nothing listens there
    secret(env, "dead-smtp", {"host": "127.0.0.1", "port": str(port), "security": "none",
                              "from": "kascade@example.test"})  # fmt: skip
    env.apply_pipeline(
        pipeline(
            "dead-mail",
            [{"name": "fails", "command": ["false"], "email": ["oncall@example.com"]}],
            smtp={"secret": "dead-smtp"},
        )
    )
    started = time.monotonic()
    name = env.create_run("dead-mail")
    run = env.wait_run(name, timeout=90)
    assert run["status"]["phase"] == "failed"
    ended = time.monotonic() - started
    reasons = wait_until(
        lambda: (r := [e[0] for e in events(env, name)]) and "EmailFailed" in r and r,
        timeout=60,
        what="EmailFailed",
    )
    assert reasons.count("EmailRetrying") == 2  # KASCADE_EMAIL_RETRY_DELAYS=1,1
    (failed,) = [m for r, m in events(env, name) if r == "EmailFailed"]
    assert "ConnectionRefusedError" in failed and "notification email (failure of fails)" in failed
    assert "password" not in failed.lower()
    metrics = env.operator.metrics()
    for outcome, at_least in (("retried", 2), ("failed", 1)):
        line = next(
            m for m in metrics.splitlines()
            if m.startswith("kascade_emails_total{") and 'pipeline="dead-mail"' in m
            and f'outcome="{outcome}"' in m
        )  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) >= at_least
    assert ended < 60, f"the run took {ended:.0f}s"


def test_trigger_with_wait_makes_one_run_across_an_operator_restart(env: Kascade) -> None:
    env.apply_object(
        pipeline(
            "slow-child",
            [{"name": "work", "command": ["sh", "-c", "sleep 20; echo n={{ params.n }}"]}],
            params={"n": {"type": "integer", "default": 0}},
        )
    )
    env.apply_pipeline(
        pipeline(
            "parent",
            [
                {"name": "count", "command": ["sh", "-c", 'echo "n=7" > $KASCADE_OUTPUTS']},
                {
                    "name": "trig",
                    "dependsOn": ["count"],
                    "triggerPipeline": {
                        "pipeline": "slow-child",
                        "params": {"n": "{{ tasks.count.outputs.n }}"},
                        "waitForCompletion": True,
                        "pokeInterval": "2s",
                    },
                },
            ],
        )
    )
    name = env.create_run("parent")

    def triggered() -> list[dict[str, Any]]:
        return env.list("pipelineruns", f"kascade.io/triggered-by={name}")

    wait_until(triggered, timeout=90, what="the triggered run")
    env.operator.kill(hard=True)  # mid-task: the child is running, the parent waits
    env.operator.start()
    run = env.wait_run(name, timeout=180)
    assert env.task_states(run) == {"count": "success", "trig": "success"}
    (child,) = triggered()
    assert child["status"]["phase"] == "success"
    assert child["spec"]["params"] == {"n": 7}
    assert child["metadata"]["annotations"]["kascade.io/trigger-origin"] == (
        f"{env.ns}/{name}/trig/1"
    )
    tr = env.get("taskruns", f"{name}-trig")
    assert [a["number"] for a in tr["status"]["attempts"]] == [1]
    assert tr["status"]["outputs"]["trigger_run_id"].startswith("triggered__")
