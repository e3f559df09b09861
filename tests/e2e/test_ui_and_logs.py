"""The web UI in a real browser, and ``kascade logs``/``get``, on the real cluster.

A real operator runs the pipeline; the UI server runs with its own read-only
ServiceAccount and acts as each person (bearer tokens of ServiceAccounts bound to
the chart's viewer/operator roles). Screenshots of each view are saved under
build/test-artifacts/ui/ (``KASCADE_UI_DOC_SHOTS=1`` also refreshes docs/ui/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import kubeconfig_path, wait_until
from .operator_support import ROOT, Kascade, operator_namespace, pipeline
from .ui_support import (
    Identities,
    chart_roles,
    chromium,
    kubeconfig_for,
    require_browser,
    shoot,
    ui_server,
)

pytestmark = pytest.mark.e2e

DEMO = pipeline(
    "demo",
    [
        {
            "name": "start",
            "script": 'echo "{{ params.greeting }} from start"; echo "n=1" >> "$KASCADE_OUTPUTS"',
        },
        {
            "name": "slow",
            "dependsOn": ["start"],
            "script": "for i in $(seq 1 10); do echo tick $i; sleep 1; done",
        },
        {"name": "fails", "dependsOn": ["start"], "script": "echo about to fail; exit 3"},
        {
            "name": "end",
            "dependsOn": ["slow", "fails"],
            "triggerRule": "all_done",
            "command": ["echo", "done"],
        },
    ],
    schedule="@daily",
    tags=["demo", "ui"],
    params={
        "greeting": {"type": "string", "default": "hello", "description": "what to say"},
        "count": {"type": "integer", "default": 2, "minimum": 1, "maximum": 5},
    },
    groups=[
        {
            "name": "etl",
            "dependsOn": ["start"],
            "tasks": [
                {"name": "extract", "command": ["echo", "extract"]},
                {
                    "name": "load",
                    "dependsOn": ["extract"],
                    "expand": {"items": [1, 2, 3]},
                    "command": ["echo", "load"],
                },
            ],
        }
    ],
)


@dataclass
class Env:
    k: Kascade
    base: str
    tokens: dict[str, str]
    browser: Any


@pytest.fixture(scope="module")
def env(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    sync_api = require_browser()
    roles = chart_roles()
    tmp = tmp_path_factory.mktemp("ui")
    with operator_namespace(cluster, kubeconfig_path(), "ui", tmp / "operator.log") as k:
        ids = Identities(cluster.api, k.ns)
        try:
            server_token = ids.create("kascade-ui", roles["ui"])
            ids.allow_reviews("kascade-ui")
            tokens = {
                "viewer": ids.create("viewer", roles["pipeline-viewer"]),
                "steerer": ids.create("steerer", roles["pipeline-operator"]),
            }
            k.apply_pipeline(DEMO, suspend=False)
            config = kubeconfig_for(kubeconfig_path(), server_token, tmp / "ui-kubeconfig")
            log = tmp / "ui.log"
            with ui_server(config, k.ns, log, "--auth", "token") as base, chromium(sync_api) as b:
                yield Env(k, base, tokens, b)
            print(log.read_text()[-4000:])
        finally:
            ids.cleanup()


def page_as(env: Env, who: str) -> Any:
    """A page whose requests carry ``who``'s bearer token (as an auth proxy would send it)."""
    context = env.browser.new_context(
        viewport={"width": 1280, "height": 800},
        extra_http_headers={"Authorization": f"Bearer {env.tokens[who]}"},
    )
    page = context.new_page()
    page.on("console", lambda m: CONSOLE.append(f"{who} {m.type}: {m.text}"))
    page.on("pageerror", lambda e: CONSOLE.append(f"{who} pageerror: {e}"))
    return page


CONSOLE: list[str] = []
"""Browser console lines, printed when a test fails (pytest shows captured output)."""


@pytest.fixture(autouse=True)
def _console() -> Iterator[None]:
    CONSOLE.clear()
    yield
    print("\n".join(CONSOLE[-50:]))


def last_run(env: Env) -> dict[str, Any]:
    runs = [r for r in env.k.list("pipelineruns") if r["spec"]["trigger"]["kind"] == "manual"]
    return max(runs, key=lambda r: r["metadata"]["creationTimestamp"] + r["metadata"]["name"])


def flash_text(page: Any, kind: str) -> str:
    page.wait_for_selector(f"#flash .{kind}", timeout=30_000)
    return str(page.inner_text(f"#flash .{kind}"))


