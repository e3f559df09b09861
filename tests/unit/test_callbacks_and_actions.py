"""Issue 10 items 1-3 in the engine: email fields, the callback context, SLA blocking tasks,
webhook body templates, and the rules of the podless task kinds (sendEmail, triggerPipeline).

Pure: the engine is driven on a virtual clock; the drivers are tested elsewhere.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from helpers_engine import FAIL, T0, Recorder, engine, plan, run, scripted, task

from kascade.api.messaging import EmailTemplate, TriggerPipeline
from kascade.api.pipeline import NotificationEvent
from kascade.api.runs import AttemptReason, RunPhase
from kascade.engine import actions, addresses, callbacks
from kascade.engine.decisions import Fire, Result
from kascade.engine.validation import validate_document

DAY = timedelta(days=1)


def fires(rec: Recorder) -> list[Fire]:
    return [f for _, d in rec.decisions for f in d.notifications]


def hook(name: str, *events: str) -> dict[str, Any]:
    return {"name": name, "events": list(events), "hook": {"image": "x", "command": ["true"]}}


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {"defaults": {"image": "busybox"}, **spec},
    }


def problems(**spec: Any) -> list[str]:
    _, _, issues = validate_document(manifest(**spec))
    return [str(i) for i in issues]


# -- email fields --------------------------------------------------------------------------
def test_email_makes_a_notification_on_failure_and_retry_by_default() -> None:
    p = plan([task("a", email=["ops@example.com"])])
    (n,) = p.tasks[0].notifications
    assert n.events == [NotificationEvent.FAILURE, NotificationEvent.RETRY]
    assert n.email is not None and n.email.to == ["ops@example.com"]


def test_email_on_retry_false_as_the_seeds_write_it() -> None:
    p = plan([task("a", email=["ops@example.com"], emailOnRetry=False, retries=2)])
    assert [n.events for n in p.tasks[0].notifications] == [[NotificationEvent.FAILURE]]
    rec = run(p, {"a": FAIL})
    assert [(f.event, f.notification.name) for f in fires(rec)] == [("failure", "email")]


def test_email_with_both_flags_off_sends_nothing() -> None:
    p = plan([task("a", email=["o@x.io"], emailOnRetry=False, emailOnFailure=False)])
    assert p.tasks[0].notifications == ()


def test_defaults_email_reaches_every_task() -> None:
    p = plan([task("a"), task("b", "a")], defaults={"email": ["o@x.io"], "emailOnRetry": False})
    assert all(t.notifications[0].email for t in p.tasks)


# -- the callback context ------------------------------------------------------------------
def test_failure_context_has_what_airflow_callbacks_get() -> None:
    p = plan(
        [task("load", retries=1, retryDelay="1m", notifications=[hook("n", "retry", "failure")])]
    )
    eng = engine(p, {"region": "eu"})
    bad = Result(2, message="disk full")
    timeout = Result(None, reason=AttemptReason.TIMEOUT, message="timed out after 60.0s")
    rec = Recorder(eng, scripted({"load": [bad, timeout]}), duration=timedelta(seconds=7)).run()
    retry, failure = fires(rec)
    assert retry.event == "retry" and failure.event == "failure"
    r = retry.context
    assert (r["state"], r["try_number"], r["max_tries"]) == ("up_for_retry", 1, 2)
    assert (r["exit_code"], r["reason"], r["exception"]) == (2, "Error", "disk full")
    assert r["duration"] == 7.0
    assert r["task_id"] == "load" and r["task"] == {
        "id": "load",
        "map_index": None,
        "try_number": 1,
    }
    assert (
        r["run_id"] == "manual__1" and r["ds"] == "2026-01-01" and r["params"] == {"region": "eu"}
    )
    assert r["pipeline"] == {"name": "p", "namespace": "default"}
    assert r["log_url"] == ""
    f = failure.context
    assert (f["state"], f["try_number"], f["reason"]) == ("failed", 2, "Timeout")
    assert f["exception"] == "timed out after 60.0s" and f["exit_code"] is None
    # the second attempt's own duration, not the time since the first one started
    assert f["duration"] == 7.0
    assert f["start_date"] == (T0 + timedelta(seconds=7) + timedelta(minutes=1)).isoformat()


def test_success_context_and_run_context() -> None:
    p = plan(
        [task("a", notifications=[hook("t", "success")])],
        notifications=[hook("r", "success", "failure")],
    )
    rec = run(p, duration=timedelta(seconds=3))
    task_fire, run_fire = fires(rec)
    assert task_fire.context["state"] == "success" and task_fire.context["exception"] is None
    assert run_fire.task is None
    ctx = run_fire.context
    assert (ctx["state"], ctx["task_id"], ctx["duration"]) == ("success", None, 3.0)
    failed = fires(run(p, {"a": FAIL}))
    assert failed[-1].context["state"] == "failed"
    assert failed[-1].context["exception"] == "leaf task a ended failed (boom)"
    assert "(leaf task a ended failed (boom))" in failed[-1].message


def test_a_mapped_instance_context_has_its_index() -> None:
    p = plan([task("m", expand={"items": [1, 2]}, notifications=[hook("n", "failure")])])
    rec = run(p, {"m[1]": FAIL})
    (fire,) = fires(rec)
    assert fire.task == "m[1]" and fire.context["map_index"] == 1 and fire.context["task_id"] == "m"


# -- SLA misses list the blocking tasks ---------------------------------------------------------
def test_run_sla_miss_lists_the_unfinished_tasks() -> None:
    p = plan(
        [task("a"), task("slow", "a"), task("after", "slow")],
        sla="30m",
        notifications=[hook("n", "slaMiss")],
    )
    rec = Recorder(engine(p), scripted({}), durations={"slow": timedelta(hours=1)}).run(
        start=T0 + DAY
    )
    (miss,) = [m for _, d in rec.decisions for m in d.sla_misses]
    assert miss.blocking == ("slow", "after")
    (fire,) = fires(rec)
    assert fire.context["blocking_tasks"] == ["slow", "after"]
    assert fire.message == "run manual__1 missed its SLA (blocking: slow, after)"


def test_task_sla_miss_lists_itself_and_unfinished_upstream() -> None:
    p = plan(
        [
            task("slow"),
            task("side"),
            task("late", "slow", sla="1h", notifications=[hook("n", "slaMiss")]),
        ]
    )
    rec = Recorder(engine(p), scripted({}), durations={"slow": timedelta(hours=2)}).run(
        start=T0 + DAY
    )
    (fire,) = fires(rec)
    assert fire.context["blocking_tasks"] == ["slow", "late"]  # not "side": not upstream
    env = callbacks.hook_env(fire.context, fire.task)
    assert env["KASCADE_BLOCKING_TASKS"] == "slow,late" and env["KASCADE_EVENT"] == "slaMiss"


# -- what the drivers send -----------------------------------------------------------------------
CTX = {
    "event": "failure",
    "message": "load failed: <b>boom</b>",
    "state": "failed",
    "exception": "<b>boom</b>",
    "reason": "Error",
    "exit_code": 2,
    "try_number": 3,
    "max_tries": 3,
    "duration": 1.5,
    "task_id": "load",
    "map_index": None,
    "task": {"id": "load", "map_index": None, "try_number": 3},
    "blocking_tasks": [],
    "run_id": "manual__1",
    "ts": "2026-01-01T00:00:00+00:00",
    "ds": "2026-01-01",
    "pipeline": {"name": "etl", "namespace": "data"},
    "log_url": "https://ui.example/#/task/x",
    "params": {},
    "start_date": None,
    "end_date": None,
}


def test_default_webhook_body_is_slack_text() -> None:
    assert callbacks.render_body(None, CTX) == {"text": "[kascade] etl: load failed: <b>boom</b>"}


def test_slack_blocks_teams_and_pagerduty_bodies_render_every_string() -> None:
    text = "*{{ pipeline.name }}* {{ task_id }} try {{ try_number }}: <{{ log_url }}|log>"
    slack = {"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    assert callbacks.render_body(slack, CTX)["blocks"][0]["text"]["text"] == (
        "*etl* load try 3: <https://ui.example/#/task/x|log>"
    )
    pagerduty = {
        "routing_key": "R",
        "event_action": "trigger",
        "payload": {
            "summary": "{{ message }}",
            "severity": "error",
            "custom_details": {"exit_code": "{{ exit_code }}"},
        },
    }
    out = callbacks.render_body(pagerduty, CTX)
    assert out["payload"]["custom_details"] == {"exit_code": "2"}
    assert out["routing_key"] == "R"


def test_hook_env_carries_the_context() -> None:
    env = callbacks.hook_env(CTX, "load")
    assert env["KASCADE_TASK"] == "load" and env["KASCADE_STATE"] == "failed"
    assert env["KASCADE_EXIT_CODE"] == "2" and env["KASCADE_TRY_NUMBER"] == "3"
    assert env["KASCADE_LOG_URL"] == CTX["log_url"] and env["KASCADE_EXCEPTION"] == "<b>boom</b>"
    assert env["KASCADE_MAP_INDEX"] == "" and env["KASCADE_DURATION_SECONDS"] == "1.5"
    assert json.loads(env["KASCADE_CONTEXT"])["pipeline"] == {"name": "etl", "namespace": "data"}


def test_render_email_defaults_and_escaping() -> None:
    mail = callbacks.render_email(EmailTemplate(), CTX, default_to=["ops@example.com, b@x.io"])
    assert mail.to == ("ops@example.com", "b@x.io")
    assert mail.subject == "[kascade] etl: load failed: <b>boom</b>"
    assert "Try 3 out of 3" in mail.html and "Exit code: 2" in mail.html
    assert "&lt;b&gt;boom&lt;/b&gt;" in mail.html and "<b>boom</b>" not in mail.html
    assert "<a href='https://ui.example/#/task/x'>" in mail.html


def test_render_email_names_a_bad_recipient() -> None:
    template = EmailTemplate(to=["{{ params.to }}"])
    with pytest.raises(addresses.RecipientError, match=r"to\[0\]: 'nobody'"):
        callbacks.render_email(template, {**CTX, "params": {"to": "nobody"}})
    with pytest.raises(ValueError, match="no recipient"):
        callbacks.render_email(EmailTemplate(), CTX)


# -- the podless kinds -------------------------------------------------------------------------
def test_trigger_policy_defaults_and_verdict() -> None:
    policy = actions.TriggerPolicy.of(TriggerPipeline(pipeline="child", wait_for_completion=True))
    assert (policy.interval, policy.allowed, policy.failed) == (
        timedelta(seconds=60),
        ("success",),
        ("failed",),
    )
    assert [policy.verdict(p) for p in ("queued", "running", "success", "failed", None)] == [
        None,
        None,
        True,
        False,
        None,
    ]
    custom = actions.TriggerPolicy.of(
        TriggerPipeline(
            pipeline="c",
            wait_for_completion=True,
            allowed_states=["success", "failed"],
            failed_states=["queued"],
            poke_interval="5s",
        )
    )
    assert custom.verdict("failed") is True and custom.verdict("queued") is False
    assert custom.interval == timedelta(seconds=5)


def test_trigger_request_identity_and_dates() -> None:
    t = TriggerPipeline(pipeline=" child ", logical_date="2024-01-15", run_id="nightly")
    req = actions.trigger_request(t, namespace="ns", parent_run="r1", key="trig[2]", attempt=3)
    assert (req.pipeline, req.namespace, req.run_id) == ("child", "ns", "nightly")
    assert (
        req.logical_date is not None and req.logical_date.isoformat() == "2024-01-15T00:00:00+00:00"
    )
    assert req.origin == "ns/r1/trig[2]/3"
    with pytest.raises(ValueError, match="logicalDate"):
        actions.trigger_request(
            TriggerPipeline(pipeline="c", logical_date="soon"),
            namespace="n",
            parent_run="r",
            key="t",
            attempt=1,
        )
    assert actions.default_run_id(T0) == "triggered__2026-01-01T00:00:00+00:00"


def test_podless_tasks_are_launched_with_their_fields_rendered() -> None:
    p = plan(
        [
            task("count"),
            {
                "name": "mail",
                "dependsOn": ["count"],
                "sendEmail": {
                    "to": ["{{ params.to }}"],
                    "subject": "{{ ds }}: {{ tasks.count.outputs.n }} rows",
                    "html": "<p>{{ tasks.count.outputs.note }}</p>",
                },
            },
            {
                "name": "trig",
                "dependsOn": ["count"],
                "triggerPipeline": {
                    "pipeline": "child-{{ params.region }}",
                    "runId": "from-{{ run_id }}",
                    "logicalDate": "{{ ts }}",
                    "params": {"n": "{{ tasks.count.outputs.n }}", "k": [1]},
                    "waitForCompletion": True,
                    "pokeInterval": "10s",
                },
            },
        ]
    )
    outputs = Result(0, outputs={"n": 4, "note": "<i>fine</i>"})
    rec = run(p, {"count": outputs}, params={"to": "ops@example.com", "region": "eu"})
    assert rec.phase is RunPhase.SUCCESS
    (mail,) = rec.launched("mail")
    assert mail.spec.send_email is not None
    assert mail.spec.send_email.to == ["ops@example.com"]
    assert mail.spec.send_email.subject == "2026-01-01: 4 rows"
    assert mail.spec.send_email.html == "<p>&lt;i&gt;fine&lt;/i&gt;</p>"
    (trig,) = rec.launched("trig")
    t = trig.spec.trigger_pipeline
    assert t is not None and t.pipeline == "child-eu" and t.run_id == "from-manual__1"
    assert t.logical_date == "2026-01-01T00:00:00+00:00" and t.params == {"n": 4, "k": [1]}
    assert trig.trigger_policy is not None and trig.trigger_policy.interval == timedelta(seconds=10)
    assert not actions.runs_pod(trig.spec) and not actions.runs_pod(mail.spec)
    assert actions.runs_pod(p.tasks[0].spec)


def test_validation_of_the_new_fields() -> None:
    found = problems(
        defaults={"image": "busybox", "email": ["ops@example.com", "not-an-address"]},
        notifications=[
            {
                "name": "slack",
                "events": ["failure"],
                "webhook": {"url": "https://hooks.example.com/x", "body": {"text": "{{ nope }}"}},
            },
            {"name": "mail", "events": ["failure"], "email": {}},
        ],
        tasks=[
            {"name": "a", "command": ["true"]},
            {
                "name": "m",
                "dependsOn": ["a"],
                "sendEmail": {"to": ["x@example.com"]},
                "notifications": [
                    {"name": "e", "events": ["failure"], "email": {"subject": "{{ task.id }}"}}
                ],
            },
            {
                "name": "t",
                "command": ["x"],
                "sensor": {"kind": "command"},
                "triggerPipeline": {
                    "pipeline": "Bad_Name",
                    "allowedStates": ["failed"],
                    "failedStates": ["failed"],
                    "waitForCompletion": True,
                },
            },
            {
                "name": "u",
                "sendEmail": {"to": ["a@example.com"], "subject": "{{ tasks.m.outputs.x }}"},
            },
        ],
    )
    assert found == [
        "spec.notifications[0].webhook.body.text: unknown variable 'nope' in a notification "
        "(known: blocking_tasks, data_interval_end, data_interval_start, ds, ds_nodash, duration, "
        "end_date, event, exception, exit_code, log_url, logical_date, map_index, max_tries, "
        "message, params, pipeline, reason, run, run_id, start_date, state, task, task_id, "
        "try_number, ts, ts_nodash, ts_nodash_with_tz)",
        "spec.notifications[1].email.to: a run notification's e-mail needs recipients",
        "spec.defaults.email[1]: 'not-an-address' is not an e-mail address (expected name@domain)",
        "spec.tasks[1].sendEmail.subject: an e-mail task needs a subject",
        "spec.tasks[2].triggerPipeline.pipeline: 'Bad_Name' is not a pipeline name (a DNS name)",
        "spec.tasks[2].triggerPipeline.failedStates: failed is both allowed and failed",
        "spec.tasks[2].sensor: a triggerPipeline task cannot be a sensor too",
        "spec.tasks[2].command: a triggerPipeline task runs no container: remove command",
        "spec.tasks[3].sendEmail.subject: tasks.m is not upstream of 'u': add it to dependsOn",
    ]


def test_a_task_notification_email_takes_the_task_email() -> None:
    assert (
        problems(
            tasks=[
                {
                    "name": "a",
                    "command": ["true"],
                    "email": ["o@x.io"],
                    "notifications": [
                        {"name": "e", "events": ["success"], "email": {"subject": "done"}}
                    ],
                }
            ]
        )
        == []
    )
    assert problems(
        tasks=[
            {
                "name": "a",
                "command": ["true"],
                "notifications": [
                    {"name": "e", "events": ["success"], "email": {"subject": "done"}}
                ],
            }
        ]
    ) == [
        "spec.tasks[0].notifications[0].email.to: no recipient: set email.to, or the task's "
        "email (task 'a')"
    ]


def test_a_podless_task_needs_no_image() -> None:
    spec = {"tasks": [{"name": "t", "triggerPipeline": {"pipeline": "child"}}]}
    _, plan_, issues = validate_document({**manifest(), "spec": spec})
    assert issues == [] and plan_ is not None
