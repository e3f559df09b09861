"""The operator's podless tasks and e-mail, through the World over an in-memory Kube.

A trigger task makes exactly one PipelineRun even when the operator restarts in the
middle (the run is found again by its name and origin), waits for it by its phase,
and ``resetDagRun`` replaces only a run someone else made. E-mail goes to a real
SMTP server (aiosmtpd, tests/servers) with the settings of the pipeline's Secret; a
server that refuses never blocks the run and is reported as Events and a metric.
The e2e tier runs the same code against a real API server.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from fake_kube import FakeKube

import servers
from kascade import metrics
from kascade.controller.actions import ORIGIN_ANNOTATION
from kascade.controller.world import World

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
Events = list[tuple[str, str, str]]


def _pipeline(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": spec,
    }


def _run(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kascade.io/v1alpha1",
        "kind": "PipelineRun",
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pipelineRef": {"name": "parent"},
            "pipelineSpec": spec,
            "logicalDate": "2026-01-15T00:00:00Z",
        },
    }


CHILD = {"defaults": {"image": "busybox:1.36"}, "tasks": [{"name": "w", "command": ["true"]}]}


def _parent(**trigger: Any) -> dict[str, Any]:
    return {
        "tasks": [
            {
                "name": "trig",
                "triggerPipeline": {"pipeline": "child", "logicalDate": "{{ ts }}", **trigger},
            }
        ]
    }


async def _until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def _world(kube: FakeKube, events: Events | None = None) -> World:
    def emit(obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        if events is not None:
            events.append((kind, reason, message))

    return World(kube, emit, clock=lambda: NOW)


def _phase(kube: FakeKube, name: str) -> str | None:
    return ((kube.get("pipelineruns", "ns", name) or {}).get("status") or {}).get("phase")


def _triggered(kube: FakeKube) -> list[dict[str, Any]]:
    return [
        r
        for r in kube.list_objects("pipelineruns", "ns")
        if (r["metadata"].get("annotations") or {}).get(ORIGIN_ANNOTATION)
    ]


def _go(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_trigger_makes_one_run_and_waits_for_its_phase() -> None:
    kube = FakeKube()
    kube.create("pipelines", "ns", _pipeline("child", CHILD))
    spec = _parent(waitForCompletion=True, pokeInterval="0.05s", params={"n": 3})

    async def scenario() -> None:
        world = _world(kube)
        body = kube.create("pipelineruns", "ns", _run("r", spec))
        assert body is not None
        await world.on_run("ADDED", body)
        await _until(lambda: len(_triggered(kube)) == 1)
        (child,) = _triggered(kube)
        assert child["metadata"]["name"] == "child-from-r-trig-a1-" + child["metadata"]["name"][-6:]
        assert child["metadata"]["annotations"][ORIGIN_ANNOTATION] == "ns/r/trig/1"
        assert child["spec"]["trigger"] == {"kind": "triggered", "by": "ns/r/trig"}
        assert child["spec"]["logicalDate"] == "2026-01-15T00:00:00+00:00"
        assert child["spec"]["params"] == {"n": 3}
        assert child["spec"]["pipelineRef"] == {"name": "child"}  # frozen when it starts
        await asyncio.sleep(0.2)
        assert _phase(kube, "r") != "success"  # still waiting for the child
        kube.patch_status("pipelineruns", "ns", child["metadata"]["name"], {"phase": "success"})
        await _until(lambda: _phase(kube, "r") == "success")
        tr = kube.get("taskruns", "ns", "r-trig")
        assert tr is not None
        assert tr["status"]["outputs"] == {
            "trigger_run_id": "triggered__2026-01-15T00:00:00+00:00",
            "trigger_logical_date_iso": "2026-01-15T00:00:00+00:00",
        }
        assert [a.get("podName") for a in tr["status"]["attempts"]] == [None]

    _go(scenario)


def test_a_failed_triggered_run_fails_the_task_and_its_retry_triggers_again() -> None:
    kube = FakeKube()
    kube.create("pipelines", "ns", _pipeline("child", CHILD))
    spec = _parent(waitForCompletion=True, pokeInterval="0.05s")
    spec["tasks"][0].update(retries=1, retryDelay="0s")

    async def scenario() -> None:
        world = _world(kube)
        body = kube.create("pipelineruns", "ns", _run("r", spec))
        assert body is not None
        await world.on_run("ADDED", body)
        for attempt in (1, 2):
            await _until(lambda n=attempt: len(_triggered(kube)) == n)  # type: ignore[misc]
            newest = next(r for r in _triggered(kube) if r["metadata"]["annotations"][
                ORIGIN_ANNOTATION] == f"ns/r/trig/{attempt}")  # fmt: skip
            kube.patch_status("pipelineruns", "ns", newest["metadata"]["name"], {"phase": "failed"})
            if attempt == 1:  # the retry is due at once (retryDelay 0s)
                await _until(lambda: kube.get("taskruns", "ns", "r-trig") is not None)
                await asyncio.sleep(0.1)
                await world.drivers[("ns", "r")].tick(NOW)
        await _until(lambda: _phase(kube, "r") == "failed")
        tr = kube.get("taskruns", "ns", "r-trig")
        assert tr is not None
        attempts = tr["status"]["attempts"]
        assert [a["reason"] for a in attempts] == ["ActionFailed", "ActionFailed"]
        assert "of child is failed" in attempts[-1]["message"]

    _go(scenario)


def test_an_operator_restart_mid_wait_follows_the_same_run() -> None:
    kube = FakeKube()
    kube.create("pipelines", "ns", _pipeline("child", CHILD))
    spec = _parent(waitForCompletion=True, pokeInterval="0.05s")

    async def scenario() -> None:
        first = _world(kube)
        body = kube.create("pipelineruns", "ns", _run("r", spec))
        assert body is not None
        await first.on_run("ADDED", body)
        await _until(lambda: len(_triggered(kube)) == 1)
        await first.drivers[("ns", "r")].flush()
        tr = kube.get("taskruns", "ns", "r-trig")
        assert tr is not None and tr["status"]["state"] == "running"
        assert tr["status"]["attempts"] == [
            {"number": 1, "podName": None, "startTime": "2026-05-01T12:00:00Z", "endTime": None,
             "exitCode": None, "reason": None, "message": None, "poke": None,
             "logArchived": None, "logArchiveMessage": None}
        ]  # fmt: skip
        # The operator dies here (its tasks stop with it); a new one starts from the API.
        first.drivers[("ns", "r")].stop()
        second = _world(kube)
        stored = kube.get("pipelineruns", "ns", "r")
        assert stored is not None
        await second.on_run("ADDED", copy.deepcopy(stored))
        await asyncio.sleep(0.2)
        assert len(_triggered(kube)) == 1  # exactly one run, followed again
        (child,) = _triggered(kube)
        kube.patch_status("pipelineruns", "ns", child["metadata"]["name"], {"phase": "success"})
        await _until(lambda: _phase(kube, "r") == "success")
        creates = [w for w in kube.writes if w[:2] == ("create", "pipelineruns") and w[2] != "r"]
        assert len(creates) == 1  # the restarted attempt found it without creating again

    _go(scenario)


def test_run_id_collisions_fail_unless_reset() -> None:
    kube = FakeKube()
    kube.create("pipelines", "ns", _pipeline("child", CHILD))
    someone = copy.deepcopy(_run("child-nightly", CHILD))
    someone["spec"]["pipelineRef"] = {"name": "child"}
    kube.create("pipelineruns", "ns", someone)

    async def scenario() -> None:
        world = _world(kube)
        plain = kube.create("pipelineruns", "ns", _run("r1", _parent(runId="nightly")))
        assert plain is not None
        await world.on_run("ADDED", plain)
        await _until(lambda: _phase(kube, "r1") == "failed")
        tr = kube.get("taskruns", "ns", "r1-trig")
        assert tr is not None and "exists already (set resetDagRun" in tr["status"]["message"]
        reset = kube.create(
            "pipelineruns", "ns", _run("r2", _parent(runId="nightly", resetDagRun=True))
        )
        assert reset is not None
        await world.on_run("ADDED", reset)
        await _until(lambda: _phase(kube, "r2") == "success")
        replaced = kube.get("pipelineruns", "ns", "child-nightly")
        assert replaced is not None
        assert replaced["metadata"]["annotations"][ORIGIN_ANNOTATION] == "ns/r2/trig/1"
        assert replaced["spec"]["runId"] == "nightly"
        assert ("delete", "pipelineruns", "child-nightly", None) in kube.writes

    _go(scenario)


def test_a_missing_pipeline_fails_the_task_with_why() -> None:
    kube = FakeKube()

    async def scenario() -> None:
        world = _world(kube)
        body = kube.create("pipelineruns", "ns", _run("r", _parent()))
        assert body is not None
        await world.on_run("ADDED", body)
        await _until(lambda: _phase(kube, "r") == "failed")
        tr = kube.get("taskruns", "ns", "r-trig")
        assert tr is not None and tr["status"]["message"] == "pipeline ns/child not found"

    _go(scenario)


# -- e-mail ---------------------------------------------------------------------------------
MAIL_SPEC = {
    "defaults": {"image": "busybox:1.36", "email": ["ops@example.com"], "emailOnRetry": False},
    "tasks": [
        {"name": "report", "sendEmail": {"to": ["team@example.com"], "subject": "Report {{ ds }}",
                                         "html": "<b>{{ run_id }}</b>"}},
        {"name": "broken", "command": ["false"]},
    ],
}  # fmt: skip


def _smtp_secret(kube: FakeKube, settings: dict[str, str]) -> None:
    secret = {"metadata": {"name": "kascade-smtp", "namespace": "ns"}, "stringData": settings}
    kube.create("secrets", "ns", secret)


def _fail_pod(kube: FakeKube, name: str) -> dict[str, Any]:
    pod = kube.get("pods", "ns", name)
    assert pod is not None
    pod["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"name": "task", "state": {"terminated": {"exitCode": 1}}}],
    }
    return pod


def test_email_task_and_failure_alert_reach_the_smtp_server(
    smtp_server: servers.SmtpServer,
) -> None:
    kube = FakeKube()
    _smtp_secret(kube, smtp_server.settings())
    events: Events = []
    before = len(smtp_server.mailbox.messages)

    async def scenario() -> None:
        world = _world(kube, events)
        body = kube.create("pipelineruns", "ns", _run("mail-run", MAIL_SPEC))
        assert body is not None
        await world.on_run("ADDED", body)
        await world.on_pod("MODIFIED", _fail_pod(kube, "mail-run-broken-a1"))
        await _until(lambda: _phase(kube, "mail-run") == "failed")
        await asyncio.to_thread(smtp_server.mailbox.wait_for, before + 2)
        # The Event follows the server's answer: wait for it, not only for the mail.
        await _until(lambda: len([e for e in events if e[1] == "EmailSent"]) >= 2, 30)

    _go(scenario)
    got = {m.recipients: m for m in smtp_server.mailbox.messages[before:]}
    report = got[("team@example.com",)]
    assert report.message["Subject"] == "Report 2026-01-15"
    assert report.html().strip() == "<b>manual__2026-01-15T00:00:00+00:00</b>"
    alert = got[("ops@example.com",)]
    assert alert.message["Subject"] == "[kascade] parent: broken failed: exit code 1 (Error)"
    assert "Exit code: 1" in alert.html() and "Try 1 out of 1" in alert.html()
    assert [e[1] for e in events if e[1].startswith("Email")] == ["EmailSent", "EmailSent"]


def test_a_refusing_smtp_server_never_blocks_the_run(
    monkeypatch: pytest.MonkeyPatch, smtp_server: servers.SmtpServer
) -> None:
    monkeypatch.setenv("KASCADE_EMAIL_RETRY_DELAYS", "0.05,0.05")
    kube = FakeKube()
    port = servers.free_port(("127.0.0.1",))  # nothing listens there
    _smtp_secret(kube, smtp_server.settings(port=str(port)))
    events: Events = []
    spec = {**MAIL_SPEC, "tasks": MAIL_SPEC["tasks"][1:]}
    failed = metrics.EMAILS.labels("ns", "parent", "failed")
    retried = metrics.EMAILS.labels("ns", "parent", "retried")
    counts = failed._value.get(), retried._value.get()

    async def scenario() -> None:
        world = _world(kube, events)
        body = kube.create("pipelineruns", "ns", _run("r", spec))
        assert body is not None
        await world.on_run("ADDED", body)
        await world.on_pod("MODIFIED", _fail_pod(kube, "r-broken-a1"))
        await _until(lambda: _phase(kube, "r") == "failed")
        assert not any(e[1] == "EmailFailed" for e in events)  # the run did not wait
        await _until(lambda: any(e[1] == "EmailFailed" for e in events))

    _go(scenario)
    reasons = [e[1] for e in events if e[1].startswith("Email")]
    assert reasons == ["EmailRetrying", "EmailRetrying", "EmailFailed"]
    assert "ConnectionRefusedError" in next(e[2] for e in events if e[1] == "EmailFailed")
    assert (failed._value.get(), retried._value.get()) == (counts[0] + 1, counts[1] + 2)


def test_an_email_task_fails_when_the_smtp_secret_is_missing() -> None:
    kube = FakeKube()
    spec = {"tasks": [MAIL_SPEC["tasks"][0]]}

    async def scenario() -> None:
        world = _world(kube)
        body = kube.create("pipelineruns", "ns", _run("r", spec))
        assert body is not None
        await world.on_run("ADDED", body)
        await _until(lambda: _phase(kube, "r") == "failed")
        tr = kube.get("taskruns", "ns", "r-report")
        assert tr is not None
        assert tr["status"]["message"] == "e-mail not sent: Secret ns/kascade-smtp not found"

    _go(scenario)


def test_the_smtp_secret_is_read_only_within_the_approval(
    monkeypatch: pytest.MonkeyPatch, smtp_server: servers.SmtpServer
) -> None:
    from kascade.controller import approval
    from kascade.controller.mailing import Mailer
    from kascade.engine.callbacks import RenderedEmail

    key = b"k" * 32
    monkeypatch.setattr(approval, "POLICY", approval.Policy(required=True, key=key))
    kube = FakeKube()
    _smtp_secret(kube, smtp_server.settings())
    events: Events = []
    email = RenderedEmail(("a@example.com",), (), (), "s", "<p>h</p>")

    def mailer(grants: list[str]) -> Mailer:
        signed = approval.sign(key, "ns", {"tasks": []}, "alice", grants)
        run = {"metadata": {"name": "r", "namespace": "ns",
                            "annotations": {approval.ANNOTATION: signed}}}  # fmt: skip
        return Mailer(kube, run, "p", "kascade-smtp", lambda *e: events.append(e[1:]), ())

    why = asyncio.run(mailer(["secret:other"]).send(email, "id-1", "alert"))
    assert why == (
        "the approval of this spec does not cover reading Secret 'kascade-smtp' "
        "(apply the pipeline again with the admission webhook on)"
    )
    assert events[-1][:2] == ("Warning", "EmailFailed")
    before = len(smtp_server.mailbox.messages)
    assert asyncio.run(mailer(["secret:kascade-smtp"]).send(email, "id-2", "alert")) is None
    assert len(smtp_server.mailbox.wait_for(before + 1)) == before + 1