def trigger_in_ui(page: Any, env: Env, greeting: str) -> str:
    page.goto(f"{env.base}/#/pipeline/{env.k.ns}/demo/grid")
    page.click("#trigger")
    page.fill("#param-greeting", greeting)
    page.click("#trigger-form button[type=submit]")
    message = flash_text(page, "ok")
    assert "created" in message, message
    return message.split("pipelinerun/", 1)[1].split()[0]


def test_trigger_with_a_param_and_watch_a_task_go_green_live(env: Env) -> None:
    page = page_as(env, "steerer")
    page.goto(f"{env.base}/#/")
    page.wait_for_selector(f"tr[data-pipeline='{env.k.ns}/demo']")
    shoot(page, "pipelines", docs=True)
    run = trigger_in_ui(page, env, "bonjour")
    page.evaluate("window.__sameDocument = true")
    body = env.k.get("pipelineruns", run)
    assert body["spec"]["params"] == {"greeting": "bonjour", "count": 2}  # typed
    assert body["spec"]["trigger"]["by"] == "system:serviceaccount:" + env.k.ns + ":steerer"
    # The grid's newest column is the new run; its `slow` cell turns green without a reload.
    cell = "#grid [data-task='slow'][data-col]:last-of-type"
    page.wait_for_selector(f"#grid .hd .bar[data-run='{run}']", timeout=30_000)
    col = page.get_attribute(f"#grid .bar[data-run='{run}']", "data-col")
    cell = f"#grid [data-task='slow'][data-col='{col}']"
    assert "s-success" not in (page.get_attribute(cell, "class") or "")
    shoot(page, "grid-running")
    page.wait_for_selector(f"{cell}.s-success", timeout=120_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page.wait_for_selector(f"#grid [data-task='fails'][data-col='{col}'].s-failed", timeout=60_000)
    shoot(page, "grid", docs=True)


def test_views_and_the_log_streamed_while_the_pod_runs(env: Env) -> None:
    page = page_as(env, "steerer")
    run = trigger_in_ui(page, env, "hola")

    page.goto(f"{env.base}/#/task/{env.k.ns}/{run}/slow")  # before its pod exists
    page.wait_for_selector("#log-status:has-text('streaming')", timeout=90_000)
    page.wait_for_selector("#log:has-text('tick 2')", timeout=60_000)
    assert "tick 10" not in page.inner_text("#log")  # streamed while it runs, not at the end
    page.wait_for_selector("#log:has-text('tick 10')", timeout=60_000)
    page.wait_for_selector("#task-title .s-success", timeout=60_000)
    assert page.inner_text("#attempts-table").count(f"{run}-slow-a1") == 1
    assert "seq 1 10" in page.inner_text("#rendered-json")
    shoot(page, "task", docs=True)
    page.goto(f"{env.base}/#/task/{env.k.ns}/{run}/start")
    page.wait_for_selector("#log:has-text('hola from start')", timeout=60_000)
    assert '"n": 1' in page.inner_text("#outputs-json")
    assert 'echo \\"hola from start\\"' in page.inner_text("#rendered-json")  # templated
    env.k.wait_run(run)
    page.goto(f"{env.base}/#/run/{env.k.ns}/{run}")
    page.wait_for_selector("#tasks tr[data-key='fails'] .s-failed", timeout=60_000)
    page.wait_for_selector("#gantt-svg rect")
    shoot(page, "run", docs=True)
    for tab in ("graph", "schedule", "params", "yaml"):
        page.goto(f"{env.base}/#/pipeline/{env.k.ns}/demo/{tab}")
        selector = {"graph": "#graph-svg", "schedule": "#next-runs", "params": "#params"}
        page.wait_for_selector(selector.get(tab, "#yaml"))
        shoot(page, f"pipeline-{tab}", docs=True)
    assert "bonjour" not in page.inner_text("#yaml")
    for view in ("pools", "sla"):
        page.goto(f"{env.base}/#/{view}")
        page.wait_for_selector("h1")
        shoot(page, view)


def test_clear_a_failed_task(env: Env) -> None:
    page = page_as(env, "steerer")
    run = last_run(env)["metadata"]["name"]
    env.k.wait_run(run)
    before = {
        tr["spec"]["taskName"]: tr["metadata"]["uid"]
        for tr in env.k.list("taskruns", f"kascade.io/run={run}")
    }
    page.goto(f"{env.base}/#/run/{env.k.ns}/{run}")
    page.wait_for_selector("#tasks tr[data-key='fails'] .s-failed", timeout=60_000)
    page.click("#clear-failed")
    assert "cleared 2 task instance(s)" in flash_text(page, "ok")  # fails and its downstream end

    def rerun() -> bool:
        now = {
            tr["spec"]["taskName"]: tr["metadata"]["uid"]
            for tr in env.k.list("taskruns", f"kascade.io/run={run}")
        }
        return "fails" in now and now["fails"] != before["fails"]

    wait_until(rerun, timeout=90, what="a new TaskRun for the cleared task")
    states = env.k.task_states(env.k.wait_run(run))
    assert states["fails"] == "failed" and states["end"] == "success"  # re-ran; fails again
    page.wait_for_selector("#tasks tr[data-key='fails'] .s-failed", timeout=60_000)
    assert {
        tr["spec"]["taskName"]: tr["metadata"]["uid"]
        for tr in env.k.list("taskruns", f"kascade.io/run={run}")
    }["slow"] == before["slow"]  # succeeded tasks are kept


def test_a_viewer_is_refused_trigger_clearly(env: Env) -> None:
    page = page_as(env, "viewer")
    runs_before = len(env.k.list("pipelineruns"))
    page.goto(f"{env.base}/#/pipeline/{env.k.ns}/demo/grid")
    page.click("#trigger")
    page.click("#trigger-form button[type=submit]")
    message = flash_text(page, "error")
    assert f'User "system:serviceaccount:{env.k.ns}:viewer" cannot create pipelineruns' in message
    shoot(page, "refused", docs=True)
    assert len(env.k.list("pipelineruns")) == runs_before
    page.goto(f"{env.base}/#/pipeline/{env.k.ns}/demo/grid")
    page.wait_for_selector("#grid .c.s-success")  # viewers see everything a viewer may see


def test_login_form_keeps_the_token_in_an_http_only_cookie(env: Env) -> None:
    context = env.browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{env.base}/#/")
    page.wait_for_selector("#login-form")
    page.fill("#token", env.tokens["viewer"])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector(f"tr[data-pipeline='{env.k.ns}/demo']", timeout=30_000)
    cookie = next(c for c in context.cookies() if c["name"] == "kascade_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "viewer" in page.inner_text("#who")


# -- kascade logs / get on the same runs --------------------------------------------------------
def kascade(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": kubeconfig_path(), "PYTHONPATH": str(ROOT / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "kascade", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_kascade_logs_follows_a_running_pod(env: Env) -> None:
    from kascade.actions import trigger
    from kascade.kube.client import Kube, load_config

    load_config(kubeconfig_path())
    from datetime import UTC, datetime

    run = trigger(
        Kube(), env.k.ns, "demo", params=["greeting=ciao"], by="e2e", now=datetime.now(UTC)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kascade", "logs", run, "--task", "slow", "-f", "-n", env.k.ns],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": kubeconfig_path(), "PYTHONPATH": str(ROOT / "operator")},
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    first = wait_until(lambda: lines[:1], timeout=120, what="the first streamed line")
    phase_then = env.k.core.read_namespaced_pod(f"{run}-slow-a1", env.k.ns).status.phase
    assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    reader.join(5)
    assert [text for _, text in lines] == [f"tick {i}" for i in range(1, 11)]
    assert phase_then == "Running", "the first line arrived only after the pod ended"
    assert lines[-1][0] - first[0][0] > 5  # lines came as the pod printed them, ~1 s apart
    env.k.wait_run(run)
    out = kascade("logs", run, "-n", env.k.ns)
    assert out.returncode == 0, out.stderr
    assert "==> start (attempt 1, success) <==" in out.stdout and "ciao from start" in out.stdout
    assert "==> fails (attempt 1, failed) <==" in out.stdout and "about to fail" in out.stdout
    missing = kascade("logs", run, "--task", "slow", "--attempt", "3", "-n", env.k.ns)
    assert missing.returncode == 1 and "has no attempt 3 (attempts: 1)" in missing.stderr


def test_kascade_get_shows_the_ui_columns(env: Env) -> None:
    out = kascade("get", "pipelines", "-n", env.k.ns)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()[:2]
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "SCHEDULE",
        "NEXT",
        "RUN",
        "PAUSED",
        "LAST",
        "RUNS",
        "TAGS",
    ]
    assert row.split()[1] == "demo" and "demo,ui" in row
    runs = kascade("get", "runs", "-n", env.k.ns, "-o", "json")
    names = [r["name"] for r in __import__("json").loads(runs.stdout)]
    assert last_run(env)["metadata"]["name"] in names
    tasks = kascade("get", "tasks", names[0], "-n", env.k.ns, "-o", "wide")
    assert tasks.returncode == 0 and "POD" in tasks.stdout.splitlines()[0]
